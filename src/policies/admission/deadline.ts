import type { AdmissionDecision, AdmissionPolicy, AdmissionView } from '../types.js';
import { ADMIT, queueFull } from './decisions.js';

export interface DeadlineAdmissionOptions {
  /** Refuse when the estimated wait exceeds slack × maxQueueDelayMs (default 1). */
  slack?: number;
}

/**
 * Refuse early what would time out anyway: on top of the queue-length bound, a
 * request whose estimated wait (the core's estimate: starts queued ahead of it,
 * start cost, warm instances freeing up) exceeds the queueing deadline is refused
 * at once with 503 and a Retry-After, instead of being accepted and refused a
 * minute later. Beyond the node's capacity this keeps accepted work servable.
 */
export class DeadlineAdmission implements AdmissionPolicy {
  readonly name = 'deadline';
  readonly slack: number;
  constructor(opts: DeadlineAdmissionOptions = {}) {
    this.slack = opts.slack ?? 1;
    if (!(this.slack > 0)) throw new Error(`deadline admission: slack must be > 0, got ${this.slack}`);
  }

  admit(v: AdmissionView): AdmissionDecision {
    const full = queueFull(v);
    if (full) return full;
    const limit = this.slack * v.maxQueueDelayMs;
    if (v.estimatedWaitMs <= limit) return ADMIT;
    const est = Number.isFinite(v.estimatedWaitMs) ? `${Math.round(v.estimatedWaitMs)} ms` : 'unbounded';
    return {
      admit: false,
      reason: 'overloaded',
      message: `function ${v.fn.name}: the node is at capacity (estimated wait ${est} > admission.maxQueueDelayMs ${v.maxQueueDelayMs}; ${v.queued} queued, ${v.startsInFlight}/${v.startSlots} starts running)`,
      retryAfterMs: Number.isFinite(v.estimatedWaitMs) ? Math.ceil(v.estimatedWaitMs - limit) : v.maxQueueDelayMs,
    };
  }
}
