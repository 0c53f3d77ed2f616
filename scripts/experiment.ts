// Keep-alive policy comparison (docs/simulator.md):
//   npx tsx scripts/experiment.ts [--out DIR] [--real [--url URL] [--token T] [--config daemon.yaml]]
// 1. Generates a seeded Azure-format day (a few hundred functions, skewed rates).
// 2. Simulates fixed / greedy-dual / hybrid-histogram / none at several memory
//    budgets (snapshots off, as in the papers; plus a snapshot variant).
// 3. Writes results.csv, results.md and coldstart-vs-memory.{svg,png} (Vega-Lite).
// 4. --real: deploys a few functions on a running daemon, replays a short
//    time-compressed slice, and compares the measured start paths with a
//    simulation of the very same slice, compression and policies.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { writePlot } from '../src/plots/render.js';
import { coldStartVsMemorySpec } from '../src/plots/specs.js';
import { createPolicies, type PoliciesConfigInput } from '../src/policies/index.js';
import { replay, type ReplayRecord } from '../src/replay/replay.js';
import { loadProfile, type Profile } from '../src/sim/profile.js';
import { simulate, type SimulationResult } from '../src/sim/simulator.js';
import { simulatedNode } from '../src/sim/cli.js';
import { parseConfig, type Config } from '../src/config/schema.js';
import os from 'node:os';
import { loadAzureTrace } from '../src/traces/azure.js';
import { writeAzureTrace } from '../src/traces/generate.js';
import { subsetTrace } from '../src/traces/transform.js';
import type { Trace } from '../src/traces/types.js';
import { eachArg } from './args.js';

interface Args {
  out: string;
  real: boolean;
  url: string;
  token?: string;
  config?: string;
  profile: string;
  functions: number;
  seed: number;
  budgetsGiB: number[];
  realSeconds: number;
  compress: number;
  realFunctions: number;
  /** --real without --url: start a private daemon per keep-alive policy (in this process) */
  selfDaemon: boolean;
  realPolicies: string[];
  realMemoryMiB: number;
  /** per-policy runs write real-records-<tag>.jsonl */
  recordsTag?: string;
  /** real runs per keep-alive policy (a fresh daemon each) */
  realRuns: number;
  /** reuse the real runs recorded in this directory's real.json; only simulate again (e.g. with a new profile) */
  realFrom?: string;
  /** the daemon's effective configuration, when this process started it (the simulation models that node) */
  daemonConfig?: Config;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    out: 'bench/results/experiment',
    real: false,
    url: 'http://127.0.0.1:8080',
    profile: 'bench/profiles/tcg-default.json',
    functions: 300,
    seed: 42,
    budgetsGiB: [8, 12, 16, 24, 32, 48, 64],
    realSeconds: 120,
    compress: 10,
    realFunctions: 4,
    selfDaemon: true,
    realPolicies: ['fixed', 'greedy-dual', 'hybrid-histogram'],
    realMemoryMiB: 768,
    realRuns: 3,
  };
  eachArg(argv, (k, v) => {
    if (k === '--out') a.out = v();
    else if (k === '--real') a.real = true;
    else if (k === '--url') {
      a.url = v();
      a.selfDaemon = false;
    } else if (k === '--real-policies') a.realPolicies = v().split(',');
    else if (k === '--real-memory-mib') a.realMemoryMiB = Number(v());
    else if (k === '--token') a.token = v();
    else if (k === '--config') a.config = v();
    else if (k === '--profile') a.profile = v();
    else if (k === '--functions') a.functions = Number(v());
    else if (k === '--seed') a.seed = Number(v());
    else if (k === '--budgets') a.budgetsGiB = v().split(',').map(Number);
    else if (k === '--real-seconds') a.realSeconds = Number(v());
    else if (k === '--compress') a.compress = Number(v());
    else if (k === '--real-functions') a.realFunctions = Number(v());
    else if (k === '--real-runs') a.realRuns = Number(v());
    else if (k === '--real-from') a.realFrom = v();
    else if (k === '--help' || k === '-h') {
      console.log('npx tsx scripts/experiment.ts [--out DIR] [--functions N] [--seed S] [--budgets 8,16,32] [--profile F] [--real [--real-policies fixed,greedy-dual,hybrid-histogram] [--real-memory-mib 768] | --real --url URL [--token T] [--config daemon.yaml]] [--real-seconds 120] [--compress 10] [--real-functions 4]');
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  });
  return a;
}

