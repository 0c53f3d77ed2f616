// Fairness among functions under overload (issue 18; admission.fairness, default
// max-min). When the node cannot serve all offered load, its capacity goes to
// the functions with demand max-min fair, weighted by each function's `share`,
// instead of to whoever got an instance first. The resource that runs out first
// on a node of CPU-bound functions is the CPU (runs and starts alike), so the
// rule shares the CPU, and through it the start slots (auto = cores minus busy
// CPU) and the memory (a function that yields keeps only idle, evictable VMs):
//
// - virtual time: every function has `vt`, the CPU it was granted (ms of a core)
//   divided by its share. A grant charges at once what it is expected to take (a
//   run: the CPU time its runs took, else how long they held an instance × its CPU
//   share; a start: the CPU time starts took, on one core); its end corrects the
//   charge to the CPU time it took as the shell measured it (the VMM's), else to
//   its time × its CPU share: under load a start or a run stretches in wall time
//   with what its neighbours take, not in CPU time. A function that
//   becomes backlogged again starts at the floor, the vt of the latest grant: no
//   credit is banked while idle.
// - order: functions waiting for a node-wide resource (start slot, memory,
//   concurrency, CPU) wait in order of vt, lowest first, ties first come first
//   served (start-time fair queuing) — while the CPU is short for one of them
//   (cpuShort: its run would not fit beside the busy runs); otherwise, and with
//   fairness off, they wait FIFO and nothing is held back.
// - the CPU gate: while another function waits, a run or a start goes only if
//   the CPU it takes fits in the cores beside the busy runs and the starts under
//   way. So an instance of a function that has had more than its share finishes
//   its run and waits (idle) while the CPU it frees goes to the function with the
//   lowest vt; a starved function's start gets a core instead of being stretched
//   by busy VMs. With nobody else waiting the gate is open (one function alone
//   keeps every instance it has busy, as before).
// - admission's estimate: under the rule a function gets share/Σshares of the
//   cores, so a request waits until the node's virtual time reaches the work
//   ahead of it in its function's account (its vt beyond the floor, plus the
//   requests queued before it): (vt − floor + ahead × run CPU / share) × Σshares /
//   cores. admission refuses at once what that puts past the queueing deadline.
//
// Pure functions over the shared state; the daemon and the simulator run the
// same rule through PoolCore. Tests: test/unit/fairness.test.ts, and
// test/unit/conformance-fairness.test.ts (daemon and simulator decide alike).

import type { CoreState } from './state.js';
import type { CoreFunction, CoreInstance } from './model.js';

/** Cores a start takes while it runs (a boot or a restore is CPU-bound work on one core). */
export const START_CPU = 1;

const EPS = 1e-9;

/**
 * The share of a core one run of f takes: measured, else the mean of the functions measured; none while
 * no run was measured with its CPU (a driver or a simulator profile that reports no CPU time, or no run
 * ended yet): the node cannot see that the CPU is short, so the fair rule holds nothing back (cpuShort).
 * Counting an unmeasured run a whole core held capacity back before the first runs ended and changed
 * the course of a node under memory pressure (docs/reliability.md "Fairness: why it was opt-in").
 */
export function cpuNeed(s: CoreState, f: CoreFunction): number {
  const v = f.view.cpuShare;
  if (v !== undefined) return v;
  if (s.cpuShareN > 0) return s.cpuShareSum / s.cpuShareN;
  return 0;
}

/** f's measured CPU share changed from `before` to `after` (the node-wide guess for unmeasured functions). */
export function noteCpuShare(s: CoreState, before: number | undefined, after: number | undefined): void {
  if (before !== undefined) {
    s.cpuShareSum -= before;
    s.cpuShareN--;
  }
  if (after !== undefined) {
    s.cpuShareSum += after;
    s.cpuShareN++;
  }
}

/**
 * Is the CPU short: do the runs of the waiting functions not fit in the cores beside the busy runs and the
 * starts under way? Only then does the fair rule act (order, CPU gate): functions that wait for memory or
 * start slots alone, or whose runs take no CPU the node can see, are served as with fairness off (first
 * come, first served, nothing held back): ordering them by CPU bought nothing there and cost many boots
 * and drops under memory pressure (docs/reliability.md). Sets cpuWanted (what the waiting functions' runs
 * take) for admission's estimates until the next pass.
 */
