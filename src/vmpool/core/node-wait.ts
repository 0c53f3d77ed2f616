// Functions waiting for a node-wide resource (a start slot, memory, the node's
// concurrency limit, the CPU), served FIFO — or, with fairness (fairness.ts) while
// the CPU is short for one of them, in order of virtual time: an arrival never
// starts ahead of a function that waits before it. Whenever a core call frees a
// resource it sets needDrain, and flush() lets the waiting functions go, in
// order, before the call returns. With fairness both orders are kept, and each
// pass takes the one that fits (cpuShort).

import type { CoreState } from './state.js';
import type { CoreFunction } from './model.js';
import { pump } from './serve.js';
import { cpuShort, fairEnter, fairFirst, fairLeave, fairOrder, holdBack, noteDemand } from './fairness.js';

export function awaitNode(s: CoreState, f: CoreFunction): void {
  f.waiting = true;
  setWant(s, f, Math.max(0, Math.min(f.queued - f.starting, f.maxInstances - f.live)));
  if (s.fair) {
    fairEnter(s, f);
    noteDemand(s, f);
    // outside the fair pass: the pass at the end of this core call decides, in order
    if (s.fairNow && !s.inPass) s.needDrain = true;
  }
  if (!f.inWaitList) {
    f.inWaitList = true;
    s.waitList.push(f);
  }
}

export function unwait(s: CoreState, f: CoreFunction): void {
  f.waiting = false;
  setWant(s, f, 0);
  if (f.waitPos >= 0) fairLeave(s, f);
}

export function setWant(s: CoreState, f: CoreFunction, n: number): void {
  s.wantStartsTotal += n - f.wantStarts;
  f.wantStarts = n;
}

/** The function at the head of the wait list (entries that no longer wait are dropped on the way). */
export function firstWaiting(s: CoreState): CoreFunction | undefined {
  if (s.fairNow) return fairFirst(s);
  const w = s.waitList;
  while (s.waitHead < w.length) {
    const f = w[s.waitHead]!;
    if (f.waiting && f.queued > 0 && !f.deleted) return f;
    f.inWaitList = false;
    unwait(s, f);
    s.waitHead++;
  }
  if (s.waitHead > 0) {
    w.length = 0;
    s.waitHead = 0;
  }
  return undefined;
}

/** Resources were freed during this call: let the waiting functions go, in order. */
export function flush(s: CoreState, now: number): void {
  if (s.draining) return;
  s.draining = true;
  let guard = 0;
  while (s.needDrain) {
    s.needDrain = false;
    s.fairNow = s.fair && cpuShort(s);
    if (s.fairNow) fairPass(s, now);
    else fifoPass(s, now);
    if (++guard > 1_000_000) throw new Error('PoolCore: drain does not terminate');
  }
  s.draining = false;
}

/** Without fairness: the waiting functions in the order they came, until one is still blocked. */
function fifoPass(s: CoreState, now: number): void {
  for (;;) {
    const f = firstWaiting(s);
    if (!f) return;
    pump(s, f, now);
    if (f.waiting) return; // still blocked: everyone behind it waits too
    f.inWaitList = false;
    s.waitHead++;
  }
}

/**
 * With fairness: every waiting function in turn, lowest virtual time first. One that is still blocked
 * holds back what it waits for from those after it: the CPU it needs, or (a start slot, memory) any
 * start; they may still take what it does not wait for (a run on an idle instance while it waits for a
 * start slot).
 */
function fairPass(s: CoreState, now: number): void {
  s.inPass = true;
  s.cpuReserved = 0;
  s.startsBlocked = false;
  const order = s.fairWait.slice().sort(fairOrder);
  for (const f of order) {
    if (f.waitPos < 0 || !f.waiting) continue; // served, or dropped, earlier in this pass
    pump(s, f, now);
    if (f.waiting) holdBack(s, f);
  }
  s.inPass = false;
}
