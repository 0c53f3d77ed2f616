// `faascell trace export` (issue 23): what a node served, from its activation
// records, in the trace formats the rest of FaaSCell reads — FaaSCell's own
// per-invocation file (invocations.ts), Azure Functions 2019's three files
// (per-minute counts, run-time percentiles, memory) and FaaSRail's request spec
// (per-minute counts and the mean run time per function). The formatting is
// pure: rows in, text out.

import type { ActivationRecord } from '../perf/activation.js';
import { azureDurationsFile, azureInvocationsFile, azureMemoryFile } from './azure.js';
import { csvField } from './csv.js';
import { formatInvocations, type InvocationRow, type InvocationsFile } from './invocations.js';

export type ExportFormat = 'invocations' | 'azure' | 'faasrail';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['invocations', 'azure', 'faasrail'];

/**
 * The row of one finished activation. Its arrival is when the cluster accepted it
 * (`cluster.acceptedAt`) for invocations that came through the broker, else when
 * the node received it; `memoryOf` gives the function's memory (the record does not).
 */
export function rowOf(rec: ActivationRecord, start: number, memoryOf: (fn: string) => number | undefined): InvocationRow {
  const at = rec.cluster?.acceptedAt ?? rec.timestamps.received ?? start;
  const ran = rec.runMs !== undefined && rec.status !== 'rejected';
  return {
    arrivalMs: Math.max(0, at - start),
    function: rec.function,
    durationMs: ran ? rec.runMs : undefined,
    memoryMiB: memoryOf(rec.function),
    startPath: rec.status === 'rejected' ? undefined : rec.startPath,
    status: rec.status,
    code: rec.error?.code,
    totalMs: rec.totalMs,
    node: rec.node,
  };
}

/** Merge the rows of several nodes (cluster mode): one window, sorted by arrival. */
export function mergeRows(files: InvocationsFile[]): InvocationsFile {
  if (files.length === 0) throw new Error('no traffic to merge');
  const start = Math.min(...files.map((f) => f.start));
  const end = Math.max(...files.map((f) => f.end));
  const rows = files.flatMap((f) => f.rows.map((r) => ({ ...r, arrivalMs: r.arrivalMs + (f.start - start) })));
  rows.sort((a, b) => a.arrivalMs - b.arrivalMs);
  return { start, end, rows };
}

interface PerFunction {
  name: string;
  counts: number[];
  durations: number[];
  memoryMiB: number | undefined;
}

function perFunction(f: InvocationsFile): { minutes: number; fns: PerFunction[] } {
  const minutes = Math.max(1, Math.ceil((f.end - f.start) / 60_000));
  const by = new Map<string, PerFunction>();
  for (const r of f.rows) {
    let p = by.get(r.function);
    if (!p) by.set(r.function, (p = { name: r.function, counts: new Array<number>(minutes).fill(0), durations: [], memoryMiB: undefined }));
    p.counts[Math.min(minutes - 1, Math.floor(r.arrivalMs / 60_000))]!++;
    if (r.durationMs !== undefined) p.durations.push(r.durationMs);
    if (r.memoryMiB !== undefined) p.memoryMiB = r.memoryMiB;
  }
  return { minutes, fns: [...by.values()] };
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Azure Functions 2019's layout of the traffic: `HashOwner` faascell, the
 * function's name as `HashApp` and `HashFunction` (one app per function, so the
 * app memory is the function's), per-minute counts from the window's start.
 */
export function azureFilesOf(f: InvocationsFile, day = 'd01'): Record<string, string> {
  const { minutes, fns } = perFunction(f);
  const inv = [['HashOwner', 'HashApp', 'HashFunction', 'Trigger', ...Array.from({ length: minutes }, (_, i) => String(i + 1))].join(',')];
  const dur = ['HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100'];
  const mem = ['HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,AverageAllocatedMb_pct100'];
  for (const p of fns) {
    const name = csvField(p.name);
    inv.push(['faascell', name, name, 'http', ...p.counts].join(','));
    if (p.durations.length > 0) {
      const d = [...p.durations].sort((a, b) => a - b);
      const avg = d.reduce((a, b) => a + b, 0) / d.length;
      dur.push(['faascell', name, name, r3(avg), d.length, r3(d[0]!), r3(d[d.length - 1]!), ...[0, 1, 25, 50, 75, 99, 100].map((q) => r3(pct(d, q)))].join(','));
    }
    if (p.memoryMiB !== undefined) mem.push(['faascell', name, p.counts.reduce((a, b) => a + b, 0), ...new Array<number>(9).fill(p.memoryMiB)].join(','));
  }
  return {
    [azureInvocationsFile(day)]: inv.join('\n') + '\n',
    [azureDurationsFile(day)]: dur.join('\n') + '\n',
    [azureMemoryFile(day)]: mem.join('\n') + '\n',
  };
}

/**
 * FaaSRail's request spec: one row per function, `mapped_wreq.bench` the
 * function's name (replay calls it by that name with `--workload-names`), its
 * mean and standard deviation of run time, an empty payload (records keep no
 * parameters), one column per minute.
 */
export function faasrailSpecOf(f: InvocationsFile): string {
  const { minutes, fns } = perFunction(f);
  const lines = [['avg', 'mapped_wreq', ...Array.from({ length: minutes }, (_, i) => String(i + 1))].join(',')];
  for (const p of fns) {
    const n = p.durations.length;
    const mean = n > 0 ? p.durations.reduce((a, b) => a + b, 0) / n : 0;
    const sd = n > 1 ? Math.sqrt(p.durations.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
    const wreq = JSON.stringify({ mean: r3(mean), stdev: r3(sd), bench: p.name, payload: '{}' });
    lines.push([Math.round(mean), csvField(wreq), ...p.counts].join(','));
  }
  return lines.join('\n') + '\n';
}

/** The files of one export: name → text (azure: three files; the others: one). */
export function exportFiles(f: InvocationsFile, format: ExportFormat, base = 'traffic'): Record<string, string> {
  if (format === 'azure') return azureFilesOf(f);
  if (format === 'faasrail') return { [`${base}.faasrail.csv`]: faasrailSpecOf(f) };
  return { [`${base}.invocations.csv`]: formatInvocations(f) };
}
