// `faascell simulate --nodes N`: the trace through a simulated cluster of N nodes
// (cluster.ts). The node flags of `faascell simulate` apply to every node; the
// cluster flags are the `cluster` block's keys (docs/cluster.md) plus the
// routing policy and node failures for experiments.

import { writeSync } from 'node:fs';
import { PULL_RULES, type PullRule } from '../../cluster/capacity.js';
import { createPolicies, type ResolvedPolicySet } from '../../policies/index.js';
import { simulationSetup, type SimulateCommandOptions } from '../cli.js';
import { ROUTING_POLICIES, type RoutingPolicy } from './broker.js';
import { livesOf, simulateCluster, type ClusterSimOptions, type ClusterSimResult } from './cluster.js';
import { cellTrace, simulateCells } from './parallel.js';
import { nonNegativeFlag } from '../../cli/flags.js';

export interface ClusterCommandOptions extends SimulateCommandOptions {
  nodes: number | string;
  routing?: string;
  roundMs?: number | string;
  heartbeatMs?: number | string;
  nodeTimeoutMs?: number | string;
  localityWaitMs?: number | string;
  ackWaitMs?: number | string;
  maxDeliveries?: number | string;
  maxInFlight?: number | string;
  pullRule?: string;
  hopMs?: number | string;
  /** node@seconds or node@seconds+restartSeconds, comma-separated */
  fail?: string;
  /** seconds at the start not counted in the request-level results */
  warmupS?: number | string;
  /** a profile tier all nodes share (their snapshots restore anywhere) */
  sharedSnapshotTier?: string;
  /** split the cluster into this many cells simulated on as many threads (parallel.ts); default 1 */
  threads?: number | string;
  /** note the progress every S simulated seconds (the result's `progress`, and a line on stderr each time) */
  progressS?: number | string;
  /** inside a cell's thread: which cell this is */
  cell?: { index: number; of: number };
}


/** "1@600,3@1200+300": node 1 dies at 600 s; node 3 dies at 1200 s and starts again 300 s later. */
export function parseFailures(v: string | undefined): NonNullable<ClusterSimOptions['failures']> {
  if (!v) return [];
  return v.split(',').map((part) => {
    const m = /^(\d+)@(\d+(?:\.\d+)?)(?:\+(\d+(?:\.\d+)?))?$/.exec(part.trim());
    if (!m) throw new Error(`--fail: NODE@SECONDS[+RESTART_SECONDS], comma-separated (got '${part}')`);
    return { node: Number(m[1]), atMs: Number(m[2]) * 1000, ...(m[3] !== undefined ? { restartAfterMs: Number(m[3]) * 1000 } : {}) };
  });
}

function maxDeliveriesFlag(v: number | string | undefined): number | undefined {
  const n = nonNegativeFlag(v, 'max-deliveries');
  if (n !== undefined && !(Number.isInteger(n) && n >= 1)) throw new Error(`--max-deliveries: a whole number ≥ 1 (got ${v})`);
  return n;
}

function pullRuleOf(v: string | undefined): PullRule | undefined {
  if (v === undefined) return undefined;
  if (!(PULL_RULES as readonly string[]).includes(v)) throw new Error(`--pull-rule: ${PULL_RULES.join(' | ')} (got '${v}')`);
  return v as PullRule;
}

/** The cluster simulation a command line describes (without running it). */
export async function clusterOptions(opts: ClusterCommandOptions): Promise<ClusterSimOptions> {
  const su = await simulationSetup(opts);
  let nodes = nonNegativeFlag(opts.nodes, 'nodes')!;
  if (!(Number.isInteger(nodes) && nodes >= 1)) throw new Error(`--nodes: a whole number ≥ 1 (got ${opts.nodes})`);
  if (opts.cell) {
    // one cell of a parallel run: its share of the nodes, the functions that hash to it
    const { index, of } = opts.cell;
    nodes = Math.floor(nodes / of) + (index < nodes % of ? 1 : 0);
    su.trace = cellTrace(su.trace, index, of);
    su.seed = (su.seed ?? 1) + index;
    su.expand = { ...su.expand, seed: (su.expand.seed ?? 1) + index };
  }
  const routing = (opts.routing ?? 'locality') as RoutingPolicy;
  if (!ROUTING_POLICIES.includes(routing)) throw new Error(`--routing: ${ROUTING_POLICIES.join(' | ')} (got '${opts.routing}')`);
  // a cell's own nodes fail, renumbered in the cell (node j of the cluster is node ⌊j / of⌋ of cell j mod of)
  const all = parseFailures(opts.fail);
  const cell = opts.cell;
  const failures = cell ? all.filter((f) => f.node % cell.of === cell.index).map((f) => ({ ...f, node: Math.floor(f.node / cell.of) })) : all;
  const sets: ResolvedPolicySet[][] = [];
  for (let k = 0; k < nodes; k++) {
    const lives: ResolvedPolicySet[] = [];
    for (let l = 0; l < livesOf({ nodes, failures }, k); l++) lives.push(await createPolicies(su.policiesConfig, { baseDir: su.baseDir }));
    sets.push(lives);
  }
  const maxInFlight = opts.maxInFlight === undefined || opts.maxInFlight === 'auto' ? undefined : nonNegativeFlag(opts.maxInFlight, 'max-in-flight');
  return {
    trace: su.trace,
    profile: su.profile,
    nodes,
    policies: (k, life) => sets[k]![life]!,
    memoryMiB: su.memoryMiB,
    node: su.node,
    maxInstancesPerFunction: su.maxInstancesPerFunction,
    maxQueueDelayMs: su.maxQueueDelayMs,
    routing,
    roundMs: nonNegativeFlag(opts.roundMs, 'round-ms'),
    heartbeatMs: nonNegativeFlag(opts.heartbeatMs, 'heartbeat-ms'),
    nodeTimeoutMs: nonNegativeFlag(opts.nodeTimeoutMs, 'node-timeout-ms'),
    localityWaitMs: nonNegativeFlag(opts.localityWaitMs, 'locality-wait-ms'),
    ackWaitMs: nonNegativeFlag(opts.ackWaitMs, 'ack-wait-ms'),
    maxDeliveries: maxDeliveriesFlag(opts.maxDeliveries),
    maxInFlight,
    pullRule: pullRuleOf(opts.pullRule),
    sharedSnapshotTier: opts.sharedSnapshotTier,
    warmupMs: opts.warmupS === undefined ? undefined : nonNegativeFlag(opts.warmupS, 'warmup-s')! * 1000,
    hopMs: nonNegativeFlag(opts.hopMs, 'hop-ms'),
    timeScale: su.timeScale,
    durationMs: su.durationMs,
    expand: su.expand,
    seed: su.seed,
    failures,
    ...progressOptions(opts),
  };
}

