// Expanding per-slot counts into sorted arrival times, one slot at a time, so
// a day with tens of millions of invocations never exists as one array.
import { createRng, type SeededRng } from '../policies/rng.js';
import type { Arrival, Trace } from './types.js';

export type Spread = 'random' | 'even';

export interface ExpandOptions {
  /**
   * How the c invocations of a slot are placed in it: 'random' (default):
   * seeded uniform; 'even': at (k + 0.5) / c of the slot.
   */
  spread?: Spread;
  seed?: number;
}

const FN_BITS = 2 ** 26;
const RADIX_BITS = 9;
const RADIX = 1 << RADIX_BITS;
const RADIX_MASK = RADIX - 1;

/**
 * Expands slot after slot into reusable typed arrays (times in ms from the
 * trace start, function indices), sorted by time. Times are whole "units"
 * (1/1000 ms for minute slots) drawn per invocation, then sorted with a stable
 * least-significant-digit radix sort on the units (three passes of 9 bits): the
 * entries come in function order, so ties stay ordered by function — the order a
 * comparison sort of (units, function) gives, in O(n) instead of O(n log n).
 */
export class ArrivalExpander {
  times = new Float64Array(4096);
  fns = new Uint32Array(4096);
  private units = new Uint32Array(4096);
  private fnIn = new Uint32Array(4096);
  private unitsTmp = new Uint32Array(4096);
  private fnTmp = new Uint32Array(4096);
  /** per pass (three of RADIX), the digit counts, then the offsets */
  private readonly count = new Uint32Array(3 * RADIX);
  private readonly rng: SeededRng;
  private readonly spread: Spread;
  /** time units per ms so that a slot's units fit in 27 bits (3 radix passes) */
  private readonly unitsPerMs: number;

  constructor(
    readonly trace: Trace,
    opts: ExpandOptions = {},
  ) {
    if (trace.functions.length >= FN_BITS) throw new Error(`too many functions (${trace.functions.length})`);
    this.rng = createRng(opts.seed ?? 1);
    this.spread = opts.spread ?? 'random';
    this.unitsPerMs = Math.min(1000, Math.floor((2 ** 53 - 1) / FN_BITS / trace.slotMs));
  }

  private ensure(n: number): void {
    if (n <= this.units.length) return;
    let cap = this.units.length;
    while (cap < n) cap *= 2;
    this.times = new Float64Array(cap);
    this.fns = new Uint32Array(cap);
    this.units = new Uint32Array(cap);
    this.fnIn = new Uint32Array(cap);
    this.unitsTmp = new Uint32Array(cap);
    this.fnTmp = new Uint32Array(cap);
  }

  /** Arrivals of slot s into this.times / this.fns[0..n); returns n. */
  slot(s: number): number {
    const t = this.trace;
    if (t.exact) return this.exactSlot(s);
    const a = t.slotStart[s]!;
    const b = t.slotStart[s + 1]!;
    let n = 0;
    for (let e = a; e < b; e++) n += t.entryCount[e]!;
    this.ensure(n);
    const units = this.units;
    const fnIn = this.fnIn;
    const span = t.slotMs * this.unitsPerMs;
    let k = 0;
    for (let e = a; e < b; e++) {
      const fn = t.entryFn[e]!;
      const c = t.entryCount[e]!;
      if (this.spread === 'even') {
        for (let j = 0; j < c; j++) {
          units[k] = Math.floor(((j + 0.5) * span) / c);
          fnIn[k++] = fn;
        }
      } else {
        for (let j = 0; j < c; j++) {
          units[k] = Math.floor(this.rng.next() * span);
          fnIn[k++] = fn;
        }
      }
    }
    this.radixSort(n);
    const sorted = this.units;
    const base = s * t.slotMs;
    const upm = this.unitsPerMs;
    const times = this.times;
    for (let i = 0; i < n; i++) times[i] = base + sorted[i]! / upm;
    this.fns.set(this.fnIn.subarray(0, n));
    return n;
  }

  /** Stable sort of units[0..n) (with fnIn alongside) by units, 9 bits a pass. */
  private radixSort(n: number): void {
    let src = this.units;
    let srcF = this.fnIn;
    let dst = this.unitsTmp;
    let dstF = this.fnTmp;
    // the three digits' counts in one read of the keys, then each pass's starting offsets
    const count = this.count;
    count.fill(0);
    for (let i = 0; i < n; i++) {
      const u = src[i]!;
      count[u & RADIX_MASK]!++;
      count[RADIX + ((u >>> RADIX_BITS) & RADIX_MASK)]!++;
      count[2 * RADIX + ((u >>> (2 * RADIX_BITS)) & RADIX_MASK)]!++;
    }
    for (let p = 0; p < 3 * RADIX; p += RADIX) {
      let sum = 0;
      for (let d = p; d < p + RADIX; d++) {
        const c = count[d]!;
        count[d] = sum;
        sum += c;
      }
    }
    for (let pass = 0, shift = 0; pass < 3; pass++, shift += RADIX_BITS) {
      const off = pass * RADIX;
      for (let i = 0; i < n; i++) {
        const u = src[i]!;
        const at = count[off + ((u >>> shift) & RADIX_MASK)]!++;
        dst[at] = u;
        dstF[at] = srcF[i]!;
      }
      [src, dst] = [dst, src];
      [srcF, dstF] = [dstF, srcF];
    }
    // three passes: the sorted arrays are the scratch ones; swap the roles
    this.units = src;
    this.fnIn = srcF;
    this.unitsTmp = dst;
    this.fnTmp = dstF;
  }

  /** A trace with exact arrival times: slot s's arrivals as recorded. */
  private exactSlot(s: number): number {
    const x = this.trace.exact!;
    const a = x.slotStart[s]!;
    const n = x.slotStart[s + 1]! - a;
    this.ensure(n);
    this.times.set(x.times.subarray(a, a + n));
    this.fns.set(x.fns.subarray(a, a + n));
    return n;
  }
}

/** Sorted arrivals as objects (convenient for replay; the simulator uses ArrivalExpander directly). */
export function* arrivals(trace: Trace, opts: ExpandOptions = {}): Generator<Arrival> {
  const x = new ArrivalExpander(trace, opts);
  for (let s = 0; s < trace.nSlots; s++) {
    const n = x.slot(s);
    for (let i = 0; i < n; i++) yield { timeMs: x.times[i]!, fn: x.fns[i]! };
  }
}
