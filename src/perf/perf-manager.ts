// PerfManager: stores activation records and keeps running per-function
// statistics of each start path (used by placement and keep-alive policies as
// measured costs, and by `faascell status`).

import { Actor, type Reply } from '../core/actor.js';
import type { Db } from '../registry/db.js';
import type { ActivationRecord, StartPath } from './activation.js';

export type PerfMsg =
  | { kind: 'activation'; record: ActivationRecord }
  | { kind: 'list'; limit: number; fn?: string; reply: Reply<ActivationRecord[]> }
  | { kind: 'get'; id: string; reply: Reply<ActivationRecord | undefined> }
  | { kind: 'stats'; reply: Reply<Record<string, FunctionStats>> };

/** Exponentially weighted mean and a bounded sample window per start path. */
export interface PathStats {
  count: number;
  meanMs: number;
  /** most recent samples (for percentiles) */
  recent: number[];
}

export interface FunctionStats {
  cold?: PathStats;
  warm?: PathStats;
  restore?: PathStats;
  /** guest-measured run time of the function itself */
  run?: PathStats;
  /** restore latency per snapshot tier */
  restoreByTier: Record<string, PathStats>;
}

const WINDOW = 200;

export class PerfStats {
  readonly byFn = new Map<string, FunctionStats>();

  add(rec: ActivationRecord): void {
    if (rec.status !== 'success' || !rec.startPath) return;
    const fs = this.of(rec.function);
    const startMs = startCost(rec);
    push((fs[rec.startPath] ??= empty()), startMs);
    if (rec.runMs !== undefined) push((fs.run ??= empty()), rec.runMs);
    if (rec.startPath === 'restore' && rec.snapshot) push((fs.restoreByTier[rec.snapshot.tier] ??= empty()), startMs);
  }

  of(fn: string): FunctionStats {
    let s = this.byFn.get(fn);
    if (!s) this.byFn.set(fn, (s = { restoreByTier: {} }));
    return s;
  }

  mean(fn: string, path: StartPath | 'run'): number | undefined {
    return this.byFn.get(fn)?.[path]?.meanMs;
  }
}

/** Time from `received` until the function could start running: what the start path cost. */
export function startCost(rec: ActivationRecord): number {
  const t = rec.timestamps;
  const end = t.runStarted ?? t.runFinished ?? t.responseSent;
  const begin = t.instanceAssigned ?? t.received;
  return end !== undefined && begin !== undefined ? end - begin : rec.totalMs;
}

function empty(): PathStats {
  return { count: 0, meanMs: 0, recent: [] };
}
function push(s: PathStats, v: number): void {
  s.count++;
  // plain mean for the first samples, then an EWMA so old behaviour fades
  s.meanMs = s.count <= 10 ? s.meanMs + (v - s.meanMs) / s.count : s.meanMs * 0.9 + v * 0.1;
  s.recent.push(v);
  if (s.recent.length > WINDOW) s.recent.shift();
}

export class PerfManager extends Actor<PerfMsg> {
  readonly stats = new PerfStats();
  private inserted = 0;

  constructor(
    private readonly db: Db,
    private readonly retain: number,
  ) {
    super();
  }

  protected receive(msg: PerfMsg): void {
    switch (msg.kind) {
      case 'activation':
        this.store(msg.record);
        return;
      case 'list':
        msg.reply.resolve(this.list(msg.limit, msg.fn));
        return;
      case 'get': {
        const r = this.db.prepare('SELECT record FROM activations WHERE id = ?').get(msg.id) as { record: string } | undefined;
        msg.reply.resolve(r ? (JSON.parse(r.record) as ActivationRecord) : undefined);
        return;
      }
      case 'stats':
        msg.reply.resolve(Object.fromEntries(this.stats.byFn));
        return;
    }
  }

  private store(rec: ActivationRecord): void {
    this.stats.add(rec);
    this.db
      .prepare('INSERT OR REPLACE INTO activations (id, function, start_path, status, received_at, total_ms, record) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(rec.id, rec.function, rec.startPath ?? null, rec.status, Math.round(rec.timestamps.received ?? Date.now()), rec.totalMs, JSON.stringify(rec));
    // prune now and then, not on every insert
    if (++this.inserted % 1000 === 0) {
      this.db
        .prepare('DELETE FROM activations WHERE id IN (SELECT id FROM activations ORDER BY received_at DESC LIMIT -1 OFFSET ?)')
        .run(this.retain);
    }
  }

  private list(limit: number, fn?: string): ActivationRecord[] {
    const rows = (
      fn
        ? this.db.prepare('SELECT record FROM activations WHERE function = ? ORDER BY received_at DESC LIMIT ?').all(fn, limit)
        : this.db.prepare('SELECT record FROM activations ORDER BY received_at DESC LIMIT ?').all(limit)
    ) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as ActivationRecord);
  }
}
