// Request specs exactly as FaaSRail writes them (cslab-ntua/faasrail:
// faasrail-shrinkray writes them, faasrail-loadgen replays them). A CSV file:
//
//   avg,mapped_wreq,1-288,289-576,…
//   1633,"{""mean"": 1624.0, ""bench"": ""video_processing-91bb6c6"", ""payload"": ""{\""vid_name\"": …}""}",107,119,…
//
// - `avg`: the Azure trace function's average run time (ms) that the row replaces;
// - `mapped_wreq`: JSON {bench, payload, mean?, stdev?}: `bench` names the workload
//   ("{benchmark}-{hash of the payload}"), `payload` is itself a JSON string (the
//   request's parameters), `mean`/`stdev` the workload's measured run time (ms);
// - every further column is one replay minute (its header says which trace
//   minutes it condenses: "1-288" with shrinkray's thumbnails scaling, "25" with
//   minute_range, "1" in smirnov mode); the cell is that row's invocations in it.
//
// loadgen ignores the header line and reads the minute columns by position; so
// does this reader (the labels are kept for reports). Several rows may name the
// same workload: each row is its own function here (FaaSRail's loadgen runs one
// worker per row too), named "{workload}-r{row}" with row = 1 for the first data
// line (characters a function name may not hold become '_').
//
// `--format faasrail` also reads FaaSCell's own per-slot format (slots.ts) when
// the header is not FaaSRail's, so spec files written before stay readable.

import { z } from 'zod';
import { benchmarkOf, BENCHMARKS } from '../functionbench/catalog.js';
import { csvRecords, parseCsvLine, readLines, TraceFileError } from './csv.js';
import { loadSlotsSpec, slotsTrace, type SlotsLoadOptions, type SlotsRow } from './slots.js';
import { EntryBuilder, type Trace, type TraceFunction } from './types.js';

/** One parsed row of a FaaSRail spec. */
export interface FaasrailSpecRow {
  /** 1-based data row (the header is row 0) */
  row: number;
  /** the `avg` column */
  avg: number;
  workload: string;
  /** the payload, parsed (always a JSON object: loadgen edits it as a map) */
  payload: Record<string, unknown>;
  /** the payload string exactly as in the spec */
  payloadText: string;
  mean?: number;
  stdev?: number;
  /** invocations per replay minute */
  rpm: number[];
}

/** A row's per-minute counts scaled by `k`, each minute rounded down with its remainder carried to the next. */
export function scaledCounts(rpm: number[], k: number): number[] {
  let carry = 0;
  return rpm.map((c) => {
    const want = c * k + carry;
    const n = Math.floor(want);
    carry = want - n;
    return n;
  });
}

const wreqSchema = z.object({
  bench: z.string().min(1),
  payload: z.string(),
  mean: z.number().nonnegative().optional(),
  stdev: z.number().nonnegative().optional(),
});

export class SpecError extends TraceFileError {
  override name = 'SpecError';
}

/** True when a CSV header line is FaaSRail's (`avg,mapped_wreq,…`). */
export function isFaasrailHeader(line: string): boolean {
  const f = parseCsvLine(line);
  return f.length >= 2 && f[0]!.trim() === 'avg' && f[1]!.trim() === 'mapped_wreq';
}

/** The function name of a spec row: "{workload}-r{row}", restricted to what function names allow. */
export function faasrailFunctionName(workload: string, row: number): string {
  const suffix = `-r${row}`;
  const clean = workload.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]/, 'f');
  return clean.slice(0, 64 - suffix.length) + suffix;
}

