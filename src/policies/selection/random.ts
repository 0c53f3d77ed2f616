import type { InstanceView, Rng, SelectionPolicy } from '../types.js';

/** A uniformly random idle instance (the Rng is injected: SelectionPolicy.select gets none). */
export class RandomSelection implements SelectionPolicy {
  readonly name = 'random';
  constructor(private readonly rng: Rng) {}
  select(idle: readonly InstanceView[], _now?: number): InstanceView {
    return idle[Math.floor(this.rng.next() * idle.length)]!;
  }
}
