// OpenWhisk's entities cluster-wide (issue 22): packages, sequences, triggers, rules
// and alarms live in the registry bucket beside the functions (key
// ow.<kind>.<name>), and each node's SQLite store is a replica of it, as the
// function registry is (registry-sync.ts): a change on this node is published; every
// change in the bucket is applied here; at start the node takes the bucket's state
// and forgets entities it does not hold. The later write to the bucket wins.
// An alarm's firings are claimed with a compare-and-set on its key owfire.<trigger>,
// so that each firing is fired by one node of the cluster.

import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';
import { ENTITY_KINDS, type Entity, type EntityChange, type EntityKind, type OwEntities } from '../sources/openwhisk/entities.js';
import { followBucket, type Follower } from './follow.js';
import { retrying } from './registry-sync.js';

const PREFIX = 'ow.';
export const entityKey = (kind: EntityKind, name: string): string => `${PREFIX}${kind}.${name}`;
export function entityOfKey(key: string): { kind: EntityKind; name: string } | undefined {
  if (!key.startsWith(PREFIX)) return undefined;
  const rest = key.slice(PREFIX.length);
  const dot = rest.indexOf('.');
  const kind = rest.slice(0, dot) as EntityKind;
  return dot > 0 && ENTITY_KINDS.includes(kind) ? { kind, name: rest.slice(dot + 1) } : undefined;
}
const fireKey = (trigger: string): string => `owfire.${trigger}`;

export class EntitySync {
  /** the bucket revision applied or published last, per key */
  private readonly revisions = new Map<string, number>();
  private follower: Follower | undefined;
  private publishing: Promise<void> = Promise.resolve();

  constructor(
    private readonly kv: KV,
    private readonly entities: OwEntities,
    private readonly log: Logger,
    private readonly closed: () => boolean,
  ) {}

  /** Catch up with the bucket, then follow it and publish this node's changes. */
  async start(): Promise<void> {
    const st = await this.kv.status();
    const lastSeq = st.streamInfo.state.last_seq;
    const present = new Set<string>();
    for await (const k of await this.kv.keys(`${PREFIX}>`)) {
      const e = await this.kv.get(k);
      if (!e || e.operation !== 'PUT') continue;
      present.add(e.key);
      this.apply(e);
    }
    for (const kind of ENTITY_KINDS) {
      for (const e of this.entities.list(kind)) {
        if (present.has(entityKey(kind, e.name))) continue;
        this.log.info('cluster: forgetting an OpenWhisk entity the cluster registry does not hold', { kind, name: e.name });
        this.entities.delete(kind, e.name, 'replica');
      }
    }
    this.follower = followBucket(this.kv, `${PREFIX}>`, lastSeq + 1, (e) => this.apply(e), this.log, this.closed);
    this.entities.onChange((c) => this.publish(c));
  }

  stop(): void {
    this.follower?.stop();
  }

  /** Apply one bucket entry to the local store. */
  apply(e: KvEntry): void {
    const id = entityOfKey(e.key);
    if (!id) return;
    if (e.revision <= (this.revisions.get(e.key) ?? 0)) return;
    this.revisions.set(e.key, e.revision);
    if (e.operation !== 'PUT') {
      this.entities.delete(id.kind, id.name, 'replica');
      return;
    }
    const ent = e.json<Entity>();
    const cur = this.entities.get(id.kind, id.name);
    if (cur && cur.version === ent.version && cur.updatedAt === ent.updatedAt) return;
    this.entities.putReplica({ ...ent, kind: id.kind, name: id.name });
  }

  /** Publish a change made on this node (one after the other, in order). */
  private publish(c: EntityChange): Promise<void> | undefined {
    if (c.origin !== 'local') return undefined;
    const key = c.kind === 'put' ? entityKey(c.entity.kind, c.entity.name) : entityKey(c.entityKind, c.name);
    const op = async (): Promise<void> => {
      if (c.kind === 'put') this.revisions.set(key, Math.max(await this.kv.put(key, JSON.stringify(c.entity)), this.revisions.get(key) ?? 0));
      else {
        await this.kv.delete(key);
        if (c.entityKind === 'alarm') await this.kv.delete(fireKey(c.name)).catch(() => undefined);
      }
    };
    const p = this.publishing.then(() => retrying(op));
    this.publishing = p.catch(() => undefined);
    return p;
  }

  /** Claim an alarm's firing cluster-wide: true on the one node whose compare-and-set wins. */
  async claimFiring(trigger: string, scheduledAt: number): Promise<boolean> {
    const key = fireKey(trigger);
    try {
      const e = await this.kv.get(key);
      const last = e && e.operation === 'PUT' ? Number(e.string()) : undefined;
      if (last !== undefined && last >= scheduledAt) return false;
      if (e && e.operation === 'PUT') await this.kv.update(key, String(scheduledAt), e.revision);
      else await this.kv.create(key, String(scheduledAt));
      return true;
    } catch (err) {
      // another node's write came first (a wrong last revision), or NATS is away: not fired here
      this.log.debug('cluster: alarm firing not claimed', { trigger, scheduledAt, err: (err as Error).message });
      return false;
    }
  }
}
