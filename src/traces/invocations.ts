// FaaSCell's per-invocation traffic file (issue 23): one line per invocation a
// node (or a cluster) served, as `faascell trace export --format invocations`
// writes it from the activation store, and as `faascell replay`, `simulate` and
// `whatif` read it back with the exact arrival times.
//
//   # faascell invocations start=2026-12-06T22:00:00.000Z end=2026-12-06T23:00:00.000Z
//   arrivalMs,function,durationMs,memoryMiB,startPath,status,code,totalMs,node
//   12.5,hello,3.2,256,warm,success,,9.8,
//
// arrivalMs: from `start`; durationMs: the function's own run time (empty when it
// did not run); startPath: warm | restore | cold (empty: refused); status: the
// activation status; code: the error code of a failure (queue_full, overloaded, …);
// totalMs: received → answered on the node; node: the cluster node that ran it.

import { readFileSync } from 'node:fs';
import { csvField, parseCsvLine, TraceFileError } from './csv.js';
import { EntryBuilder, type Trace, type TraceFunction } from './types.js';

/** One invocation as the activation store knows it. */
export interface InvocationRow {
  /** ms from the start of the exported window */
  arrivalMs: number;
  function: string;
  durationMs?: number;
  memoryMiB?: number;
  startPath?: 'warm' | 'restore' | 'cold';
  status: string;
  code?: string;
  totalMs: number;
  node?: string;
}

export interface InvocationsFile {
  /** epoch ms of the window */
  start: number;
  end: number;
  rows: InvocationRow[];
}

export const INVOCATIONS_HEADER = 'arrivalMs,function,durationMs,memoryMiB,startPath,status,code,totalMs,node';

const num = (x: number | undefined): string => (x === undefined ? '' : String(Math.round(x * 1000) / 1000));

export function formatInvocations(f: InvocationsFile): string {
  const lines = [`# faascell invocations start=${new Date(f.start).toISOString()} end=${new Date(f.end).toISOString()}`, INVOCATIONS_HEADER];
  for (const r of f.rows) {
    lines.push([num(r.arrivalMs), csvField(r.function), num(r.durationMs), num(r.memoryMiB), r.startPath ?? '', r.status, r.code ?? '', num(r.totalMs), csvField(r.node ?? '')].join(','));
  }
  return lines.join('\n') + '\n';
}

export class InvocationsFormatError extends TraceFileError {
  override name = 'InvocationsFormatError';
}

const PATHS = new Set(['warm', 'restore', 'cold']);

export function parseInvocations(text: string, where = 'invocations'): InvocationsFile {
  let start: number | undefined;
  let end: number | undefined;
  let header = false;
  const rows: InvocationRow[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const at = `${where}:${i + 1}`;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const s = /start=(\S+)/.exec(line)?.[1];
      const e = /end=(\S+)/.exec(line)?.[1];
      if (s) start = Date.parse(s);
      if (e) end = Date.parse(e);
      continue;
    }
    if (!header) {
      if (line.trim() !== INVOCATIONS_HEADER) throw new InvocationsFormatError(`not a faascell invocations file: the header must be ${INVOCATIONS_HEADER}`, at);
      header = true;
      continue;
    }
    const f = parseCsvLine(line);
    if (f.length !== 9) throw new InvocationsFormatError(`${f.length} fields, expected 9`, at);
    const n = (v: string, what: string, optional: boolean): number | undefined => {
      if (v === '' && optional) return undefined;
      const x = Number(v);
      if (v === '' || !Number.isFinite(x) || x < 0) throw new InvocationsFormatError(`${what}: not a non-negative number: '${v}'`, at);
      return x;
    };
    const path = f[4]!;
    if (path !== '' && !PATHS.has(path)) throw new InvocationsFormatError(`startPath: warm, restore, cold or empty (got '${path}')`, at);
    if (f[1] === '') throw new InvocationsFormatError('function: empty', at);
    if (f[5] === '') throw new InvocationsFormatError('status: empty', at);
    rows.push({
      arrivalMs: n(f[0]!, 'arrivalMs', false)!,
      function: f[1]!,
      durationMs: n(f[2]!, 'durationMs', true),
      memoryMiB: n(f[3]!, 'memoryMiB', true),
      startPath: path === '' ? undefined : (path as InvocationRow['startPath']),
      status: f[5]!,
      code: f[6] === '' ? undefined : f[6],
      totalMs: n(f[7]!, 'totalMs', false)!,
      node: f[8] === '' ? undefined : f[8],
    });
  }
  if (!header) throw new InvocationsFormatError('empty file (no header)', where);
  rows.sort((a, b) => a.arrivalMs - b.arrivalMs);
  const last = rows.length > 0 ? rows[rows.length - 1]!.arrivalMs : 0;
  const s = start ?? 0;
  return { start: s, end: end ?? s + last, rows };
}

