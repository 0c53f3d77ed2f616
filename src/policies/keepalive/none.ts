import type { FunctionView, InstanceView, KeepAliveDecision, KeepAlivePolicy } from '../types.js';

/** No keep-alive: every instance is stopped as soon as it becomes idle (every start is cold or a restore). */
export class NoKeepAlive implements KeepAlivePolicy {
  readonly name = 'none';
  onInvocation(_fn?: FunctionView, _now?: number): void {}
  onIdle(_inst?: InstanceView, _fn?: FunctionView, _now?: number): KeepAliveDecision {
    return { keepWarmMs: 0 };
  }
}
