// What the core expects: how many starts may run at once, when a busy instance
// of a function frees up, how long a new start would take, and the wait that
// admission judges a request by. Estimates only; nothing here changes state
// except the node-wide start-cost means (noteStartCost). Start costs and run
// times are the measured means (what starts and runs took under the load they
// met); with fairness (fairness.ts) a request also waits for its function's
// turn on the CPU.

import type { AdmissionViewRW, CoreState } from './state.js';
import type { CoreFunction, CoreInstance } from './model.js';
import { fairWait, startsAhead } from './fairness.js';

/** Start slots now: configured, or host cores minus what idle and busy VMs take (at least 1). */
export function startSlots(s: CoreState): number {
  const st = s.cfg.starts;
  if (st.maxConcurrent !== 'auto') return st.maxConcurrent;
  const load = s.globalIdle.length * st.idleVmCpu + s.busyCpu;
  return Math.max(1, Math.floor(st.cores - load + 1e-9));
}

/** A start finished: its cost feeds the node-wide means (the estimate for functions never started). */
export function noteStartCost(s: CoreState, inst: CoreInstance): void {
  if (inst.path === 'cold') {
    s.coldSeen++;
    s.coldMean += (inst.startCostMs - s.coldMean) / Math.min(s.coldSeen, 20);
  } else {
    s.restoreSeen++;
    s.restoreMean += (inst.startCostMs - s.restoreMean) / Math.min(s.restoreSeen, 20);
  }
}

/** When the k-th request beyond f's starting instances would get a warm instance (ms from now). */
export function warmWait(f: CoreFunction, k: number, now: number): number {
  const run = f.view.runMs;
  if (run === undefined || f.busy.length === 0) return Infinity;
  let earliest = Infinity;
  for (const b of f.busy) {
    // an instance past its expected run time is assumed to need at least as long again as it has
    // run so far (a run 100× the mean is no sign that it ends in one mean run time)
    const end = b.busySince + run > now ? b.busySince + run : now + Math.max(run, now - b.busySince);
    if (end < earliest) earliest = end;
  }
  return earliest - now + Math.floor((Math.max(1, k) - 1) / f.busy.length) * run;
}

/** What a start of f now costs alone (ms): a restore when it has a ready snapshot, else a cold boot. */
export function startCost(s: CoreState, f: CoreFunction): number {
  const restore = s.cfg.snapshots && f.snapshot?.ready === true;
  return restore
    ? (f.view.restoreMs ?? (s.restoreSeen > 0 ? s.restoreMean : s.cfg.starts.defaultRestoreMs))
    : (f.view.coldStartMs ?? (s.coldSeen > 0 ? s.coldMean : s.cfg.starts.defaultColdMs));
}

/**
 * Expected time until a start for f now would be ready: its cost, after a slot frees for it. The starts
 * under way free their slots at what remains of them (their expected cost less the time they have run,
 * none once past it: a start counts at what is left of it, not at its whole cost again); the starts queued
 * ahead of f then take the slots in turn, each for f's cost.
 */
export function startEstimate(s: CoreState, f: CoreFunction, now: number): number {
  const cost = startCost(s, f);
  const slots = startSlots(s);
  // FIFO: every start the waiting functions want; with fairness: one per function ahead of f in its order
  const queued = s.fairNow ? startsAhead(s, f) : s.wantStartsTotal - f.wantStarts;
  const running = s.startingList;
  if (running.length + queued < slots) return cost;
  // when each slot is free for a queued start: the `slots` earliest of (the running starts' ends, then
  // immediately for slots nobody holds); with more starts running than slots, a slot frees only after
  // the surplus ended. Slots free at 0 first (nobody holds them), then in the order the running starts end:
  // slot j (j ≥ the free ones) frees at the running starts' (slots − j)-th latest end.
  const j = queued % slots;
  const free = Math.max(0, slots - running.length);
  const slotAt = j < free ? 0 : rthLatestEnd(s, running, slots - j, now);
  return slotAt + Math.floor(queued / slots) * cost + cost;
}

/**
 * The r-th latest (1-based, r ≤ running.length) of the running starts' expected ends (ms from now, at least 0):
 * the value a sort of all ends would put at position length − r, found by keeping the r latest (r ≤ the start
 * slots, a few) instead of sorting every end at every estimate (admission and preferWarm ask for one per request).
 */
function rthLatestEnd(s: CoreState, running: readonly CoreInstance[], r: number, now: number): number {
  if (s.slotEnds.length < r) s.slotEnds = new Float64Array(2 * r);
  const top = s.slotEnds; // top[0..n): the r latest so far, latest first
  let n = 0;
  for (let i = 0; i < running.length; i++) {
    const inst = running[i]!;
    const e = Math.max(0, inst.startExpectMs - (now - inst.createdAt));
    let k = n;
    if (n === r) {
      if (!(e > top[r - 1]!)) continue;
      k = r - 1;
    } else n++;
    while (k > 0 && top[k - 1]! < e) {
      top[k] = top[k - 1]!;
      k--;
    }
    top[k] = e;
  }
  return top[r - 1]!;
}

/** The admission policy's view of f for one more request (a shared object, refreshed per call). */
export function admissionView(s: CoreState, f: CoreFunction, now: number): AdmissionViewRW {
  const v = s.av;
  v.fn = f.view;
  v.queued = f.queued;
  v.busy = f.busy.length;
  v.idle = f.idle.length;
  v.starting = f.starting;
  v.startable = Math.max(0, f.maxInstances - f.live);
  v.startsInFlight = s.startingN;
  v.startSlots = startSlots(s);
  // this request is number queued+1; covered by a start under way, a warm instance, or a new start
  const k = f.queued + 1 - f.starting;
  let est: number;
  if (k <= 0) est = startEstimate(s, f, now);
  else {
    const warm = warmWait(f, k, now);
    const start = v.startable > 0 || f.starting > 0 ? startEstimate(s, f, now) : Infinity;
    est = Math.min(warm, start);
    if (!Number.isFinite(est) && f.live > 0) est = startEstimate(s, f, now); // instances exist but nothing measured yet
  }
  // with fairness: no sooner than its function's turn on the CPU for every request queued before it
  v.estimatedWaitMs = Math.max(est, fairWait(s, f, f.queued + 1, now));
  s.lastEstimateMs = v.estimatedWaitMs;
  return v;
}
