// Serving a function's queue: warm instances first, then new starts within every
// limit (the function's instance cap, its snapshot being taken, a busy instance
// about to free up, its start back-off, node-wide start slots and memory, and,
// with fairness, the CPU: fairness.ts).

import type { CoreState } from './state.js';
import { TIMER_RECHECK, type CoreFunction, type CoreInstance } from './model.js';
import { deadlineOf, qPop, rejectHead } from './queue.js';
import { startEstimate, startSlots, warmWait } from './estimates.js';
import { awaitNode, firstWaiting, unwait } from './node-wait.js';
import { admitMemory } from './memory.js';
import { startCharge } from './accounting.js';
import { assign, launch } from './instances.js';
import { backoffDetail, mayStart } from './start-failures.js';
import { BLOCK_CONCURRENCY, BLOCK_CPU, BLOCK_ORDER, BLOCK_START, blockedOn, chargeStart, cpuGate, cpuNeed, noteDemand, othersWaiting, START_CPU } from './fairness.js';

const STARTED = 0;
/** waits for its own instances (cap, snapshot being made, a warm instance soon, a start probing after failures) */
const FN_WAIT = 1;
/** waits for a node-wide resource (start slot, memory, concurrency) */
const NODE_WAIT = 2;
/** its starts keep failing: no start before its back-off ends */
const BACKOFF = 3;

export function selectIdle(s: CoreState, f: CoreFunction, now: number): CoreInstance {
  return f.idle.length === 1 ? f.idle[0]! : (s.p.selection.select(f.idle, now) as CoreInstance);
}

/** Serve f's queue: warm instances first, then new starts within every limit. */
export function pump(s: CoreState, f: CoreFunction, now: number): void {
  while (f.queued > 0) {
    if (now >= deadlineOf(s, f.qAt[f.qHead]!)) {
      rejectHead(s, f, 'queue_timeout', undefined, now);
      continue;
    }
    if (s.busyN >= s.cfg.maxConcurrentInvocations) {
      blockedOn(f, BLOCK_CONCURRENCY);
      awaitNode(s, f);
      return;
    }
    if (f.idle.length > 0) {
      if (!cpuGate(s, f, false)) {
        blockedOn(f, s.inPass ? BLOCK_CPU : BLOCK_ORDER, cpuNeed(s, f));
        awaitNode(s, f);
        return;
      }
      const inst = selectIdle(s, f, now);
      const arrival = f.qAt[f.qHead]!;
      const req = f.qReq[f.qHead]!;
      qPop(f);
      assign(s, req, arrival, inst, false, now);
      continue;
    }
    if (f.queued <= f.starting) break; // starts under way cover everyone waiting
    const r = tryStart(s, f, now);
    if (r === STARTED) continue;
    if (r === NODE_WAIT) {
      awaitNode(s, f);
      return;
    }
    if (r === BACKOFF) {
      // nothing of f will serve these requests before its back-off ends: refuse them now rather than at
      // their deadline; with instances running or starting they wait for those
      if (f.busy.length === 0 && f.starting === 0) while (f.queued > 0) rejectHead(s, f, 'start_backoff', backoffDetail(f), now);
      else armRecheck(s, f, f.backoffUntil);
    }
    break;
  }
  unwait(s, f);
  noteDemand(s, f);
}

function tryStart(s: CoreState, f: CoreFunction, now: number): number {
  if (f.deleted || s.closed) return FN_WAIT;
  if (f.live >= f.maxInstances) return FN_WAIT;
  const m = mayStart(f, now);
  if (m === 'backoff') return BACKOFF;
  if (m === 'probing') return FN_WAIT;
  // scale out from the snapshot being taken instead of cold-booting copies
  if (f.snapshot && !f.snapshot.ready) return FN_WAIT;
  if (s.cfg.starts.preferWarm && f.busy.length > 0) {
    const wait = warmWait(f, f.queued - f.starting, now);
    if (wait < startEstimate(s, f, now)) {
      armRecheck(s, f, now + Math.max(1, wait));
      return FN_WAIT;
    }
  }
  if (!s.fairNow) {
    // FIFO among functions waiting for node-wide resources: no overtaking
    if (firstWaiting(s) !== undefined && firstWaiting(s) !== f) return NODE_WAIT;
    if (s.startingN >= startSlots(s)) return NODE_WAIT;
  } else if (othersWaiting(s, f)) {
    // fairness, other functions waiting: the fair pass goes through them in order; no start overtakes one
    // that waits for a start slot or memory, and the start must find a core (then one for its run); with
    // auto start slots that is the limit (busy VMs of functions that had their share do not hold it)
    if (!s.inPass) return blocked(f, BLOCK_ORDER);
    if (s.startsBlocked) return blocked(f, BLOCK_START);
    if (s.cfg.starts.maxConcurrent !== 'auto' && s.startingN >= startSlots(s)) return blocked(f, BLOCK_START);
    if (!cpuGate(s, f, true)) return blocked(f, BLOCK_CPU, Math.max(START_CPU, cpuNeed(s, f)));
  } else if (s.startingN >= startSlots(s)) return blocked(f, BLOCK_START);
  if (!admitMemory(s, startCharge(s, f), now, true)) return blocked(f, BLOCK_START);
  chargeStart(s, launch(s, f, NaN, now));
  return STARTED;
}

function blocked(f: CoreFunction, why: number, cpu = 0): number {
  blockedOn(f, why, cpu);
  return NODE_WAIT;
}

export function armRecheck(s: CoreState, f: CoreFunction, at: number): void {
  if (f.recheckArmedAt <= at) return;
  f.recheckArmedAt = at;
  f.recheckToken++;
  s.fx.wake(at, TIMER_RECHECK, f.index, f.recheckToken);
}
