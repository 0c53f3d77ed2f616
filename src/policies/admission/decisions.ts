import type { AdmissionDecision, AdmissionView } from '../types.js';

/** The one "admit" answer (no allocation on the hot path). */
export const ADMIT: AdmissionDecision = Object.freeze({ admit: true });

/** Requests beyond what the function's free instance slots (idle, starting, still startable) will serve. */
export function queuedBeyondSlots(v: AdmissionView): number {
  return v.queued - Math.max(0, v.idle + v.starting + v.startable);
}

export function queueFull(v: AdmissionView): AdmissionDecision | undefined {
  if (queuedBeyondSlots(v) < v.maxQueueLength) return undefined;
  return {
    admit: false,
    reason: 'queue_full',
    message: `function ${v.fn.name}: ${v.queued} requests already queued (admission.maxQueueLength ${v.maxQueueLength})`,
  };
}
