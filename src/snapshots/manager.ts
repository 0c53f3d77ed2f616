// SnapshotManager: creates, places, serves, re-places and evicts VM snapshots.
//
// A snapshot is taken by a Worker right after a cold boot's init (the agent has
// loaded the code, so a restored VM answers `run` at once). Where it goes is
// the placement policy's decision over the configured storage tiers; each tier
// has a capacity and evicts its least recently used snapshots when full. A
// snapshot is valid only for the exact code, VM shape and guest image it was
// taken with. Everything is recorded in the embedded database.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Actor, errText } from '../core/actor.js';
import type { Db } from '../registry/db.js';
import type { FunctionDef } from '../registry/registry.js';
import type { FunctionView, PlacementPolicy, PlacementStats, TierView } from '../policies/types.js';
import type { SnapshotFiles } from '../runtimes/types.js';
import type { SnapshotMsg, SnapshotRecord, SnapshotRef } from './types.js';

const run = promisify(execFile);

export interface TierConfig {
  name: string;
  path: string;
  latencyRank: number;
  capacityMiB: number;
}

export interface SnapshotManagerOptions {
  db: Db;
  tiers: TierConfig[];
  placement: PlacementPolicy;
  imageVersion: string;
  kind: SnapshotFiles['kind'];
  /** drop the files' pages from the page cache after writing (not for tmpfs tiers) */
  uncache: boolean;
  /** measured per-function behaviour (owned by PerfManager, read-only here) */
  functionView: (fn: FunctionDef) => FunctionView;
  /** measured restore latency by tier and warm latency, for placement */
  measured: (fn: string) => { restoreByTier: Record<string, number>; warmMs?: number; runMs?: number; samples: number } | undefined;
}

interface Row {
  id: string;
  function: string;
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
  readonly counters = { created: 0, restored: 0, restoreFailures: 0, evicted: 0, invalidated: 0, replaced: 0 };

  constructor(private readonly o: SnapshotManagerOptions) {
    super();
    if (o.tiers.length === 0) throw new Error('snapshots: at least one tier is needed');
  }

  protected override preStart(): void {
    for (const t of this.o.tiers) mkdirSync(t.path, { recursive: true, mode: 0o700 });
    this.cleanup();
  }

  protected async receive(msg: SnapshotMsg): Promise<void> {
    switch (msg.kind) {
      case 'lookup':
        msg.reply.resolve(this.lookup(msg.fn));
        return;
      case 'prepare':
        msg.reply.resolve(this.prepare(msg.fn));
        return;
      case 'commit':
        await this.commit(msg.id, msg.createMs);
        return;
      case 'abort':
        this.log.warn('snapshot creation failed', { id: msg.id, reason: msg.reason });
        this.remove(msg.id);
        return;
      case 'restored':
        await this.restored(msg.id, msg.ok, msg.reason);
        return;
      case 'invalidate': {
        const n = this.invalidate(msg.fn, msg.keep);
        msg.reply?.resolve(n);
        return;
      }
      case 'list':
        msg.reply.resolve(this.rows().map(toRecord));
        return;
    }
  }

  // ---- serving -----------------------------------------------------------

  private lookup(fn: FunctionDef): SnapshotRef | undefined {
    const rows = this.o.db
      .prepare(
        `SELECT * FROM snapshots WHERE function = ? AND code_sha256 = ? AND image_version = ? AND memory_mib = ? AND vcpus = ? AND kind = ? AND status = 'ready' ORDER BY last_used_at DESC`,
      )
      .all(fn.name, fn.codeSha256, this.o.imageVersion, fn.memoryMiB, fn.vcpus, this.o.kind) as Row[];
    for (const r of rows) {
      const ref = this.ref(r);
      const missing = [ref.files.statePath, ...(ref.files.kind === 'shared-memory' ? [ref.files.memoryPath] : [])].filter((p) => !existsSync(p));
      if (missing.length === 0) return ref;
      this.log.warn('snapshot files missing: dropping it, the function will cold boot', { id: r.id, fn: fn.name, missing });
      this.remove(r.id);
    }
    return undefined;
  }