export function readInvocations(file: string): InvocationsFile {
  return parseInvocations(readFileSync(file, 'utf8'), file);
}

/**
 * The trace of an invocations file: its functions in order of first arrival,
 * one-minute slots, the exact arrival times; per function the mean run time and
 * the memory the rows give.
 */
export function invocationsTrace(f: InvocationsFile, source: string, slotMs = 60_000): Trace {
  const byName = new Map<string, number>();
  const durSum: number[] = [];
  const durN: number[] = [];
  const memory: (number | undefined)[] = [];
  const names: string[] = [];
  const fnOf = new Uint32Array(f.rows.length);
  f.rows.forEach((r, i) => {
    let k = byName.get(r.function);
    if (k === undefined) {
      k = names.length;
      byName.set(r.function, k);
      names.push(r.function);
      durSum.push(0);
      durN.push(0);
      memory.push(undefined);
    }
    fnOf[i] = k;
    if (r.durationMs !== undefined) {
      durSum[k]! += r.durationMs;
      durN[k]!++;
    }
    if (r.memoryMiB !== undefined) memory[k] = r.memoryMiB;
  });
  const span = Math.max(f.end - f.start, f.rows.length > 0 ? f.rows[f.rows.length - 1]!.arrivalMs + 1 : 0);
  const nSlots = Math.max(1, Math.ceil(span / slotMs));
  const b = new EntryBuilder();
  const totals = new Float64Array(names.length);
  const slotStart = new Uint32Array(nSlots + 1);
  const times = new Float64Array(f.rows.length);
  let slot = 0;
  // per slot, one count entry per function (rows are sorted by arrival)
  const perSlot = new Map<number, number>();
  f.rows.forEach((r, i) => {
    const s = Math.min(nSlots - 1, Math.floor(r.arrivalMs / slotMs));
    while (slot < s) {
      for (const [fn, c] of perSlot) b.push(slot, fn, c);
      perSlot.clear();
      slot++;
      slotStart[slot] = i;
    }
    perSlot.set(fnOf[i]!, (perSlot.get(fnOf[i]!) ?? 0) + 1);
    totals[fnOf[i]!]!++;
    times[i] = r.arrivalMs;
  });
  for (const [fn, c] of perSlot) b.push(slot, fn, c);
  while (slot < nSlots) slotStart[++slot] = f.rows.length;
  const functions: TraceFunction[] = names.map((name, index) => ({
    index,
    name,
    app: '',
    owner: '',
    trigger: 'http',
    avgDurationMs: durN[index]! > 0 ? durSum[index]! / durN[index]! : undefined,
    memoryMiB: memory[index],
    request: undefined,
    total: totals[index]!,
  }));
  return {
    format: 'invocations',
    source,
    slotMs,
    nSlots,
    functions,
    ...b.toCsr(nSlots),
    exact: { times, fns: fnOf, slotStart },
  };
}

export function loadInvocationsTrace(file: string): Trace {
  return invocationsTrace(readInvocations(file), file);
}