export function cpuShort(s: CoreState): boolean {
  let w = 0;
  for (const g of s.fairWait) if (g.waiting && g.queued > 0 && !g.deleted) w += cpuNeed(s, g);
  s.cpuWanted = w;
  return w > EPS && cpuLoad(s) + w > s.cfg.starts.cores + EPS;
}

/** Is the CPU short for one more request of f (cpuShort, with f's run among those waiting)? */
export function cpuShortFor(s: CoreState, f: CoreFunction): boolean {
  const need = cpuNeed(s, f);
  const wanted = s.cpuWanted + (f.waiting && f.waitPos >= 0 ? 0 : need);
  return need > EPS && cpuLoad(s) + wanted > s.cfg.starts.cores + EPS;
}

/** CPU the node has handed out: busy runs and starts under way (cores). */
export function cpuLoad(s: CoreState): number {
  return s.busyCpu + s.startingN * START_CPU;
}

/** Does f go before the waiting function `top` in the fair order (less CPU granted over its share)? */
function precedes(f: CoreFunction, top: CoreFunction): boolean {
  return f === top || f.vt < top.vt || (f.vt === top.vt && f.waitPos >= 0 && f.waitSeq < top.waitSeq);
}

/** The fair order of waiting functions: lowest virtual time first, ties first come first served. */
export function fairOrder(a: CoreFunction, b: CoreFunction): number {
  return a.vt - b.vt || a.waitSeq - b.waitSeq;
}

/** Does a function other than f wait for a node-wide resource? */
export function othersWaiting(s: CoreState, f: CoreFunction): boolean {
  return fairFirst(s) !== undefined && s.fairWait.length > (f.waitPos >= 0 ? 1 : 0);
}

/** Why a waiting function is blocked (it decides what it holds back in the fair pass). */
export const BLOCK_ORDER = 0;
/** the CPU for a run or a start (it reserves that much for itself) */
export const BLOCK_CPU = 1;
/** a start slot or memory for a start (no function after it in the pass starts) */
export const BLOCK_START = 2;
/** the node's concurrency limit */
export const BLOCK_CONCURRENCY = 3;

/** f waits: why, and (BLOCK_CPU) how much CPU it needs. */
export function blockedOn(f: CoreFunction, why: number, cpu = 0): void {
  f.blockedOn = why;
  f.blockedCpu = cpu;
}

/**
 * May f take the CPU for a run (`start` false: on top of the busy runs) or a start (on top of the busy
 * runs and the starts under way, each of which is to run next: the start takes a core, then its run what
 * f's runs take)? Always with fairness off, for a run that takes no CPU, and when no other function
 * waits for a node-wide resource (as before: one function alone keeps every instance it has busy, its
 * starts limited by the start slots). Otherwise the fair pass (node-wait.ts) decides, function by
 * function in the fair order: the work must fit in the cores beside what is handed out and what
 * functions before it in the pass hold back; with nothing handed out or held back one may always go.
 */
export function cpuGate(s: CoreState, f: CoreFunction, start: boolean): boolean {
  if (!s.fairNow) return true;
  const run = cpuNeed(s, f);
  const need = start ? Math.max(START_CPU, run) : run;
  if (need < EPS || !othersWaiting(s, f)) return true;
  if (!s.inPass) return false;
  const load = start ? cpuLoad(s) : s.busyCpu;
  const held = s.cpuReserved;
  // a function none of whose runs has ended yet has been charged nothing for them: one run at a time
  const probing = !start && f.heldSeen === 0 && f.busy.length > 0;
  if (!probing && load + need + held <= s.cfg.starts.cores + EPS) return true;
  return load < EPS && held < EPS;
}

/** In the fair pass, f was pumped and still waits: what it holds back from the functions after it. */
export function holdBack(s: CoreState, f: CoreFunction): void {
  if (f.blockedOn === BLOCK_CPU) s.cpuReserved += f.blockedCpu;
  else if (f.blockedOn === BLOCK_START) s.startsBlocked = true;
}

/**
 * Starts the waiting functions ahead of f in the fair order will take before f's: one each (a grant
 * charges its start, after which f, with less CPU so far, goes first again). issue 18: before f's start
 * after `own` starts of its own, each of those after a round of one start per function that wants one.
 */
