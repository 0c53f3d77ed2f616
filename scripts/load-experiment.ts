// Multi-function load on the real node vs the simulator (issue 7; docs/simulator.md "Load"):
//   npx tsx scripts/load-experiment.ts [--spec SPEC.csv] [--functions 19] [--rates 8,24,64] [--runs 3]
//       [--minutes 5] [--profile bench/profiles/tcg-node-2026-11-29.json] [--sweep 2,4,8,16,32,64,128]
//       [--sim-only] [--resume] [--client child|inproc] [--out bench/results/load]
// 1. Picks `--functions` rows of a FaaSRail spec (default: FaaSRail's azure_spec_15rps_5min.csv), spread over
//    its run times (the rows at evenly spaced quantiles of `mean`), keeps their per-minute arrival counts and
//    scales them to each target rate. Each row becomes a function that waits its row's mean (capped at 20 s):
//    like the issue's load, the functions wait rather than compute.
// 2. Simulates the load at every --sweep rate with the daemon's default configuration and the calibrated
//    profile (where the node's capacity lies), and at each --rates rate.
// 3. Unless --sim-only: for each --rates rate, --runs times, starts a fresh private daemon with the default
//    configuration, deploys the functions, replays the arrivals open loop and records every request, the
//    pool's counters, the number of VMM processes and the load average over time. The load generator is
//    `faascell replay` in its own process (`--client inproc`: in this one, sharing the daemon's event loop).
// 4. Writes results.md / results.json: goodput, refusals (early vs timed out), latency, boots, restores,
//    real runs against the simulation (pass: within the spread of the runs, or 5 points / 5 % of the median).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchDaemon, machine } from '../bench/common.js';
import { parseConfig } from '../src/config/schema.js';
import { replay, type ReplayRecord, type ReplaySummary } from '../src/replay/replay.js';
import { nodeSimulationOptions, simulatedNode } from '../src/sim/cli.js';
import { projectRoot } from '../src/core/project-root.js';
import { loadProfile, type Profile } from '../src/sim/profile.js';
import { simulate, type SimulationResult } from '../src/sim/simulator.js';
import { readFaasrailSpec, scaledCounts, type FaasrailSpecRow } from '../src/traces/faasrail.js';
import { slotsTrace, type SlotsRow } from '../src/traces/slots.js';
import type { Trace } from '../src/traces/types.js';
import { eachArg } from './args.js';

interface Args {
  spec: string;
  functions: number;
  rates: number[];
  sweep: number[];
  runs: number;
  minutes: number;
  profile: string;
  simOnly: boolean;
  out: string;
  seed: number;
  /** reuse the real runs in this directory's results.json; only simulate again */
  realFrom?: string;
  /** keep the real runs already in --out's results.json and run only the missing ones */
  resume: boolean;
  /** where the load generator runs (default: its own process) */
  client: 'child' | 'inproc';
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    spec: path.join(projectRoot(), '..', 'shared', 'faasrail', 'azure_spec_15rps_5min.csv'), // ../shared beside the project root
    functions: 19,
    rates: [8, 24, 64],
    sweep: [2, 4, 8, 16, 32, 64, 128],
    runs: 3,
    minutes: 5,
    profile: 'bench/profiles/tcg-node-2026-11-29.json',
    simOnly: false,
    out: 'bench/results/load',
    seed: 1,
    resume: false,
    client: 'child',
  };
  eachArg(argv, (k, v) => {
    if (k === '--spec') a.spec = v();
    else if (k === '--functions') a.functions = Number(v());
    else if (k === '--rates') a.rates = v().split(',').map(Number);
    else if (k === '--sweep') a.sweep = v().split(',').map(Number);
    else if (k === '--runs') a.runs = Number(v());
    else if (k === '--minutes') a.minutes = Number(v());
    else if (k === '--profile') a.profile = v();
    else if (k === '--sim-only') a.simOnly = true;
    else if (k === '--out') a.out = v();
    else if (k === '--seed') a.seed = Number(v());
    else if (k === '--real-from') a.realFrom = v();
    else if (k === '--resume') a.resume = true;
    else if (k === '--client') {
      const c = v();
      if (c !== 'child' && c !== 'inproc') throw new Error('--client: child | inproc');
      a.client = c;
    }
    else throw new Error(`unknown argument ${k}`);
  });
  return a;
}

