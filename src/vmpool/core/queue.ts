// Each function's FIFO queue of waiting requests and their deadlines: a request
// that waited admission.maxQueueDelayMs is refused (queue_timeout); every refusal
// leaves through reject(), which counts it.

import type { CoreState } from './state.js';
import { TIMER_DEADLINE, type CoreFunction, type RejectCode } from './model.js';

/**
 * When a request that arrived at `arrival` times out. The deadline timer and
 * every expiry check use this one expression: `now - arrival >= limit` can round
 * below the limit at the very time the timer fires, and the timer would re-arm
 * for the same instant forever.
 */
export function deadlineOf(s: CoreState, arrival: number): number {
  return arrival + s.cfg.maxQueueDelayMs;
}

export function enqueue(s: CoreState, f: CoreFunction, req: number, arrival: number): void {
  f.qReq.push(req);
  f.qAt.push(arrival);
  if (f.queued === 1) armDeadline(s, f, deadlineOf(s, arrival));
}

/** Put a request back at the head of its queue (the instance it was given could not run it). */
export function requeueHead(s: CoreState, f: CoreFunction, req: number, arrival: number): void {
  if (f.qHead > 0) {
    f.qHead--;
    f.qReq[f.qHead] = req;
    f.qAt[f.qHead] = arrival;
  } else {
    f.qReq.unshift(req);
    f.qAt.unshift(arrival);
  }
  armDeadline(s, f, deadlineOf(s, arrival));
}

export function qPop(f: CoreFunction): void {
  f.qHead++;
  if (f.qHead === f.qReq.length) {
    f.qReq.length = 0;
    f.qAt.length = 0;
    f.qHead = 0;
  } else if (f.qHead > 1024 && f.qHead * 2 > f.qReq.length) {
    f.qReq = f.qReq.slice(f.qHead);
    f.qAt = f.qAt.slice(f.qHead);
    f.qHead = 0;
  }
}

export function rejectHead(s: CoreState, f: CoreFunction, reason: RejectCode, detail: unknown, now: number): void {
  const req = f.qReq[f.qHead]!;
  const arrival = f.qAt[f.qHead]!;
  qPop(f);
  reject(s, req, f, reason, detail, arrival, now);
}

export function dropExpired(s: CoreState, f: CoreFunction, now: number): void {
  while (f.queued > 0 && now >= deadlineOf(s, f.qAt[f.qHead]!)) rejectHead(s, f, 'queue_timeout', undefined, now);
}

export function reject(s: CoreState, req: number, f: CoreFunction, reason: RejectCode, detail: unknown, arrival: number, now: number): void {
  const c = s.counters;
  switch (reason) {
    case 'queue_full':
      c.rejectedQueueFull++;
      break;
    case 'overloaded':
      c.rejectedOverloaded++;
      break;
    case 'queue_timeout':
      c.rejectedQueueTimeout++;
      break;
    case 'deleted':
      c.rejectedDeleted++;
      break;
    case 'start_failed':
      c.rejectedStartFailed++;
      break;
    case 'init_failed':
      c.failedInit++;
      break;
    case 'start_backoff':
      c.rejectedStartBackoff++;
      break;
    case 'shutting_down':
      c.rejectedShutdown++;
      break;
  }
  s.fx.reject(req, f, reason, detail, arrival, now);
}

export function armDeadline(s: CoreState, f: CoreFunction, at: number): void {
  if (f.deadlineArmedAt <= at) return; // an earlier one re-arms itself when it fires
  f.deadlineArmedAt = at;
  f.deadlineToken++;
  s.fx.wake(at, TIMER_DEADLINE, f.index, f.deadlineToken);
}