export function startsAhead(s: CoreState, f: CoreFunction, own = 0): number {
  let n = 0;
  let wanting = 1;
  for (const g of s.fairWait) {
    if (g === f || g.wantStarts <= 0) continue;
    wanting++;
    if (precedes(g, f)) n++;
  }
  return n + own * wanting;
}

/** f is granted `cpuMs` of CPU (expected): its virtual time moves on by that over its share. */
function grant(s: CoreState, f: CoreFunction, cpuMs: number): void {
  if (f.vt > s.vtFloor) s.vtFloor = f.vt;
  if (cpuMs !== 0) addVt(s, f, cpuMs / f.share);
}

function addVt(s: CoreState, f: CoreFunction, dv: number): void {
  // on a grid of 1 µs: the shells' clocks may differ in the last bits, their order of functions must not
  f.vt = Math.round((f.vt + dv) * 1000) / 1000;
  if (f.waitPos >= 0) resift(s, f);
}

/** How long a run of f holds its instance: its runs' mean, else the node's (0 before any run ended). */
function heldOf(s: CoreState, f: CoreFunction): number {
  return f.heldSeen > 0 ? f.heldMean : s.heldMean;
}

/** The CPU (ms of a core) a run of f is expected to take: what its runs took, else their time held × `cpu`. */
function runCpuOf(s: CoreState, f: CoreFunction, cpu: number): number {
  return f.cpuMsSeen > 0 ? f.cpuMsMean : heldOf(s, f) * cpu;
}

/** A run of inst's function was assigned (inst.cpuCharge set): charge what it is expected to take. */
export function chargeRun(s: CoreState, inst: CoreInstance): void {
  if (!s.fair) return;
  inst.vtCharge = runCpuOf(s, inst.f, inst.cpuCharge);
  grant(s, inst.f, inst.vtCharge);
}

/**
 * The run ended: the charge becomes what it took, its CPU time `cpuMs` when the shell measured it (the
 * VMM's CPU over the run: under contention a run's wall time stretches with what its neighbours take, its
 * CPU time does not), else its time busy × its CPU share.
 */
export function settleRun(s: CoreState, inst: CoreInstance, now: number, cpuMs?: number): void {
  if (!s.fair) return;
  const f = inst.f;
  const busy = now - inst.busySince;
  f.heldSeen++;
  f.heldMean += (busy - f.heldMean) / Math.min(f.heldSeen, 20);
  if (f.heldMean > s.heldFnMax) s.heldFnMax = f.heldMean;
  s.heldSeen++;
  s.heldMean += (busy - s.heldMean) / Math.min(s.heldSeen, 100);
  const measured = cpuMs !== undefined && cpuMs >= 0;
  if (measured) {
    f.cpuMsSeen++;
    f.cpuMsMean += (cpuMs - f.cpuMsMean) / Math.min(f.cpuMsSeen, 20);
    if (inst.cpuCharge > EPS) {
      s.runWallDecayed = s.runWallDecayed * RUN_STRETCH_DECAY + busy * Math.min(1, inst.cpuCharge);
      s.runCpuDecayed = s.runCpuDecayed * RUN_STRETCH_DECAY + cpuMs;
    }
  }
  settle(s, inst, measured ? cpuMs : busy * inst.cpuCharge);
}

/** A start was launched: charge what starts of its kind took (their CPU time when measured, else their time), on one core. */
export function chargeStart(s: CoreState, inst: CoreInstance): void {
  if (!s.fair) return;
  const cold = inst.path === 'cold';
  const cpuSeen = cold ? s.coldCpuSeen : s.restoreCpuSeen;
  const seen = cold ? s.coldSeen : s.restoreSeen;
  const mean = cpuSeen > 0 ? (cold ? s.coldCpuMean : s.restoreCpuMean) : cold ? s.coldMean : s.restoreMean;
  inst.vtCharge = (cpuSeen > 0 || seen > 0 ? mean : cold ? s.cfg.starts.defaultColdMs : s.cfg.starts.defaultRestoreMs) * START_CPU;
  grant(s, inst.f, inst.vtCharge);
}

