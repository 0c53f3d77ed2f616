import type { FunctionView, PlacementDecision, PlacementPolicy, PlacementStats, TierView } from '../types.js';
import { byRank, isFull } from './rule.js';

export interface FixedPlacementOptions {
  /** Tier every snapshot goes to (default: the fastest tier that is not full). */
  tier?: string;
  /** 'snapshot' (default); 'cold' never keeps snapshots; 'keep-warm' relies on warm instances only. */
  action?: 'snapshot' | 'cold' | 'keep-warm';
}

/** One decision for every function. */
export class FixedPlacement implements PlacementPolicy {
  readonly name = 'fixed';
  constructor(private readonly opts: FixedPlacementOptions = {}) {}

  place(_fn: FunctionView, tiers: readonly TierView[], _stats?: PlacementStats): PlacementDecision {
    const action = this.opts.action ?? 'snapshot';
    if (action === 'cold') return { action: 'cold', reason: 'fixed: no snapshots' };
    if (action === 'keep-warm') return { action: 'keep-warm', reason: 'fixed: keep warm' };
    const want = this.opts.tier;
    if (want !== undefined && (tiers.length === 0 || tiers.some((t) => t.name === want))) {
      return { action: 'snapshot', tier: want, reason: `fixed tier ${want}` };
    }
    const ranked = byRank(tiers);
    if (ranked.length === 0) return { action: 'cold', reason: 'fixed: the node has no snapshot tier' };
    const fastest = want === undefined ? ranked.find((t) => !isFull(t)) : ranked[0]!;
    if (!fastest) return { action: 'cold', reason: 'fixed: every snapshot tier is full' };
    return {
      action: 'snapshot',
      tier: fastest.name,
      reason: want === undefined ? 'fixed: fastest tier' : `fixed tier ${want} does not exist; fastest tier instead`,
    };
  }
}
