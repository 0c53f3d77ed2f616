// A FaaSRail spec, read unchanged, simulated and replayed against a real node,
// per benchmark (docs/replay.md, "FaaSRail's spec on this node"):
//   npx tsx scripts/faasrail-experiment.ts --spec SPEC.csv [--compress 5] [--sample 1] [--seed 1]
//       [--runtimes bench/results/functionbench-*.json] [--profile bench/profiles/tcg-default.json]
//       [--memory-mib 8192] [--real] [--out bench/results/faasrail]
// 1. Loads the spec as FaaSRail wrote it; --sample < 1 keeps each invocation with that
//    probability (seeded), for a node that cannot take the spec's load.
// 2. Simulates it (the daemon's default policies, the same memory budget, the trace
//    time-compressed), with each workload's run time as measured here in real VMs
//    (bench/functionbench.ts results) or, for workloads not measured, FaaSRail's mean
//    times that benchmark's measured here/mean ratio.
// 3. --real: starts a private daemon, deploys the spec (deploy-spec), replays the same
//    arrivals (same seed and compression) and records every request.
// 4. Writes results.md / results.json: per benchmark invocations, start-path mix,
//    p50/p99 latency, simulated vs real cold starts.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { benchDaemon, machine } from '../bench/common.js';
import type { WorkloadRun } from '../bench/functionbench.js';
import { runDeploySpec } from '../src/cli/deploy-spec.js';
import { BENCHMARKS } from '../src/functionbench/catalog.js';
import { createPolicies } from '../src/policies/index.js';
import { replay, type ReplayRecord, type ReplaySummary } from '../src/replay/replay.js';
import { loadProfile, type Profile } from '../src/sim/profile.js';
import { simulate, type Decision, type SimulationResult } from '../src/sim/simulator.js';
import { ArrivalExpander, loadTrace, thinTrace, type Trace } from '../src/traces/index.js';
import { eachArg } from './args.js';

interface Args {
  spec: string;
  compress: number;
  sample: number;
  seed: number;
  runtimes?: string;
  profile: string;
  memoryMiB: number;
  real: boolean;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { spec: '', compress: 5, sample: 1, seed: 1, profile: 'bench/profiles/tcg-default.json', memoryMiB: 8192, real: false, out: 'bench/results/faasrail' };
  eachArg(argv, (k, v) => {
    if (k === '--spec') a.spec = v();
    else if (k === '--compress') a.compress = Number(v());
    else if (k === '--sample') a.sample = Number(v());
    else if (k === '--seed') a.seed = Number(v());
    else if (k === '--runtimes') a.runtimes = v();
    else if (k === '--profile') a.profile = v();
    else if (k === '--memory-mib') a.memoryMiB = Number(v());
    else if (k === '--real') a.real = true;
    else if (k === '--out') a.out = v();
    else throw new Error(`unknown option ${k}`);
  });
  if (!a.spec) throw new Error('usage: faasrail-experiment.ts --spec SPEC.csv [--compress 5] [--sample 1] [--seed 1] [--runtimes FILE] [--profile FILE] [--memory-mib 8192] [--real] [--out DIR]');
  return a;
}

/** Run time (ms) of every trace function here: measured per workload, else mean × the benchmark's ratio. */
export function runTimes(trace: Trace, measured: WorkloadRun[]): { runMs: number[]; source: string[] } {
  const byWorkload = new Map(measured.filter((m) => m.run.n > 0).map((m) => [m.workload, m.run.median]));
  const ratios = new Map<string, number[]>();
  for (const m of measured) if (m.run.n > 0 && m.faasrailMeanMs && m.faasrailMeanMs > 0) (ratios.get(m.benchmark) ?? ratios.set(m.benchmark, []).get(m.benchmark)!).push(m.run.median / m.faasrailMeanMs);
  const median = (xs: number[]): number => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)] ?? 1;
  const all = median([...ratios.values()].flat());
  const runMs: number[] = [];
  const source: string[] = [];
  for (const f of trace.functions) {
    const m = f.workload ? byWorkload.get(f.workload) : undefined;
    if (m !== undefined) {
      runMs.push(m);
      source.push('measured');
    } else {
      const r = f.benchmark && ratios.has(f.benchmark) ? median(ratios.get(f.benchmark)!) : all;
      runMs.push((f.avgDurationMs ?? 1000) * r);
      source.push('scaled');
    }
  }
  return { runMs, source };
}

interface Tally {
  rows: number;
  invocations: number;
  warm: number;
  restore: number;
  cold: number;
  failed: number;
  latencies: number[];
}
const tally = (): Tally => ({ rows: 0, invocations: 0, warm: 0, restore: 0, cold: 0, failed: 0, latencies: [] });
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
};

