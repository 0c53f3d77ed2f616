// Hand-back: a node that refuses an invocation it pulled (at capacity) gives it
// back to the shared queue instead of answering with the refusal, until the
// invocation was handed back `maxHandbacks` times. One rule for the broker Sink
// (src/sources/broker/sink.ts) and the cluster simulator (src/sim/cluster/).

import type { RejectReason } from '../core/failure.js';
import { pastDeadline } from './deadline.js';

/** Refusals that another node may not give: the work goes back to the queue. */
export const HANDBACK_REASONS: ReadonlySet<RejectReason> = new Set<RejectReason>(['queue_full', 'overloaded', 'queue_timeout', 'shutting_down']);

/** After handing work back, the node leaves the shared queue to the others this long. */
export const HANDBACK_PAUSE_MS = 200;

/**
 * Whether a refusal for `reason` of an invocation handed back `handbacks` times so far goes back to the queue:
 * not past its queue deadline (issue 18; src/cluster/deadline.ts), where the node's refusal is the answer.
 */
export function handsBack(reason: RejectReason, handbacks: number, maxHandbacks: number, now: number, deadline: number): boolean {
  return HANDBACK_REASONS.has(reason) && handbacks < maxHandbacks && !pastDeadline(now, deadline);
}