/**
 * The start ended (ready, or failed): the charge becomes what it took, its CPU time `cpuMs` when the shell
 * measured it (the VMMs' CPU time over the start: a load that stretches a boot to 20 s does not make it
 * cost 20 s of CPU), else its time.
 */
export function settleStart(s: CoreState, inst: CoreInstance, now: number, cpuMs?: number): void {
  if (!s.fair) return;
  if (cpuMs !== undefined && cpuMs >= 0) {
    if (inst.path === 'cold') {
      s.coldCpuSeen++;
      s.coldCpuMean += (cpuMs - s.coldCpuMean) / Math.min(s.coldCpuSeen, 20);
    } else {
      s.restoreCpuSeen++;
      s.restoreCpuMean += (cpuMs - s.restoreCpuMean) / Math.min(s.restoreCpuSeen, 20);
    }
    settle(s, inst, cpuMs);
  } else settle(s, inst, (now - inst.createdAt) * START_CPU);
}

function settle(s: CoreState, inst: CoreInstance, heldMs: number): void {
  const d = heldMs - inst.vtCharge;
  inst.vtCharge = 0;
  if (d !== 0) addVt(s, inst.f, d / inst.f.share);
}

/** A request of f arrives: a function without demand until now starts at the floor. */
export function activate(s: CoreState, f: CoreFunction): void {
  if (!s.fair || f.inDemand || f.vt >= s.vtFloor) return;
  f.vt = s.vtFloor;
  if (f.waitPos >= 0) resift(s, f);
}

/** Recount f in the node's demand (queued requests, busy or starting instances). */
export function noteDemand(s: CoreState, f: CoreFunction): void {
  const d = !f.deleted && (f.queued > 0 || f.busy.length > 0 || f.starting > 0);
  if (d === f.inDemand) return;
  f.inDemand = d;
  s.demandShares += d ? f.share : -f.share;
  if (s.demandShares < EPS) s.demandShares = 0;
}

/** f's share changed (a new definition). */
export function setShare(s: CoreState, f: CoreFunction, share: number): void {
  if (share === f.share) return;
  if (f.inDemand) s.demandShares += share - f.share;
  // its account keeps the CPU it was granted: the virtual time is rescaled to the new weight
  f.vt = f.vt > s.vtFloor ? s.vtFloor + ((f.vt - s.vtFloor) * f.share) / share : f.vt;
  f.share = share;
  if (f.waitPos >= 0) resift(s, f);
}

/**
 * How long the k-th waiting request of f (k = 1: the next) waits for its turn on the CPU under the
 * rule (ms), 0 with fairness off or for a function that takes no CPU: the work of f ahead of it in
 * virtual time, at the rate the node's virtual time moves (cores / Σ shares of the functions with demand).
 */
export function fairWait(s: CoreState, f: CoreFunction, k: number, now: number): number {
  if (!s.fair) return 0;
  // before any run ended, with its CPU or without, a run may be CPU-bound: here (not in the order or the CPU
  // gate) it counts a core, so that the estimate errs on the side of an early refusal; without it the queue of
  // a function whose runs are not known yet grows on a start's estimate and is refused at its deadline (how
  // long such a run takes: unknownRunCpu)
  const guess = s.cpuShareN === 0 && !s.cpuBlind;
  // the CPU not short for f: its runs fit beside the busy ones, the estimate of its instances holds
  if (!guess && !cpuShortFor(s, f)) return 0;
  const others = s.demandShares - (f.inDemand ? f.share : 0);
  const need = guess ? 1 : cpuNeed(s, f);
  // alone, a function has the node to itself: the estimate of its instances holds
  if (others < EPS || !(need > 0)) return 0;
  const runCpu = f.heldSeen > 0 ? runCpuOf(s, f, need) : unknownRunCpu(s, f, need, now);
  const shares = others + f.share;
  const ahead = Math.max(0, f.vt - s.vtFloor) + ((k - 1) * runCpu) / f.share;
  // issue 18, session 7: at the CPU the node's runs really get (the cores over runStretch), not the cores
  return (ahead * shares * runStretch(s)) / s.cfg.starts.cores;
}

/** Weight of the runs before the latest in runStretch (about the last 10 runs count). */
const RUN_STRETCH_DECAY = 0.9;

