import type { EvictionContext, EvictionPolicy, InstanceView } from '../types.js';

/** Never evicts: a request that needs memory waits for keep-alive expiry (or is refused). */
export class NoEviction implements EvictionPolicy {
  readonly name = 'none';
  selectVictims(_idle?: readonly InstanceView[], _needMiB?: number, _ctx?: EvictionContext): InstanceView[] {
    return [];
  }
}
