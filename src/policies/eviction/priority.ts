import type { EvictionContext, EvictionPolicy, InstanceView } from '../types.js';
import { pickLowest } from './pick.js';

/**
 * Lowest keep-alive priority first (greedy-dual's value), ties and policies
 * without `priority()` in LRU order. The default eviction for greedy-dual.
 */
export class PriorityEviction implements EvictionPolicy {
  readonly name = 'priority';
  selectVictims(idle: readonly InstanceView[], needMiB: number, ctx: EvictionContext): InstanceView[] {
    const ka = ctx.keepAlive;
    if (!ka.priority) return pickLowest(idle, needMiB, (i) => i.lastUsedAt);
    return pickLowest(idle, needMiB, (i) => ka.priority!(i, ctx.fnOf(i), ctx.now));
  }
  /** Valid because keep-alive priorities (greedy-dual's) are fixed while an instance is idle. */
  orderKey(inst: InstanceView, ctx: EvictionContext): number {
    const ka = ctx.keepAlive;
    return ka.priority ? ka.priority(inst, ctx.fnOf(inst), ctx.now) : inst.lastUsedAt;
  }
}