/**
 * issue 18, session 7: how much slower than their CPU time the node's runs have gone lately (≥ 1): a run that
 * asks for a core and got a third of one over its time took 3× its CPU time. On a shared host the other
 * processes take part of the cores; the node sees it only so. Measured CPU only (1 without).
 */
export function runStretch(s: CoreState): number {
  return s.runCpuDecayed > EPS ? Math.max(1, s.runWallDecayed / s.runCpuDecayed) : 1;
}

/** What a start costs on this node: the mean of cold boots, else the configured default. */
function startCostMean(s: CoreState): number {
  return s.coldSeen > 0 ? s.coldMean : s.cfg.starts.defaultColdMs;
}

/**
 * The CPU a run of f takes before any of its runs ended: what is known of it, × `need`. Its profiled run
 * time; else the longest mean run of the node's functions (an unknown function may be as long as the longest
 * known one); else, before any run ended on the node, a cold start's cost (the only work measured yet); and at
 * least twice what its oldest busy run has already taken (a run past its time is assumed to need as long
 * again, as in warmWait: the bound grows while the run goes on, so the longer a run really is, the fewer
 * requests queue behind it and the sooner the rest are refused). Not the queueing deadline itself: counted
 * so, the 2nd queued request of any function was refused on every fresh node where another function had
 * demand (test/e2e/python.test.ts with max-min), and a function whose first run waited long for its start
 * was refused all but one request meanwhile (pyaes in the real overload series s5b).
 */
function unknownRunCpu(s: CoreState, f: CoreFunction, need: number, now: number): number {
  // issue 18, session 7: after the first runs ended, no less than the CPU a cold start took (the one piece of
  // its work measured; the longest mean run of the others, all short, let chameleon's 1.8-s runs queue behind
  // its first one at a few hundred ms each and be refused at the deadline in the real series s7 run 1)
  let ms = f.view.runMs ?? (s.heldFnMax > 0 ? Math.max(s.heldFnMax, s.coldCpuSeen > 0 ? s.coldCpuMean : 0) : startCostMean(s));
  for (const b of f.busy) if (2 * (now - b.busySince) > ms) ms = 2 * (now - b.busySince);
  return ms * need;
}

// ---- the wait heap: functions waiting for a node-wide resource, lowest vt first ----

function less(a: CoreFunction, b: CoreFunction): boolean {
  return a.vt < b.vt || (a.vt === b.vt && a.waitSeq < b.waitSeq);
}

export function fairEnter(s: CoreState, f: CoreFunction): void {
  if (f.waitPos >= 0) return;
  f.waitSeq = ++s.fairSeq;
  f.waitPos = s.fairWait.length;
  s.fairWait.push(f);
  up(s.fairWait, f.waitPos);
}

export function fairLeave(s: CoreState, f: CoreFunction): void {
  const h = s.fairWait;
  const i = f.waitPos;
  if (i < 0) return;
  f.waitPos = -1;
  const last = h.pop()!;
  if (last === f) return;
  h[i] = last;
  last.waitPos = i;
  resift(s, last);
}

/** The waiting function with the lowest vt; entries that no longer wait are dropped on the way. */
export function fairFirst(s: CoreState): CoreFunction | undefined {
  const h = s.fairWait;
  while (h.length > 0) {
    const f = h[0]!;
    if (f.waiting && f.queued > 0 && !f.deleted) return f;
    f.waiting = false;
    s.wantStartsTotal -= f.wantStarts;
    f.wantStarts = 0;
    fairLeave(s, f);
  }
  return undefined;
}

function resift(s: CoreState, f: CoreFunction): void {
  const h = s.fairWait;
  up(h, f.waitPos);
  down(h, f.waitPos);
}

function up(h: CoreFunction[], i: number): void {
  const f = h[i]!;
  while (i > 0) {
    const p = (i - 1) >> 1;
    const q = h[p]!;
    if (!less(f, q)) break;
    h[i] = q;
    q.waitPos = i;
    i = p;
  }
  h[i] = f;
  f.waitPos = i;
}

function down(h: CoreFunction[], i: number): void {
  const n = h.length;
  const f = h[i]!;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && less(h[c + 1]!, h[c]!)) c++;
    const q = h[c]!;
    if (!less(q, f)) break;
    h[i] = q;
    q.waitPos = i;
    i = c;
  }
  h[i] = f;
  f.waitPos = i;
}
