// Cluster simulator speed (issue 23 item 6): `faascell bench sim --nodes N`. A
// seeded synthetic Azure-format day of F functions (50 000 by default: about
// 660 million invocations) through N simulated nodes (each the daemon's decision
// core, the daemon's routing and pull rules) on T worker threads, for the first
// `minutes` of the day or all of it. Reports the rate per second of wall time and
// per second of CPU time (the machine is shared: wall time depends on what else
// runs), the trace's generation and load, and the process's peak memory.

import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runClusterSimulateCommand } from '../src/sim/cluster/cli.js';
import type { ClusterSimResult } from '../src/sim/cluster/cluster.js';
import { loadAzureTrace } from '../src/traces/azure.js';
import { writeAzureTrace } from '../src/traces/generate.js';
import { machine } from './common.js';

export interface ClusterSpeedOptions {
  nodes: number;
  functions?: number;
  threads?: number;
  /** simulate the first minutes of the day (default all of it) */
  minutes?: number;
  seed?: number;
  routing?: string;
  pullRule?: string;
  cores?: number;
  memoryMiB?: number;
  /** note the speed every S simulated seconds (default 60): the rate of each stretch of the day */
  progressS?: number;
}

export interface ClusterSpeedResult {
  machine: Record<string, string | number>;
  options: ClusterSpeedOptions;
  dayInvocations: number;
  generateMs: number;
  loadMs: number;
  result: ClusterSimResult;
  /** simulated invocations per second of wall time and per second of CPU time (all threads) */
  perWallSecond: number;
  perCpuSecond: number;
  peakRssMiB: number;
}

export async function benchClusterSpeed(o: ClusterSpeedOptions): Promise<ClusterSpeedResult> {
  const functions = o.functions ?? 50_000;
  const seed = o.seed ?? 1;
  const dir = path.join(os.tmpdir(), `fc-sim-cluster-day-${functions}-${seed}`);
  let t0 = performance.now();
  if (!existsSync(path.join(dir, 'invocations_per_function_md.anon.d01.csv'))) writeAzureTrace(dir, { functions, seed });
  const generateMs = performance.now() - t0;
  t0 = performance.now();
  // only its size is kept: the cells load the day themselves (no reference left, it is collected before the run)
  const dayInvocations = (await loadAzureTrace(dir)).totalInvocations;
  const loadMs = performance.now() - t0;
  const result = await runClusterSimulateCommand({
    trace: dir,
    nodes: o.nodes,
    threads: o.threads ?? 2,
    durationS: o.minutes === undefined ? undefined : o.minutes * 60,
    routing: o.routing,
    pullRule: o.pullRule ?? 'starts',
    cores: o.cores ?? 8,
    memoryMib: o.memoryMiB ?? 32_768,
    seed,
    progressS: o.progressS ?? 60,
    write: () => undefined,
  });
  return {
    machine: machine(),
    options: o,
    dayInvocations,
    generateMs,
    loadMs,
    result,
    perWallSecond: (result.invocations * 1000) / result.wallMs,
    perCpuSecond: (result.invocations * 1000) / result.cpuMs,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

export function formatClusterSpeed(r: ClusterSpeedResult): string {
  const x = r.result;
  const m = (v: number): string => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : `${(v / 1e3).toFixed(1)} k`);
  return [
    `### Cluster simulator speed (\`faascell bench sim --nodes ${r.options.nodes}\`)`,
    '',
    `Synthetic Azure-format day: ${r.options.functions ?? 50_000} functions, ${r.dayInvocations.toLocaleString('en')} invocations (generated in ${(r.generateMs / 1000).toFixed(0)} s, or cached; loaded in ${(r.loadMs / 1000).toFixed(1)} s). ` +
      `Simulated: ${r.options.minutes === undefined ? 'the whole day' : `the first ${r.options.minutes} minutes`}, ${x.invocations.toLocaleString('en')} invocations, ${x.nodes} nodes (${r.options.cores ?? 8} cores, ${r.options.memoryMiB ?? 32768} MiB each), routing ${x.routing}, ${r.options.threads ?? 2} threads. Machine: ${r.machine.cpu}, ${r.machine.cores} cores, load average ${r.machine.loadavg} (shared with other work).`,
    '',
    `| wall | CPU (all threads) | invocations / s of wall time | invocations / s of CPU time | peak RSS | warm / restore / cold | broker rounds | heartbeats | node events |`,
    `|---|---|---|---|---|---|---|---|---|`,
    `| ${(x.wallMs / 1000).toFixed(0)} s | ${(x.cpuMs / 1000).toFixed(0)} s | ${m(r.perWallSecond)} | ${m(r.perCpuSecond)} | ${r.peakRssMiB} MiB | ${(100 * x.warmFraction).toFixed(2)} % / ${(100 * x.restoreFraction).toFixed(2)} % / ${(100 * x.coldStartFraction).toFixed(2)} % | ${x.broker.rounds.toLocaleString('en')} | ${x.broker.heartbeats.toLocaleString('en')} | ${x.nodeEvents.toLocaleString('en')} |`,
    ...progressTable(r),
  ].join('\n');
}

/** The speed stretch by stretch: the first minutes (an empty cluster filling up) cost more than the day's steady state. */
function progressTable(r: ClusterSpeedResult): string[] {
  const p = r.result.progress ?? [];
  if (p.length === 0) return [];
  const rows = p.map((x, i) => {
    const prev = i > 0 ? p[i - 1]! : { simulatedS: 0, accepted: 0, wallMs: 0, cpuMs: 0 };
    const inv = x.accepted - prev.accepted;
    const cpu = x.cpuMs - prev.cpuMs;
    return `| ${prev.simulatedS}–${x.simulatedS} s | ${inv.toLocaleString('en')} | ${((x.wallMs - prev.wallMs) / 1000).toFixed(1)} s | ${(cpu / 1000).toFixed(1)} s | ${cpu > 0 ? ((inv * 1000) / cpu / 1000).toFixed(1) : '—'} k |`;
  });
  return ['', 'Stretch by stretch (invocations accepted; wall and CPU time of the whole process when the slowest cell got there):', '', '| simulated | invocations | wall | CPU | per CPU second |', '|---|---|---|---|---|', ...rows];
}
