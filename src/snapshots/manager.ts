// SnapshotManager: keeps VM snapshots on the storage tiers and their catalogue
// in the embedded database. What exists where is decided by the decision core
// (placement policy, tier capacity with LRU eviction, invalidation when a
// function changes, re-placement); this actor carries it out: it makes the
// directory a snapshot is written to, records it, measures it, moves or deletes
// its files, and at start forgets half-made snapshots, snapshots of another guest
// image, and files nobody records.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Actor, errText } from '../core/actor.js';
import type { Clock } from '../core/clock.js';
import { stmt, type Db } from '../registry/db.js';
import type { FunctionDef } from '../registry/registry.js';
import type { SnapshotFiles } from '../runtimes/types.js';
import type { SnapshotMsg, SnapshotRecord, SnapshotRef } from './types.js';
import { assertTierSpace } from './tier-space.js';
import { denseBytes, fillHoles, holeBytes, isTmpfs } from '../runtimes/ram-file.js';

const run = promisify(execFile);

/** How long the old copy of a moved snapshot stays for restores already handed its path. */
const OLD_COPY_GRACE_MS = 30_000;

export interface TierConfig {
  name: string;
  path: string;
  latencyRank: number;
  capacityMiB: number;
}

export interface SnapshotManagerOptions {
  db: Db;
  tiers: TierConfig[];
  imageVersion: string;
  kind: SnapshotFiles['kind'];
  /** drop the files' pages from the page cache after writing (not for tmpfs tiers) */
  uncache: boolean;
  clock: Clock;
  /** the free-space probe of a tier's file system (default statfs(2); unit tests give a full one) */
  statfs?: (p: string) => { bavail: number; bsize: number };
  /** what a new snapshot of `fn` in `dir` takes (default: its files' allocated blocks; the conformance test's fake VMs write none) */
  measure?: (fn: string, dir: string) => number;
  /** whether a tier's file system is tmpfs (default: statfs(2)'s f_type); its RAM files are made dense (ram-file.ts) */
  isTmpfs?: (p: string) => boolean;
  /** fills a RAM file's holes (default fallocate(1); unit tests give one that fails) */
  fillHoles?: (file: string) => Promise<void>;
}

interface Row {
  id: string;
  function: string;
  version_key: string;
  code_sha256: string;
  image_version: string;
  memory_mib: number;
  vcpus: number;
  kind: string;
  tier: string;
  dir: string;
  size_bytes: number;
  created_at: number;
  last_used_at: number;
  restore_count: number;
  create_ms: number | null;
  status: string;
}

export class SnapshotManager extends Actor<SnapshotMsg> {
  private seq = 0;

  constructor(private readonly o: SnapshotManagerOptions) {
    super();
    if (o.tiers.length === 0) throw new Error('snapshots: at least one tier is needed');
  }

  protected override async preStart(): Promise<void> {
    for (const t of this.o.tiers) mkdirSync(t.path, { recursive: true, mode: 0o700 });
    this.cleanup();
    await this.remeasure();
  }

  protected async receive(msg: SnapshotMsg): Promise<void> {
    switch (msg.kind) {
      case 'inventory':
        msg.reply.resolve(
          this.rows()
            .filter((r) => r.status === 'ready')
            .sort((a, b) => b.last_used_at - a.last_used_at)
            .map((r) => ({ record: toRecord(r), ref: this.ref(r) })),
        );
        return;
      case 'prepare':
        try {
          msg.reply.resolve(this.prepare(msg.fn, msg.versionKey, msg.tier));
        } catch (err) {
          msg.reply.reject(err); // VmPool boots cold without a snapshot (hardening, issue 12)
        }
        return;
      case 'commit': {
        const bytes = await this.commit(msg.id, msg.createMs);
        msg.reply?.resolve(bytes);
        // issue 19: after the reply, so the cold start that took the snapshot does not wait for it
        // (a restore that comes first fills the rest itself: ram-file.ts ensureDense)
        if (bytes > 0) await this.fillAfterCommit(msg.id);
        return;
      }
      case 'restored':
        stmt(this.o.db, 'UPDATE snapshots SET last_used_at = ?, restore_count = restore_count + 1 WHERE id = ?').run(Math.round(this.o.clock.now()), msg.id);
        return;
      case 'restoreFailed':
        this.log.warn(msg.broken ? 'snapshot could not be restored' : 'snapshot restore timed out (host overloaded?)', { id: msg.id, reason: msg.reason });
        return;
      case 'drop':
        this.log.info('snapshot dropped', { id: msg.id, cause: msg.cause });
        this.remove(msg.id);
        return;
      case 'move':
        msg.reply?.resolve(await this.move(msg.id, msg.tier));
        return;
      case 'list':
        msg.reply.resolve(this.rows().map(toRecord));
        return;
    }
  }