const MAX_RUN_MS = 20_000;
const SLEEP = readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'examples', 'functions', 'sleep.js'));

/** Rows at evenly spaced quantiles of their mean run time. */
function pickRows(rows: FaasrailSpecRow[], n: number): FaasrailSpecRow[] {
  const sorted = [...rows].sort((x, y) => (x.mean ?? x.avg) - (y.mean ?? y.avg));
  const idx = new Set<number>();
  for (let i = 0; i < n; i++) idx.add(Math.round((i * (sorted.length - 1)) / Math.max(1, n - 1)));
  return [...idx].map((i) => sorted[i]!);
}

/** The picked rows at `rps` as per-minute rows of FaaSCell's slots format (what `faascell replay --format slots` reads). */
function loadRows(rows: FaasrailSpecRow[], rps: number, minutes: number): SlotsRow[] {
  const total = rows.reduce((s, r) => s + r.rpm.slice(0, minutes).reduce((x, y) => x + y, 0), 0);
  const k = (rps * 60 * minutes) / total;
  return rows.map((r, i) => {
    const counts = scaledCounts(r.rpm.slice(0, minutes), k);
    const ms = Math.min(MAX_RUN_MS, Math.max(1, Math.round(r.mean ?? r.avg)));
    return { name: `load-${String(i).padStart(2, '0')}`, avgDurationMs: ms, memoryMiB: 256, request: { ms }, counts };
  });
}

function loadTrace(rows: FaasrailSpecRow[], rps: number, minutes: number): Trace {
  return slotsTrace(loadRows(rows, rps, minutes), 60_000, `${rows.length} rows at ${rps} rps`);
}

const DEFAULT_NODE = parseConfig({ stateDir: os.tmpdir() });

async function sim(trace: Trace, profile: Profile): Promise<SimulationResult> {
  return simulate({ trace, profile, ...(await nodeSimulationOptions(simulatedNode(DEFAULT_NODE), '.')), expand: { spread: 'random', seed: 1 } });
}

interface RealRun {
  rps: number;
  run: number;
  sent: number;
  ok: number;
  byStatus: Record<string, number>;
  goodput: number;
  p50Ms: number;
  p99Ms: number;
  coldBoots: number;
  restores: number;
  rejectedQueueFull: number;
  rejectedOverloaded: number;
  rejectedQueueTimeout: number;
  startFailures: number;
  maxVmms: number;
  maxLoad: number;
  sendLagP99Ms: number;
  /** cores the rest of the machine used during the run (other processes: this machine is shared), measured */
  otherCores?: number;
  /** where the load generator ran: its own process (child) or the daemon's (inproc, the runs before 2026-11-29 19:15) */
  client?: 'child' | 'inproc';
  /** this process alone (daemon + load generator, one event loop): cores used, and its event loop's utilisation */
  selfCores?: number;
  eventLoopUtilization?: number;
}

/** Busy CPU time of the whole machine, and of this process with its reaped children (the VMMs), in seconds. */
function cpuNow(): { machine: number; ours: number; self: number } {
  const hz = 100; // USER_HZ on Linux
  const all = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = all[3]! + all[4]!;
  const busy = all.reduce((x, y) => x + y, 0) - idle;
  const self = readFileSync('/proc/self/stat', 'utf8');
  const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
  // utime, stime, cutime, cstime: fields 14–17 of stat(5), i.e. 11–14 after the command name
  return { machine: busy / hz, ours: (f[11]! + f[12]! + f[13]! + f[14]!) / hz, self: (f[11]! + f[12]!) / hz };
}

function vmmCount(): number {
  let n = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('qemu-system')) n++;
    } catch {
      // gone
    }
  }
  return n;
}