/** Per benchmark from the simulator's decisions (arrivals regenerated the way the simulator draws them). */
function simPerBench(trace: Trace, decisions: Decision[], runMs: number[], warmMs: number, timeScale: number, seed: number): Map<string, Tally> {
  const arrival: number[] = [];
  const x = new ArrivalExpander(trace, { spread: 'random', seed });
  for (let s = 0; s < trace.nSlots; s++) {
    const n = x.slot(s);
    for (let i = 0; i < n; i++) arrival.push(x.times[i]! * timeScale);
  }
  const fnIndex = new Map(trace.functions.map((f) => [f.name, f.index]));
  const startPath = new Map<number, 'cold' | 'restore'>();
  const out = new Map<string, Tally>();
  const of = (fn: string): Tally => {
    const b = trace.functions[fnIndex.get(fn)!]!.benchmark ?? '?';
    let t = out.get(b);
    if (!t) out.set(b, (t = tally()));
    return t;
  };
  for (const d of decisions) {
    if (d.kind === 'start') startPath.set(d.inst, d.path);
    else if (d.kind === 'assign') {
      const t = of(d.fn);
      const path = d.fresh ? (startPath.get(d.inst) ?? 'cold') : 'warm';
      t[path]++;
      t.latencies.push(d.t - arrival[d.req - 1]! /* the simulator numbers requests from 1 */ + (d.fresh ? 0 : warmMs) + runMs[fnIndex.get(d.fn)!]!);
    } else if (d.kind === 'reject') of(d.fn).failed++;
  }
  for (const f of trace.functions) {
    const t = out.get(f.benchmark ?? '?') ?? (out.set(f.benchmark ?? '?', tally()), out.get(f.benchmark ?? '?')!);
    t.rows++;
    t.invocations += f.total;
  }
  return out;
}

function realPerBench(trace: Trace, records: ReplayRecord[]): Map<string, Tally> {
  const bench = new Map(trace.functions.map((f) => [f.name, f.benchmark ?? '?']));
  const out = new Map<string, Tally>();
  for (const f of trace.functions) {
    const t = out.get(f.benchmark ?? '?') ?? (out.set(f.benchmark ?? '?', tally()), out.get(f.benchmark ?? '?')!);
    t.rows++;
    t.invocations += f.total;
  }
  for (const r of records) {
    const t = out.get(bench.get(r.function) ?? '?')!;
    if (r.status === 200 && r.startPath) {
      t[r.startPath as 'cold' | 'warm' | 'restore']++;
      if (r.latencyMs !== null) t.latencies.push(r.latencyMs);
    } else t.failed++;
  }
  return out;
}

