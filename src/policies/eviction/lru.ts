import type { EvictionContext, EvictionPolicy, InstanceView } from '../types.js';
import { pickLowest } from './pick.js';

/** Least recently used idle instances first, whatever the keep-alive policy thinks of them. */
export class LruEviction implements EvictionPolicy {
  readonly name = 'lru';
  selectVictims(idle: readonly InstanceView[], needMiB: number, _ctx?: EvictionContext): InstanceView[] {
    return pickLowest(idle, needMiB, (i) => i.lastUsedAt);
  }
  orderKey(inst: InstanceView, _ctx?: EvictionContext): number {
    return inst.lastUsedAt;
  }
}