const POLICIES = ['fixed', 'greedy-dual', 'hybrid-histogram', 'none'] as const;

interface Row {
  variant: 'no-snapshots' | 'snapshots';
  budgetGiB: number | null;
  r: SimulationResult;
}

async function runSim(trace: Trace, profile: Profile, keepAlive: string, budgetMiB: number, snapshots: boolean, extra: Partial<Parameters<typeof simulate>[0]> = {}): Promise<SimulationResult> {
  const cfg: PoliciesConfigInput = {
    keepAlive,
    placement: snapshots ? { policy: 'fixed' } : { policy: 'fixed', action: 'cold' },
  };
  return simulate({ trace, profile, policies: await createPolicies(cfg, { baseDir: '.' }), memoryMiB: budgetMiB, node: MEMORY_BOUND_NODE, maxInstancesPerFunction: UNLIMITED, ...extra });
}

/**
 * The simulated day studies keep-alive under memory pressure, as the papers do: a node bounded by
 * its memory budget only (a plain budget, no CPU model, no start-slot, concurrency, queue or
 * per-function limits), where a request that finds no idle instance starts one (preferWarm off: it
 * does not wait for a busy instance). The real-node comparison below models the real node instead.
 */
const UNLIMITED = 1e9;
const MEMORY_BOUND_NODE = { cpuModel: false, maxConcurrentStarts: UNLIMITED, maxConcurrentInvocations: UNLIMITED, maxQueueLength: UNLIMITED, lowWatermark: 1, highWatermark: 1, preferWarm: false };

const f1 = (x: number): string => x.toFixed(1);

function csv(rows: Row[]): string {
  const head = 'variant,policy,memoryGiB,invocations,warm,restores,coldStarts,dropped,coldStartFraction,restoreFraction,warmFraction,droppedFraction,wastedMemoryGiBHours,p50Ms,p99Ms,meanMs,evictions,expirations,prewarms,simWallMs,invocationsPerSecond';
  const lines = rows.map(({ variant, budgetGiB, r }) =>
    [
      variant, r.policy, budgetGiB ?? 'unlimited', r.invocations, r.warm, r.restores, r.coldStarts, r.dropped,
      r.coldStartFraction.toFixed(5), r.restoreFraction.toFixed(5), r.warmFraction.toFixed(5), r.droppedFraction.toFixed(5),
      (r.wastedMemoryMiBSeconds / 1024 / 3600).toFixed(1), f1(r.p50Ms), f1(r.p99Ms), f1(r.meanMs),
      r.evictions, r.expirations, r.prewarms, r.wallMs.toFixed(0), r.invocationsPerSecond.toFixed(0),
    ].join(','),
  );
  return [head, ...lines].join('\n') + '\n';
}

