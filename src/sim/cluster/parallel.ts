// A large simulated cluster on several threads (issue 23): the cluster is split
// into cells, each on its own worker thread with its share of the nodes and the
// functions whose name hashes to it (every invocation of a function stays in its
// cell: locality keeps a function on few nodes anyway, and a cell of hundreds of
// nodes offers as many choices as the whole). Cells do not exchange work: a cell's
// shared queue is served by its own nodes only. That is the one approximation;
// docs/cluster-simulation.md measures what it changes at 100 nodes (one cell of 100
// against two of 50). The results are merged: counts add up, latency histograms merge.

import { Worker } from 'node:worker_threads';
import { LatencyHistogram } from '../histogram.js';
import { subsetTrace } from '../../traces/transform.js';
import type { Trace } from '../../traces/types.js';
import { hashName } from './broker.js';
import type { ClusterCommandOptions } from './cli.js';
import type { ClusterProgress, ClusterSimResult } from './cluster.js';

/** The functions of cell `index` of `of`: those whose name hashes to it. */
export function cellTrace(t: Trace, index: number, of: number): Trace {
  const keep = t.functions.filter((f) => hashName(f.name) % of === index).map((f) => f.index);
  return subsetTrace(t, { functions: keep });
}

/** Start a worker on the cell module, compiled (.js) or through tsx's loader (.ts, as bin/faascell.js runs the sources). */
function startCell(data: unknown): Worker {
  const url = new URL(`./cell-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);
  if (url.pathname.endsWith('.js')) return new Worker(url, { workerData: data });
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

export async function simulateCells(cmd: ClusterCommandOptions, cells: number): Promise<ClusterSimResult & { cells: number }> {
  if (!(Number.isInteger(cells) && cells >= 1)) throw new Error(`--threads: a whole number ≥ 1 (got ${cells})`);
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  // the command's own options only: functions (write) stay in this thread
  const { write: _w, ...plain } = cmd;
  const parts = await Promise.all(
    Array.from(
      { length: cells },
      (_, index) =>
        new Promise<ClusterSimResult>((resolve, reject) => {
          const w = startCell({ cmd: { ...plain, cell: { index, of: cells } } });
          w.once('message', (r: ClusterSimResult) => resolve(r));
          w.once('error', reject);
          w.once('exit', (code) => {
            if (code !== 0) reject(new Error(`cell ${index}: worker exited with ${code}`));
          });
        }),
    ),
  );
  const cpu = process.cpuUsage(cpu0);
  const merged = mergeCells(parts);
  const wallMs = performance.now() - wall0;
  return { ...merged, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, invocationsPerSecond: wallMs > 0 ? (merged.invocations * 1000) / wallMs : 0, cells };
}

/** One result of the cells' results (wall and CPU time are the caller's). */
export function mergeCells(parts: ClusterSimResult[]): ClusterSimResult {
  const sum = (f: (r: ClusterSimResult) => number): number => parts.reduce((a, r) => a + f(r), 0);
  const hist = new LatencyHistogram();
  for (const p of parts) if (p.latency) hist.merge(p.latency);
  const inv = sum((r) => r.invocations);
  const frac = (x: number): number => (inv > 0 ? x / inv : 0);
  const broker = { ...parts[0]!.broker, refusedByReason: {} as Record<string, number> };
  for (const k of Object.keys(broker) as Array<keyof typeof broker>) if (typeof broker[k] === 'number') (broker as Record<string, unknown>)[k] = sum((r) => r.broker[k] as number);
  const refusedByReason: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.refusedByReason)) refusedByReason[k] = (refusedByReason[k] ?? 0) + v;
  broker.refusedByReason = refusedByReason;
  const warm = sum((r) => r.warm);
  const restores = sum((r) => r.restores);
  const coldStarts = sum((r) => r.coldStarts);
  const completed = sum((r) => r.completed);
  return {
    nodes: sum((r) => r.nodes),
    routing: parts[0]!.routing,
    functions: sum((r) => r.functions),
    memoryMiBPerNode: parts[0]!.memoryMiBPerNode,
    invocations: inv,
    completed,
    goodput: frac(completed),
    warm,
    restores,
    coldStarts,
    warmFraction: frac(warm),
    restoreFraction: frac(restores),
    coldStartFraction: frac(coldStarts),
    refused: sum((r) => r.refused),
    refusedByReason,
    unanswered: sum((r) => r.unanswered),
    coldBoots: sum((r) => r.coldBoots),
    restoresStarted: sum((r) => r.restoresStarted),
    evictions: sum((r) => r.evictions),
    expirations: sum((r) => r.expirations),
    snapshots: sum((r) => r.snapshots),
    snapshotFunctions: sum((r) => r.snapshotFunctions),
    peakNodeMemoryMiB: Math.max(...parts.map((r) => r.peakNodeMemoryMiB)),
    meanClusterMemoryMiB: sum((r) => r.meanClusterMemoryMiB),
    p50Ms: hist.percentile(50),
    p99Ms: hist.percentile(99),
    meanMs: hist.mean(),
    broker,
    simulatedSeconds: Math.max(...parts.map((r) => r.simulatedSeconds)),
    wallMs: Math.max(...parts.map((r) => r.wallMs)),
    cpuMs: sum((r) => r.cpuMs),
    invocationsPerSecond: 0,
    nodeEvents: sum((r) => r.nodeEvents),
    progress: mergeProgress(parts),
    latency: { buckets: hist.buckets(), count: hist.count, sum: hist.sum, max: hist.max },
  };
}

/**
 * The cells' progress marks, mark by mark: invocations add up; wall and CPU time are the
 * slowest cell's (a worker's process.cpuUsage() counts the whole process, every thread).
 */
function mergeProgress(parts: ClusterSimResult[]): ClusterProgress[] | undefined {
  const lists = parts.map((r) => r.progress);
  if (lists.some((l) => l === undefined)) return undefined;
  const n = Math.min(...lists.map((l) => l!.length));
  const sum = (i: number, f: (p: ClusterProgress) => number | undefined): number => lists.reduce((a, l) => a + (f(l![i]!) ?? 0), 0);
  return Array.from({ length: n }, (_, i) => ({
    simulatedS: lists[0]![i]!.simulatedS,
    accepted: sum(i, (p) => p.accepted),
    wallMs: Math.max(...lists.map((l) => l![i]!.wallMs)),
    cpuMs: Math.max(...lists.map((l) => l![i]!.cpuMs)),
    instances: sum(i, (p) => p.instances),
    idle: sum(i, (p) => p.idle),
    functions: sum(i, (p) => p.functions),
    snapshots: sum(i, (p) => p.snapshots),
    heapMiB: sum(i, (p) => p.heapMiB),
  }));
}
