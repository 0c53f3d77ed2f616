import type { FunctionView, InstanceView, KeepAliveDecision, KeepAlivePolicy } from '../types.js';

/**
 * Dispatches every call to the keep-alive policy of the function concerned
 * (per-function overrides, else the default). Used as PolicySet.keepAlive when
 * overrides exist, so callers need not care about them.
 *
 * priority(): instances whose policy has no priority() get -Infinity, i.e. are
 * evicted first (in LRU order among themselves): they have no value estimate
 * and their TTL would stop them anyway.
 */
export class KeepAliveRouter implements KeepAlivePolicy {
  readonly name: string;
  readonly priority?: (inst: InstanceView, fn: FunctionView, now: number) => number;

  constructor(
    private readonly defaultPolicy: KeepAlivePolicy,
    private readonly overrides: ReadonlyMap<string, KeepAlivePolicy>,
  ) {
    this.name = defaultPolicy.name;
    const all = [defaultPolicy, ...overrides.values()];
    if (all.some((p) => typeof p.priority === 'function')) {
      this.priority = (inst, fn, now) => {
        const p = this.for(inst.fn);
        return p.priority ? p.priority(inst, fn, now) : -Infinity;
      };
    }
  }

  for(fn: string): KeepAlivePolicy {
    return this.overrides.get(fn) ?? this.defaultPolicy;
  }

  onInvocation(fn: FunctionView, now: number): void {
    this.for(fn.name).onInvocation(fn, now);
  }

  onIdle(inst: InstanceView, fn: FunctionView, now: number): KeepAliveDecision {
    return this.for(inst.fn).onIdle(inst, fn, now);
  }

  onEvict(inst: InstanceView, fn: FunctionView, now: number): void {
    this.for(inst.fn).onEvict?.(inst, fn, now);
  }

  onStop(inst: InstanceView, fn: FunctionView, now: number): void {
    this.for(inst.fn).onStop?.(inst, fn, now);
  }
}
