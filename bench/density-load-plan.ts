// The load of `faascell bench density-load` (issue 24 item 5), as pure functions: no I/O, no daemon.
//
// Many small FunctionBench-style functions (helloworld at 128 MiB, a light pyaes at 256 MiB, alternating), each
// invoked at a low rate with a skewed popularity (Zipf-like: the r-th function gets weight r^-skew, every one at
// least once), arrivals drawn once (seeded) and kept exact, so the real replay and the simulation see the same
// instants. The same load is written as a FaaSRail request spec (per-minute counts: deploy-spec reads it) and as
// a trace with exact arrivals (replay and the simulator read it).
import { createRng } from '../src/policies/rng.js';
import { codeOf } from './load-lib.js';
import type { ReplayRecord } from '../src/replay/replay.js';
import type { Trace, TraceFunction } from '../src/traces/types.js';
import { EntryBuilder } from '../src/traces/types.js';

export interface DensityLoadOptions {
  functions: number;
  /** requests over the whole load (before the at-least-one rule) */
  requests: number;
  seconds: number;
  /** popularity: weight of the r-th function r^-skew (0: all alike) */
  skew: number;
  seed: number;
}

export interface LoadRow {
  /** the spec's workload ("helloworld-…", "pyaes-…"): deploy-spec picks the function by its benchmark */
  workload: string;
  benchmark: 'helloworld' | 'pyaes';
  payload: Record<string, unknown>;
  memoryMiB: number;
  /** the run time the spec states (its `avg` column, ms): the simulator's run time of the row */
  avgMs: number;
  /** arrival times, ms from the load's start, sorted */
  arrivalsMs: number[];
}

/** The two kinds of function, alternating by row: sizes 128 and 256 MiB (the brief's "hello/light"). */
const KINDS = [
  { workload: 'helloworld-44136fa355b36', benchmark: 'helloworld', payload: {}, memoryMiB: 128, avgMs: 5 },
  { workload: 'pyaes-6065425fe65f28f182', benchmark: 'pyaes', payload: { message_length: 64, num_iterations: 2 }, memoryMiB: 256, avgMs: 40 },
] as const;

/** deploy-spec's memory per benchmark for this load (`--memory-for`) */
export const MEMORY_FOR: Record<string, number> = Object.fromEntries(KINDS.map((k) => [k.benchmark, k.memoryMiB]));

export function planDensityLoad(o: DensityLoadOptions): LoadRow[] {
  if (!(o.functions >= 1 && o.requests >= 0 && o.seconds >= 1 && o.skew >= 0)) throw new Error('density-load: functions ≥ 1, requests ≥ 0, seconds ≥ 1, skew ≥ 0');
  const rng = createRng(o.seed);
  const weights = Array.from({ length: o.functions }, (_, i) => (i + 1) ** -o.skew);
  const sum = weights.reduce((a, b) => a + b, 0);
  const spanMs = o.seconds * 1000;
  return weights.map((w, i) => {
    const k = KINDS[i % KINDS.length]!;
    const n = Math.max(1, Math.round((o.requests * w) / sum));
    const arrivalsMs = Array.from({ length: n }, () => Math.floor(rng.next() * spanMs)).sort((a, b) => a - b);
    return { workload: k.workload, benchmark: k.benchmark, payload: { ...k.payload }, memoryMiB: k.memoryMiB, avgMs: k.avgMs, arrivalsMs };
  });
}

const csvQuote = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** The load as a FaaSRail request spec: avg, mapped_wreq, then one column of counts per minute. */
export function faasrailSpecText(rows: readonly LoadRow[], seconds: number): string {
  const minutes = Math.ceil(seconds / 60);
  const head = ['avg', 'mapped_wreq', ...Array.from({ length: minutes }, (_, m) => String(m + 1))].join(',');
  const lines = rows.map((r) => {
    const counts = new Array<number>(minutes).fill(0);
    for (const t of r.arrivalsMs) counts[Math.floor(t / 60_000)]!++;
    const wreq = JSON.stringify({ mean: r.avgMs, bench: r.workload, payload: JSON.stringify(r.payload) });
    return [r.avgMs.toFixed(1), csvQuote(wreq), ...counts].join(',');
  });
  return [head, ...lines].join('\n') + '\n';
}

/**
 * The spec's trace (as loadTrace reads the spec: names, requests) with each function's memory set and the
 * load's exact arrivals, shifted by `offsetMs`; with `prepMs`, every function is first invoked once, evenly
 * over [0, prepMs) — what the real bench's preparation does before its load (the simulator has no other way
 * to start with every snapshot made).
 */
