// Azure Functions 2019 public trace (Shahrad et al., ATC'20):
//   invocations_per_function_md.anon.dNN.csv  HashOwner,HashApp,HashFunction,Trigger,1..1440 (per-minute counts)
//   function_durations_percentiles.anon.dNN.csv  HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_*
//   app_memory_percentiles.anon.dNN.csv  HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct*
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseCsvLine, readLines } from './csv.js';
import { subsetTrace, topFunctions } from './transform.js';
import { EntryBuilder, type Trace, type TraceFunction } from './types.js';

export const AZURE_INVOCATIONS_RE = /^invocations_per_function_md\.anon\.(d\d+)\.csv$/;
export const azureDurationsFile = (day: string): string => `function_durations_percentiles.anon.${day}.csv`;
export const azureMemoryFile = (day: string): string => `app_memory_percentiles.anon.${day}.csv`;
export const azureInvocationsFile = (day: string): string => `invocations_per_function_md.anon.${day}.csv`;

export interface AzureLoadOptions {
  /** Day to load from a directory: 'd01', '1' or 1 (default: the first day present). */
  day?: string | number;
  /** Keep only the first N minutes. */
  maxMinutes?: number;
  /** Keep only the N most invoked functions. */
  topFunctions?: number;
}

export interface AzureFiles {
  day: string;
  invocations: string;
  durations: string | undefined;
  memory: string | undefined;
}

function normDay(d: string | number): string {
  const m = /^d?(\d+)$/.exec(String(d));
  if (!m) throw new Error(`bad --day '${d}': expected e.g. d01 or 1`);
  return `d${m[1]!.padStart(2, '0')}`;
}

/** Find the day's files in a directory, or take a single invocations file (companions looked up beside it). */
export function locateAzureFiles(p: string, day?: string | number): AzureFiles {
  let dir: string;
  let d: string;
  let invocations: string;
  if (statSync(p).isDirectory()) {
    dir = p;
    const days = readdirSync(dir)
      .map((f) => AZURE_INVOCATIONS_RE.exec(f)?.[1])
      .filter((x): x is string => x !== undefined)
      .sort();
    if (days.length === 0) throw new Error(`${dir}: no invocations_per_function_md.anon.dNN.csv file`);
    d = day === undefined ? days[0]! : normDay(day);
    if (!days.includes(d)) throw new Error(`${dir}: no invocations file for day ${d} (have ${days.join(', ')})`);
    invocations = path.join(dir, azureInvocationsFile(d));
  } else {
    invocations = p;
    dir = path.dirname(p);
    d = AZURE_INVOCATIONS_RE.exec(path.basename(p))?.[1] ?? (day === undefined ? '' : normDay(day));
  }
  const comp = (name: string): string | undefined => {
    if (!d) return undefined;
    const f = path.join(dir, name);
    return existsSync(f) ? f : undefined;
  };
  return { day: d, invocations, durations: comp(azureDurationsFile(d)), memory: comp(azureMemoryFile(d)) };
}

/**
 * Load one day. Durations: the `Average` column (ms) of the durations file.
 * Memory per function: the app's AverageAllocatedMb divided by the number of
 * the app's functions in the invocations file (the trace measures memory per
 * app only). Missing companion files or rows leave the fields undefined; the
 * simulator then uses its profile's defaults.
 */
