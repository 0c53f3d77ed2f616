import { createRng } from '../policies/rng.js';
import { EntryBuilder, type ExactArrivals, type Trace, type TraceFunction } from './types.js';

/** Indices of the n most invoked functions (ties: lower index first). */
export function topFunctions(trace: Trace, n: number): number[] {
  return trace.functions
    .map((f) => f.index)
    .sort((a, b) => trace.functions[b]!.total - trace.functions[a]!.total || a - b)
    .slice(0, n);
}

export interface SubsetOptions {
  /** Function indices to keep (in the new order); default all. */
  functions?: readonly number[];
  fromSlot?: number;
  /** Exclusive. */
  toSlot?: number;
}

/** A new trace with only some functions (re-indexed) and/or a range of slots. */
export function subsetTrace(trace: Trace, opts: SubsetOptions): Trace {
  const from = Math.max(0, opts.fromSlot ?? 0);
  const to = Math.min(trace.nSlots, opts.toSlot ?? trace.nSlots);
  const keep = opts.functions ?? trace.functions.map((f) => f.index);
  const remap = new Int32Array(trace.functions.length).fill(-1);
  keep.forEach((old, i) => {
    remap[old] = i;
  });
  const b = new EntryBuilder();
  const totals = new Float64Array(keep.length);
  const nSlots = Math.max(0, to - from);
  for (let s = from; s < to; s++) {
    for (let e = trace.slotStart[s]!; e < trace.slotStart[s + 1]!; e++) {
      const nf = remap[trace.entryFn[e]!]!;
      if (nf < 0) continue;
      const c = trace.entryCount[e]!;
      b.push(s - from, nf, c);
      totals[nf]! += c;
    }
  }
  const functions: TraceFunction[] = keep.map((old, i) => ({ ...trace.functions[old]!, index: i, total: totals[i]! }));
  const x = trace.exact;
  return {
    ...(x ? { exact: keepExact(x, trace.slotMs, nSlots, from, (fn) => remap[fn]!) } : {}),
    format: trace.format,
    source: trace.source,
    slotLabels: trace.slotLabels?.slice(from, to),
    slotMs: trace.slotMs,
    nSlots,
    functions,
    ...b.toCsr(nSlots),
  };
}

/**
 * Keep each invocation with probability `fraction` (seeded binomial thinning of
 * every per-slot count): the same arrival process at a lower rate, for nodes that
 * cannot take a trace's full load. Deterministic for a seed.
 */
export function thinTrace(trace: Trace, fraction: number, seed = 1): Trace {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`sample fraction must be in (0, 1] (got ${fraction})`);
  if (fraction === 1) return trace;
  const rng = createRng(seed);
  const b = new EntryBuilder();
  const totals = new Float64Array(trace.functions.length);
  for (let s = 0; s < trace.nSlots; s++) {
    for (let e = trace.slotStart[s]!; e < trace.slotStart[s + 1]!; e++) {
      let kept = 0;
      for (let k = trace.entryCount[e]!; k > 0; k--) if (rng.next() < fraction) kept++;
      if (kept === 0) continue;
      const fn = trace.entryFn[e]!;
      b.push(s, fn, kept);
      totals[fn]! += kept;
    }
  }
  const csr = b.toCsr(trace.nSlots);
  // exact arrivals: keep as many of each slot's arrivals of a function as the thinned count says, the first ones
  let exact: ExactArrivals | undefined;
  if (trace.exact) {
    const left = new Map<number, number>();
    for (let s = 0; s < trace.nSlots; s++) for (let e = csr.slotStart[s]!; e < csr.slotStart[s + 1]!; e++) left.set(s * trace.functions.length + csr.entryFn[e]!, csr.entryCount[e]!);
    exact = keepExact(trace.exact, trace.slotMs, trace.nSlots, 0, (fn, slot) => {
      const k = slot * trace.functions.length + fn;
      const n = left.get(k) ?? 0;
      if (n <= 0) return -1;
      left.set(k, n - 1);
      return fn;
    });
  }
  return {
    ...trace,
    exact,
    functions: trace.functions.map((f, i) => ({ ...f, total: totals[i]! })),
    ...csr,
  };
}

/** The exact arrivals of slots [from, from + nSlots) whose function `map` keeps (-1: dropped), renumbered and shifted to start at 0. */
function keepExact(x: ExactArrivals, slotMs: number, nSlots: number, from: number, map: (fn: number, slot: number) => number): ExactArrivals {
  const times: number[] = [];
  const fns: number[] = [];
  const slotStart = new Uint32Array(nSlots + 1);
  for (let s = 0; s < nSlots; s++) {
    slotStart[s] = times.length;
    const src = s + from;
    if (src + 1 >= x.slotStart.length) continue;
    for (let i = x.slotStart[src]!; i < x.slotStart[src + 1]!; i++) {
      const fn = map(x.fns[i]!, src);
      if (fn < 0) continue;
      times.push(x.times[i]! - from * slotMs);
      fns.push(fn);
    }
  }
  slotStart[nSlots] = times.length;
  return { times: Float64Array.from(times), fns: Uint32Array.from(fns), slotStart };
}