export function exactTrace(spec: Trace, rows: readonly LoadRow[], opts: { offsetMs?: number; prepMs?: number } = {}): Trace {
  if (spec.functions.length !== rows.length) throw new Error(`the spec has ${spec.functions.length} functions, the load ${rows.length}`);
  const offset = opts.offsetMs ?? 0;
  const arrivals: Array<{ t: number; fn: number }> = [];
  if (opts.prepMs !== undefined) rows.forEach((_, fn) => arrivals.push({ t: Math.floor((fn * opts.prepMs!) / rows.length), fn }));
  rows.forEach((r, fn) => r.arrivalsMs.forEach((t) => arrivals.push({ t: t + offset, fn })));
  // stable: ties stay in function order
  arrivals.sort((a, b) => a.t - b.t || a.fn - b.fn);
  const slotMs = 60_000;
  const nSlots = Math.max(1, Math.ceil(((arrivals.at(-1)?.t ?? 0) + 1) / slotMs));
  const exactStart = new Uint32Array(nSlots + 1);
  for (const a of arrivals) exactStart[Math.floor(a.t / slotMs) + 1]!++;
  for (let s = 0; s < nSlots; s++) exactStart[s + 1]! += exactStart[s]!;
  const b = new EntryBuilder();
  const totals = new Array<number>(rows.length).fill(0);
  for (let s = 0; s < nSlots; s++) {
    const per = new Map<number, number>();
    for (let i = exactStart[s]!; i < exactStart[s + 1]!; i++) per.set(arrivals[i]!.fn, (per.get(arrivals[i]!.fn) ?? 0) + 1);
    for (const [fn, c] of [...per].sort((x, y) => x[0] - y[0])) {
      b.push(s, fn, c);
      totals[fn]! += c;
    }
  }
  const csr = b.toCsr(nSlots);
  const functions: TraceFunction[] = spec.functions.map((f, i) => ({ ...f, memoryMiB: rows[i]!.memoryMiB, avgDurationMs: rows[i]!.avgMs, total: totals[i]! }));
  return {
    format: spec.format,
    source: spec.source,
    slotMs,
    nSlots,
    functions,
    totalInvocations: arrivals.length,
    slotStart: csr.slotStart,
    entryFn: csr.entryFn,
    entryCount: csr.entryCount,
    exact: { times: Float64Array.from(arrivals, (a) => a.t), fns: Uint32Array.from(arrivals, (a) => a.fn), slotStart: exactStart },
  };
}

const quantile = (sorted: number[], p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN);

/** What one phase (real or simulated) did with the load's requests. */
export interface LoadOutcome {
  offered: number;
  served: number;
  warm: number;
  restore: number;
  cold: number;
  /** refused by the node (429/503, or the simulator's rejections), by code */
  refused: Record<string, number>;
  /** answered with another error, or not at all (status 0) */
  failed: number;
  /** served ÷ offered */
  goodput: number;
  /** served requests' latency (client side; simulated: arrival to the end of the run) */
  p50Ms: number;
  p99Ms: number;
}

/** A phase's outcome from the replay's records (one per offered request). */
export function outcomeOfRecords(records: readonly ReplayRecord[]): LoadOutcome {
  const o: LoadOutcome = { offered: records.length, served: 0, warm: 0, restore: 0, cold: 0, refused: {}, failed: 0, goodput: 0, p50Ms: NaN, p99Ms: NaN };
  const lat: number[] = [];
  for (const r of records) {
    if (r.status === 200) {
      o.served++;
      if (r.startPath === 'warm' || r.startPath === 'restore' || r.startPath === 'cold') o[r.startPath]++;
      if (r.latencyMs !== null) lat.push(r.latencyMs);
    } else if (r.status === 429 || r.status === 503) {
      const code = codeOf(r) || String(r.status);
      o.refused[code] = (o.refused[code] ?? 0) + 1;
    } else o.failed++;
  }
  return finish(o, lat);
}

function finish(o: LoadOutcome, lat: number[]): LoadOutcome {
  lat.sort((a, b) => a - b);
  return { ...o, goodput: o.offered ? o.served / o.offered : NaN, p50Ms: quantile(lat, 50), p99Ms: quantile(lat, 99) };
}

/**
 * Collects a simulation's outcome for the arrivals from index `from` on (the simulator numbers requests in
 * arrival order from 1: request k is arrival k − 1; the preparation's come first), through its hooks.
 */
export class SimOutcome {
  private readonly arrival: Float64Array;
  private readonly path = new Map<number, 'warm' | 'restore' | 'cold'>();
  private readonly refused: Record<string, number> = {};
  private readonly lat: number[] = [];

  constructor(
    trace: Trace,
    private readonly from: number,
  ) {
    if (!trace.exact) throw new Error('SimOutcome needs exact arrivals');
    this.arrival = trace.exact.times;
  }

  readonly hooks = {
    onAssign: (req: number, fresh: boolean, path: 'cold' | 'restore'): void => {
      if (req > this.from) this.path.set(req, fresh ? path : 'warm');
    },
    onDone: (req: number, now: number): void => {
      if (req > this.from) this.lat.push(now - this.arrival[req - 1]!);
    },
    onReject: (req: number, reason: string): void => {
      if (req > this.from) this.refused[reason] = (this.refused[reason] ?? 0) + 1;
    },
  };

  outcome(): LoadOutcome {
    const o: LoadOutcome = { offered: this.arrival.length - this.from, served: this.lat.length, warm: 0, restore: 0, cold: 0, refused: { ...this.refused }, failed: 0, goodput: 0, p50Ms: NaN, p99Ms: NaN };
    for (const p of this.path.values()) o[p]++;
    // assigned but not finished when the simulation ended
    o.failed = this.path.size - this.lat.length;
    return finish(o, [...this.lat]);
  }
}
