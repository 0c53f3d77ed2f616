import type { FunctionView, PlacementDecision, PlacementPolicy, PlacementStats, TierView } from '../types.js';
import { byRank, coldSlowdownOf, slowdownRule } from './rule.js';

export interface StaticSlowdownEntry {
  /** Slowdown of a cold start, (cold + run) / (warm + run); computed from the FunctionView when absent. */
  coldSlowdown?: number;
  /** Slowdown of a restore from each tier, (restore + run) / (warm + run). */
  tiers: Record<string, number>;
}

export interface StaticSlowdownOptions {
  threshold?: number;
  functions?: Record<string, StaticSlowdownEntry>;
  /** What a function missing from the table gets (default: a snapshot on the fastest tier). */
  unknown?: 'fastest' | 'cold' | 'keep-warm';
}

/** Placement from a per-function table of measured slowdowns (see slowdownRule). */
export class StaticSlowdownPlacement implements PlacementPolicy {
  readonly name = 'slowdown-static';
  readonly threshold: number;
  constructor(private readonly opts: StaticSlowdownOptions = {}) {
    this.threshold = opts.threshold ?? 2;
  }

  place(fn: FunctionView, tiers: readonly TierView[], _stats?: PlacementStats): PlacementDecision {
    const entry = this.opts.functions?.[fn.name];
    if (entry) {
      const d = slowdownRule(entry.coldSlowdown ?? coldSlowdownOf(fn), entry.tiers, tiers, this.threshold);
      if (d) return d;
    }
    return fallback(this.opts.unknown ?? 'fastest', tiers, entry ? 'no tier of the table exists here' : 'not in the table');
  }
}

export function fallback(kind: 'fastest' | 'cold' | 'keep-warm', tiers: readonly TierView[], why: string): PlacementDecision {
  if (kind === 'cold') return { action: 'cold', reason: why };
  if (kind === 'keep-warm') return { action: 'keep-warm', reason: why };
  const fastest = byRank(tiers)[0];
  if (!fastest) return { action: 'cold', reason: `${why}; no snapshot tier` };
  return { action: 'snapshot', tier: fastest.name, reason: `${why}: fastest tier` };
}
