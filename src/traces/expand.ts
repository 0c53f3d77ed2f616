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

/**
 * Expands slot after slot into reusable typed arrays (times in ms from the
 * trace start, function indices), sorted by time. Each arrival is packed into
 * one float64 (time in fine units × 2^26 + function index) so the native
 * typed-array sort orders a whole slot at once.
 */
export class ArrivalExpander {
  times = new Float64Array(4096);
  fns = new Uint32Array(4096);
  private keys = new Float64Array(4096);
  private readonly rng: SeededRng;
  private readonly spread: Spread;
  /** time units per ms so that slot × units × 2^26 stays below 2^53 */
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

  /** Arrivals of slot s into this.times / this.fns[0..n); returns n. */
  slot(s: number): number {
    const t = this.trace;
    if (t.exact) return this.exactSlot(s);
    const a = t.slotStart[s]!;
    const b = t.slotStart[s + 1]!;
    let n = 0;
    for (let e = a; e < b; e++) n += t.entryCount[e]!;
    if (n > this.keys.length) {
      let cap = this.keys.length;
      while (cap < n) cap *= 2;
      this.keys = new Float64Array(cap);
      this.times = new Float64Array(cap);
      this.fns = new Uint32Array(cap);
    }
    const keys = this.keys;
    const span = t.slotMs * this.unitsPerMs;
    let k = 0;
    for (let e = a; e < b; e++) {
      const fn = t.entryFn[e]!;
      const c = t.entryCount[e]!;
      if (this.spread === 'even') {
        for (let j = 0; j < c; j++) keys[k++] = Math.floor(((j + 0.5) * span) / c) * FN_BITS + fn;
      } else {
        for (let j = 0; j < c; j++) keys[k++] = Math.floor(this.rng.next() * span) * FN_BITS + fn;
      }
    }
    const view = keys.subarray(0, n);
    view.sort();
    const base = s * t.slotMs;
    const upm = this.unitsPerMs;
    for (let i = 0; i < n; i++) {
      const key = view[i]!;
      const units = Math.floor(key / FN_BITS);
      this.fns[i] = key - units * FN_BITS;
      this.times[i] = base + units / upm;
    }
    return n;
  }

  /** A trace with exact arrival times: slot s's arrivals as recorded. */
  private exactSlot(s: number): number {
    const x = this.trace.exact!;
    const a = x.slotStart[s]!;
    const n = x.slotStart[s + 1]! - a;
    if (n > this.times.length) {
      let cap = this.times.length;
      while (cap < n) cap *= 2;
      this.keys = new Float64Array(cap);
      this.times = new Float64Array(cap);
      this.fns = new Uint32Array(cap);
    }
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
