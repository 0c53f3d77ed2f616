// How long the FunctionBench-style functions run here, in real VMs, against the
// `mean` FaaSRail measured for each workload (on its authors' machines, with the
// Python originals). One function per benchmark in a private daemon (snapshots
// off, so after the first call every run is warm); for each benchmark up to
// --per-bench distinct workloads of the spec, from the cheapest to the dearest;
// each payload is run once to warm up, then --runs times; the guest-measured run
// time (runMs) is reported.
//
//   npx tsx bench/functionbench.ts --spec SPEC.csv [--per-bench 3] [--runs 3] [--all-benches] [--out bench/results]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchmarkFile, BENCHMARKS } from '../src/functionbench/catalog.js';
import { loadTrace } from '../src/traces/index.js';
import { benchDaemon, machine, ms, summarize, table, type Summary } from './common.js';

export interface WorkloadRun {
  benchmark: string;
  workload: string;
  payload: Record<string, unknown>;
  /** FaaSRail's measured mean (ms), when the spec has it */
  faasrailMeanMs?: number;
  /** invocations of this workload in the spec */
  specInvocations: number;
  run: Summary;
  /** first call of the benchmark's function: client-side latency of the cold start */
  coldMs?: number;
  errors: string[];
}

/** Payloads for benchmarks a spec does not name (--all-benches). */
const DEFAULT_PAYLOADS: Record<string, Record<string, unknown>> = {
  helloworld: {},
  cnn_serving: { img_idx: 0 },
  lr_serving: { x: 'The food was good.', model_object_key: 'lr_model_reviews10mb.pk' },
};

function pick<T>(xs: T[], k: number): T[] {
  if (xs.length <= k) return xs;
  if (k === 1) return [xs[Math.floor(xs.length / 2)]!];
  return Array.from({ length: k }, (_, i) => xs[Math.round((i * (xs.length - 1)) / (k - 1))]!);
}

const shortPayload = (p: Record<string, unknown>): string => {
  const { minio_address: _a, bucket_name: _b, model_parameter_object_key: _c, tfidf_vect_object_key: _d, ...rest } = p;
  const s = JSON.stringify(rest);
  return s.length > 60 ? s.slice(0, 57) + '…' : s;
};

export async function benchFunctionbench(o: { spec: string; perBench: number; runs: number; allBenches: boolean; log?: (s: string) => void }): Promise<{ machine: Record<string, string | number>; runs: WorkloadRun[] }> {
  const log = o.log ?? ((s: string) => console.error(s));
  const trace = await loadTrace(o.spec, 'faasrail');
  // distinct workloads per benchmark, with their spec invocations
  const byBench = new Map<string, Map<string, { payload: Record<string, unknown>; mean?: number; n: number }>>();
  for (const f of trace.functions) {
    if (!f.benchmark) continue;
    const m = byBench.get(f.benchmark) ?? new Map();
    byBench.set(f.benchmark, m);
    const w = m.get(f.workload!) ?? { payload: f.request as Record<string, unknown>, mean: f.avgDurationMs, n: 0 };
    w.n += f.total;
    m.set(f.workload!, w);
  }
  if (o.allBenches) for (const [b, p] of Object.entries(DEFAULT_PAYLOADS)) if (!byBench.has(b)) byBench.set(b, new Map([[`${b} (default payload)`, { payload: p, n: 0 }]]));
  const b = await benchDaemon({ snapshots: { enabled: false }, functionLimits: { maxMemoryMiB: 4096, maxTimeoutMs: 15 * 60_000 } });
  const out: WorkloadRun[] = [];
  try {
    for (const [bench, workloads] of byBench) {
      const entry = BENCHMARKS.get(bench)!;
      const name = `fb-${bench}`;
      await b.client.deploy(name, readFileSync(benchmarkFile(entry)), { codeKind: 'js', entry: entry.entry, memoryMiB: entry.memoryMiB, timeoutMs: entry.timeoutMs, maxInstances: 1 });
      const chosen = pick([...workloads].sort((x, y) => (x[1].mean ?? 0) - (y[1].mean ?? 0)), o.perBench);
      let first = true;
      for (const [workload, w] of chosen) {
        const r: WorkloadRun = { benchmark: bench, workload, payload: w.payload, faasrailMeanMs: w.mean, specInvocations: w.n, run: summarize([]), errors: [] };
        const samples: number[] = [];
        for (let i = 0; i <= o.runs; i++) {
          const t0 = performance.now();
          const res = await b.client.invoke(name, w.payload);
          const latency = performance.now() - t0;
          if (res.status !== 200) {
            r.errors.push(`${res.status}: ${res.body.error?.message ?? ''}`.slice(0, 200));
            continue;
          }
          if (first) {
            r.coldMs = latency;
            first = false;
          }
          if (i > 0 && res.body.activation?.runMs !== undefined) samples.push(res.body.activation.runMs);
        }
        r.run = summarize(samples);
        out.push(r);
        log(`${bench} ${shortPayload(w.payload)}: FaaSRail ${w.mean ?? '-'} ms, here ${ms(r.run.median)} (${r.errors.length} errors)`);
      }
    }
  } finally {
    await b.close();
  }
  return { machine: machine(), runs: out };
}

export function formatFunctionbench(r: { machine: Record<string, string | number>; runs: WorkloadRun[] }): string {
  const rows = r.runs.map((w) => [
    w.benchmark,
    '`' + shortPayload(w.payload) + '`',
    w.specInvocations,
    w.faasrailMeanMs === undefined ? '-' : ms(w.faasrailMeanMs),
    ms(w.run.median),
    ms(w.run.p99),
    w.faasrailMeanMs ? `${(w.run.median / w.faasrailMeanMs).toFixed(2)}×` : '-',
    w.coldMs === undefined ? '' : ms(w.coldMs),
    w.errors.length ? w.errors.join('; ') : '',
  ]);
  return [
    `machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    table(['benchmark', 'payload', 'spec invocations', 'FaaSRail mean', 'here: run median', 'run p99', 'here / mean', 'cold start (client)', 'errors'], rows),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const get = (k: string): string | undefined => {
    const i = args.indexOf(`--${k}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const spec = get('spec');
  if (!spec) throw new Error('usage: bench/functionbench.ts --spec SPEC.csv [--per-bench 3] [--runs 3] [--all-benches] [--out bench/results]');
  const r = await benchFunctionbench({ spec, perBench: Number(get('per-bench') ?? 3), runs: Number(get('runs') ?? 3), allBenches: args.includes('--all-benches') });
  const text = formatFunctionbench(r);
  console.log(text);
  const dir = get('out') ?? 'bench/results';
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `functionbench-${stamp}.json`), JSON.stringify(r, null, 2));
  writeFileSync(path.join(dir, `functionbench-${stamp}.md`), text + '\n');
  console.error(`results in ${dir}/functionbench-${stamp}.{json,md}`);
}
