// Vega-Lite specifications of the project's plots. Pure functions of the data:
// rendering (SVG, PNG) is in render.ts, reading result files in cli.ts.

import type { TopLevelSpec } from 'vega-lite';

/** The same colour for a start path (or policy) in every plot. */
export const PATH_COLORS = { domain: ['cold', 'restore', 'warm', 'error'], range: ['#d62728', '#ff7f0e', '#2ca02c', '#7f7f7f'] };
export const POLICY_COLORS = { domain: ['fixed', 'greedy-dual', 'hybrid-histogram', 'none'], range: ['#1f77b4', '#d62728', '#2ca02c', '#7f7f7f'] };

const CONFIG = { font: 'DejaVu Sans', background: 'white', view: { stroke: '#ccc' }, axis: { labelFontSize: 11, titleFontSize: 12 }, title: { fontSize: 14 } };

export interface PolicyPoint {
  policy: string;
  /** Infinity: no memory budget ("unlimited") */
  memoryGiB: number;
  coldStartFraction: number;
  /** e.g. no-snapshots / snapshots */
  variant?: string;
}

/**
 * A percentage axis for fractions from 0.001 % to 100 %: two significant digits (".2~p"), so
 * 0.04 % reads "0.04%" instead of the "0%" a fixed number of decimals gives (issue 20).
 */
const PERCENT_AXIS = { format: '.2~p' };

/** The label of a memory budget on a categorical axis ("unlimited" last). */
const memoryLabel = (gib: number): string => (Number.isFinite(gib) ? String(gib) : 'unlimited');

/**
 * Cold-start fraction vs memory budget, one line per policy (log-log: small fractions matter).
 * An unlimited budget has no place on a log axis: it is in the title's note and in the bars.
 */
export function coldStartVsMemorySpec(pointsIn: PolicyPoint[], title: string): TopLevelSpec {
  const points = pointsIn.filter((p) => Number.isFinite(p.memoryGiB));
  const unlimited = pointsIn.filter((p) => !Number.isFinite(p.memoryGiB));
  if (unlimited.length > 0) title = `${title} (unlimited: ${unlimited.map((p) => `${p.policy} ${(100 * p.coldStartFraction).toPrecision(2)} %`).join(', ')})`;
  const positive = points.map((p) => p.coldStartFraction).filter((y) => y > 0);
  // zero (never cold) cannot sit on a log axis: it is drawn on the floor, a decade below the smallest value
  const floor = 10 ** Math.floor(Math.log10(Math.min(0.01, ...positive)));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 520,
    height: 340,
    config: CONFIG,
    data: { values: points.map((p) => ({ ...p, plotted: Math.max(floor, p.coldStartFraction) })) },
    encoding: {
      x: { field: 'memoryGiB', type: 'quantitative', title: 'memory budget (GiB, log scale)', scale: { type: 'log', base: 2 }, axis: { values: [...new Set(points.map((p) => p.memoryGiB))] } },
      y: { field: 'plotted', type: 'quantitative', title: 'cold-start fraction (log scale)', scale: { type: 'log', domainMin: floor }, axis: PERCENT_AXIS },
      color: { field: 'policy', type: 'nominal', title: 'keep-alive policy', scale: POLICY_COLORS },
      tooltip: [{ field: 'policy' }, { field: 'memoryGiB', title: 'GiB' }, { field: 'coldStartFraction', format: '.2%', title: 'cold starts' }],
    },
    layer: [{ mark: { type: 'line', strokeWidth: 2 } }, { mark: { type: 'point', filled: true, size: 50 } }],
  };
}

