// PerfManager: stores activation records and owns the per-function cost
// statistics (CostStats). After every record it sends the function's new costs
// to its subscriber (VmPool), whose decision core hands them to the policies:
// placement, keep-alive (start costs), admission's wait estimate, CPU accounting.

import { Actor, type ActorRef, type Reply } from '../core/actor.js';
import type { Db } from '../registry/db.js';
import type { ActivationRecord } from './activation.js';
import { ActivationStore, type ActivationFilter, type ActivationPage, type ActivationQuery, type StoreLimits } from './activation-store.js';
import { finishInterrupted } from './recovery.js';
import { CostStats, type CostSample, type FunctionCostView, type FunctionStats } from './cost-stats.js';

export type PerfMsg =
  /** `written`: called once the record is committed (or its write failed): the reply goes out after it (issue 12: kill -9 loses no answered record) */
  | { kind: 'activation'; record: ActivationRecord; written?: () => void }
  /**
   * Durable acceptance (issue 12): the record of an invocation about to start, in
   * state `accepted`, committed before `written` is called (group commit with every
   * other record of the same event-loop turn). `unique`: the id was chosen by the
   * client, so an id some record already has is refused instead of replaced.
   */
  | { kind: 'accepted'; record: ActivationRecord; unique?: boolean; written: (r: AcceptResult) => void }
  /** newest first, without logs unless asked (issue 19: src/perf/activation-store.ts) */
  | { kind: 'list'; query: ActivationQuery; reply: Reply<ActivationPage> }
  | { kind: 'count'; filter: ActivationFilter; reply: Reply<number> }
  | { kind: 'get'; id: string; reply: Reply<ActivationRecord | undefined> }
  /** issue 20: the ids that start with `prefix` (at most `limit`), as the CLI's short ids */
  | { kind: 'idsWithPrefix'; prefix: string; limit: number; reply: Reply<string[]> }
  | { kind: 'stats'; reply: Reply<Record<string, FunctionStats>> }
  /** issue 23: the finished records received in [since, until) (epoch ms), oldest first, at most `limit` */
  | { kind: 'range'; since: number; until: number; limit: number; reply: Reply<ActivationRecord[]> }
  /** who hears about changed costs, and the snapshot tiers to estimate restore costs for */
  | { kind: 'subscribe'; to: ActorRef<CostsMsg>; tiers: string[] };

/** The outcome of an acceptance write. */
export type AcceptResult = { ok: true } | { ok: false; reason: 'duplicate_id' } | { ok: false; reason: 'store_failed'; message: string };

/** A record waiting for the next group commit. */
interface Pending {
  rec: ActivationRecord;
  /** replace: the final record (or an acceptance under an id the daemon chose); fresh: only if the id is new */
  mode: 'replace' | 'fresh';
  written?: () => void;
  accepted?: (r: AcceptResult) => void;
}

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
  // the CPU a run asks for (its CPU time and its wait for a CPU) when the driver tells, else what it got
  const s: CostSample = { fn: rec.function, path: rec.startPath, runMs: rec.runMs, cpuShare: rec.runCpuDemand ?? rec.runCpuShare };
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
  private unwritten: Pending[] = [];
  /** ids of the records a previous incarnation left `accepted`, finished as interrupted at start */
  interruptedAtStart: string[] = [];
  private subscriber: ActorRef<CostsMsg> | undefined;
  private tiers: string[] = [];
  /** the records in SQLite (issue 19: logs beside them, capped) */
  readonly records: ActivationStore;

  constructor(
    private readonly db: Db,
    /** records kept, or that and the caps on stored logs (issue 19) */
    limits: number | StoreLimits,
    /** wall clock for the stamp of the records found interrupted at start */
    private readonly wallNow: () => number = Date.now,
  ) {
    super();
    this.records = new ActivationStore(db, typeof limits === 'number' ? { retain: limits } : limits);
  }

  /** Before the first record of this incarnation: what the previous one left in flight is finished (issue 12). */
  protected override preStart(): void {
    this.interruptedAtStart = finishInterrupted(this.db, this.wallNow());
    if (this.interruptedAtStart.length > 0) {
      this.log.warn('activations in flight when the previous daemon ended recorded as interrupted (daemon_restarted)', { count: this.interruptedAtStart.length, ids: this.interruptedAtStart.slice(0, 20) });
    }
  }

  protected receive(msg: PerfMsg): void {
    switch (msg.kind) {
      case 'activation':
        this.store(msg.record, msg.written);
        return;
      case 'accepted':
        this.enqueue({ rec: msg.record, mode: msg.unique ? 'fresh' : 'replace', accepted: msg.written });
        return;
      case 'list':
        this.flush();
        msg.reply.resolve(this.records.list(msg.query));
        return;
      case 'count':
        this.flush();
        msg.reply.resolve(this.records.count(msg.filter));
        return;
      case 'get':
        this.flush();
        msg.reply.resolve(this.records.get(msg.id));
        return;
      case 'idsWithPrefix':
        this.flush();
        msg.reply.resolve(this.records.idsWithPrefix(msg.prefix, msg.limit));
        return;
      case 'stats':
        msg.reply.resolve(Object.fromEntries(this.stats.byFn));
        return;
      case 'range': {
        this.flush();
        msg.reply.resolve(this.records.range(msg.since, msg.until, msg.limit));
        return;
      }
      case 'subscribe':
        this.subscriber = msg.to;
        this.tiers = msg.tiers;
        return;
    }
  }

  private store(rec: ActivationRecord, written?: () => void): void {
    const s = sampleOf(rec);
    if (s) {
      this.stats.observe(s);
      this.subscriber?.tell({ kind: 'costs', fn: s.fn, costs: this.stats.view(s.fn, this.tiers) });
    }
    this.enqueue({ rec, mode: 'replace', written });
  }

  /** Group commit: every record of an event-loop turn (acceptances and final records) in one transaction. */
  private enqueue(p: Pending): void {
    this.unwritten.push(p);
    if (this.unwritten.length === 1) setImmediate(this.flush);
  }

  /** Write the records received so far (also before every read: a record just answered is found). */
  private readonly flush = (): void => {
    if (this.unwritten.length === 0) return;
    const batch = this.unwritten;
    this.unwritten = [];
    const results: AcceptResult[] = [];
    let failed: unknown;
    try {
      const written = this.db.transaction(() => this.records.write(batch.map(({ rec, mode }) => ({ rec, fresh: mode === 'fresh' }))))();
      for (const w of written) results.push(w ? { ok: true } : { ok: false, reason: 'duplicate_id' });
    } catch (err) {
      failed = err;
    } finally {
      // the answers wait for their records: one a client got can no longer be lost in a kill;
      // the work of an acceptance starts only once it is committed
      const message = failed instanceof Error ? failed.message : String(failed);
      batch.forEach((p, i) => {
        p.written?.();
        p.accepted?.(failed !== undefined ? { ok: false, reason: 'store_failed', message } : results[i]!);
      });
    }
    if (failed !== undefined) throw failed;
    // issue 19: what guests logged is bounded per function and in total, whatever `retain` keeps
    const dropped = this.records.enforceLogCaps();
    if (dropped > 0) this.log.debug('stored logs over their cap: the oldest dropped', { records: dropped });
    // prune now and then, not on every insert
    const before = this.inserted;
    this.inserted += batch.length;
    if (Math.floor(this.inserted / 1000) !== Math.floor(before / 1000)) this.records.prune();
  };

  protected override postStop(): void {
    this.flush();
  }
}
