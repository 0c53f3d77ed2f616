import type { AdmissionDecision, AdmissionPolicy, AdmissionView } from '../types.js';
import { ADMIT, queueFull } from './decisions.js';

/**
 * Admit while the function's queue (beyond its free instance slots) is shorter
 * than admission.maxQueueLength; a waiting request that outlives
 * admission.maxQueueDelayMs is refused later (503). FaaSCell's behaviour before
 * the `deadline` policy.
 */
export class QueueLengthAdmission implements AdmissionPolicy {
  readonly name = 'queue-length';
  admit(v: AdmissionView): AdmissionDecision {
    return queueFull(v) ?? ADMIT;
  }
}
