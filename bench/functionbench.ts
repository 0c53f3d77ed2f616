// How long the FunctionBench-style functions run here, in real VMs, against the
// `mean` FaaSRail measured for each workload (on its authors' machines, with the
// Python originals). One function per benchmark in a private daemon (snapshots
// off, so after the first call every run is warm); for each benchmark up to
// --per-bench distinct workloads of the spec, from the cheapest to the dearest;
// each payload is run once to warm up, then --runs times; the guest-measured run
// time (runMs) is reported. --languages javascript,python (issue 21) runs the
// JavaScript and the Python function of each benchmark side by side in the same
// daemon, interleaved run by run.
//
//   npx tsx bench/functionbench.ts --spec SPEC.csv [--per-bench 3] [--runs 3] [--all-benches] [--languages javascript,python] [--benches a,b] [--out bench/results]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchmarkIn, BENCHMARKS, type BenchLanguage } from '../src/functionbench/catalog.js';
import { loadTrace } from '../src/traces/index.js';
import { benchDaemon, machine, ms, summarize, table, type Summary } from './common.js';

export interface WorkloadRun {
  benchmark: string;
  /** issue 21: the function's language (absent in runs before it: javascript) */
  language?: BenchLanguage;
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

/**
 * One invocation without a client-side deadline: the daemon answers by the function's own timeout (up to
 * 15 min), while fetch (undici) gives up on response headers after 300 s — lr_training in Python under TCG
 * runs longer than that.
 */
function invokeLong(url: string, fn: string, params: unknown): Promise<{ status: number; body: { error?: { message?: string }; activation?: { runMs?: number } } }> {
  const data = JSON.stringify(params);
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/functions/${encodeURIComponent(fn)}/invoke`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as never }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

export async function benchFunctionbench(o: {
  spec: string;
  perBench: number;
  runs: number;
  allBenches: boolean;
  languages?: BenchLanguage[];
  /** only these benchmarks (to finish an interrupted run) */
  benches?: string[];
  /** called with the runs so far after each workload (a long run keeps what it measured) */
  progress?: (runs: WorkloadRun[]) => void;
  log?: (s: string) => void;
}): Promise<{ machine: Record<string, string | number>; runs: WorkloadRun[] }> {
  const languages = o.languages ?? ['javascript'];
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
  if (o.benches) for (const k of [...byBench.keys()]) if (!o.benches.includes(k)) byBench.delete(k);
  const b = await benchDaemon({ snapshots: { enabled: false }, functionLimits: { maxMemoryMiB: 4096, maxTimeoutMs: 15 * 60_000 }, ...(languages.includes('python') ? { image: { python: 'build' } } : {}) });
  const out: WorkloadRun[] = [];
  try {
    for (const [bench, workloads] of byBench) {
      const entry = BENCHMARKS.get(bench)!;
      const name = (lang: BenchLanguage): string => `fb-${lang === 'python' ? 'py-' : ''}${bench}`;
      for (const lang of languages) {
        const l = benchmarkIn(entry, lang);
        await b.client.deploy(name(lang), readFileSync(l.path), { runtime: lang === 'python' ? 'python3' : 'nodejs20', entry: l.entry, memoryMiB: l.memoryMiB, timeoutMs: l.timeoutMs, maxInstances: 1 });
      }
      const chosen = pick([...workloads].sort((x, y) => (x[1].mean ?? 0) - (y[1].mean ?? 0)), o.perBench);
      const first = new Set<BenchLanguage>(languages);
      for (const [workload, w] of chosen) {
        const runOf = (lang: BenchLanguage): WorkloadRun => ({ benchmark: bench, language: lang, workload, payload: w.payload, faasrailMeanMs: w.mean, specInvocations: w.n, run: summarize([]), errors: [] });
        const runs = new Map(languages.map((lang) => [lang, { r: runOf(lang), samples: [] as number[] }]));
        // the languages interleaved, run by run: side by side on the same (noisy) machine
        for (let i = 0; i <= o.runs; i++) {
          for (const [lang, x] of runs) {
            const t0 = performance.now();
            const res = await invokeLong(b.client.url, name(lang), w.payload);
            const latency = performance.now() - t0;
            if (res.status !== 200) {
              x.r.errors.push(`${res.status}: ${res.body.error?.message ?? ''}`.slice(0, 200));
              continue;
            }
            if (first.delete(lang)) x.r.coldMs = latency;
            if (i > 0 && res.body.activation?.runMs !== undefined) x.samples.push(res.body.activation.runMs);
          }
        }
        for (const [lang, x] of runs) {
          x.r.run = summarize(x.samples);
          out.push(x.r);
          log(`${bench} (${lang}) ${shortPayload(w.payload)}: FaaSRail ${w.mean ?? '-'} ms, here ${ms(x.r.run.median)} (${x.r.errors.length} errors${x.r.errors[0] ? `: ${x.r.errors[0]}` : ''})`);
        }
        o.progress?.(out);
      }
    }
  } finally {
    await b.close();
  }
  return { machine: machine(), runs: out };
}

export function formatFunctionbench(r: { machine: Record<string, string | number>; runs: WorkloadRun[] }): string {
  if (r.runs.some((w) => w.language === 'python')) return formatSideBySide(r);
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

/** issue 21: one row per workload, the JavaScript and the Python function's run times side by side. */
function formatSideBySide(r: { machine: Record<string, string | number>; runs: WorkloadRun[] }): string {
  const key = (w: WorkloadRun): string => `${w.benchmark}\0${w.workload}`;
  const rows = new Map<string, Partial<Record<BenchLanguage, WorkloadRun>>>();
  for (const w of r.runs) rows.set(key(w), { ...rows.get(key(w)), [w.language ?? 'javascript']: w });
  const cell = (w: WorkloadRun | undefined): string => (!w ? '–' : w.run.n === 0 ? `failed: ${w.errors[0] ?? ''}` : `${ms(w.run.median)} / ${ms(w.run.p99)}`);
  const ratio = (w: WorkloadRun | undefined): string => (w && w.run.n > 0 && w.faasrailMeanMs ? `${(w.run.median / w.faasrailMeanMs).toFixed(2)}×` : '-');
  const body = [...rows.values()].map((x) => {
    const any = (x.javascript ?? x.python)!;
    const cold = (w: WorkloadRun | undefined): string => (w?.coldMs === undefined ? '' : ms(w.coldMs));
    return [
      any.benchmark,
      '`' + shortPayload(any.payload) + '`',
      any.specInvocations,
      any.faasrailMeanMs === undefined ? '-' : ms(any.faasrailMeanMs),
      cell(x.javascript),
      cell(x.python),
      ratio(x.javascript),
      ratio(x.python),
      x.javascript?.coldMs === undefined && x.python?.coldMs === undefined ? '' : `${cold(x.javascript)} / ${cold(x.python)}`,
    ];
  });
  return [
    `machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    table(['benchmark', 'payload', 'spec invocations', 'FaaSRail mean', 'JavaScript: run median / p99', 'Python: run median / p99', 'JS / mean', 'Python / mean', 'cold start JS / Python (client)'], body),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const get = (k: string): string | undefined => {
    const i = args.indexOf(`--${k}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const spec = get('spec');
  if (!spec) throw new Error('usage: bench/functionbench.ts --spec SPEC.csv [--per-bench 3] [--runs 3] [--all-benches] [--languages javascript,python] [--benches a,b] [--out bench/results]');
  const languages = (get('languages') ?? 'javascript').split(',').map((l) => (l === 'python' || l === 'javascript' ? l : (() => { throw new Error(`--languages: javascript and/or python, got ${l}`); })()));
  const dir = get('out') ?? 'bench/results';
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const progress = (runs: WorkloadRun[]): void => writeFileSync(path.join(dir, `functionbench-${stamp}.partial.json`), JSON.stringify({ machine: machine(), runs }, null, 2));
  const r = await benchFunctionbench({ spec, perBench: Number(get('per-bench') ?? 3), runs: Number(get('runs') ?? 3), allBenches: args.includes('--all-benches'), languages, benches: get('benches')?.split(','), progress });
  const text = formatFunctionbench(r);
  console.log(text);
  writeFileSync(path.join(dir, `functionbench-${stamp}.json`), JSON.stringify(r, null, 2));
  writeFileSync(path.join(dir, `functionbench-${stamp}.md`), text + '\n');
  console.error(`results in ${dir}/functionbench-${stamp}.{json,md}`);
}