function mdTable(rows: Row[], variant: Row['variant']): string {
  const sel = rows.filter((x) => x.variant === variant);
  const budgets = [...new Set(sel.map((x) => x.budgetGiB))];
  const out = ['| memory (GiB) | ' + POLICIES.map((p) => `${p}: cold / warm / dropped`).join(' | ') + ' |', '|---|' + POLICIES.map(() => '---').join('|') + '|'];
  for (const b of budgets) {
    const cells = POLICIES.map((p) => {
      const r = sel.find((x) => x.budgetGiB === b && x.r.policy === p)?.r;
      if (!r) return '';
      const cold = variant === 'snapshots' ? `${pct(r.coldStartFraction)} (+${pct(r.restoreFraction)} restore)` : pct(r.coldStartFraction);
      return `${cold} / ${pct(r.warmFraction)} / ${pct(r.droppedFraction)}`;
    });
    out.push(`| ${b ?? 'unlimited'} | ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

function mdDetail(rows: Row[], variant: Row['variant']): string {
  const sel = rows.filter((x) => x.variant === variant);
  const out = ['| memory (GiB) | policy | cold | restore | warm | dropped | idle memory (GiB·h) | p50 ms | p99 ms | evictions |', '|---|---|---|---|---|---|---|---|---|---|'];
  for (const { budgetGiB, r } of sel) {
    out.push(`| ${budgetGiB ?? 'unlimited'} | ${r.policy} | ${pct(r.coldStartFraction)} | ${pct(r.restoreFraction)} | ${pct(r.warmFraction)} | ${pct(r.droppedFraction)} | ${(r.wastedMemoryMiBSeconds / 1024 / 3600).toFixed(0)} | ${f1(r.p50Ms)} | ${f1(r.p99Ms)} | ${r.evictions} |`);
  }
  return out.join('\n');
}

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;

/** Cold-start fraction vs memory, one line per policy (Vega-Lite, rendered to SVG and PNG). */
async function plotColdStarts(rows: Row[], title: string, outBase: string): Promise<string[]> {
  const points = rows.filter((x) => x.variant === 'no-snapshots' && x.budgetGiB !== null).map((x) => ({ policy: x.r.policy, memoryGiB: x.budgetGiB!, coldStartFraction: x.r.coldStartFraction }));
  return writePlot(coldStartVsMemorySpec(points, title), outBase, ['svg', 'png']);
}

function verdict(rows: Row[]): string[] {
  const sel = rows.filter((x) => x.variant === 'no-snapshots' && x.budgetGiB !== null);
  const budgets = [...new Set(sel.map((x) => x.budgetGiB!))];
  const lines: string[] = [];
  for (const p of ['greedy-dual', 'hybrid-histogram']) {
    const better: number[] = [];
    const worse: number[] = [];
    const tie: number[] = [];
    for (const b of budgets) {
      const fixed = sel.find((x) => x.budgetGiB === b && x.r.policy === 'fixed')!.r;
      const other = sel.find((x) => x.budgetGiB === b && x.r.policy === p)!.r;
      // Within noise: less than 0.2 points or 3 % (relative) apart.
      const d = other.coldStartFraction - fixed.coldStartFraction;
      if (Math.abs(d) < 0.002 || Math.abs(d) < 0.03 * fixed.coldStartFraction) tie.push(b);
      else if (d < 0) better.push(b);
      else worse.push(b);
    }
    lines.push(
      `- **${p}** vs fixed 10-min TTL at equal memory: fewer cold starts at ${better.length ? better.join(', ') + ' GiB' : '—'}; ` +
        `more at ${worse.length ? worse.join(', ') + ' GiB' : '—'}; within noise (< 0.2 points or < 3 % apart) at ${tie.length ? tie.join(', ') + ' GiB' : '—'}.`,
    );
  }
  return lines;
}

// ---------------- real daemon ----------------

// experiment function: sleeps params.ms (capped), like the trace's average duration
const SLEEP_FN = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'functions', 'sleep.js'), 'utf8');

async function api(url: string, token: string | undefined, method: string, p: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url.replace(/\/+$/, '') + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

interface RealOutcome {
  md: string;
  json: Record<string, unknown>;
}

/**
 * The slice replayed on the real node: the trace minutes covered by realSeconds × compress, and the K
 * functions with a moderate number of invocations there (keep-alive matters; the TCG node copes).
 */
function sliceOf(a: Args, trace: Trace): { slice: Trace; names: string[]; minutes: number; from: number } {
  const minutes = Math.max(1, Math.round((a.realSeconds * a.compress) / 60));
  const from = 8 * 60; // a morning slice
  const window = subsetTrace(trace, { fromSlot: from, toSlot: from + minutes });
  const candidates = window.functions
    .filter((f) => f.total >= 3 && f.total <= Math.max(10, (a.realSeconds * 1.5) / a.realFunctions))
    .sort((x, y) => y.total - x.total);
  const picked = candidates.slice(0, a.realFunctions);
  if (picked.length === 0) throw new Error('--real: no suitable functions in the slice');
  const slice = subsetTrace(window, { functions: picked.map((f) => f.index) });
  return { slice, names: slice.functions.map((_, i) => `exp-fn-${i}`), minutes, from };
}

/** The real slice in the simulator: same policies, compression, memory budget, snapshot setting and node configuration. */
async function simulateSlice(a: Args, slice: Trace, names: string[], profile: Profile, cfg: PoliciesConfigInput, memMiB: number, snapshotsOn: boolean): Promise<SimulationResult> {
  // each deployed function gets the profile's costs and the trace's durations (capped like the function)
  const simTrace: Trace = { ...slice, functions: slice.functions.map((f, i) => ({ ...f, name: names[i]!, avgDurationMs: Math.min(f.avgDurationMs ?? 0, 2000), memoryMiB: 256 })) };
  // a daemon without snapshots cold-boots every non-warm start: the simulation must too
  const simCfg: PoliciesConfigInput = snapshotsOn ? cfg : { ...cfg, placement: { policy: 'fixed', action: 'cold' } };
  // the node the daemon's configuration describes (limits, watermarks, start slots, snapshots), when known
  const node = a.daemonConfig ? simulatedNode(a.daemonConfig) : undefined;
  return simulate({
    trace: simTrace,
    profile,
    policies: await createPolicies(simCfg, { baseDir: '.' }),
    memoryMiB: memMiB,
    timeScale: 1 / a.compress,
    node: { ...node?.node, snapshots: snapshotsOn },
    maxInstancesPerFunction: node?.maxInstances,
    maxQueueDelayMs: node?.maxQueueDelayMs,
  });
}

/** The configuration of the private daemon of a --real run (bench/common.ts benchDaemon's, plus ours). */
function realDaemonConfig(a: Args, policy: string): Record<string, unknown> {
  return { snapshots: { enabled: false }, node: { memoryBudgetMiB: a.realMemoryMiB }, policies: { keepAlive: policy } };
}

async function realRun(a: Args, trace: Trace, profile: Profile): Promise<RealOutcome> {
  const health = await api(a.url, a.token, 'GET', '/healthz').catch((e: unknown) => {
    throw new Error(`--real: no daemon at ${a.url} (${e instanceof Error ? e.message : String(e)}); start one with \`faascell daemon\``);
  });
  if (health.status !== 200) throw new Error(`--real: ${a.url}/healthz answered ${health.status}`);
  const status = (await api(a.url, a.token, 'GET', '/v1/status')).json as Record<string, unknown>;

  // The daemon's policies: from its config file when given, else by the names it reports.
  let cfg: PoliciesConfigInput = {};
  if (a.config) {
    const text = readFileSync(a.config, 'utf8');
    const doc = (/\.json$/i.test(a.config) ? JSON.parse(text) : parseYaml(text)) as { policies?: PoliciesConfigInput } | null;
    cfg = doc?.policies ?? {};
  } else {
    const p = status.policies as Record<string, string> | undefined;
    if (p) cfg = { keepAlive: p.keepAlive, eviction: p.eviction, selection: p.selection, placement: p.placement };
  }

  const { slice, names, minutes, from } = sliceOf(a, trace);
  const map = slice.functions.map((f, i) => `${f.name}=${names[i]}`).join(',');
  console.error(`real: ${slice.totalInvocations} invocations of ${names.length} functions, ${minutes} trace minutes compressed ${a.compress}× (${a.realSeconds} s)`);

  for (const n of names) {
    const r = await api(a.url, a.token, 'PUT', `/v1/functions/${n}`, { source: SLEEP_FN, memoryMiB: 256 });
    if (r.status !== 200 && r.status !== 201) throw new Error(`deploy ${n}: ${r.status} ${JSON.stringify(r.json)}`);
    await api(a.url, a.token, 'POST', `/v1/functions/${n}/evict`);
  }
  const records: ReplayRecord[] = [];
  const summary = await replay({ trace: slice, url: a.url, token: a.token, map, compress: a.compress, onRecord: (r) => records.push(r) });
  writeFileSync(path.join(a.out, a.recordsTag ? `real-records-${a.recordsTag}.jsonl` : 'real-records.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  // Instances the pool started, whichever request they ended up serving: the real pool lets a waiting
  // request take the first instance that frees up, so a request-level "cold" undercounts cold boots.
  const after = (await api(a.url, a.token, 'GET', '/v1/status')).json as { pool?: { counters?: { coldStarts?: number; restoreStarts?: number } } };
  const started = { cold: after.pool?.counters?.coldStarts ?? NaN, restore: after.pool?.counters?.restoreStarts ?? NaN };
  for (const n of names) await api(a.url, a.token, 'DELETE', `/v1/functions/${n}`);

  const count = (p: string): number => records.filter((r) => r.startPath === p).length;
  const n = records.length;
  const lat = records.filter((r) => r.latencyMs !== null && r.status === 200).map((r) => r.latencyMs!).sort((x, y) => x - y);
  const q = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)]! : 0);
  const real = {
    invocations: n,
    coldStarts: count('cold'),
    restores: count('restore'),
    warm: count('warm'),
    errors: summary.errors + summary.skippedInflight,
    coldStartFraction: n ? count('cold') / n : 0,
    restoreFraction: n ? count('restore') / n : 0,
    warmFraction: n ? count('warm') / n : 0,
    p50Ms: q(50),
    p99Ms: q(99),
    sendLagP99Ms: summary.p99LagMs,
    instancesStartedCold: started.cold,
    instancesStartedRestore: started.restore,
  };
  const budget = (status.pool as { memoryBudgetMiB?: unknown } | undefined)?.memoryBudgetMiB;
  const memMiB = typeof budget === 'number' && budget > 0 ? budget : Infinity;
  const snapshotsOn = (status.pool as { snapshotsEnabled?: unknown } | undefined)?.snapshotsEnabled !== false;
  const sim = await simulateSlice(a, slice, names, profile, cfg, memMiB, snapshotsOn);
  const md = [
    `## Real daemon (${a.url}, accelerator ${typeof status.accelerator === 'string' ? status.accelerator : '?'}, memory budget ${memMiB} MiB)`,
    '',
    `${names.length} functions, ${n} invocations: trace minutes ${from}–${from + minutes} compressed ${a.compress}× into ${a.realSeconds} s; daemon policies ${JSON.stringify(cfg)}; snapshots ${snapshotsOn ? 'on' : 'off'} (in the simulation too).`,
    '',
    '| | invocations | cold | restore | warm | errors | p50 ms | p99 ms | instances cold-booted |',
    '|---|---|---|---|---|---|---|---|---|',
    `| real daemon | ${n} | ${pct(real.coldStartFraction)} | ${pct(real.restoreFraction)} | ${pct(real.warmFraction)} | ${real.errors} | ${f1(real.p50Ms)} | ${f1(real.p99Ms)} | ${started.cold} |`,
    `| simulator, same slice | ${sim.invocations} | ${pct(sim.coldStartFraction)} | ${pct(sim.restoreFraction)} | ${pct(sim.warmFraction)} | ${sim.dropped} | ${f1(sim.p50Ms)} | ${f1(sim.p99Ms)} | ${sim.coldBoots} |`,
    '',
    'cold / restore / warm: the start path of the instance that served each request (both sides: any instance that becomes available serves the head of its function\'s queue). The last column counts cold boots, whichever request they served.',
    '',
    `Send lag p99 ${f1(summary.p99LagMs)} ms. Keep-alive windows are wall-clock in the daemon, so compression shortens the trace's gaps, not the TTL; the simulation applies the same compression.`,
  ].join('\n');
  return { md, json: { real, sim, summary, policies: cfg, snapshots: snapshotsOn } };
}