  private prepare(fn: FunctionDef, versionKey: string, tierName: string): SnapshotRef {
    const tier = this.tier(tierName);
    // hardening (issue 12): a tier whose file system cannot take the snapshot is refused (a full tmpfs would SIGBUS the VMM);
    // VmPool then asks the core for another tier (TierSpaceError is the typed signal), else boots cold without one
    assertTierSpace(tier.path, fn.memoryMiB, this.rows().filter((r) => r.tier === tier.name && r.status === 'creating').reduce((n, r) => n + Math.max(0, r.memory_mib * 1048576 - diskUsage(r.dir)), 0), this.o.statfs);
    // issue 22: an action in an OpenWhisk package is the function `package/action`: no '/' in a directory name
    const id = `${fn.name.replace('/', '+')}-${Math.round(this.o.clock.now()).toString(36)}${(++this.seq).toString(36)}`;
    const dir = path.join(tier.path, id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const now = Math.round(this.o.clock.now());
    stmt(this.o.db, 
        `INSERT INTO snapshots (id, function, version_key, code_sha256, image_version, memory_mib, vcpus, kind, tier, dir, size_bytes, created_at, last_used_at, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating')`,
      )
      .run(id, fn.name, versionKey, fn.codeSha256, this.o.imageVersion, fn.memoryMiB, fn.vcpus, this.o.kind, tier.name, dir, fn.memoryMiB * 1048576, now, now);
    return refOf(id, fn.name, tier.name, dir, this.o.kind);
  }

  private async commit(id: string, createMs: number): Promise<number> {
    const r = this.row(id);
    if (!r) {
      // dropped while it was being taken (function changed or deleted, instance stopped)
      this.log.info('snapshot no longer wanted', { id });
      return 0;
    }
    const tier = this.o.tiers.find((t) => t.name === r.tier);
    // issue 19: on tmpfs the size its files will have once their holes are filled (fillAfterCommit)
    const size = this.o.measure ? this.o.measure(r.function, r.dir) : tier && this.tierIsTmpfs(tier) ? denseUsage(r.dir) : diskUsage(r.dir);
    stmt(this.o.db, `UPDATE snapshots SET status = 'ready', size_bytes = ?, create_ms = ? WHERE id = ?`).run(size, createMs, id);
    if (this.o.uncache && tier) await this.uncache(r.dir, tier);
    this.log.info('snapshot created', { id, fn: r.function, tier: r.tier, sizeMiB: Math.round(size / 1048576), createMs: Math.round(createMs) });
    return size;
  }

  /**
   * Right after a commit: make the snapshot's files dense on a tmpfs tier. When that fails (its file
   * system filled up meanwhile) the snapshot is removed: its next restore finds no files, the core
   * drops it and the next start boots cold (no request fails); a clone could have faulted on a hole.
   */
  private async fillAfterCommit(id: string): Promise<void> {
    const r = this.row(id);
    const tier = r && this.o.tiers.find((t) => t.name === r.tier);
    if (!r || !tier) return;
    try {
      const ms = await this.makeDense(r.dir, tier);
      if (ms > 0) this.log.debug('snapshot files made dense', { id, fillMs: Math.round(ms) });
    } catch (err) {
      this.log.warn('snapshot removed: its files could not be made dense (tier full?)', { id, err: errText(err) });
      this.remove(id);
    }
  }

  /**
   * A snapshot on a tmpfs tier: fill the holes of its files (ram-file.ts), so that no clone's fault
   * allocates in its RAM file (it would grow the snapshot and charge the clone twice). Every file,
   * not only QEMU's `mem`: Firecracker maps its memory file (`state.mem` for full snapshots) the same way.
   * Returns the time it took (0: nothing to do). Throws when the file system has no room for it.
   */
  private async makeDense(dir: string, tier: TierConfig): Promise<number> {
    if (!this.tierIsTmpfs(tier)) return 0;
    const sparse = safeReaddir(dir).map((f) => path.join(dir, f)).filter((f) => holeBytes(f) > 0);
    if (sparse.length === 0) return 0;
    const t0 = performance.now();
    for (const f of sparse) await (this.o.fillHoles ?? fillHoles)(f);
    return performance.now() - t0;
  }

  private tierIsTmpfs(tier: TierConfig): boolean {
    return (this.o.isTmpfs ?? isTmpfs)(tier.path);
  }

  /**
   * At start: snapshots written before RAM files on tmpfs were made dense, or whose files grew, are
   * filled and measured again, so the catalogue (and the core's tier accounting) holds allocated bytes.
   * A snapshot whose holes cannot be filled (its tier is full) is removed: a clone of it could fault.
   */
  private async remeasure(): Promise<void> {
    for (const r of this.rows()) {
      const tier = this.o.tiers.find((t) => t.name === r.tier);
      if (!tier) continue;
      try {
        await this.makeDense(r.dir, tier);
      } catch (err) {
        this.log.warn('snapshot removed: its RAM file could not be made dense', { id: r.id, err: errText(err) });
        this.remove(r.id);
        continue;
      }
      const size = diskUsage(r.dir);
      if (size !== r.size_bytes) stmt(this.o.db, 'UPDATE snapshots SET size_bytes = ? WHERE id = ?').run(size, r.id);
    }
  }

  private async move(id: string, tierName: string): Promise<{ ref: SnapshotRef; bytes: number } | undefined> {
    const r = this.row(id);
    if (!r || r.tier === tierName) return undefined;
    const tier = this.tier(tierName);
    const dir = path.join(tier.path, r.id);
    try {
      // cp keeps the RAM file sparse; VMs restored from the old copy keep their private mapping
      await run('cp', ['-r', '--sparse=always', r.dir, dir]);
      // issue 19: dense again on a tmpfs tier (cp made it sparse, which suits a disk tier)
      await this.makeDense(dir, tier);
    } catch (err) {
      this.log.warn('moving a snapshot failed: it stays where it was', { id, err: errText(err) });
      rmSync(dir, { recursive: true, force: true });
      return undefined;
    }
    // issue 19: what it takes there (dense on tmpfs, sparse again on disk): the core counts it when told (moveDone)
    const size = diskUsage(dir);
    stmt(this.o.db, 'UPDATE snapshots SET tier = ?, dir = ?, size_bytes = ? WHERE id = ?').run(tier.name, dir, size, r.id);
    // restores that were handed the old place may still be starting: remove it a little later
    this.o.clock.setTimer(OLD_COPY_GRACE_MS, () => rmSync(r.dir, { recursive: true, force: true }));
    if (this.o.uncache) await this.uncache(dir, tier);
    this.log.info('snapshot moved', { id, from: r.tier, to: tier.name });
    return { ref: this.ref({ ...r, tier: tier.name, dir }), bytes: size };
  }

  private remove(id: string): void {
    const r = this.row(id);
    stmt(this.o.db, 'DELETE FROM snapshots WHERE id = ?').run(id);
    if (r) rmSync(r.dir, { recursive: true, force: true });
  }

  /** At start: forget half-made snapshots and ones for another image or kind; delete files nobody records. */
  private cleanup(): void {
    for (const r of this.rows()) {
      const bad = r.status !== 'ready' || r.image_version !== this.o.imageVersion || r.kind !== this.o.kind || r.version_key === '' || !existsSync(r.dir);
      if (bad || !this.o.tiers.some((t) => t.name === r.tier)) this.remove(r.id);
    }
    const known = new Set(this.rows().map((r) => r.dir));
    for (const t of this.o.tiers) {
      for (const name of safeReaddir(t.path)) {
        const dir = path.join(t.path, name);
        if (!known.has(dir)) rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  private tier(name: string): TierConfig {
    const t = this.o.tiers.find((x) => x.name === name);
    if (!t) throw new Error(`snapshots: no tier named ${name}`);
    return t;
  }

  private async uncache(dir: string, tier: TierConfig): Promise<void> {
    if (this.tierIsTmpfs(tier)) return; // on tmpfs the page cache *is* the storage
    for (const f of safeReaddir(dir)) {
      try {
        // GNU dd: iflag=nocache with count=0 asks the kernel to drop the whole file's cached pages
        await run('dd', [`if=${path.join(dir, f)}`, 'iflag=nocache', 'count=0', 'status=none']);
      } catch (err) {
        this.log.warn('could not drop snapshot pages from the page cache', { file: f, err: errText(err) });
      }
    }
  }

  private ref(r: Row): SnapshotRef {
    return refOf(r.id, r.function, r.tier, r.dir, r.kind as SnapshotFiles['kind']);
  }

  private row(id: string): Row | undefined {
    return stmt(this.o.db, 'SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
  }

  private rows(): Row[] {
    return stmt(this.o.db, 'SELECT * FROM snapshots ORDER BY created_at').all() as Row[];
  }
}

function refOf(id: string, fn: string, tier: string, dir: string, kind: SnapshotFiles['kind']): SnapshotRef {
  return { id, fn, tier, dir, files: { kind, statePath: path.join(dir, 'state'), memoryPath: path.join(dir, 'mem') }, workingSetPath: path.join(dir, 'ws.json') };
}

/** What the files of `dir` take on tmpfs once their holes are filled. */
function denseUsage(dir: string): number {
  let total = 0;
  for (const f of safeReaddir(dir)) {
    try {
      total += denseBytes(path.join(dir, f));
    } catch {
      // vanished
    }
  }
  return total;
}

/** Bytes actually allocated (RAM files are sparse). */
function diskUsage(dir: string): number {
  let total = 0;
  for (const f of safeReaddir(dir)) {
    try {
      total += statSync(path.join(dir, f)).blocks * 512;
    } catch {
      // vanished
    }
  }
  return total;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function toRecord(r: Row): SnapshotRecord {
  return {
    id: r.id,
    function: r.function,
    versionKey: r.version_key,
    codeSha256: r.code_sha256,
    imageVersion: r.image_version,
    memoryMiB: r.memory_mib,
    vcpus: r.vcpus,
    kind: r.kind as SnapshotFiles['kind'],
    tier: r.tier,
    dir: r.dir,
    sizeBytes: r.size_bytes,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    restoreCount: r.restore_count,
    createMs: r.create_ms,
    status: r.status as SnapshotRecord['status'],
  };
}