  /** Placement decides whether the next cold start of `fn` leaves a snapshot, and on which tier. */
  private prepare(fn: FunctionDef): SnapshotRef | undefined {
    const creating = this.o.db.prepare(`SELECT COUNT(*) AS n FROM snapshots WHERE function = ? AND status = 'creating'`).get(fn.name) as { n: number };
    if (creating.n > 0) return undefined; // one snapshot of a function at a time
    const d = this.o.placement.place(this.o.functionView(fn), this.tierViews(), this.placementStats(fn.name));
    if (d.action !== 'snapshot') {
      this.log.debug('placement: no snapshot', { fn: fn.name, action: d.action, reason: d.reason });
      return undefined;
    }
    const tier = this.o.tiers.find((t) => t.name === d.tier);
    if (!tier) {
      this.log.warn('placement chose an unknown tier', { fn: fn.name, tier: d.tier });
      return undefined;
    }
    const need = fn.memoryMiB * 1024 * 1024;
    if (!this.makeRoom(tier, need)) {
      this.log.warn('snapshot tier full and nothing evictable', { tier: tier.name, fn: fn.name });
      return undefined;
    }
    const id = `${fn.name}-${Date.now().toString(36)}${(++this.seq).toString(36)}`;
    const dir = path.join(tier.path, id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const now = Date.now();
    this.o.db
      .prepare(
        `INSERT INTO snapshots (id, function, code_sha256, image_version, memory_mib, vcpus, kind, tier, dir, size_bytes, created_at, last_used_at, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating')`,
      )
      .run(id, fn.name, fn.codeSha256, this.o.imageVersion, fn.memoryMiB, fn.vcpus, this.o.kind, tier.name, dir, need, now, now);
    return { id, fn: fn.name, tier: tier.name, dir, files: filesIn(dir, this.o.kind) };
  }

  private async commit(id: string, createMs: number): Promise<void> {
    const r = this.row(id);
    if (!r) {
      // the function was deleted or changed while the snapshot was being taken
      this.log.info('snapshot no longer wanted', { id });
      return;
    }
    const size = diskUsage(r.dir);
    this.o.db.prepare(`UPDATE snapshots SET status = 'ready', size_bytes = ?, create_ms = ? WHERE id = ?`).run(size, createMs, id);
    this.counters.created++;
    const tier = this.o.tiers.find((t) => t.name === r.tier);
    if (this.o.uncache && tier) await this.uncache(r.dir, tier);
    this.log.info('snapshot created', { id, fn: r.function, tier: r.tier, sizeMiB: Math.round(size / 1048576), createMs: Math.round(createMs) });
    if (tier) this.makeRoom(tier, 0, id);
  }

  private async restored(id: string, ok: boolean, reason: string | undefined): Promise<void> {
    const r = this.row(id);
    if (!r) return;
    if (!ok) {
      this.counters.restoreFailures++;
      // a host too loaded to answer in time says nothing about the snapshot: keep it
      if (reason && /timed out|no reply within|within \d+ ms|deadline/i.test(reason)) {
        this.log.warn('snapshot restore timed out (host overloaded?): keeping the snapshot', { id, fn: r.function, reason });
        return;
      }
      this.log.warn('snapshot could not be restored: dropping it', { id, fn: r.function, reason });
      this.remove(id);
      return;
    }
    this.counters.restored++;
    this.o.db.prepare('UPDATE snapshots SET last_used_at = ?, restore_count = restore_count + 1 WHERE id = ?').run(Date.now(), id);
    await this.replaceIfNeeded(r);
  }

  /** Adaptive placement: when a function's measurements say its snapshot belongs elsewhere, move (or drop) it. */
  private async replaceIfNeeded(r: Row): Promise<void> {
    if (this.o.placement.name !== 'adaptive') return;
    const stats = this.placementStats(r.function);
    if (!stats) return;
    const fnView: FunctionView = { name: r.function, memoryMiB: r.memory_mib };
    const d = this.o.placement.place(fnView, this.tierViews(), stats);
    if (d.action === 'snapshot' && d.tier === r.tier) return;
    if (d.action !== 'snapshot') {
      this.log.info('adaptive placement drops a snapshot', { id: r.id, action: d.action, reason: d.reason });
      this.remove(r.id);
      return;
    }
    const tier = this.o.tiers.find((t) => t.name === d.tier);
    if (!tier || !this.makeRoom(tier, r.size_bytes)) return;
    const dir = path.join(tier.path, r.id);
    try {
      // cp keeps the RAM file sparse; VMs restored from the old copy keep their private mapping
      await run('cp', ['-r', '--sparse=always', r.dir, dir]);
    } catch (err) {
      this.log.warn('moving a snapshot failed', { id: r.id, err: errText(err) });
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    this.o.db.prepare('UPDATE snapshots SET tier = ?, dir = ? WHERE id = ?').run(tier.name, dir, r.id);
    rmSync(r.dir, { recursive: true, force: true });
    this.counters.replaced++;
    if (this.o.uncache) await this.uncache(dir, tier);
    this.log.info('snapshot re-placed', { id: r.id, from: r.tier, to: tier.name, reason: d.reason });
  }

  // ---- invalidation and eviction ----------------------------------------

  private invalidate(fn: string, keep: FunctionDef | undefined): number {
    let n = 0;
    for (const r of this.o.db.prepare('SELECT * FROM snapshots WHERE function = ?').all(fn) as Row[]) {
      const valid = keep && r.code_sha256 === keep.codeSha256 && r.memory_mib === keep.memoryMiB && r.vcpus === keep.vcpus && r.image_version === this.o.imageVersion;
      if (valid) continue;
      this.remove(r.id);
      this.counters.invalidated++;
      n++;
    }
    return n;
  }

  /** Evict least recently used ready snapshots of `tier` until `extraBytes` more fit. */
  private makeRoom(tier: TierConfig, extraBytes: number, protect?: string): boolean {
    const cap = tier.capacityMiB * 1024 * 1024;
    const rows = this.o.db.prepare(`SELECT * FROM snapshots WHERE tier = ? ORDER BY last_used_at ASC`).all(tier.name) as Row[];
    let used = rows.reduce((s, r) => s + r.size_bytes, 0);
    for (const r of rows) {
      if (used + extraBytes <= cap) break;
      if (r.status !== 'ready' || r.id === protect) continue;
      this.log.info('snapshot evicted (tier full, LRU)', { id: r.id, tier: tier.name });
      this.remove(r.id);
      this.counters.evicted++;
      used -= r.size_bytes;
    }
    return used + extraBytes <= cap;
  }

  private remove(id: string): void {
    const r = this.row(id);
    this.o.db.prepare('DELETE FROM snapshots WHERE id = ?').run(id);
    if (r) rmSync(r.dir, { recursive: true, force: true });
  }

  /** At start: forget half-made snapshots and ones for another image; delete files nobody records. */
  private cleanup(): void {
    for (const r of this.rows()) {
      if (r.status !== 'ready' || r.image_version !== this.o.imageVersion || r.kind !== this.o.kind || !existsSync(r.dir)) this.remove(r.id);
    }
    const known = new Set(this.rows().map((r) => r.dir));
    for (const t of this.o.tiers) {
      for (const name of safeReaddir(t.path)) {
        const dir = path.join(t.path, name);
        if (!known.has(dir)) rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  // ---- helpers -----------------------------------------------------------

  private tierViews(): TierView[] {
    const used = new Map<string, number>();
    for (const r of this.rows()) used.set(r.tier, (used.get(r.tier) ?? 0) + r.size_bytes);
    return this.o.tiers.map((t) => ({ name: t.name, latencyRank: t.latencyRank, capacityBytes: t.capacityMiB * 1024 * 1024, usedBytes: used.get(t.name) ?? 0 }));
  }

  /**
   * Slowdown per tier = (restore + run) / (warm + run). Tiers the function was
   * never restored from are estimated from how the tiers compare for all functions.
   */
  private placementStats(fn: string): PlacementStats | undefined {
    const m = this.o.measured(fn);
    if (!m) return undefined;
    const base = (m.warmMs ?? 0) + (m.runMs ?? 0) || 1;
    const slowdownByTier: Record<string, number | undefined> = {};
    const measuredTiers = Object.entries(m.restoreByTier);
    const factor = this.tierFactors();
    for (const t of this.o.tiers) {
      let restore = m.restoreByTier[t.name];
      if (restore === undefined && measuredTiers.length > 0) {
        const [refTier, refMs] = measuredTiers[0]!;
        const f = factor.get(t.name) && factor.get(refTier) ? factor.get(t.name)! / factor.get(refTier)! : undefined;
        restore = f !== undefined ? refMs * f : undefined;
      }
      slowdownByTier[t.name] = restore === undefined ? undefined : (restore + (m.runMs ?? 0)) / base;
    }
    return { slowdownByTier, samples: m.samples };
  }

  /** mean restore latency of each tier over every function measured there */
  private tierFactors(): Map<string, number> {
    const sums = new Map<string, { s: number; n: number }>();
    for (const r of this.rows()) {
      const m = this.o.measured(r.function);
      for (const [t, v] of Object.entries(m?.restoreByTier ?? {})) {
        const e = sums.get(t) ?? { s: 0, n: 0 };
        e.s += v;
        e.n++;
        sums.set(t, e);
      }
    }
    return new Map([...sums].map(([t, e]) => [t, e.s / e.n]));
  }

  private async uncache(dir: string, tier: TierConfig): Promise<void> {
    if (isTmpfs(tier.path)) return; // on tmpfs the page cache *is* the storage
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
    return { id: r.id, fn: r.function, tier: r.tier, dir: r.dir, files: filesIn(r.dir, r.kind as SnapshotFiles['kind']) };
  }

  private row(id: string): Row | undefined {
    return this.o.db.prepare('SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
  }

  private rows(): Row[] {
    return this.o.db.prepare('SELECT * FROM snapshots ORDER BY created_at').all() as Row[];
  }
}

function filesIn(dir: string, kind: SnapshotFiles['kind']): SnapshotFiles {
  return { kind, statePath: path.join(dir, 'state'), memoryPath: path.join(dir, 'mem') };
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

function isTmpfs(p: string): boolean {
  return p.startsWith('/dev/shm') || p.startsWith('/run/') || p === '/run';
}

function toRecord(r: Row): SnapshotRecord {
  return {
    id: r.id,
    function: r.function,
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