const VALIDATION_HEAD = [
  'Pass: the simulated value lies within the spread (min–max) of the real runs, or within 5 percentage points (cold-start fraction) / 5 % of the median (cold boots) of their median.',
  '',
  '| keep-alive | real cold % (runs) | median | simulated cold % | pass | real cold boots (runs) | median | simulated cold boots | pass |',
  '|---|---|---|---|---|---|---|---|---|',
];

/** One line of the validation table: the real runs' spread and median against the simulation. */
function validationRow(policy: string, runs: Array<{ real: Record<string, number>; sim: SimulationResult }>): string {
  const med = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const realCold = runs.map((r) => r.real.coldStartFraction!);
  const realBoots = runs.map((r) => r.real.instancesStartedCold!);
  // the simulation of a slice is deterministic: every run simulates the same slice
  const simCold = runs[0]!.sim.coldStartFraction;
  const simBoots = runs[0]!.sim.coldBoots;
  const within = (xs: number[], v: number, tol: number): boolean => (v >= Math.min(...xs) && v <= Math.max(...xs)) || Math.abs(v - med(xs)) <= tol;
  const okCold = within(realCold, simCold, 0.05);
  const okBoots = within(realBoots, simBoots, 0.05 * med(realBoots));
  return `| ${policy} | ${realCold.map(pct).join(', ')} | ${pct(med(realCold))} | ${pct(simCold)} | ${okCold ? 'yes' : 'no'} | ${realBoots.join(', ')} | ${med(realBoots)} | ${simBoots} | ${okBoots ? 'yes' : 'no'} |`;
}

