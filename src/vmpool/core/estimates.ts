// What the core expects: how many starts may run at once, when a busy instance
// of a function frees up, how long a new start would take, and the wait that
// admission judges a request by. Estimates only; nothing here changes state
// except the node-wide start-cost means (noteStartCost).

import type { AdmissionViewRW, CoreState } from './state.js';
import type { CoreFunction, CoreInstance } from './model.js';

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

/** Expected time until a start for f now would be ready: its cost, times the rounds of starts queued ahead. */
export function startEstimate(s: CoreState, f: CoreFunction): number {
  const restore = s.cfg.snapshots && f.snapshot?.ready === true;
  const cost = restore
    ? (f.view.restoreMs ?? (s.restoreSeen > 0 ? s.restoreMean : s.cfg.starts.defaultRestoreMs))
    : (f.view.coldStartMs ?? (s.coldSeen > 0 ? s.coldMean : s.cfg.starts.defaultColdMs));
  const slots = startSlots(s);
  const ahead = Math.max(0, s.startingN + s.wantStartsTotal - f.wantStarts - slots + 1);
  return cost * (1 + Math.ceil(ahead / slots));
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
  if (k <= 0) est = startEstimate(s, f);
  else {
    const warm = warmWait(f, k, now);
    const start = v.startable > 0 || f.starting > 0 ? startEstimate(s, f) : Infinity;
    est = Math.min(warm, start);
    if (!Number.isFinite(est) && f.live > 0) est = startEstimate(s, f); // instances exist but nothing measured yet
  }
  v.estimatedWaitMs = est;
  return v;
}
