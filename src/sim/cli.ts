// `faascell simulate`: run one node's policies over a trace.
import path from 'node:path';
import { createPolicies, KEEP_ALIVE_NAMES, type PoliciesConfigInput } from '../policies/index.js';
import { loadTrace, type TraceFormat } from '../traces/index.js';
import type { ExpandOptions, Spread } from '../traces/expand.js';
import type { Trace } from '../traces/types.js';
import { loadProfile, type Profile } from './profile.js';
import { simulate, type SimNodeOptions, type SimulationOptions, type SimulationResult } from './simulator.js';
import { loadConfigFile, type Config } from '../config/schema.js';
import { numberFlag } from '../cli/flags.js';

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
  /** the simulated node: cores, start slots (n | auto), concurrency, LOW,HIGH watermarks; --no-cpu-model, --no-snapshots */
  cores?: number | string;
  maxConcurrentStarts?: number | string;
  maxConcurrency?: number | string;
  watermarks?: string;
  cpuModel?: boolean;
  snapshots?: boolean;
  /** Where output goes (default process.stdout). */
  write?: (s: string) => void;
}


export interface SimulatedNode {
  policies: PoliciesConfigInput;
  node: Partial<SimNodeOptions>;
  memoryMiB: number;
  maxInstances: number;
  maxQueueDelayMs: number;
}

/** The node a daemon config file describes, as the simulator models it (flags override it). */
function nodeFromConfig(file: string): SimulatedNode {
  return simulatedNode(loadConfigFile(file).config);
}

/** The node a daemon's effective configuration describes, as the simulator models it. */
export function simulatedNode(c: Config): SimulatedNode {
  return {
    policies: c.policies,
    node: {
      lowWatermark: c.node.lowWatermark,
      highWatermark: c.node.highWatermark,
      maxConcurrentInvocations: c.admission.maxConcurrentInvocations,
      maxQueueLength: c.admission.maxQueueLength,
      maxConcurrentStarts: c.admission.maxConcurrentStarts,
      preferWarm: c.admission.preferWarm,
      backoffBaseMs: c.admission.startBackoffBaseMs,
      backoffMaxMs: c.admission.startBackoffMaxMs,
      fairness: c.admission.fairness,
      snapshots: c.snapshots.enabled,
      idleVmCpu: c.node.idleVmCpu,
      // issue 18: a start's cgroup weight over a running VM's, in the CPU model
      cpuWeight: c.limits.cpuWeight,
      startCpuWeight: c.limits.startCpuWeight,
      startCpuWeightScope: c.limits.startCpuWeightScope,
      // issue 24: the config's memory accounting (measured needs the profile's memory model: docs/density.md)
      memoryAccounting: c.node.memory.accounting,
      memoryReserve: c.node.memory.reserve,
      memorySampleMs: c.node.memory.sampleIntervalMs,
      ...(c.node.cores !== undefined ? { cores: c.node.cores } : c.node.cpus.length > 0 ? { cores: c.node.cpus.length } : {}),
    },
    memoryMiB: c.node.memoryBudgetMiB,
    maxInstances: c.functionDefaults.maxInstances,
    maxQueueDelayMs: c.admission.maxQueueDelayMs,
  };
}

/**
 * simulate()'s options for the node a daemon configuration describes (simulatedNode): its policies (made from its
 * `policies` section, module paths resolved from `baseDir`), memory budget, instance limit, queue deadline, node model.
 */
export async function nodeSimulationOptions(node: SimulatedNode, baseDir: string): Promise<Pick<SimulationOptions, 'policies' | 'memoryMiB' | 'maxInstancesPerFunction' | 'maxQueueDelayMs' | 'node'>> {
  return { policies: await createPolicies(node.policies, { baseDir }), memoryMiB: node.memoryMiB, maxInstancesPerFunction: node.maxInstances, maxQueueDelayMs: node.maxQueueDelayMs, node: node.node };
}

/** What a simulate command line describes: the trace, the profile, the policies' configuration and the simulated node. */
export interface SimulationSetup {
  trace: Trace;
  profile: Profile;
  /** the policies' configuration (createPolicies makes one set per node) */
  policiesConfig: Record<string, unknown>;
  baseDir: string;
  memoryMiB: number;
  node: Partial<SimNodeOptions>;
  maxInstancesPerFunction: number | undefined;
  maxQueueDelayMs: number | undefined;
  timeScale: number | undefined;
  durationMs: number | undefined;
  expand: ExpandOptions;
  seed: number | undefined;
}