// ---------------- main ----------------

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  mkdirSync(a.out, { recursive: true });
  const traceDir = path.join(a.out, 'trace');
  // Fewer very long functions than the generator's default: a node, not a region.
  writeAzureTrace(traceDir, {
    functions: a.functions,
    slots: 1440,
    seed: a.seed,
    log10Rate: [-2.7, 1.7],
    durationMedianMs: 200,
    durationSigma: 1.0,
    maxDurationMs: 10_000,
  });
  const trace = await loadAzureTrace(traceDir);
  const profile = await loadProfile(a.profile);
  console.error(`trace: ${trace.functions.length} functions, ${trace.totalInvocations} invocations in 24 h; profile ${a.profile}`);

  const rows: Row[] = [];
  const budgets: (number | null)[] = [...a.budgetsGiB, null];
  for (const b of budgets) {
    for (const p of POLICIES) {
      const r = await runSim(trace, profile, p, b === null ? Infinity : b * 1024, false);
      rows.push({ variant: 'no-snapshots', budgetGiB: b, r });
      console.error(`  ${String(b ?? 'unlimited').padStart(9)} GiB ${p.padEnd(17)} cold ${pct(r.coldStartFraction).padStart(8)}  warm ${pct(r.warmFraction).padStart(8)}  dropped ${pct(r.droppedFraction).padStart(7)}  ${(r.invocationsPerSecond / 1e6).toFixed(2)} M inv/s`);
    }
  }
  // With snapshots (restore instead of cold after the first start), at two budgets.
  const snapBudgets = [...new Set([a.budgetsGiB[Math.floor(a.budgetsGiB.length / 3)]!, a.budgetsGiB[Math.floor((2 * a.budgetsGiB.length) / 3)]!])];
  for (const b of snapBudgets) {
    for (const p of POLICIES) rows.push({ variant: 'snapshots', budgetGiB: b, r: await runSim(trace, profile, p, b * 1024, true) });
  }

  const speed = rows.map((x) => x.r.invocationsPerSecond).sort((x, y) => x - y);
  const medSpeed = speed[Math.floor(speed.length / 2)]!;
  writeFileSync(path.join(a.out, 'results.csv'), csv(rows));
  await plotColdStarts(rows, `Cold-start fraction vs memory (${trace.functions.length} functions, 24 h, no snapshots)`, path.join(a.out, 'coldstart-vs-memory'));

  let realMd = '';
  if (a.real && !a.selfDaemon) {
    const r = await realRun(a, trace, profile);
    realMd = r.md;
    writeFileSync(path.join(a.out, 'real.json'), JSON.stringify(r.json, null, 2) + '\n');
  } else if (a.real && a.realFrom) {
    // the real runs recorded earlier, simulated again (e.g. with a new profile)
    const recorded = JSON.parse(readFileSync(path.join(a.realFrom, 'real.json'), 'utf8')) as Record<string, { real: Record<string, number>; policies: PoliciesConfigInput; snapshots: boolean }>;
    const { slice, names } = sliceOf(a, trace);
    const summary: string[] = [];
    const all: Record<string, unknown> = {};
    for (const policy of a.realPolicies) {
      const runs: Array<{ real: Record<string, number>; sim: SimulationResult }> = [];
      const daemonConfig = parseConfig({ stateDir: os.tmpdir(), ...realDaemonConfig(a, policy) });
      const sim = await simulateSlice({ ...a, daemonConfig }, slice, names, profile, { ...daemonConfig.policies, keepAlive: policy }, a.realMemoryMiB, false);
      for (let run = 1; run <= a.realRuns; run++) {
        const r = recorded[`${policy}-${run}`];
        if (r) runs.push({ real: r.real, sim });
      }
      all[policy] = { real: runs.map((r) => r.real), sim };
      if (runs.length > 0) summary.push(validationRow(policy, runs));
    }
    writeFileSync(path.join(a.out, 'real-resimulated.json'), JSON.stringify(all, null, 2) + '\n');
    realMd = [
      `## Simulated vs real: the ${a.realRuns} real runs per policy recorded in ${a.realFrom}, simulated with profile \`${a.profile}\``,
      '',
      ...VALIDATION_HEAD,
      ...summary,
    ].join('\n');
  } else if (a.real) {
    // one private daemon per keep-alive policy, same slice, same memory budget (snapshots off, as in the papers)
    const { benchDaemon } = await import('../bench/common.js');
    const all: Record<string, unknown> = {};
    const parts: string[] = [];
    const summary: string[] = [];
    for (const policy of a.realPolicies) {
      const runs: Array<{ real: Record<string, number>; sim: SimulationResult }> = [];
      for (let run = 1; run <= a.realRuns; run++) {
        console.error(`real: daemon with keep-alive ${policy}, memory budget ${a.realMemoryMiB} MiB, run ${run} of ${a.realRuns}`);
        const b = await benchDaemon(realDaemonConfig(a, policy));
        try {
          const r = await realRun({ ...a, url: b.d.url, config: undefined, recordsTag: `${policy}-${run}`, daemonConfig: b.d.config }, trace, profile);
          parts.push(`### keep-alive: ${policy}, run ${run}\n\n${r.md}`);
          all[`${policy}-${run}`] = r.json;
          runs.push({ real: r.json.real as Record<string, number>, sim: r.json.sim as SimulationResult });
        } finally {
          await b.close();
        }
      }
      summary.push(validationRow(policy, runs));
    }
    realMd = [
      `## Simulated vs real, ${a.realRuns} real runs per policy`,
      '',
      ...VALIDATION_HEAD,
      ...summary,
      '',
      ...parts,
    ].join('\n\n');
    writeFileSync(path.join(a.out, 'real.json'), JSON.stringify(all, null, 2) + '\n');
  }
  const md = [
    '# Keep-alive policies: simulated comparison',
    '',
    `Trace: synthetic Azure-format day (seed ${a.seed}): ${trace.functions.length} functions, ${trace.totalInvocations} invocations; ` +
      `profile \`${a.profile}\` (cold ${profile.defaults.coldMs} ms, restore ${profile.defaults.restoreMs} ms, warm ${profile.defaults.warmMs} ms). ` +
      'Policies with their defaults: fixed = 10-min TTL; greedy-dual with priority eviction; hybrid-histogram (5th/99th percentile, 10 % margin, 4-h fallback); none. ' +
      'Eviction for the others: LRU (the `priority` policy without priorities). Selection MRU. Requests wait for memory at most 60 s, then count as dropped. ' +
      'The simulated node is bounded by its memory only (a plain budget; no CPU model, start-slot, concurrency or per-function limits), and a request that finds no idle instance starts one (preferWarm off), as in the papers.',
    '',
    '## Without snapshots (every non-warm start is cold, as in the papers)',
    '',
    mdTable(rows, 'no-snapshots'),
    '',
    '![cold-start fraction vs memory](coldstart-vs-memory.svg)',
    '',
    '### Verdict',
    '',
    ...verdict(rows),
    '',
    '## With snapshots (fixed placement: the fastest tier with room; profile tier capacities apply)',
    '',
    mdTable(rows, 'snapshots'),
    '',
    '## All numbers',
    '',
    mdDetail(rows, 'no-snapshots'),
    '',
    mdDetail(rows, 'snapshots'),
    '',
    `Simulator speed: median ${(medSpeed / 1e6).toFixed(2)} M invocations/s over these runs (min ${(speed[0]! / 1e6).toFixed(2)}, max ${(speed[speed.length - 1]! / 1e6).toFixed(2)}), one core.`,
    '',
    realMd,
  ].join('\n');
  writeFileSync(path.join(a.out, 'results.md'), md + '\n');
  console.error(`wrote ${a.out}/results.{csv,md}, coldstart-vs-memory.{svg,png}${a.real ? ', real.json, real-records*.jsonl' : ''}`);
  console.log(md);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
