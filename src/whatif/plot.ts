// The what-if as a Vega-Lite plot: the start-path mix (and refusals) of each row
// — what the node did, the simulation as configured, the alternatives — side by
// side, and their p99 latency.

import type { TopLevelSpec } from 'vega-lite';
import type { WhatIfResult } from './whatif.js';

export function whatIfSpec(r: WhatIfResult): TopLevelSpec {
  const rows = [r.actual, r.asConfigured, ...r.alternatives];
  const order = rows.map((x) => x.label);
  const mix = rows.flatMap((x) =>
    (
      [
        ['warm', x.warm],
        ['restore', x.restore],
        ['cold', x.cold],
        ['refused', x.refusedTotal],
      ] as const
    ).map(([path, n]) => ({ row: x.label, path, share: n / Math.max(1, x.invocations) })),
  );
  const lat = rows.map((x) => ({ row: x.label, p99: x.p99Ms, p50: x.p50Ms }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `What if: ${r.window.invocations} invocations, ${new Date(r.window.start).toISOString().slice(0, 16)} … ${new Date(r.window.end).toISOString().slice(11, 16)} UTC`,
    hconcat: [
      {
        data: { values: mix },
        mark: 'bar',
        width: 360,
        encoding: {
          y: { field: 'row', type: 'nominal', sort: order, title: null, axis: { labelLimit: 260 } },
          x: { field: 'share', type: 'quantitative', stack: 'normalize', axis: { format: '%' }, title: 'invocations' },
          color: { field: 'path', type: 'nominal', sort: ['warm', 'restore', 'cold', 'refused'], scale: { domain: ['warm', 'restore', 'cold', 'refused'], range: ['#2e7d32', '#1565c0', '#ef6c00', '#b71c1c'] }, title: 'start path' },
          order: { field: 'path', type: 'nominal' },
        },
      },
      {
        data: { values: lat },
        mark: 'bar',
        width: 200,
        encoding: {
          y: { field: 'row', type: 'nominal', sort: order, axis: null },
          x: { field: 'p99', type: 'quantitative', title: 'p99 latency (ms)' },
          color: { value: '#546e7a' },
        },
      },
    ],
  };
}
