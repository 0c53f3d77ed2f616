import type { InstanceView, SelectionPolicy } from '../types.js';

/** Least recently used idle instance: spreads load over all warm instances. */
export class LruSelection implements SelectionPolicy {
  readonly name = 'lru';
  select(idle: readonly InstanceView[], _now?: number): InstanceView {
    let best = idle[0]!;
    for (let i = 1; i < idle.length; i++) if (idle[i]!.lastUsedAt < best.lastUsedAt) best = idle[i]!;
    return best;
  }
}
