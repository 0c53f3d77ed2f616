// PerfManager: stores activation records and owns the per-function cost
// statistics (CostStats). After every record it sends the function's new costs
// to its subscriber (VmPool), whose decision core hands them to the policies:
// placement, keep-alive (start costs), admission's wait estimate, CPU accounting.

import { Actor, type ActorRef, type Reply } from '../core/actor.js';
import { stmt, type Db } from '../registry/db.js';
import type { ActivationRecord } from './activation.js';
import { CostStats, type CostSample, type FunctionCostView, type FunctionStats } from './cost-stats.js';

export type PerfMsg =
  | { kind: 'activation'; record: ActivationRecord }
  | { kind: 'list'; limit: number; fn?: string; reply: Reply<ActivationRecord[]> }
  | { kind: 'get'; id: string; reply: Reply<ActivationRecord | undefined> }
  | { kind: 'stats'; reply: Reply<Record<string, FunctionStats>> }
  /** who hears about changed costs, and the snapshot tiers to estimate restore costs for */
  | { kind: 'subscribe'; to: ActorRef<CostsMsg>; tiers: string[] };

/** What PerfManager tells its subscriber. */
export interface CostsMsg {
  kind: 'costs';
  fn: string;
  costs: FunctionCostView;
}

/** The cost sample of a finished activation (successful ones only: a failure says little about costs). */
export function sampleOf(rec: ActivationRecord): CostSample | undefined {
  if (rec.status !== 'success' || !rec.startPath) return undefined;
  const t = rec.timestamps;
  const s: CostSample = { fn: rec.function, path: rec.startPath, runMs: rec.runMs, cpuShare: rec.runCpuShare };
  if (rec.startPath === 'warm') {
    if (t.runStarted !== undefined && t.instanceAssigned !== undefined) s.warmMs = t.runStarted - t.instanceAssigned;
  } else {
    const startMs = rec.startDetails?.startMs;
    if (typeof startMs === 'number') s.startMs = startMs;
    if (rec.snapshot) s.tier = rec.snapshot.tier;
  }
  return s;
}

export class PerfManager extends Actor<PerfMsg> {
  readonly stats = new CostStats();
  private inserted = 0;
  private unwritten: ActivationRecord[] = [];
  private subscriber: ActorRef<CostsMsg> | undefined;
  private tiers: string[] = [];

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
        this.flush();
        msg.reply.resolve(this.list(msg.limit, msg.fn));
        return;
      case 'get': {
        this.flush();
        const r = stmt(this.db, 'SELECT record FROM activations WHERE id = ?').get(msg.id) as { record: string } | undefined;
        msg.reply.resolve(r ? (JSON.parse(r.record) as ActivationRecord) : undefined);
        return;
      }
      case 'stats':
        msg.reply.resolve(Object.fromEntries(this.stats.byFn));
        return;
      case 'subscribe':
        this.subscriber = msg.to;
        this.tiers = msg.tiers;
        return;
    }
  }

  private store(rec: ActivationRecord): void {
    const s = sampleOf(rec);
    if (s) {
      this.stats.observe(s);
      this.subscriber?.tell({ kind: 'costs', fn: s.fn, costs: this.stats.view(s.fn, this.tiers) });
    }
    // written in one transaction per event-loop turn: off the reply's path, one commit for a burst
    this.unwritten.push(rec);
    if (this.unwritten.length === 1) setImmediate(this.flush);
  }

  /** Write the records received so far (also before every read: a record just answered is found). */
  private readonly flush = (): void => {
    if (this.unwritten.length === 0) return;
    const recs = this.unwritten;
    this.unwritten = [];
    const insert = stmt(this.db, 'INSERT OR REPLACE INTO activations (id, function, start_path, status, received_at, total_ms, record) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const rec of recs) insert.run(rec.id, rec.function, rec.startPath ?? null, rec.status, Math.round(rec.timestamps.received ?? 0), rec.totalMs, JSON.stringify(rec));
    })();
    // prune now and then, not on every insert
    const before = this.inserted;
    this.inserted += recs.length;
    if (Math.floor(this.inserted / 1000) !== Math.floor(before / 1000)) {
      stmt(this.db, 'DELETE FROM activations WHERE id IN (SELECT id FROM activations ORDER BY received_at DESC LIMIT -1 OFFSET ?)').run(this.retain);
    }
  };

  protected override postStop(): void {
    this.flush();
  }

  private list(limit: number, fn?: string): ActivationRecord[] {
    const rows = (
      fn
        ? stmt(this.db, 'SELECT record FROM activations WHERE function = ? ORDER BY received_at DESC LIMIT ?').all(fn, limit)
        : stmt(this.db, 'SELECT record FROM activations ORDER BY received_at DESC LIMIT ?').all(limit)
    ) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as ActivationRecord);
  }
}