/** The load generator in its own process (`faascell replay`), so that it does not share the daemon's event loop. */
async function childReplay(rows: SlotsRow[], url: string, out: string, tag: string): Promise<{ summary: ReplaySummary; records: ReplayRecord[] }> {
  const traceFile = path.join(out, `trace-${tag}.json`);
  const recordsFile = path.join(out, `records-${tag}.jsonl`);
  writeFileSync(traceFile, JSON.stringify({ slotSeconds: 60, functions: rows }) + '\n');
  const argv = ['bin/faascell.js', '--url', url, 'replay', '--trace', traceFile, '--format', 'slots', '--map', rows.map((r) => `${r.name}=${r.name}`).join(','), '--compress', '1', '--spread', 'random', '--seed', '1', '--timeout-ms', '180000', '--out', recordsFile, '--json'];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`faascell replay exited with ${code}`);
  const summary = JSON.parse(stdout.trim().split('\n').pop()!) as ReplaySummary;
  const records = readFileSync(recordsFile, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l) as ReplayRecord);
  return { summary, records };
}

async function realRun(rows: SlotsRow[], rps: number, run: number, out: string, client: 'child' | 'inproc'): Promise<RealRun> {
  const trace = slotsTrace(rows, 60_000, `${rows.length} rows at ${rps} rps`);
  const cpu0 = cpuNow();
  const elu0 = performance.eventLoopUtilization();
  const wall0 = Date.now();
  const b = await benchDaemon({});
  let result: RealRun | undefined;
  const samples: Array<{ t: number; vmms: number; load: number }> = [];
  const t0 = Date.now();
  const sampler = setInterval(() => samples.push({ t: Date.now() - t0, vmms: vmmCount(), load: os.loadavg()[0]! }), 2000);
  try {
    for (const f of trace.functions) await b.client.deploy(f.name, SLEEP, { codeKind: 'js', memoryMiB: 256, timeoutMs: 60_000 });
    let records: ReplayRecord[] = [];
    let s: ReplaySummary;
    if (client === 'child') ({ summary: s, records } = await childReplay(rows, b.d.url, out, `${rps}rps-run${run}`));
    else {
      s = await replay({ trace, url: b.d.url, map: trace.functions.map((f) => `${f.name}=${f.name}`).join(','), compress: 1, spread: 'random', seed: 1, onRecord: (r) => records.push(r), progress: null, timeoutMs: 180_000 });
      writeFileSync(path.join(out, `records-${rps}rps-run${run}.jsonl`), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    }
    const st = await b.client.call<{ pool: { counters: Record<string, number> } }>('GET', '/v1/status');
    const c = st.pool.counters;
    const lat = records.filter((r) => r.status === 200 && r.latencyMs !== null).map((r) => r.latencyMs!).sort((x, y) => x - y);
    const q = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)]! : NaN);
    result = {
      rps,
      run,
      sent: s.sent,
      ok: s.ok,
      byStatus: s.byStatus,
      goodput: s.sent ? s.ok / s.sent : 0,
      p50Ms: q(50),
      p99Ms: q(99),
      coldBoots: c.coldStarts!,
      restores: c.restoreStarts!,
      rejectedQueueFull: c.rejectedQueueFull!,
      rejectedOverloaded: c.rejectedOverloaded!,
      rejectedQueueTimeout: c.rejectedQueueTimeout!,
      startFailures: c.startFailures!,
      maxVmms: Math.max(0, ...samples.map((x) => x.vmms)),
      maxLoad: Math.max(0, ...samples.map((x) => x.load)),
      sendLagP99Ms: s.p99LagMs,
      client,
    };
  } finally {
    clearInterval(sampler);
    writeFileSync(path.join(out, `samples-${rps}rps-run${run}.json`), JSON.stringify(samples) + '\n');
    await b.close();
    // after close every VMM has been reaped, so its CPU time is in our children's time
    const cpu1 = cpuNow();
    const wallS = (Date.now() - wall0) / 1000;
    if (result) {
      result.otherCores = (cpu1.machine - cpu0.machine - (cpu1.ours - cpu0.ours)) / wallS;
      result.selfCores = (cpu1.self - cpu0.self) / wallS;
      result.eventLoopUtilization = performance.eventLoopUtilization(elu0).utilization;
    }
  }
  return result;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