/** Cold-start fraction per policy at each memory budget (unlimited included), as grouped bars (one panel per variant). */
export function coldStartsPerPolicySpec(points: PolicyPoint[], title: string): TopLevelSpec {
  const variants = [...new Set(points.map((p) => p.variant ?? 'all'))];
  const budgets = [...new Set(points.map((p) => p.memoryGiB))].sort((a, b) => a - b).map(memoryLabel);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    config: CONFIG,
    data: { values: points.map((p) => ({ ...p, memoryGiB: memoryLabel(p.memoryGiB), variant: p.variant ?? 'all' })) },
    facet: { row: { field: 'variant', type: 'nominal', title: null, sort: variants } },
    spec: {
      width: 520,
      height: 180,
      mark: 'bar',
      encoding: {
        x: { field: 'memoryGiB', type: 'ordinal', title: 'memory budget (GiB)', sort: budgets },
        xOffset: { field: 'policy', type: 'nominal' },
        y: { field: 'coldStartFraction', type: 'quantitative', title: 'cold-start fraction', axis: PERCENT_AXIS },
        color: { field: 'policy', type: 'nominal', title: 'keep-alive policy', scale: POLICY_COLORS },
        tooltip: [{ field: 'policy' }, { field: 'memoryGiB', title: 'GiB' }, { field: 'coldStartFraction', format: '.2%', title: 'cold starts' }],
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

export interface LatencyPoint {
  /** cold | restore | warm | error */
  startPath: string;
  latencyMs: number;
  /** the run it came from, when several are plotted together */
  run?: string;
}

/** Below this many samples of a start path its CDF also draws each sample as a point (a step line alone hides them). */
export const FEW_SAMPLES = 50;

/** Empirical CDF of the latency per start path (log x axis: ms to seconds); one panel per run when there are several. */
export function latencyCdfSpec(points: LatencyPoint[], title: string): TopLevelSpec {
  const runs = new Set(points.map((p) => p.run ?? ''));
  const data = { values: points.filter((p) => p.latencyMs > 0).map((p) => ({ ...p, run: p.run ?? '' })) };
  const transform = [
    { sort: [{ field: 'latencyMs' }], window: [{ op: 'cume_dist' as const, as: 'cdf' }], groupby: ['startPath', 'run'] },
    { joinaggregate: [{ op: 'count' as const, as: 'n' }], groupby: ['startPath', 'run'] },
    { calculate: "datum.startPath + ' (n=' + datum.n + ')'", as: 'label' },
  ];
  const line = { mark: { type: 'line' as const, interpolate: 'step-after' as const, strokeWidth: 2 } };
  // a start path with few samples: each sample is a point, so 2 samples read as 2 points at 50 % and 100 %
  const samples = { transform: [{ filter: `datum.n < ${FEW_SAMPLES}` }], mark: { type: 'point' as const, filled: true, size: 40 } };
  const layer = [line, samples];
  const encoding = {
    x: { field: 'latencyMs', type: 'quantitative' as const, title: 'latency (ms, log scale)', scale: { type: 'log' as const } },
    y: { field: 'cdf', type: 'quantitative' as const, title: 'fraction of requests ≤ latency', axis: { format: '.0%' }, scale: { domain: [0, 1] } },
    color: { field: 'startPath', type: 'nominal' as const, title: 'start path', scale: PATH_COLORS },
    detail: { field: 'label', type: 'nominal' as const },
    tooltip: [{ field: 'label', title: 'start path' }, { field: 'latencyMs', title: 'ms', format: '.1f' }, { field: 'cdf', format: '.1%' }],
  };
  const head = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, config: CONFIG, data };
  if (runs.size <= 1) return { ...head, width: 520, height: 300, transform, encoding, layer };
  return { ...head, facet: { column: { field: 'run', type: 'nominal', title: null } }, spec: { width: 300, height: 260, transform, encoding, layer } };
}

export interface MixPoint {
  /** seconds since the replay started */
  t: number;
  startPath: string;
}

/** Requests per time bin, stacked by start path. */
export function startPathMixSpec(points: MixPoint[], title: string, binSeconds: number): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 560,
    height: 260,
    config: CONFIG,
    data: { values: points },
    mark: { type: 'bar', binSpacing: 0 },
    encoding: {
      x: { field: 't', type: 'quantitative', title: `time since start (s, ${binSeconds} s bins)`, bin: { step: binSeconds } },
      y: { aggregate: 'count', type: 'quantitative', title: 'requests', stack: 'zero' },
      color: { field: 'startPath', type: 'nominal', title: 'start path', scale: PATH_COLORS },
      order: { field: 'startPath', sort: 'ascending' },
      tooltip: [{ field: 'startPath' }, { aggregate: 'count', title: 'requests' }],
    },
  };
}
