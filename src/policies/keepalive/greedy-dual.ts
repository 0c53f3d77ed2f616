import type { FunctionView, InstanceView, KeepAliveDecision, KeepAlivePolicy } from '../types.js';

export interface GreedyDualOptions {
  /** Cost used when neither the instance nor the function knows its start cost (ms). */
  defaultCostMs?: number;
}

/**
 * Greedy-Dual-Size-Frequency keep-alive (FaasCache, Fuerst & Sharma, ASPLOS'21).
 *
 *   priority = clock + frequency × cost / size
 *
 * - frequency: invocations of the function since it last had no warm instance
 *   (reset to 0 when its last warm instance is evicted or stopped);
 * - cost: what losing the instance costs (its start cost: cold or restore ms);
 * - size: the instance's memory (MiB);
 * - clock: the priority of the last evicted instance (never decreases), so
 *   recently used instances outrank ones that have been idle through evictions.
 *
 * An instance's priority is computed when it becomes idle (i.e. on every use),
 * with the clock of that moment. Instances are kept until memory pressure
 * (keepWarmMs = Infinity); the `priority` eviction policy then stops the lowest
 * priority first.
 */
export class GreedyDualKeepAlive implements KeepAlivePolicy {
  readonly name = 'greedy-dual';
  private clockValue = 0;
  private readonly defaultCostMs: number;
  private readonly freq = new Map<string, number>();
  /** Priority of each known (warm) instance, by instance id. */
  private readonly prio = new Map<string, number>();
  /** Warm instance ids per function, to detect "no warm instance left". */
  private readonly warm = new Map<string, Set<string>>();

  constructor(opts: GreedyDualOptions = {}) {
    this.defaultCostMs = opts.defaultCostMs ?? 1000;
  }

  get clock(): number {
    return this.clockValue;
  }

  frequency(fn: string): number {
    return this.freq.get(fn) ?? 0;
  }

  onInvocation(fn: FunctionView, _now?: number): void {
    this.freq.set(fn.name, (this.freq.get(fn.name) ?? 0) + 1);
  }

  onIdle(inst: InstanceView, fn: FunctionView, _now?: number): KeepAliveDecision {
    this.prio.set(inst.id, this.compute(inst, fn));
    let set = this.warm.get(inst.fn);
    if (!set) {
      set = new Set();
      this.warm.set(inst.fn, set);
    }
    set.add(inst.id);
    return { keepWarmMs: Infinity };
  }

  priority(inst: InstanceView, fn: FunctionView, _now?: number): number {
    return this.prio.get(inst.id) ?? this.compute(inst, fn);
  }

  onEvict(inst: InstanceView, fn: FunctionView, _now?: number): void {
    const p = this.priority(inst, fn);
    if (p > this.clockValue) this.clockValue = p;
    this.forget(inst);
  }

  onStop(inst: InstanceView, _fn?: FunctionView, _now?: number): void {
    this.forget(inst);
  }

  private forget(inst: InstanceView): void {
    this.prio.delete(inst.id);
    const set = this.warm.get(inst.fn);
    if (set) {
      set.delete(inst.id);
      if (set.size === 0) {
        this.warm.delete(inst.fn);
        // As in FaasCache: a function with no warm instance starts counting again.
        this.freq.delete(inst.fn);
      }
    }
  }

  private compute(inst: InstanceView, fn: FunctionView): number {
    const cost = inst.startCostMs > 0 ? inst.startCostMs : fn.coldStartMs ?? this.defaultCostMs;
    const size = inst.memoryMiB > 0 ? inst.memoryMiB : fn.memoryMiB > 0 ? fn.memoryMiB : 1;
    const f = this.freq.get(inst.fn) ?? 0;
    // An instance idle before any invocation was counted (pre-warmed) still gets frequency 1.
    return this.clockValue + (f > 0 ? f : 1) * cost / size;
  }
}
