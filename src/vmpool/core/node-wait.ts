// Functions waiting for a node-wide resource (a start slot, memory, the node's
// concurrency limit), served FIFO: an arrival never starts ahead of a function
// that waited before it. Whenever a core call frees a resource it sets
// needDrain, and flush() lets the waiting functions go, in order, before the
// call returns.

import type { CoreState } from './state.js';
import type { CoreFunction } from './model.js';
import { pump } from './serve.js';

export function awaitNode(s: CoreState, f: CoreFunction): void {
  f.waiting = true;
  setWant(s, f, Math.max(0, Math.min(f.queued - f.starting, f.maxInstances - f.live)));
  if (!f.inWaitList) {
    f.inWaitList = true;
    s.waitList.push(f);
  }
}

export function unwait(s: CoreState, f: CoreFunction): void {
  f.waiting = false;
  setWant(s, f, 0);
}

export function setWant(s: CoreState, f: CoreFunction, n: number): void {
  s.wantStartsTotal += n - f.wantStarts;
  f.wantStarts = n;
}

/** The function at the head of the wait list (entries that no longer wait are dropped on the way). */
export function firstWaiting(s: CoreState): CoreFunction | undefined {
  const w = s.waitList;
  while (s.waitHead < w.length) {
    const f = w[s.waitHead]!;
    if (f.waiting && f.queued > 0 && !f.deleted) return f;
    f.inWaitList = false;
    f.waiting = false;
    setWant(s, f, 0);
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
    for (;;) {
      const f = firstWaiting(s);
      if (!f) break;
      pump(s, f, now);
      if (f.waiting) break; // still blocked: everyone behind it waits too
      f.inWaitList = false;
      s.waitHead++;
    }
    if (++guard > 1_000_000) throw new Error('PoolCore: drain does not terminate');
  }
  s.draining = false;
}
