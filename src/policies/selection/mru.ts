import type { InstanceView, SelectionPolicy } from '../types.js';

/** Most recently used idle instance: concentrates load so the others stay idle long enough to be reaped. */
export class MruSelection implements SelectionPolicy {
  readonly name = 'mru';
  select(idle: readonly InstanceView[], _now?: number): InstanceView {
    let best = idle[0]!;
    for (let i = 1; i < idle.length; i++) if (idle[i]!.lastUsedAt > best.lastUsedAt) best = idle[i]!;
    return best;
  }
}