const med = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** Within the spread of the runs, or within `tol` of their median. */
const passes = (xs: number[], v: number, tol: number): boolean => (v >= Math.min(...xs) && v <= Math.max(...xs)) || Math.abs(v - med(xs)) <= tol;

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  mkdirSync(a.out, { recursive: true });
  const { rows } = await readFaasrailSpec(a.spec);
  const picked = pickRows(rows, a.functions);
  const profile = await loadProfile(a.profile);
  const md: string[] = [
    `# Multi-function load: real node vs simulator`,
    '',
    `${picked.length} rows of \`${path.basename(a.spec)}\` (FaaSRail), spread over its run times (${picked.map((r) => Math.round(r.mean ?? r.avg)).join(', ')} ms; capped at ${MAX_RUN_MS / 1000} s), ` +
      `their per-minute counts scaled to each rate, ${a.minutes} minutes, arrivals random within each minute (seed 1). Functions wait their run time (256 MiB each). ` +
      `Daemon: default configuration. Simulator: the same configuration and the profile \`${a.profile}\`. Machine: ${machine().cpu}, ${machine().cores} cores.`,
    '',
    '## Simulated capacity sweep',
    '',
    '| rate (req/s) | invocations | goodput | refused early (503) | queue full (429) | timed out (503) | cold boots | restores | p50 | p99 |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const sweep: Record<string, SimulationResult> = {};
  for (const rps of a.sweep) {
    const r = await sim(loadTrace(picked, rps, a.minutes), profile);
    sweep[rps] = r;
    md.push(`| ${rps} | ${r.invocations} | ${pct(r.goodput)} | ${r.rejected.overloaded} | ${r.rejected.queueFull} | ${r.rejected.queueTimeout} | ${r.coldBoots} | ${r.restoresStarted} | ${(r.p50Ms / 1000).toFixed(2)} s | ${(r.p99Ms / 1000).toFixed(2)} s |`);
    console.error(`sim ${rps} rps: goodput ${pct(r.goodput)}, boots ${r.coldBoots}, restores ${r.restoresStarted}`);
  }
  const real: RealRun[] = [];
  const simAt: Record<string, SimulationResult> = {};
  for (const rps of a.rates) simAt[rps] = await sim(loadTrace(picked, rps, a.minutes), profile);
  const earlier = a.realFrom ?? (a.resume ? a.out : undefined);
  if (earlier) real.push(...(JSON.parse(readFileSync(path.join(earlier, 'results.json'), 'utf8')) as { real: RealRun[] }).real);
  if (!a.simOnly) {
    for (const rps of a.realFrom ? [] : a.rates) {
      for (let run = 1; run <= a.runs; run++) {
        if (real.some((r) => r.rps === rps && r.run === run)) continue;
        console.error(`real: ${rps} rps, run ${run} of ${a.runs}`);
        const r = await realRun(loadRows(picked, rps, a.minutes), rps, run, a.out, a.client);
        real.push(r);
        console.error(`  goodput ${pct(r.goodput)}, boots ${r.coldBoots}, restores ${r.restores}, max VMMs ${r.maxVmms}, max load ${r.maxLoad.toFixed(1)}`);
        writeFileSync(path.join(a.out, 'results.json'), JSON.stringify({ sweep, simAt, real }, null, 2) + '\n');
      }
    }
    md.push(
      '',
      '## Real node, each run',
      '',
      '| rate | run | sent | ok | goodput | refused early | queue full | timed out | start failures | p50 | p99 | cold boots | restores | max VMM processes | max load avg | send lag p99 | cores taken by other processes | daemon + client process: cores, event-loop utilisation |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...real.map(
        (r) =>
          `| ${r.rps} | ${r.run} | ${r.sent} | ${r.ok} | ${pct(r.goodput)} | ${r.rejectedOverloaded} | ${r.rejectedQueueFull} | ${r.rejectedQueueTimeout} | ${r.startFailures} | ${(r.p50Ms / 1000).toFixed(2)} s | ${(r.p99Ms / 1000).toFixed(2)} s | ${r.coldBoots} | ${r.restores} | ${r.maxVmms} | ${r.maxLoad.toFixed(1)} | ${Math.round(r.sendLagP99Ms)} ms | ${r.otherCores === undefined ? 'not measured' : r.otherCores.toFixed(2)} | ${r.selfCores === undefined ? 'not measured' : `${r.selfCores.toFixed(2)}, ${pct(r.eventLoopUtilization ?? NaN)}`} |`,
      ),
      '',
      '## Simulated vs real',
      '',
      'Pass: the simulated value lies within the spread of the real runs, or within 5 points (goodput) / 5 % of the median (boots, restores) of their median.',
      '',
      '| rate | real goodput (runs) | simulated | pass | real cold boots (runs) | simulated | pass | real restores (runs) | simulated | pass |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const rps of a.rates) {
      const rs = real.filter((r) => r.rps === rps);
      const s = simAt[rps]!;
      const g = rs.map((r) => r.goodput);
      const boots = rs.map((r) => r.coldBoots);
      const rest = rs.map((r) => r.restores);
      md.push(
        `| ${rps} | ${g.map(pct).join(', ')} | ${pct(s.goodput)} | ${passes(g, s.goodput, 0.05) ? 'yes' : 'no'} | ${boots.join(', ')} | ${s.coldBoots} | ${passes(boots, s.coldBoots, 0.05 * med(boots)) ? 'yes' : 'no'} | ${rest.join(', ')} | ${s.restoresStarted} | ${passes(rest, s.restoresStarted, 0.05 * med(rest)) ? 'yes' : 'no'} |`,
      );
    }
    // The machine is shared: the same comparison with the node's cores reduced by what other processes took
    // during the runs (median over the runs that measured it).
    const left: string[] = [];
    for (const rps of a.rates) {
      const rs = real.filter((r) => r.rps === rps);
      const other = rs.map((r) => r.otherCores).filter((x): x is number => x !== undefined);
      if (other.length !== rs.length || !rs.length) continue;
      const cores = Math.max(0.25, profile.node.cores - med(other));
      const s = await sim(loadTrace(picked, rps, a.minutes), { ...profile, node: { ...profile.node, cores } });
      const g = rs.map((r) => r.goodput);
      const boots = rs.map((r) => r.coldBoots);
      const rest = rs.map((r) => r.restores);
      left.push(
        `| ${rps} | ${other.map((x) => x.toFixed(2)).join(', ')} | ${cores.toFixed(2)} | ${g.map(pct).join(', ')} | ${pct(s.goodput)} | ${passes(g, s.goodput, 0.05) ? 'yes' : 'no'} | ${boots.join(', ')} | ${s.coldBoots} | ${passes(boots, s.coldBoots, 0.05 * med(boots)) ? 'yes' : 'no'} | ${rest.join(', ')} | ${s.restoresStarted} | ${passes(rest, s.restoresStarted, 0.05 * med(rest)) ? 'yes' : 'no'} |`,
      );
    }
    if (left.length)
      md.push(
        '',
        '## Simulated with the cores left to the node',
        '',
        'The simulated node gets the profile\'s cores minus the median of what other processes took during the real runs.',
        '',
        '| rate | other processes (cores, runs) | simulated cores | real goodput | simulated | pass | real cold boots | simulated | pass | real restores | simulated | pass |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
        ...left,
      );
  }
  writeFileSync(path.join(a.out, 'results.json'), JSON.stringify({ sweep, simAt, real }, null, 2) + '\n');
  writeFileSync(path.join(a.out, 'results.md'), md.join('\n') + '\n');
  console.log(md.join('\n'));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
