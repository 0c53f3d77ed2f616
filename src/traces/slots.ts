// FaaSCell's own per-slot request specs ("slots" format, docs/replay.md): one row
// per function with its average duration, the request params to send and request
// counts per time slot. Called "FaaSRail-style" before FaaSCell read the files
// FaaSRail itself writes (faasrail.ts); `--format faasrail` still reads these.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { csvRecords } from './csv.js';
import { EntryBuilder, type Trace, type TraceFunction } from './types.js';

export interface SlotsLoadOptions {
  /** Slot length (s); overrides the JSON file's slotSeconds; default 60. */
  slotSeconds?: number;
}

const rowSchema = z.object({
  name: z.string().min(1),
  avgDurationMs: z.number().nonnegative(),
  memoryMiB: z.number().positive().optional(),
  request: z.unknown().optional(),
  counts: z.array(z.number().int().nonnegative()),
});
const fileSchema = z.union([
  z.object({ slotSeconds: z.number().positive().optional(), functions: z.array(rowSchema) }),
  z.array(rowSchema),
]);
export type SlotsRow = z.infer<typeof rowSchema>;

export async function loadSlotsSpec(file: string, opts: SlotsLoadOptions = {}): Promise<Trace> {
  let rows: SlotsRow[];
  let slotSeconds = opts.slotSeconds;
  if (/\.json$/i.test(file)) {
    const parsed = fileSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
    if (!parsed.success) throw new Error(`${file}: not a slots spec: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
    if (Array.isArray(parsed.data)) rows = parsed.data;
    else {
      rows = parsed.data.functions;
      slotSeconds ??= parsed.data.slotSeconds;
    }
  } else {
    rows = await readCsvSpec(file);
  }
  return slotsTrace(rows, (slotSeconds ?? 60) * 1000, file);
}

export function slotsTrace(rows: readonly SlotsRow[], slotMs: number, source: string): Trace {
  const b = new EntryBuilder();
  let nSlots = 0;
  const seen = new Set<string>();
  const functions: TraceFunction[] = rows.map((r, index) => {
    if (seen.has(r.name)) throw new Error(`${source}: function ${r.name} appears twice`);
    seen.add(r.name);
    const total = b.pushCounts(index, r.counts);
    nSlots = Math.max(nSlots, r.counts.length);
    return {
      index,
      name: r.name,
      app: '',
      owner: '',
      trigger: 'http',
      avgDurationMs: r.avgDurationMs,
      memoryMiB: r.memoryMiB,
      request: r.request ?? {},
      total,
    };
  });
  return {
    format: 'slots',
    source,
    slotMs,
    nSlots,
    functions,
    ...b.toCsr(nSlots),
  };
}

/**
 * CSV: header `name,avgDurationMs[,memoryMiB],request,<slot columns...>` (one
 * column per slot, any header text), or a single `counts` column holding the
 * counts separated by spaces or semicolons. `request` is JSON (quote it, CSV
 * style); empty means {}.
 */
async function readCsvSpec(file: string): Promise<SlotsRow[]> {
  let cols: string[] | undefined;
  const rows: SlotsRow[] = [];
  for await (const { fields: f, lineNo } of csvRecords(file)) {
    if (!cols) {
      cols = f.map((c) => c.trim());
      for (const need of ['name', 'avgDurationMs', 'request']) {
        if (!cols.includes(need)) throw new Error(`${file}: header lacks column '${need}'`);
      }
      continue;
    }
    const at = (c: string): string | undefined => {
      const i = cols!.indexOf(c);
      return i < 0 ? undefined : f[i];
    };
    const where = `${file}:${lineNo}`;
    const num = (v: string | undefined, what: string): number => {
      const x = Number(v);
      if (v === undefined || v.trim() === '' || !Number.isFinite(x) || x < 0) throw new Error(`${where}: bad ${what} '${v}'`);
      return x;
    };
    const reqText = at('request') ?? '';
    let request: unknown = {};
    if (reqText.trim() !== '') {
      try {
        request = JSON.parse(reqText);
      } catch {
        throw new Error(`${where}: request is not JSON: ${reqText.slice(0, 60)}`);
      }
    }
    let counts: number[];
    const countsCol = at('counts');
    if (countsCol !== undefined) {
      counts = countsCol.trim() === '' ? [] : countsCol.trim().split(/[;\s]+/).map((v) => Math.round(num(v, 'count')));
    } else {
      const first = Math.max(...['name', 'avgDurationMs', 'memoryMiB', 'request'].map((c) => cols!.indexOf(c))) + 1;
      counts = f.slice(first).map((v) => (v.trim() === '' ? 0 : Math.round(num(v, 'count'))));
    }
    const mem = at('memoryMiB');
    rows.push({
      name: at('name')!.trim(),
      avgDurationMs: num(at('avgDurationMs'), 'avgDurationMs'),
      memoryMiB: mem === undefined || mem.trim() === '' ? undefined : num(mem, 'memoryMiB'),
      request,
      counts,
    });
  }
  if (!cols) throw new Error(`${file}: empty spec`);
  return rows;
}