export async function simulationSetup(opts: SimulateCommandOptions): Promise<SimulationSetup> {
  let cfg: Record<string, unknown> = {};
  let baseDir = process.cwd();
  let fromConfig: ReturnType<typeof nodeFromConfig> | undefined;
  if (opts.config) {
    fromConfig = nodeFromConfig(opts.config);
    cfg = { ...fromConfig.policies };
    baseDir = path.dirname(path.resolve(opts.config));
  }
  if (opts.policy) {
    if (!(KEEP_ALIVE_NAMES as readonly string[]).includes(opts.policy)) {
      throw new Error(`--policy: unknown keep-alive policy '${opts.policy}' (${KEEP_ALIVE_NAMES.join(', ')})`);
    }
    cfg.keepAlive = { policy: opts.policy };
  }
  const seed = numberFlag(opts.seed, 'seed');
  if (seed !== undefined) cfg.seed = seed;
  const trace = await loadTrace(opts.trace, opts.format ?? 'azure', {
    day: opts.day,
    topFunctions: numberFlag(opts.topFunctions, 'top-functions'),
    slotSeconds: numberFlag(opts.slotSeconds, 'slot-seconds'),
  });
  const profile = await loadProfile(opts.profile);
  const memory = numberFlag(opts.memoryMib, 'memory-mib');
  const durationS = numberFlag(opts.durationS, 'duration-s');
  const node: Partial<SimNodeOptions> = { ...fromConfig?.node };
  const cores = numberFlag(opts.cores, 'cores');
  if (cores !== undefined) node.cores = cores;
  if (opts.maxConcurrentStarts !== undefined) node.maxConcurrentStarts = opts.maxConcurrentStarts === 'auto' ? 'auto' : numberFlag(opts.maxConcurrentStarts, 'max-concurrent-starts');
  const conc = numberFlag(opts.maxConcurrency, 'max-concurrency');
  if (conc !== undefined) node.maxConcurrentInvocations = conc;
  if (opts.watermarks !== undefined) {
    const [low, high] = String(opts.watermarks).split(',').map(Number);
    if (!(low! >= 0 && high! <= 1 && low! <= high!)) throw new Error(`--watermarks: LOW,HIGH with 0 <= LOW <= HIGH <= 1, got ${opts.watermarks}`);
    node.lowWatermark = low!;
    node.highWatermark = high!;
  }
  if (opts.cpuModel === false) node.cpuModel = false;
  if (opts.snapshots === false) node.snapshots = false;
  return {
    trace,
    profile,
    policiesConfig: cfg,
    baseDir,
    memoryMiB: memory ?? fromConfig?.memoryMiB ?? Infinity,
    node,
    maxInstancesPerFunction: numberFlag(opts.maxInstances, 'max-instances') ?? fromConfig?.maxInstances,
    maxQueueDelayMs: numberFlag(opts.maxQueueDelayMs, 'max-queue-delay-ms') ?? fromConfig?.maxQueueDelayMs,
    timeScale: numberFlag(opts.timeScale, 'time-scale'),
    durationMs: durationS === undefined ? undefined : durationS * 1000,
    expand: { spread: opts.spread, seed: seed ?? 1 },
    seed,
  };
}

export async function runSimulateCommand(opts: SimulateCommandOptions): Promise<SimulationResult> {
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  const su = await simulationSetup(opts);
  const res = simulate({
    trace: su.trace,
    policies: await createPolicies(su.policiesConfig, { baseDir: su.baseDir }),
    profile: su.profile,
    memoryMiB: su.memoryMiB,
    timeScale: su.timeScale,
    durationMs: su.durationMs,
    maxInstancesPerFunction: su.maxInstancesPerFunction,
    maxQueueDelayMs: su.maxQueueDelayMs,
    expand: su.expand,
    node: su.node,
  });
  if (opts.json) write(JSON.stringify(res) + '\n');
  else write(formatResult(res));
  return res;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;

export function formatResult(r: SimulationResult): string {
  const lines = [
    `policy            ${r.policy} (eviction ${r.eviction}, selection ${r.selection}, placement ${r.placement}, admission ${r.admission})`,
    `memory budget     ${r.memoryMiB === null ? 'unlimited' : `${r.memoryMiB} MiB`} (peak ${Math.round(r.peakMemoryMiB)} MiB)`,
    `functions         ${r.functions}`,
    `invocations       ${r.invocations}`,
    // requests by the kind of instance that served them; instances started are counted below
    // (issue 20: a restore that ends up serving no request — another instance freed up first — or a
    // pre-warm is an instance restored but no request "served by a restore")
    `served warm       ${r.warm} (${pct(r.warmFraction)})`,
    `served restored   ${r.restores} (${pct(r.restoreFraction)}: requests that waited for a restore)`,
    `served cold       ${r.coldStarts} (${pct(r.coldStartFraction)}: requests that waited for a cold boot)`,
    `not completed     ${r.dropped} (${pct(r.droppedFraction)}: ${r.rejected.queueFull} queue full, ${r.rejected.overloaded} refused early, ${r.rejected.queueTimeout} timed out in the queue, ${r.rejected.unservedAtEnd} still queued at the end)`,
    // issue 18: how long refused requests waited for their refusal (early: at arrival; late: at the queueing deadline)
    `refusals          p50 ${r.refusalP50Ms.toFixed(0)} ms, p99 ${r.refusalP99Ms.toFixed(0)} ms after arrival, ${pct(r.refusedWithin1s)} within 1 s`,
    `instances started ${r.coldBoots} cold-booted (mean ${r.meanColdBootMs.toFixed(0)} ms), ${r.restoresStarted} restored (mean ${r.meanRestoreMs.toFixed(0)} ms)`,
    `latency           p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, mean ${r.meanMs.toFixed(1)} ms (queueing mean ${r.meanQueueMs.toFixed(1)} ms)`,
    `wasted memory     ${Math.round(r.wastedMemoryMiBSeconds)} MiB·s (idle instances)`,
    `                  ${r.evictions} evicted, ${r.expirations} expired, ${r.prewarms} pre-warmed`,
    `simulated         ${r.simulatedSeconds.toFixed(0)} s in ${r.wallMs.toFixed(0)} ms wall (${fmtRate(r.invocationsPerSecond)} invocations/s, ${fmtRate(r.eventsPerSecond)} events/s)`,
  ];
  return lines.join('\n') + '\n';
}

function fmtRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0);
}