const s1 = (ms: number): string => (Number.isFinite(ms) ? (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`) : '-');

function table(sim: Map<string, Tally>, real: Map<string, Tally> | undefined): string {
  const benches = [...sim.keys()].sort((a, b) => sim.get(b)!.invocations - sim.get(a)!.invocations);
  const mix = (t: Tally): string => `${t.warm} / ${t.restore} / ${t.cold} / ${t.failed}`;
  const head = real
    ? '| benchmark | rows | invocations | real: warm / restore / cold / failed | real p50 | real p99 | sim: warm / restore / cold / dropped | sim p50 | sim p99 | cold starts sim vs real |\n|---|---|---|---|---|---|---|---|---|---|'
    : '| benchmark | rows | invocations | sim: warm / restore / cold / dropped | sim p50 | sim p99 |\n|---|---|---|---|---|---|';
  const lines = benches.map((b) => {
    const s = sim.get(b)!;
    const r = real?.get(b);
    if (!r) return `| ${b} | ${s.rows} | ${s.invocations} | ${mix(s)} | ${s1(pct(s.latencies, 50))} | ${s1(pct(s.latencies, 99))} |`;
    return `| ${b} | ${s.rows} | ${s.invocations} | ${mix(r)} | ${s1(pct(r.latencies, 50))} | ${s1(pct(r.latencies, 99))} | ${mix(s)} | ${s1(pct(s.latencies, 50))} | ${s1(pct(s.latencies, 99))} | ${s.cold} vs ${r.cold} |`;
  });
  const sum = (m: Map<string, Tally>): Tally => {
    const t = tally();
    for (const x of m.values()) {
      t.rows += x.rows;
      t.invocations += x.invocations;
      t.warm += x.warm;
      t.restore += x.restore;
      t.cold += x.cold;
      t.failed += x.failed;
      t.latencies.push(...x.latencies);
    }
    return t;
  };
  const S = sum(sim);
  const R = real ? sum(real) : undefined;
  lines.push(
    R
      ? `| **all** | ${S.rows} | ${S.invocations} | ${mix(R)} | ${s1(pct(R.latencies, 50))} | ${s1(pct(R.latencies, 99))} | ${mix(S)} | ${s1(pct(S.latencies, 50))} | ${s1(pct(S.latencies, 99))} | ${S.cold} vs ${R.cold} |`
      : `| **all** | ${S.rows} | ${S.invocations} | ${mix(S)} | ${s1(pct(S.latencies, 50))} | ${s1(pct(S.latencies, 99))} |`,
  );
  return [head, ...lines].join('\n');
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  mkdirSync(a.out, { recursive: true });
  const full = await loadTrace(a.spec, 'faasrail');
  const trace = thinTrace(full, a.sample, a.seed);
  // the JavaScript functions' run times (a measurement with both languages has Python rows too, issue 21)
  const measured = a.runtimes ? (JSON.parse(readFileSync(a.runtimes, 'utf8')) as { runs: WorkloadRun[] }).runs.filter((r) => (r.language ?? 'javascript') === 'javascript') : [];
  const { runMs, source } = runTimes(trace, measured);
  const base = await loadProfile(a.profile);
  const profile: Profile = {
    ...base,
    functions: Object.fromEntries(trace.functions.map((f, i) => [f.name, { runMs: runMs[i]!, memoryMiB: BENCHMARKS.get(f.benchmark ?? '')?.memoryMiB ?? base.defaults.memoryMiB, cpuShare: 1 }])),
  };
  writeFileSync(path.join(a.out, 'profile.json'), JSON.stringify(profile, null, 2));
  const timeScale = 1 / a.compress;
  const decisions: Decision[] = [];
  const sim: SimulationResult = simulate({ trace, profile, policies: await createPolicies({}, { baseDir: '.' }), memoryMiB: a.memoryMiB, timeScale, expand: { spread: 'random', seed: a.seed }, onDecision: (d) => decisions.push(d) });
  const simBench = simPerBench(trace, decisions, runMs, base.defaults.warmMs, timeScale, a.seed);
  console.error(`simulated ${sim.invocations} invocations: ${sim.coldStarts} cold, ${sim.restores} restore, ${sim.warm} warm, ${sim.dropped} dropped; p50 ${s1(sim.p50Ms)}, p99 ${s1(sim.p99Ms)}`);

  let realBench: Map<string, Tally> | undefined;
  let summary: ReplaySummary | undefined;
  let pool: unknown;
  if (a.real) {
    const b = await benchDaemon({ node: { memoryBudgetMiB: a.memoryMiB }, functionLimits: { maxMemoryMiB: 4096, maxTimeoutMs: 15 * 60_000 } });
    try {
      await runDeploySpec({ spec: a.spec, url: b.d.url, write: () => undefined });
      const records: ReplayRecord[] = [];
      summary = await replay({ trace, url: b.d.url, compress: a.compress, spread: 'random', seed: a.seed, timeoutMs: 20 * 60_000, onRecord: (r) => records.push(r) });
      writeFileSync(path.join(a.out, 'real-records.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
      realBench = realPerBench(trace, records);
      pool = (await b.client.call<{ pool?: unknown }>('GET', '/v1/status')).pool;
    } finally {
      await b.close();
    }
  }
  const measuredN = source.filter((s) => s === 'measured').length;
  const md = [
    `# FaaSRail spec ${path.basename(a.spec)} on this node`,
    '',
    `machine: ${Object.entries(machine()).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    `Spec read unchanged: ${full.functions.length} rows, ${full.totalInvocations} invocations over ${full.nSlots} replay minutes${a.sample < 1 ? `; sampled ${a.sample} (seed ${a.seed}): ${trace.totalInvocations} invocations` : ''}; compressed ${a.compress}× (${((trace.nSlots * 60) / a.compress).toFixed(0)} s of arrivals); memory budget ${a.memoryMiB} MiB; the daemon's default policies. Run times in the simulation: ${measuredN} of ${trace.functions.length} rows measured here per workload, the rest FaaSRail's mean × the benchmark's measured ratio.`,
    '',
    table(simBench, realBench),
    '',
    summary ? `Replay: ${summary.sent} of ${summary.scheduled} sent, ${summary.ok} answered 200, status ${JSON.stringify(summary.byStatus)}, send lag p99 ${s1(summary.p99LagMs)}, wall ${summary.wallSeconds.toFixed(0)} s.` : 'No real replay (--real not given).',
    `Simulation: ${sim.invocations} invocations, ${sim.coldBoots} cold boots and ${sim.restoresStarted} restores started, ${sim.dropped} dropped (${JSON.stringify(sim.rejected)}), p50 ${s1(sim.p50Ms)}, p99 ${s1(sim.p99Ms)}.`,
    '',
    'warm / restore / cold: the start path of the instance that served each request; failed / dropped: refused (429/503), timed out or not answered. Latency: client side, answered requests only (sim: queueing + start + run).',
  ].join('\n');
  writeFileSync(path.join(a.out, 'results.md'), md + '\n');
  writeFileSync(path.join(a.out, 'results.json'), JSON.stringify({ args: a, sim, simBench: Object.fromEntries([...simBench].map(([k, v]) => [k, { ...v, latencies: undefined, p50: pct(v.latencies, 50), p99: pct(v.latencies, 99) }])), realBench: realBench && Object.fromEntries([...realBench].map(([k, v]) => [k, { ...v, latencies: undefined, p50: pct(v.latencies, 50), p99: pct(v.latencies, 99) }])), summary, pool }, null, 2));
  console.log(md);
}

await main();
