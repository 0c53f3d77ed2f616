// The repetitions of `faascell bench density-load` summed up (issue 24 item 5), as pure functions: per
// accounting, each figure's median and spread (lowest–highest) over the repetitions, the simulator's
// prediction beside it. No I/O.
import type { LoadOutcome } from './density-load-plan.js';

/** The figures of one phase (a real repetition or a simulation) the summary compares. */
export interface PhaseFigures {
  cold: number;
  restore: number;
  warm: number;
  /** served ÷ offered */
  goodput: number;
  p50Ms: number;
  p99Ms: number;
  /** refused requests (429/503, the simulator's rejections), all codes */
  refused: number;
  /** answered with another error or not at all */
  failed: number;
  peakChargedMiB: number;
  /** NaN where not known (the simulator reports no PSS) */
  peakMeasuredMiB: number;
  peakNominalMiB: number;
  peakVMs: number;
  evictions: number;
  /** the guard's highest level (0 ok … 3 stop) */
  guardLevel: number;
}

export const FIGURES = ['cold', 'restore', 'warm', 'goodput', 'p50Ms', 'p99Ms', 'refused', 'failed', 'peakChargedMiB', 'peakMeasuredMiB', 'peakNominalMiB', 'peakVMs', 'evictions', 'guardLevel'] as const satisfies ReadonlyArray<keyof PhaseFigures>;

/** The figures a load outcome gives; the rest from the phase's own peaks (NaN when it has none). */
export function figuresOf(o: LoadOutcome, peaks: Partial<Omit<PhaseFigures, keyof LoadOutcome | 'refused'>>): PhaseFigures {
  return {
    cold: o.cold,
    restore: o.restore,
    warm: o.warm,
    goodput: o.goodput,
    p50Ms: o.p50Ms,
    p99Ms: o.p99Ms,
    refused: Object.values(o.refused).reduce((s, x) => s + x, 0),
    failed: o.failed,
    peakChargedMiB: peaks.peakChargedMiB ?? NaN,
    peakMeasuredMiB: peaks.peakMeasuredMiB ?? NaN,
    peakNominalMiB: peaks.peakNominalMiB ?? NaN,
    peakVMs: peaks.peakVMs ?? NaN,
    evictions: peaks.evictions ?? NaN,
    guardLevel: peaks.guardLevel ?? NaN,
  };
}

/** One figure over the repetitions: median (mean of the two middle ones for an even count), lowest, highest. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** repetitions with a value (NaN ones left out) */
  n: number;
}

export function spreadOf(values: readonly number[]): Spread {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = v.length >> 1;
  return { median: v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2, min: v[0]!, max: v.at(-1)!, n: v.length };
}

export type FiguresSpread = Record<(typeof FIGURES)[number], Spread>;

export function summarizeRepetitions(reps: readonly PhaseFigures[]): FiguresSpread {
  return Object.fromEntries(FIGURES.map((k) => [k, spreadOf(reps.map((r) => r[k]))])) as FiguresSpread;
}

/**
 * Whether a prediction lies within the repetitions' spread (lowest–highest), or how far outside it, as a
 * fraction of the median (0 inside; NaN when either is unknown).
 */
export function outsideSpread(s: Spread, predicted: number): number {
  if (!Number.isFinite(predicted) || s.n === 0) return NaN;
  const off = predicted < s.min ? s.min - predicted : predicted > s.max ? predicted - s.max : 0;
  return off === 0 ? 0 : off / Math.max(Math.abs(s.median), 1);
}

/** `median (lowest–highest)`; a single value when the spread is none. */
export function spreadCell(s: Spread, fmt: (x: number) => string): string {
  if (s.n === 0) return '-';
  return s.min === s.max ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}