export async function loadAzureTrace(p: string, opts: AzureLoadOptions = {}): Promise<Trace> {
  const files = locateAzureFiles(p, opts.day);
  const durations = files.durations ? await readDurations(files.durations) : new Map<string, number>();
  const appMemory = files.memory ? await readAppMemory(files.memory) : new Map<string, number>();

  const builder = new EntryBuilder();
  interface Row {
    owner: string;
    app: string;
    fn: string;
    trigger: string;
    total: number;
  }
  const rows: Row[] = [];
  let nSlots = 0;
  const maxSlots = opts.maxMinutes ?? Infinity;
  let header = true;
  for await (const line of readLines(files.invocations)) {
    if (header) {
      header = false;
      if (!line.startsWith('HashOwner')) throw new Error(`${files.invocations}: not an Azure invocations file (header ${line.slice(0, 60)})`);
      continue;
    }
    if (line.length === 0) continue;
    // The four leading fields, then a fast scan of the counts.
    let pos = 0;
    const fields: string[] = [];
    for (let k = 0; k < 4; k++) {
      const c = line.indexOf(',', pos);
      if (c < 0) throw new Error(`${files.invocations}: short row ${line.slice(0, 60)}`);
      fields.push(line.slice(pos, c));
      pos = c + 1;
    }
    const idx = rows.length;
    let slot = 0;
    let v = 0;
    let total = 0;
    const n = line.length;
    for (let i = pos; i <= n; i++) {
      const ch = i < n ? line.charCodeAt(i) : 44;
      if (ch === 44) {
        if (v > 0 && slot < maxSlots) {
          builder.push(slot, idx, v);
          total += v;
        }
        slot++;
        v = 0;
      } else if (ch >= 48 && ch <= 57) {
        v = v * 10 + (ch - 48);
      } else if (ch === 46) {
        // "3.0": ignore the fraction
        while (i + 1 < n && line.charCodeAt(i + 1) !== 44) i++;
      }
    }
    if (slot > nSlots) nSlots = slot;
    rows.push({ owner: fields[0]!, app: fields[1]!, fn: fields[2]!, trigger: fields[3]!, total });
  }
  nSlots = Math.min(nSlots, maxSlots);

  const fnsPerApp = new Map<string, number>();
  for (const r of rows) fnsPerApp.set(`${r.owner}|${r.app}`, (fnsPerApp.get(`${r.owner}|${r.app}`) ?? 0) + 1);
  const seen = new Map<string, number>();
  const functions: TraceFunction[] = rows.map((r, index) => {
    const k = seen.get(r.fn) ?? 0;
    seen.set(r.fn, k + 1);
    const appMb = appMemory.get(`${r.owner}|${r.app}`);
    return {
      index,
      name: k === 0 ? r.fn : `${r.fn}~${k + 1}`,
      app: r.app,
      owner: r.owner,
      trigger: r.trigger,
      avgDurationMs: durations.get(`${r.owner}|${r.app}|${r.fn}`),
      memoryMiB: appMb === undefined ? undefined : appMb / fnsPerApp.get(`${r.owner}|${r.app}`)!,
      request: undefined,
      total: r.total,
    };
  });
  let trace: Trace = {
    format: 'azure',
    source: files.invocations,
    slotMs: 60_000,
    nSlots,
    functions,
    ...builder.toCsr(nSlots),
  };
  if (opts.topFunctions !== undefined) trace = subsetTrace(trace, { functions: topFunctions(trace, opts.topFunctions) });
  return trace;
}

async function readHeaderedCsv(file: string, onRow: (get: (col: string) => string | undefined) => void): Promise<void> {
  let cols: Map<string, number> | undefined;
  for await (const line of readLines(file)) {
    if (line.length === 0) continue;
    const f = parseCsvLine(line);
    if (!cols) {
      cols = new Map(f.map((c, i) => [c.trim(), i]));
      continue;
    }
    const row = f;
    onRow((c) => {
      const i = cols!.get(c);
      return i === undefined ? undefined : row[i];
    });
  }
}

async function readDurations(file: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  await readHeaderedCsv(file, (get) => {
    const avg = Number(get('Average'));
    if (Number.isFinite(avg) && avg >= 0) m.set(`${get('HashOwner')}|${get('HashApp')}|${get('HashFunction')}`, avg);
  });
  return m;
}

async function readAppMemory(file: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  await readHeaderedCsv(file, (get) => {
    const mb = Number(get('AverageAllocatedMb'));
    if (Number.isFinite(mb) && mb > 0) m.set(`${get('HashOwner')}|${get('HashApp')}`, mb);
  });
  return m;
}