/** Parse one data line (already split) of a FaaSRail spec; `where` prefixes errors. */
export function parseFaasrailRow(fields: string[], row: number, header: string[], where: string): FaasrailSpecRow {
  if (fields.length !== header.length) throw new SpecError(`${fields.length} fields, the header has ${header.length}`, where);
  const avgText = fields[0]!.trim();
  const avg = Number(avgText);
  if (avgText === '' || !Number.isFinite(avg) || avg < 0) throw new SpecError(`avg: not a non-negative number: '${avgText}'`, where);
  let json: unknown;
  try {
    json = JSON.parse(fields[1]!);
  } catch {
    throw new SpecError(`mapped_wreq: not JSON: ${fields[1]!.slice(0, 80)}`, where);
  }
  const w = wreqSchema.safeParse(json);
  if (!w.success) {
    const i = w.error.issues[0]!;
    throw new SpecError(`mapped_wreq.${i.path.join('.') || '(root)'}: ${i.message}`, where);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(w.data.payload);
  } catch {
    throw new SpecError(`mapped_wreq.payload: not a JSON string: ${w.data.payload.slice(0, 80)}`, where);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new SpecError('mapped_wreq.payload: must encode a JSON object', where);
  const rpm = fields.slice(2).map((v, i) => {
    const t = v.trim();
    const n = Number(t);
    if (t === '' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new SpecError(`column '${header[i + 2]}': not a count: '${v}'`, where);
    return n;
  });
  return { row, avg, workload: w.data.bench, payload: payload as Record<string, unknown>, payloadText: w.data.payload, mean: w.data.mean, stdev: w.data.stdev, rpm };
}

/** All rows of a FaaSRail spec file, with the header. */
export async function readFaasrailSpec(file: string): Promise<{ header: string[]; rows: FaasrailSpecRow[] }> {
  let header: string[] | undefined;
  const rows: FaasrailSpecRow[] = [];
  for await (const { fields, line, lineNo } of csvRecords(file, (err, lineNo) => new SpecError(err.message, `${file}:${lineNo}`))) {
    if (!header) {
      if (!isFaasrailHeader(line)) throw new SpecError(`not a FaaSRail spec: the header must start with avg,mapped_wreq (found '${line.slice(0, 60)}')`, `${file}:${lineNo}`);
      header = fields.map((f) => f.trim());
      if (header.length < 3) throw new SpecError('no minute columns after avg,mapped_wreq', `${file}:${lineNo}`);
      continue;
    }
    rows.push(parseFaasrailRow(fields, rows.length + 1, header, `${file}:${lineNo}`));
  }
  if (!header) throw new SpecError('empty spec', file);
  return { header, rows };
}

/** The trace of parsed FaaSRail rows: one function per row, one slot per minute column. */
export function faasrailSpecTrace(rows: readonly FaasrailSpecRow[], slotMs: number, source: string, slotLabels?: readonly string[]): Trace {
  const b = new EntryBuilder();
  let nSlots = slotLabels?.length ?? 0;
  const functions: TraceFunction[] = rows.map((r, index) => {
    const total = b.pushCounts(index, r.rpm);
    nSlots = Math.max(nSlots, r.rpm.length);
    const benchmark = benchmarkOf(r.workload);
    return {
      index,
      name: faasrailFunctionName(r.workload, r.row),
      app: '',
      owner: '',
      trigger: 'http',
      // what runs is the workload, so its measured mean is the run time; `avg` when the spec has no mean
      avgDurationMs: r.mean ?? r.avg,
      memoryMiB: benchmark ? BENCHMARKS.get(benchmark)!.memoryMiB : undefined,
      request: r.payload,
      total,
      workload: r.workload,
      benchmark,
      traceAvgMs: r.avg,
      stdevMs: r.stdev,
    };
  });
  return {
    format: 'faasrail',
    source,
    slotLabels,
    slotMs,
    nSlots,
    functions,
    ...b.toCsr(nSlots),
  };
}

export interface FaasrailLoadOptions extends SlotsLoadOptions {
  /** Replay length of one minute column (s); default 60 (loadgen's minute). */
  slotSeconds?: number;
}

/** First non-empty line of a file (the header), or undefined. */
async function firstLine(file: string): Promise<string | undefined> {
  for await (const line of readLines(file)) if (line.trim() !== '' && !line.startsWith('#')) return line;
  return undefined;
}

/**
 * `--format faasrail`: a spec as FaaSRail writes it, detected by its header;
 * any other file is read as FaaSCell's own per-slot format (older files).
 */
export async function loadFaasrailSpec(file: string, opts: FaasrailLoadOptions = {}): Promise<Trace> {
  if (!/\.json$/i.test(file)) {
    const head = await firstLine(file);
    if (head !== undefined && isFaasrailHeader(head)) {
      const { header, rows } = await readFaasrailSpec(file);
      return faasrailSpecTrace(rows, (opts.slotSeconds ?? 60) * 1000, file, header.slice(2));
    }
  }
  return loadSlotsSpec(file, opts);
}

/** @deprecated the per-slot format's old names; use slotsTrace / SlotsRow (kept for callers written before). */
export const faasrailTrace = slotsTrace;
/** @deprecated see faasrailTrace */
export type FaasrailRow = SlotsRow;
