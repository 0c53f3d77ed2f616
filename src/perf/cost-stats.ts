// Per-function cost statistics: what each start path, a run and a run's CPU cost
// a function on this node. One owner: PerfManager in the daemon (fed by every
// activation record, sending the result to VmPool by message); the simulator
// feeds the same class the same samples, so both sides' policies see the same
// numbers. Plain mean for the first samples, then an EWMA so old behaviour fades.

import type { StartPath } from './activation.js';

/** One completed invocation, reduced to what costs are made of. */
export interface CostSample {
  fn: string;
  path: StartPath;
  /** cold or restore request that waited for its instance: how long the start took (ms) */
  startMs?: number;
  /** snapshot tier of a restore */
  tier?: string;
  /** warm request: instance assigned → run started (ms) */
  warmMs?: number;
  /** the function's own run time (ms) */
  runMs?: number;
  /** host CPU the VM used during the run, as a fraction of a core */
  cpuShare?: number;
}

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
  run?: PathStats;
  cpu?: PathStats;
  restoreByTier: Record<string, PathStats>;
}

/** The costs policies see (FunctionView's measured fields). */
export interface FunctionCostView {
  coldStartMs?: number;
  restoreMs?: number;
  warmStartMs?: number;
  runMs?: number;
  restoreMsByTier?: Record<string, number>;
  cpuShare?: number;
}

const WINDOW = 200;

export class CostStats {
  readonly byFn = new Map<string, FunctionStats>();
  /** every function's restores per tier: how tiers compare, for tiers a function was never restored from */
  private readonly tierAll = new Map<string, PathStats>();

  constructor(private readonly keepRecent = WINDOW) {}

  observe(s: CostSample): void {
    this.observeInto(this.of(s.fn), s);
  }

  /** observe() for a caller that holds the function's stats already (the simulator's hot path). */
  observeInto(fs: FunctionStats, s: CostSample): void {
    if (s.path === 'warm') {
      if (s.warmMs !== undefined) this.push((fs.warm ??= empty()), s.warmMs);
    } else if (s.startMs !== undefined) {
      this.push((fs[s.path] ??= empty()), s.startMs);
      if (s.path === 'restore' && s.tier !== undefined) {
        this.push((fs.restoreByTier[s.tier] ??= empty()), s.startMs);
        let t = this.tierAll.get(s.tier);
        if (!t) this.tierAll.set(s.tier, (t = empty()));
        this.push(t, s.startMs);
      }
    }
    if (s.runMs !== undefined) this.push((fs.run ??= empty()), s.runMs);
    if (s.cpuShare !== undefined) this.push((fs.cpu ??= empty()), s.cpuShare);
  }

  of(fn: string): FunctionStats {
    let s = this.byFn.get(fn);
    // every path present from the start (undefined: no sample yet): one shape for every function's stats
    if (!s) this.byFn.set(fn, (s = { cold: undefined, warm: undefined, restore: undefined, run: undefined, cpu: undefined, restoreByTier: {} }));
    return s;
  }

  /**
   * Whether observing `s` can change nothing that view() shows: a warm sample
   * whose values equal the current means, past the plain-mean phase (the EWMA
   * update m += (v - m)·α leaves m exactly as it is when v = m).
   */
  unchangedBy(fs: FunctionStats, s: CostSample): boolean {
    if (s.path !== 'warm') return false;
    return same(fs.warm, s.warmMs) && same(fs.run, s.runMs) && same(fs.cpu, s.cpuShare);
  }

  /** The measured costs of `fn` (undefined fields: never measured). */
  view(fn: string, tiers: readonly string[] = []): FunctionCostView {
    const s = this.byFn.get(fn);
    if (!s) return {};
    return this.viewOf(s, tiers);
  }

  viewOf(s: FunctionStats, tiers: readonly string[] = []): FunctionCostView {
    // for…in rather than Object.entries: the same keys in the same order, without an array per call (the
    // simulator asks for a view after every start)
    let byTier: Record<string, number> | undefined;
    let refTier: string | undefined;
    for (const t in s.restoreByTier) {
      if (byTier === undefined) {
        byTier = {};
        refTier = t;
      }
      byTier[t] = s.restoreByTier[t]!.meanMs;
    }
    if (byTier !== undefined) {
      // a tier this function was never restored from: scale its measured tier by how the two compare overall
      const ref = s.restoreByTier[refTier!]!;
      const refAll = this.tierAll.get(refTier!)?.meanMs;
      for (const t of tiers) {
        if (byTier[t] !== undefined) continue;
        const all = this.tierAll.get(t)?.meanMs;
        if (all !== undefined && refAll) byTier[t] = ref.meanMs * (all / refAll);
      }
    }
    return {
      coldStartMs: s.cold?.meanMs,
      restoreMs: s.restore?.meanMs,
      warmStartMs: s.warm?.meanMs,
      runMs: s.run?.meanMs,
      restoreMsByTier: byTier,
      cpuShare: s.cpu?.meanMs,
    };
  }

  mean(fn: string, what: StartPath | 'run'): number | undefined {
    return this.byFn.get(fn)?.[what]?.meanMs;
  }

  forget(fn: string): void {
    this.byFn.delete(fn);
  }

  private push(s: PathStats, v: number): void {
    s.count++;
    s.meanMs += (v - s.meanMs) / (s.count <= 10 ? s.count : 10);
    if (this.keepRecent > 0) {
      s.recent.push(v);
      if (s.recent.length > this.keepRecent) s.recent.shift();
    }
  }
}

function same(p: PathStats | undefined, v: number | undefined): boolean {
  return v === undefined || (p !== undefined && p.count > 10 && p.meanMs === v);
}

function empty(): PathStats {
  return { count: 0, meanMs: 0, recent: [] };
}
