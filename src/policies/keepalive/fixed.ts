import type { FunctionView, InstanceView, KeepAliveDecision, KeepAlivePolicy } from '../types.js';

export interface FixedKeepAliveOptions {
  /** Idle time after which an instance is stopped (default 600 s, the common provider setting). */
  ttlSeconds?: number;
}

/** Fixed TTL: every idle instance stays warm for the same time, whatever the function. */
export class FixedKeepAlive implements KeepAlivePolicy {
  readonly name = 'fixed';
  readonly ttlMs: number;
  private readonly decision: KeepAliveDecision;

  constructor(opts: FixedKeepAliveOptions = {}) {
    const ttl = opts.ttlSeconds ?? 600;
    if (!(ttl >= 0)) throw new Error(`fixed keep-alive: ttlSeconds must be >= 0, got ${ttl}`);
    this.ttlMs = ttl * 1000;
    this.decision = Object.freeze({ keepWarmMs: this.ttlMs });
  }

  onInvocation(_fn?: FunctionView, _now?: number): void {}

  onIdle(_inst?: InstanceView, _fn?: FunctionView, _now?: number): KeepAliveDecision {
    // one frozen decision: the decision core reads it and keeps nothing (millions of calls a simulated day)
    return this.decision;
  }
}
