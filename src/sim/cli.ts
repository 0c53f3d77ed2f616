// `faascell simulate`: run one node's policies over a trace.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createPolicies, KEEP_ALIVE_NAMES, type PoliciesConfigInput } from '../policies/index.js';
import { loadTrace, type TraceFormat } from '../traces/index.js';
import type { Spread } from '../traces/expand.js';
import { loadProfile } from './profile.js';
import { simulate, type SimulationResult } from './simulator.js';

export interface SimulateCommandOptions {
  trace: string;
  format?: TraceFormat;
  /** Keep-alive policy by name, with its defaults (none | fixed | greedy-dual | hybrid-histogram). */
  policy?: string;
  /** Memory budget (MiB); default unlimited. */
  memoryMib?: number | string;
  profile?: string;
  json?: boolean;
  /** Multiply trace time by this factor (0.5 = arrivals twice as dense). */
  timeScale?: number | string;
  /** Daemon config file (YAML/JSON): its `policies` section is used (--policy then overrides keepAlive). */
  config?: string;
  /** Azure day (d01, 1). */
  day?: string;
  /** Simulate only the first S seconds. */
  durationS?: number | string;
  /** Keep only the N most invoked functions. */
  topFunctions?: number | string;
  maxInstances?: number | string;
  maxQueueDelayMs?: number | string;
  spread?: Spread;
  seed?: number | string;
  /** FaaSRail slot length (s). */
  slotSeconds?: number | string;
  /** Where output goes (default process.stdout). */
  write?: (s: string) => void;
}

function num(v: number | string | undefined, what: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const x = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(x)) throw new Error(`--${what}: not a number: ${v}`);
  return x;
}

async function readPoliciesFromConfig(file: string): Promise<PoliciesConfigInput> {
  const text = await readFile(file, 'utf8');
  const doc = (/\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text)) as Record<string, unknown> | null;
  return (doc?.policies ?? {});
}

export async function runSimulateCommand(opts: SimulateCommandOptions): Promise<SimulationResult> {
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  let cfg: Record<string, unknown> = {};
  let baseDir = process.cwd();
  if (opts.config) {
    cfg = { ...(await readPoliciesFromConfig(opts.config)) };
    baseDir = path.dirname(path.resolve(opts.config));
  }
  if (opts.policy) {
    if (!(KEEP_ALIVE_NAMES as readonly string[]).includes(opts.policy)) {
      throw new Error(`--policy: unknown keep-alive policy '${opts.policy}' (${KEEP_ALIVE_NAMES.join(', ')})`);
    }
    cfg.keepAlive = { policy: opts.policy };
  }
  const seed = num(opts.seed, 'seed');
  if (seed !== undefined) cfg.seed = seed;
  const policies = await createPolicies(cfg, { baseDir });
  const trace = await loadTrace(opts.trace, opts.format ?? 'azure', {
    day: opts.day,
    topFunctions: num(opts.topFunctions, 'top-functions'),
    slotSeconds: num(opts.slotSeconds, 'slot-seconds'),
  });
  const profile = await loadProfile(opts.profile);
  const memory = num(opts.memoryMib, 'memory-mib');
  const durationS = num(opts.durationS, 'duration');
  const res = simulate({
    trace,
    policies,
    profile,
    memoryMiB: memory ?? Infinity,
    timeScale: num(opts.timeScale, 'time-scale'),
    durationMs: durationS === undefined ? undefined : durationS * 1000,
    maxInstancesPerFunction: num(opts.maxInstances, 'max-instances'),
    maxQueueDelayMs: num(opts.maxQueueDelayMs, 'max-queue-delay-ms'),
    expand: { spread: opts.spread, seed: seed ?? 1 },
  });
  if (opts.json) write(JSON.stringify(res) + '\n');
  else write(formatResult(res));
  return res;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;

export function formatResult(r: SimulationResult): string {
  const lines = [
    `policy            ${r.policy} (eviction ${r.eviction}, selection ${r.selection}, placement ${r.placement})`,
    `memory budget     ${r.memoryMiB === null ? 'unlimited' : `${r.memoryMiB} MiB`} (peak ${Math.round(r.peakMemoryMiB)} MiB)`,
    `functions         ${r.functions}`,
    `invocations       ${r.invocations}`,
    `warm              ${r.warm} (${pct(r.warmFraction)})`,
    `restores          ${r.restores} (${pct(r.restoreFraction)})`,
    `cold starts       ${r.coldStarts} (${pct(r.coldStartFraction)})`,
    `dropped           ${r.dropped} (${pct(r.droppedFraction)})`,
    `latency           p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, mean ${r.meanMs.toFixed(1)} ms (queueing mean ${r.meanQueueMs.toFixed(1)} ms)`,
    `wasted memory     ${Math.round(r.wastedMemoryMiBSeconds)} MiB·s (idle instances)`,
    `instances         ${r.instancesCreated} created, ${r.evictions} evicted, ${r.expirations} expired, ${r.prewarms} pre-warmed`,
    `simulated         ${r.simulatedSeconds.toFixed(0)} s in ${r.wallMs.toFixed(0)} ms wall (${fmtRate(r.invocationsPerSecond)} invocations/s, ${fmtRate(r.eventsPerSecond)} events/s)`,
  ];
  return lines.join('\n') + '\n';
}

function fmtRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0);
}
