// Which deployed function replays which trace function.
import { readFile } from 'node:fs/promises';
import type { Trace } from '../traces/types.js';

export interface MappingOptions {
  /** "traceFn=deployedFn,..." */
  map?: string;
  /** JSON object {traceFn: deployedFn} or lines "traceFn=deployedFn" (# comments). */
  mapFile?: string;
  /** Deployed functions; trace functions, most invoked first, are assigned to them round-robin. */
  functions?: string | string[];
  /** Call each FaaSRail row's workload (mapped_wreq.bench) by its name: specs `faascell trace export` wrote name the function there. */
  workloadNames?: boolean;
}

/** Deployed function name per trace function index (undefined: not replayed). */
export type Mapping = (string | undefined)[];

export function parseMapText(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/[,\n]/)) {
    const p = part.replace(/#.*$/, '').trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq <= 0 || eq === p.length - 1) throw new Error(`bad mapping '${p}': expected traceFn=deployedFn`);
    out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return out;
}

export async function buildMapping(trace: Trace, o: MappingOptions): Promise<Mapping> {
  const given = [o.map, o.mapFile, o.functions, o.workloadNames || undefined].filter((x) => x !== undefined && x !== '').length;
  if (given > 1) throw new Error('use only one of --map, --map-file, --functions, --workload-names');
  if (o.workloadNames) return trace.functions.map((f) => f.workload ?? f.name);
  if (o.functions !== undefined && o.functions !== '') {
    const fns = (Array.isArray(o.functions) ? o.functions : o.functions.split(',')).map((s) => s.trim()).filter(Boolean);
    if (fns.length === 0) throw new Error('--functions: empty list');
    const order = trace.functions
      .map((f) => f.index)
      .sort((a, b) => trace.functions[b]!.total - trace.functions[a]!.total || a - b);
    const m: Mapping = new Array<string | undefined>(trace.functions.length);
    order.forEach((idx, rank) => {
      m[idx] = fns[rank % fns.length];
    });
    return m;
  }
  let table: Record<string, string> | undefined;
  if (o.map) table = parseMapText(o.map);
  if (o.mapFile) {
    const text = await readFile(o.mapFile, 'utf8');
    table = text.trim().startsWith('{') ? (JSON.parse(text) as Record<string, string>) : parseMapText(text);
  }
  if (!table) return trace.functions.map((f) => f.name); // identity: the trace's names are deployed names
  const byName = new Map(trace.functions.map((f) => [f.name, f.index]));
  const unknown = Object.keys(table).filter((k) => !byName.has(k));
  if (unknown.length > 0) throw new Error(`mapping names functions not in the trace: ${unknown.slice(0, 5).join(', ')}`);
  return trace.functions.map((f) => table[f.name]);
}
