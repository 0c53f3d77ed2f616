import type { FunctionView, PlacementDecision, PlacementPolicy, PlacementStats, TierView } from '../types.js';
import { coldSlowdownOf, slowdownRule } from './rule.js';
import { fallback } from './slowdown-static.js';

export interface AdaptivePlacementOptions {
  threshold?: number;
  /** Restores measured before the online statistics are trusted (default 5). */
  minSamples?: number;
}

/** The slowdown rule on slowdowns measured online (PlacementStats); too few samples → fastest tier. */
export class AdaptivePlacement implements PlacementPolicy {
  readonly name = 'adaptive';
  /** measurements improve with every restore: re-place when they say so */
  readonly revisit = true;
  readonly threshold: number;
  readonly minSamples: number;
  constructor(opts: AdaptivePlacementOptions = {}) {
    this.threshold = opts.threshold ?? 2;
    this.minSamples = opts.minSamples ?? 5;
  }

  place(fn: FunctionView, tiers: readonly TierView[], stats: PlacementStats | undefined): PlacementDecision {
    if (!stats || stats.samples < this.minSamples) {
      return fallback('fastest', tiers, `${stats?.samples ?? 0} samples < ${this.minSamples}`);
    }
    const d = slowdownRule(coldSlowdownOf(fn), stats.slowdownByTier, tiers, this.threshold);
    return d ?? fallback('fastest', tiers, 'no measured tier');
  }
}
