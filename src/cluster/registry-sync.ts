// One registry for the cluster. Definitions live in a JetStream KV bucket (key
// fn.<name>), code archives in the object store (<name>/<sha256>); each node keeps
// its SQLite registry as a replica of the bucket:
//   - a deploy or delete on this node is published (code first, then the definition);
//   - every change in the bucket is applied here, and VmPool is told, so a changed
//     function retires its instances and snapshots on every node;
//   - at start the node takes the bucket's state and forgets functions it does not
//     hold (the bucket is the truth; a node that joins later or restarts catches up).
// Concurrent deploys of one function through two nodes: the later write to the
// bucket wins everywhere.

import type { KvEntry } from '@nats-io/kv';
import { FaasError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { FunctionDef, Registry, RegistryChange } from '../registry/registry.js';
import type { Buckets } from './connection.js';
import { followBucket, type Follower } from './follow.js';
import { codeObject, functionKey, functionOfKey } from './subjects.js';

/** Same definition (the replica need not be written again). */
export function sameDef(a: FunctionDef, b: FunctionDef): boolean {
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}
function canon(d: FunctionDef): unknown {
  const o = d as unknown as Record<string, unknown>;
  return Object.keys(o)
    .sort()
    .map((k) => [k, k === 'env' ? Object.entries(d.env).sort() : o[k]]);
}

export class RegistrySync {
  /** the bucket revision applied or published last, per function */
  private readonly revisions = new Map<string, number>();
  /** code digest of each function's current version (the old code object is deleted after a new deploy) */
  private readonly codeOf = new Map<string, string>();
  private follower: Follower | undefined;
  private publishing: Promise<void> = Promise.resolve();
  /** changes applied before VmPool could be told (told when it attaches) */
  private untold = new Set<string>();
  private tell: ((name: string, def: FunctionDef | undefined) => void) | undefined;

  constructor(
    private readonly buckets: Buckets,
    private readonly registry: Registry,
    private readonly log: Logger,
    private readonly closed: () => boolean,
    private readonly publishDeadlineMs = 10_000,
  ) {}

  /** Catch up with the bucket, then follow it and publish this node's changes. */
  async start(): Promise<void> {
    const kv = this.buckets.functions;
    const st = await kv.status();
    const lastSeq = st.streamInfo.state.last_seq;
    const present = new Set<string>();
    for await (const k of await kv.keys('fn.>')) {
      const e = await kv.get(k);
      if (!e || e.operation !== 'PUT') continue;
      const name = functionOfKey(e.key);
      if (name) present.add(name);
      await this.apply(e);
    }
    for (const def of this.registry.list()) {
      if (present.has(def.name)) continue;
      this.log.info('cluster: forgetting a function the cluster registry does not hold', { fn: def.name });
      this.registry.delete(def.name, 'replica');
      this.changed(def.name, undefined);
    }
    this.follower = followBucket(kv, 'fn.>', lastSeq + 1, (e) => this.apply(e), this.log, this.closed);
    this.registry.onChange((c) => this.publish(c));
  }

  /** VmPool is up: tell it what changed since it read the registry, and every change from now on. */
  attach(tell: (name: string, def: FunctionDef | undefined) => void): void {
    this.tell = tell;
    for (const name of this.untold) tell(name, this.registry.get(name));
    this.untold.clear();
  }

  stop(): void {
    this.follower?.stop();
  }

  private changed(name: string, def: FunctionDef | undefined): void {
    if (this.tell) this.tell(name, def);
    else this.untold.add(name);
  }

  /** Apply one bucket entry to the local registry. */
  async apply(e: KvEntry): Promise<void> {
    const name = functionOfKey(e.key);
    if (!name) return;
    if (e.revision <= (this.revisions.get(name) ?? 0)) return;
    if (e.operation !== 'PUT') {
      this.revisions.set(name, e.revision);
      this.codeOf.delete(name);
      if (this.registry.delete(name, 'replica')) {
        this.log.info('cluster: function deleted through another node', { fn: name });
        this.changed(name, undefined);
      }
      return;
    }
    const def = e.json<FunctionDef>();
    const cur = this.registry.get(name);
    if (cur && sameDef(cur, def)) {
      this.revisions.set(name, e.revision);
      this.codeOf.set(name, def.codeSha256);
      return;
    }
    const code = await this.buckets.code.getBlob(codeObject(name, def.codeSha256));
    if (!code) {
      // replaced again meanwhile (its old code is deleted): the newer entry follows
      this.log.warn('cluster: code of a function version is missing; waiting for a newer version', { fn: name, version: def.version });
      return;
    }
    try {
      const stored = this.registry.putReplica(def, Buffer.from(code));
      this.revisions.set(name, e.revision);
      this.codeOf.set(name, def.codeSha256);
      this.log.info('cluster: function version from the cluster registry', { fn: name, version: def.version });
      this.changed(name, stored);
    } catch (err) {
      // e.g. this node's functionLimits are lower than the deploying node's
      this.log.error('cluster: cannot take a function version from the cluster registry', { fn: name, version: def.version, err: (err as Error).message });
    }
  }

  /** Publish a change made on this node (deploys and deletes one after the other, in order). */
  private publish(c: RegistryChange): Promise<void> | undefined {
    if (c.origin !== 'local') return undefined;
    const p = this.publishing.then(() => this.retrying(() => (c.kind === 'put' ? this.publishPut(c.def, c.code) : this.publishDelete(c.name))));
    this.publishing = p.catch(() => undefined);
    return p;
  }

  private async publishPut(def: FunctionDef, code: Buffer): Promise<void> {
    const obj = codeObject(def.name, def.codeSha256);
    const have = await this.buckets.code.info(obj);
    if (!have || have.deleted) await this.buckets.code.putBlob({ name: obj }, code);
    const rev = await this.buckets.functions.put(functionKey(def.name), JSON.stringify(def));
    this.revisions.set(def.name, Math.max(rev, this.revisions.get(def.name) ?? 0));
    const old = this.codeOf.get(def.name);
    this.codeOf.set(def.name, def.codeSha256);
    if (old && old !== def.codeSha256) await this.buckets.code.delete(codeObject(def.name, old)).catch(() => undefined);
  }

  private async publishDelete(name: string): Promise<void> {
    await this.buckets.functions.delete(functionKey(name));
    const old = this.codeOf.get(name);
    this.codeOf.delete(name);
    if (old) await this.buckets.code.delete(codeObject(name, old)).catch(() => undefined);
  }

  private retrying(op: () => Promise<void>): Promise<void> {
    return retrying(op, this.publishDeadlineMs);
  }
}

/** Publish to the bucket, trying again for a while (NATS restarting); then a 503 the API answers. */
export async function retrying(op: () => Promise<void>, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (Date.now() >= end) {
        throw new FaasError('unavailable', `stored on this node but not in the cluster registry (NATS: ${(err as Error).message}); deploy again`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
