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

/** Starts whose wall time makes "lately" (startDuration): the last few, so that a change of load shows within a few starts. */
const LATELY_STARTS = 4;

/** A start finished: its cost feeds the node-wide means (the estimate for functions never started) and "lately". */
export function noteStartCost(s: CoreState, inst: CoreInstance): void {
  const now = inst.createdAt + inst.startCostMs;
  if (inst.path === 'cold') {
    s.coldSeen++;
    s.coldMean += (inst.startCostMs - s.coldMean) / Math.min(s.coldSeen, 20);
    s.coldLately += (inst.startCostMs - s.coldLately) / Math.min(s.coldSeen, LATELY_STARTS);
    s.coldLatelyAt = now;
  } else {
    s.restoreSeen++;
    s.restoreMean += (inst.startCostMs - s.restoreMean) / Math.min(s.restoreSeen, 20);
    s.restoreLately += (inst.startCostMs - s.restoreLately) / Math.min(s.restoreSeen, LATELY_STARTS);
    s.restoreLatelyAt = now;
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
 * issue 18: whether a start of f now gets the start CPU weight (starts.startWeightScope): with 'first', only when f
 * has no instance at all (none ready, none starting: its first, or after all were evicted); 'all' (absent): every start.
 */
export function startWeighted(s: CoreState, f: CoreFunction): boolean {
  return s.cfg.starts.startWeightScope !== 'first' || f.live === 0;
}

/**
 * issue 18: how many times its cost alone a start takes while `atOnce` starts run beside the busy runs: the
 * kernel shares the cores by CPU weight, a weighted start's (limits.startCpuWeight, CoreInstance.startWeighted)
 * `w` times a busy one's, each start at most one core; the busy runs count the cores they take (before any run's
 * CPU was measured, a core each: the estimate errs on the side of an early refusal). `weighted`: this start has the
 * weight; of the `atOnce`, the weighted starts under way (and this one, when `extra` and weighted) have it.
 * 1 when the starts and the runs fit in the cores.
 */
export function startStretch(s: CoreState, atOnce: number, weighted = true, extra = false): number {
  const st = s.cfg.starts;
  const w = st.startWeight !== undefined && st.startWeight > 0 ? st.startWeight : 1;
  const runs = s.cpuShareN === 0 && !s.cpuBlind ? Math.max(s.busyCpu, s.busyN) : s.busyCpu;
  const n = Math.max(1, atOnce);
  // every start weighted (scope 'all'): n × w; else the weighted ones w each, the others 1
  const k = st.startWeightScope !== 'first' ? n : Math.min(n, s.weightedStartingN + (extra && weighted ? 1 : 0));
  // a start's share of a core: cores × its weight / (k × w + (n − k) + runs), at most 1
  return Math.max(1, (k * w + (n - k) + runs) / (st.cores * (weighted || st.startWeightScope !== 'first' ? w : 1)));
}

/**
 * issue 18: how long a start of f takes now (ms, wall): its cost alone stretched by the starts and runs beside it
 * (startStretch), and no less than what the node measures: how long starts of its kind really took lately (while
 * the latest ended within a queueing deadline: a load that has gone does not refuse forever), and what the starts
 * of its kind under way have already taken (the lower median of their ages: before any start ended, a start
 * running long says starts take long now; one hung start alone among others does not set it).
 */
export function startDuration(s: CoreState, f: CoreFunction, atOnce: number, now: number): number {
  const restore = s.cfg.snapshots && f.snapshot?.ready === true;
  const d = Math.max(startCost(s, f) * startStretch(s, atOnce, startWeighted(s, f), true), lately(s, restore, now));
  const live = runningAge(s, restore ? 'restore' : 'cold', now);
  return live > d ? live : d;
}

/** How long starts of a kind really took lately, while the latest of them ended within a queueing deadline (else 0). */
function lately(s: CoreState, restore: boolean, now: number): number {
  const at = restore ? s.restoreLatelyAt : s.coldLatelyAt;
  return now - at <= s.cfg.maxQueueDelayMs ? (restore ? s.restoreLately : s.coldLately) : 0;
}

/** The lower median of the ages of the starts of one kind under way (0: none). Few starts run at once: a small sort. */
function runningAge(s: CoreState, path: 'cold' | 'restore', now: number): number {
  const ages = s.startAges;
  ages.length = 0;
  for (const inst of s.startingList) if (inst.path === path) ages.push(now - inst.createdAt);
  if (ages.length === 0) return 0;
  ages.sort((a, b) => a - b);
  return ages[(ages.length - 1) >> 1]!;
}

/**
 * Expected time until a start for f now would be ready: its cost, after a slot frees for it. The starts
 * under way free their slots at what remains of them (their expected cost less the time they have run,
 * none once past it: a start counts at what is left of it, not at its whole cost again); the starts queued
 * ahead of f then take the slots in turn, each for f's cost.
 */
export function startEstimate(s: CoreState, f: CoreFunction, now: number, own = 0): number {
  const slots = startSlots(s);
  // FIFO: every start the waiting functions want; with fairness: one per function ahead of f in its order.
  // issue 18: and the `own` starts f wants before this one (with fairness each after a round of one start per
  // function that wants one: a grant charges f's start, the others then go first)
  const queued = s.fairNow ? startsAhead(s, f, own) : s.wantStartsTotal - f.wantStarts + own;
  const running = s.startingList;
  // issue 18: each start at what it takes now beside the others and the busy runs (startDuration), not alone
  const cost = startDuration(s, f, Math.min(Math.max(slots, running.length), running.length + queued + 1), now);
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

/** issue 18: when the earliest of f's starts under way ends (ms from now; each as in rthLatestEnd). */
function ownStartEnd(s: CoreState, f: CoreFunction, now: number): number {
  const running = s.startingList;
  const stretchW = startStretch(s, running.length, true);
  const stretch1 = startStretch(s, running.length, false);
  let end = Infinity;
  for (let i = 0; i < running.length; i++) {
    const inst = running[i]!;
    if (inst.f !== f) continue;
    const e = Math.max(0, Math.max(inst.startExpectMs * (inst.startWeighted ? stretchW : stretch1), lately(s, inst.path === 'restore', now)) - (now - inst.createdAt));
    if (e < end) end = e;
  }
  return Number.isFinite(end) ? end : startEstimate(s, f, now);
}

/**
 * The r-th latest (1-based, r ≤ running.length) of the running starts' expected ends (each its cost × its startStretch) (ms from now, at least 0):
 * the value a sort of all ends would put at position length − r, found by keeping the r latest (r ≤ the start
 * slots, a few) instead of sorting every end at every estimate (admission and preferWarm ask for one per request).
 */
function rthLatestEnd(s: CoreState, running: readonly CoreInstance[], r: number, now: number): number {
  if (s.slotEnds.length < r) s.slotEnds = new Float64Array(2 * r);
  // issue 18: a weighted start (CoreInstance.startWeighted) and an unweighted one stretch differently
  const stretchW = startStretch(s, running.length, true);
  const stretch1 = startStretch(s, running.length, false);
  const top = s.slotEnds; // top[0..n): the r latest so far, latest first
  let n = 0;
  for (let i = 0; i < running.length; i++) {
    const inst = running[i]!;
    // issue 18: its cost alone stretched by the starts and runs beside it, at least what its kind took lately
    const expect = Math.max(inst.startExpectMs * (inst.startWeighted ? stretchW : stretch1), lately(s, inst.path === 'restore', now));
    const e = Math.max(0, expect - (now - inst.createdAt));
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
    // issue 18: with the fair rule acting, a new start for it comes after the starts f already waits for (as
    // many as f may still make), each after a round of the others'. Not first come, first served: there a warm
    // instance often serves those requests before f's further starts (counted so, the memory-pressure scenario
    // of bench/fairness-default.ts refused 4-14 % more over 24 seeds)
    const own = s.fairNow ? Math.min(f.wantStarts, Math.max(0, v.startable - 1)) : 0;
    // no start left for it: it waits for one of f's starts under way (and the runs ahead of it: fairWait), not
    // for a new start behind every other function's
    const start = v.startable > 0 ? startEstimate(s, f, now, own) : f.starting > 0 ? ownStartEnd(s, f, now) : Infinity;
    est = Math.min(warm, start);
    if (!Number.isFinite(est) && f.live > 0) est = startEstimate(s, f, now); // instances exist but nothing measured yet
  }
  // with fairness: no sooner than its function's turn on the CPU for every request queued before it
  v.estimatedWaitMs = Math.max(est, fairWait(s, f, f.queued + 1, now));
  s.lastEstimateMs = v.estimatedWaitMs;
  return v;
}