function progressOptions(opts: ClusterCommandOptions): Pick<ClusterSimOptions, 'progressEveryMs' | 'onProgress'> {
  const s = nonNegativeFlag(opts.progressS, 'progress-s');
  if (s === undefined) return {};
  if (!(s > 0)) throw new Error(`--progress-s: a number of seconds > 0 (got ${opts.progressS})`);
  const who = opts.cell ? `cell ${opts.cell.index + 1}/${opts.cell.of}` : 'cluster';
  return {
    progressEveryMs: s * 1000,
    // written at once (writeSync): a cell's thread never returns to its event loop before its end, so
    // process.stderr (asynchronous in a worker) would hold every line after the first until then
    onProgress: (p) => void writeSync(2, `progress ${who}: ${p.simulatedS} s simulated, ${p.accepted} invocations, wall ${(p.wallMs / 1000).toFixed(1)} s, CPU ${(p.cpuMs / 1000).toFixed(1)} s; nodes hold ${p.instances} instances (${p.idle} idle), ${p.functions} functions, ${p.snapshots} snapshots; heap ${p.heapMiB} MiB\n`),
  };
}

export async function runClusterSimulateCommand(opts: ClusterCommandOptions): Promise<ClusterSimResult> {
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  const threads = nonNegativeFlag(opts.threads, 'threads') ?? 1;
  const r = threads > 1 ? await simulateCells(opts, threads) : simulateCluster(await clusterOptions(opts));
  if (opts.json) write(JSON.stringify(r) + '\n');
  else write(formatClusterResult(r));
  return r;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
const rate = (x: number): string => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0));

export function formatClusterResult(r: ClusterSimResult): string {
  const b = r.broker;
  return (
    [
      `cluster           ${r.nodes} nodes, routing ${r.routing}, ${r.memoryMiBPerNode === null ? 'unlimited memory' : `${r.memoryMiBPerNode} MiB`} per node`,
      `functions         ${r.functions}`,
      `invocations       ${r.invocations}`,
      `warm              ${r.warm} (${pct(r.warmFraction)})`,
      `restores          ${r.restores} (${pct(r.restoreFraction)})`,
      `cold starts       ${r.coldStarts} (${pct(r.coldStartFraction)})`,
      `not answered      ${r.refused} refused (${Object.entries(r.refusedByReason).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}), ${r.unanswered} still waiting at the end`,
      `instances         ${r.coldBoots} booted, ${r.restoresStarted} restored, ${r.evictions} evicted, ${r.expirations} expired`,
      `snapshots         ${r.snapshots} at the end, of ${r.snapshotFunctions} functions`,
      `memory            largest node peak ${Math.round(r.peakNodeMemoryMiB)} MiB; cluster mean ${Math.round(r.meanClusterMemoryMiB)} MiB`,
      `latency           p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, mean ${r.meanMs.toFixed(1)} ms (with the broker hop)`,
      `broker            routed warm ${b.targetedWarm}, snapshot ${b.targetedSnapshot}, busy ${b.targetedBusy}, other ${b.targetedOther}, shared ${b.toShared}; forwarded ${b.forwarded}, handed back ${b.handedBack}, redelivered ${b.redelivered}, rescued ${b.rescued}`,
      `simulated         ${r.simulatedSeconds.toFixed(0)} s in ${r.wallMs.toFixed(0)} ms wall, ${r.cpuMs.toFixed(0)} ms CPU (${rate(r.invocationsPerSecond)} invocations/s; ${b.rounds} broker rounds, ${b.heartbeats} heartbeats, ${r.nodeEvents} node events)`,
    ].join('\n') + '\n'
  );
}
