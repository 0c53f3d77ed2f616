// Memory accounting: what each live instance is charged against the node's budget
// (memory.ts admits and evicts by these charges).
//
//   nominal   an instance counts its memory size, from its start to its stop.
//   measured  an instance counts what it costs the host: its VMM's PSS as the shell's
//             sampler measures it (its private pages plus its share of the pages it
//             shares — a snapshot's RAM file, the DAX root, QEMU's binary), never more than
//             its size, plus a reserve for growing towards that size:
//                 charge = ceil(m + reserve × (size − m))
//             Before its first measurement (and while it starts, when a measurement says
//             little) m is its function's latest measured cost on the same start path, or
//             its size when none was measured yet. So an unmeasured node behaves as nominal.
//
// Charges are whole MiB: both shells add and subtract them in their own orders and
// must reach the same sums.

import type { CoreState } from './state.js';
import type { CoreFunction, CoreInstance, MemorySample, StartKind } from './model.js';

const COLD = 0;
const RESTORE = 1;

function pathIndex(path: StartKind): number {
  return path === 'cold' ? COLD : RESTORE;
}

/** What an instance of `sizeMiB` measured at `mib` is charged (the size itself under nominal accounting). */
export function chargeFor(s: CoreState, sizeMiB: number, mib: number): number {
  if (!s.measuredAccounting || !(mib < sizeMiB)) return sizeMiB;
  const m = Math.max(0, mib);
  return Math.ceil(m + s.reserve * (sizeMiB - m));
}

/** The path the next start of `f` takes (as launch decides it). */
function nextPath(s: CoreState, f: CoreFunction): StartKind {
  return s.cfg.snapshots && f.snapshot?.ready ? 'restore' : 'cold';
}

/** What f's next start is charged: admission's need. */
export function startCharge(s: CoreState, f: CoreFunction): number {
  return chargeFor(s, f.memoryMiB, f.memEstimate[pathIndex(nextPath(s, f))]!);
}

/** Set what `inst` counts against the budget, keeping the node's sums (used, idle, peak) in step. */
export function setCharge(s: CoreState, inst: CoreInstance, charge: number): void {
  const delta = charge - inst.chargedMiB;
  if (delta === 0) return;
  inst.chargedMiB = charge;
  s.usedMiB += delta;
  if (inst.fnIdlePos >= 0) s.idleMiB += delta;
  if (s.usedMiB > s.counters.peakMemoryMiB) s.counters.peakMemoryMiB = s.usedMiB;
  // memory was freed: functions waiting for it get their turn
  if (delta < 0) s.needDrain = true;
}

/** A new instance's charge: its function's estimate for its path (launch). */
export function chargeStart(s: CoreState, inst: CoreInstance): void {
  inst.chargedMiB = 0;
  inst.measuredMiB = NaN;
  inst.prevMeasuredMiB = NaN;
  setCharge(s, inst, chargeFor(s, inst.memoryMiB, inst.f.memEstimate[pathIndex(inst.path)]!));
}

/**
 * The shell's sampler measured live instances. Idle and busy ones are charged their
 * measurement; a starting one's is ignored (it is still growing into its size). The
 * idle ones teach their function what its next start on that path will cost.
 */
export function applySamples(s: CoreState, samples: readonly MemorySample[]): void {
  // per function and path: sum and count of the idle measurements of this batch (scratch by function index,
  // reset after use: the simulator samples tens of thousands of times a day)
  const seen = s.sampleSeen;
  if (s.sampleAcc.length < 4 * s.fns.length) s.sampleAcc = new Float64Array(8 * s.fns.length);
  const acc = s.sampleAcc;
  for (let j = 0; j < samples.length; j++) {
    const sample = samples[j]!;
    const inst = sample.inst;
    const state = inst.state; // setCharge changes no state
    if (state !== 'idle' && state !== 'busy') continue;
    const mib = Math.ceil(Math.max(0, sample.pssMiB));
    inst.prevMeasuredMiB = inst.measuredMiB;
    inst.measuredMiB = mib;
    setCharge(s, inst, chargeFor(s, inst.memoryMiB, mib));
    if (state !== 'idle' || inst.stale) continue;
    const base = inst.f.index * 4;
    if (acc[base + 1] === 0 && acc[base + 3] === 0) seen.push(inst.f);
    const i = base + pathIndex(inst.path) * 2;
    acc[i]! += Math.min(mib, inst.memoryMiB);
    acc[i + 1]!++;
  }
  for (const f of seen) {
    const base = f.index * 4;
    if (acc[base + 1]! > 0) f.memEstimate[COLD] = Math.ceil(acc[base]! / acc[base + 1]!);
    if (acc[base + 3]! > 0) f.memEstimate[RESTORE] = Math.ceil(acc[base + 2]! / acc[base + 3]!);
    acc[base] = acc[base + 1] = acc[base + 2] = acc[base + 3] = 0;
  }
  seen.length = 0;
}

/** A new version of a function: what its old instances cost says nothing about the new ones. */
export function forgetEstimates(f: CoreFunction): void {
  f.memEstimate[COLD] = NaN;
  f.memEstimate[RESTORE] = NaN;
}

export interface MemoryTotals {
  /** charged against the budget (measured costs plus reserve, or sizes) */
  chargedMiB: number;
  /** sum of the sizes of the live instances */
  nominalMiB: number;
  /** sum of the latest measurements of the live instances that have one */
  measuredMiB: number;
  /** live instances without a measurement yet */
  unmeasured: number;
  live: number;
}

export function memoryTotals(s: CoreState): MemoryTotals {
  const t: MemoryTotals = { chargedMiB: s.usedMiB, nominalMiB: 0, measuredMiB: 0, unmeasured: 0, live: 0 };
  for (const inst of s.slots) {
    if (inst.seq === 0 || inst.state === 'stopping') continue;
    t.live++;
    t.nominalMiB += inst.memoryMiB;
    if (Number.isNaN(inst.measuredMiB)) t.unmeasured++;
    else t.measuredMiB += inst.measuredMiB;
  }
  return t;
}

/**
 * How many more idle instances of `sizeMiB` the budget admits now (below the high
 * watermark, without evicting): each charged like an idle instance measured at the
 * mean measured/size ratio of the node's idle instances (measured accounting; none
 * measured: its size).
 */
export function idleFit(s: CoreState, sizeMiB: number): number {
  const room = s.cfg.highWatermark * s.cfg.memoryBudgetMiB - s.usedMiB;
  if (!(sizeMiB > 0) || room <= 0) return 0;
  if (!Number.isFinite(room)) return Infinity;
  let ratio = 1;
  if (s.measuredAccounting) {
    let sum = 0;
    let n = 0;
    for (const inst of s.globalIdle) {
      if (Number.isNaN(inst.measuredMiB)) continue;
      sum += Math.min(1, inst.measuredMiB / inst.memoryMiB);
      n++;
    }
    if (n > 0) ratio = sum / n;
  }
  const cost = chargeFor(s, sizeMiB, Math.ceil(ratio * sizeMiB));
  return Math.floor(room / cost);
}
