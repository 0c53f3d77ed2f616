// Seeded synthetic traces in both formats, with a realistic skew: per-function
// rates log-uniform over ~5 decades (from a few per day to ~100 per minute),
// a mix of timer-like periodic functions, diurnal Poisson functions and bursty
// on/off functions, log-normal durations, apps of 1-4 functions.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRng, type SeededRng } from '../policies/rng.js';
import { azureDurationsFile, azureInvocationsFile, azureMemoryFile } from './azure.js';
import { csvField } from './csv.js';

export interface GenerateOptions {
  functions?: number;
  /** Slots (minutes for Azure). */
  slots?: number;
  seed?: number;
  /** Log10 range of the mean rate per slot (default [-2.7, 2]). */
  log10Rate?: [number, number];
  /** Log-normal execution times: median (ms, default 250), sigma (default 1.3), cap (ms, default 60 000). */
  durationMedianMs?: number;
  durationSigma?: number;
  maxDurationMs?: number;
}

export interface SyntheticFunction {
  owner: string;
  app: string;
  name: string;
  kind: 'timer' | 'poisson' | 'bursty';
  avgDurationMs: number;
  appMemoryMb: number;
  counts: Uint32Array;
}

function hex(rng: SeededRng, len: number): string {
  let s = '';
  while (s.length < len) s += rng.nextU32().toString(16).padStart(8, '0');
  return s.slice(0, len);
}

function poisson(rng: SeededRng, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda < 30) {
    const l = Math.exp(-lambda);
    let k = 0;
    let p = 1;
    for (;;) {
      p *= rng.next();
      if (p <= l) return k;
      k++;
    }
  }
  // Normal approximation for large means.
  const z = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * z));
}

function lognormal(rng: SeededRng, median: number, sigma: number): number {
  const z = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  return median * Math.exp(sigma * z);
}

/** The synthetic workload itself (shared by both writers). */
export function synthesize(opts: GenerateOptions = {}, hashLen = 16): SyntheticFunction[] {
  const nFns = opts.functions ?? 200;
  const slots = opts.slots ?? 1440;
  const rng = createRng(opts.seed ?? 1);
  const [lo, hi] = opts.log10Rate ?? [-2.7, 2];
  const out: SyntheticFunction[] = [];
  let owner = hex(rng, hashLen);
  let app = hex(rng, hashLen);
  let appLeft = 0;
  let appMem = 0;
  for (let i = 0; i < nFns; i++) {
    if (appLeft === 0) {
      if (rng.next() < 0.5) owner = hex(rng, hashLen);
      app = hex(rng, hashLen);
      appLeft = 1 + Math.floor(rng.next() * rng.next() * 4);
      appMem = Math.round(Math.min(1024, Math.max(60, lognormal(rng, 160, 0.5))));
    }
    appLeft--;
    const rate = 10 ** (lo + (hi - lo) * rng.next());
    const u = rng.next();
    const kind: SyntheticFunction['kind'] = u < 0.25 ? 'timer' : u < 0.75 ? 'poisson' : 'bursty';
    const counts = new Uint32Array(slots);
    const phase = rng.next() * 2 * Math.PI;
    if (kind === 'timer') {
      // Period near 1/rate, from the usual cron choices.
      const periods = [1, 2, 5, 10, 15, 30, 60, 120, 240, 720, 1440];
      const want = 1 / rate;
      let period = periods[periods.length - 1]!;
      for (const p of periods) if (p >= want) { period = p; break; }
      const offset = Math.floor(rng.next() * period);
      const perFire = Math.max(1, Math.round(rate * period));
      for (let s = offset; s < slots; s += period) counts[s] = perFire;
    } else if (kind === 'poisson') {
      for (let s = 0; s < slots; s++) {
        const diurnal = 1 + 0.6 * Math.sin((2 * Math.PI * s) / 1440 + phase);
        counts[s] = poisson(rng, rate * diurnal);
      }
    } else {
      // On/off: mean on 15 slots at 8x the rate, off long enough to keep the mean rate.
      let on = rng.next() < 0.2;
      let left = 0;
      for (let s = 0; s < slots; s++) {
        if (left <= 0) {
          on = !on;
          left = Math.max(1, Math.round(-Math.log(1 - rng.next()) * (on ? 15 : 105)));
        }
        left--;
        if (on) counts[s] = poisson(rng, rate * 8);
      }
    }
    out.push({
      owner,
      app,
      name: hex(rng, hashLen),
      kind,
      avgDurationMs: Math.round(Math.min(opts.maxDurationMs ?? 60_000, Math.max(2, lognormal(rng, opts.durationMedianMs ?? 250, opts.durationSigma ?? 1.3)))),
      appMemoryMb: appMem,
      counts,
    });
  }
  return out;
}

export interface AzureFilesText {
  invocations: string;
  durations: string;
  memory: string;
}

export function synthesizeAzureFiles(opts: GenerateOptions = {}, hashLen = 16): AzureFilesText {
  const fns = synthesize(opts, hashLen);
  const slots = opts.slots ?? 1440;
  const inv: string[] = [
    ['HashOwner', 'HashApp', 'HashFunction', 'Trigger', ...Array.from({ length: slots }, (_, i) => String(i + 1))].join(','),
  ];
  const dur: string[] = [
    'HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100',
  ];
  const mem: string[] = [
    'HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,AverageAllocatedMb_pct100',
  ];
  const apps = new Set<string>();
  for (const f of fns) {
    const trigger = f.kind === 'timer' ? 'timer' : f.kind === 'bursty' ? 'queue' : 'http';
    inv.push(`${f.owner},${f.app},${f.name},${trigger},${Array.from(f.counts).join(',')}`);
    const total = f.counts.reduce((a, b) => a + b, 0);
    const d = f.avgDurationMs;
    dur.push([f.owner, f.app, f.name, d, total, Math.round(d * 0.3), d * 4, Math.round(d * 0.3), Math.round(d * 0.4), Math.round(d * 0.7), d, Math.round(d * 1.3), d * 3, d * 4].join(','));
    if (!apps.has(f.app)) {
      apps.add(f.app);
      const m = f.appMemoryMb;
      mem.push([f.owner, f.app, 1000, m, ...[0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.3, 1.4].map((x) => Math.round(m * x))].join(','));
    }
  }
  return { invocations: inv.join('\n') + '\n', durations: dur.join('\n') + '\n', memory: mem.join('\n') + '\n' };
}

/** Write the three Azure-format files of one day into dir; returns their paths. */
export function writeAzureTrace(dir: string, opts: GenerateOptions & { day?: string; hashLen?: number } = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const day = opts.day ?? 'd01';
  const t = synthesizeAzureFiles(opts, opts.hashLen ?? 16);
  const files = [
    [azureInvocationsFile(day), t.invocations],
    [azureDurationsFile(day), t.durations],
    [azureMemoryFile(day), t.memory],
  ] as const;
  return files.map(([name, text]) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  });
}

/** A spec in FaaSCell's per-slot format (CSV or JSON by the file's extension). Requests carry {"ms": avgDurationMs}. */
export function writeSlotsSpec(file: string, opts: GenerateOptions & { slotSeconds?: number } = {}): string {
  const fns = synthesize(opts, 8);
  const slotSeconds = opts.slotSeconds ?? 60;
  const rows = fns.map((f, i) => ({
    name: `fn-${String(i).padStart(3, '0')}`,
    avgDurationMs: f.avgDurationMs,
    memoryMiB: 128,
    request: { ms: f.avgDurationMs },
    counts: Array.from(f.counts),
  }));
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  if (/\.json$/i.test(file)) {
    writeFileSync(file, JSON.stringify({ slotSeconds, functions: rows }) + '\n');
  } else {
    const slots = opts.slots ?? 1440;
    const lines = [['name', 'avgDurationMs', 'memoryMiB', 'request', ...Array.from({ length: slots }, (_, i) => `s${i}`)].join(',')];
    for (const r of rows) lines.push([r.name, r.avgDurationMs, r.memoryMiB, csvField(JSON.stringify(r.request)), ...r.counts].join(','));
    writeFileSync(file, lines.join('\n') + '\n');
  }
  return file;
}

export interface GenerateCommandOptions extends GenerateOptions {
  format: 'azure' | 'slots';
  /** Directory (azure) or file (.csv/.json, slots). */
  out: string;
  day?: string;
  slotSeconds?: number;
  hashLen?: number;
}

export function runGenerateCommand(o: GenerateCommandOptions): string[] {
  if (o.format === 'azure') return writeAzureTrace(o.out, o);
  return [writeSlotsSpec(o.out, o)];
}

function parseArgs(argv: string[]): GenerateCommandOptions {
  const o: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    o[a.slice(2)] = argv[++i] ?? '';
  }
  if (!o.out) throw new Error('usage: generate.ts --format azure|slots --out DIR|FILE [--functions N] [--slots N] [--seed S] [--day d01] [--slot-seconds S]');
  // this generator never wrote FaaSRail's own format: the per-slot format is called "slots" now
  if (o.format !== undefined && o.format !== 'azure' && o.format !== 'slots') throw new Error(`--format: azure or slots (got '${o.format}'; FaaSRail's own specs are written by faasrail-shrinkray)`);
  const num = (k: string): number | undefined => (o[k] === undefined ? undefined : Number(o[k]));
  return {
    format: o.format === 'slots' ? 'slots' : 'azure',
    out: o.out,
    functions: num('functions'),
    slots: num('slots') ?? num('minutes'),
    seed: num('seed'),
    day: o.day,
    slotSeconds: num('slot-seconds'),
    hashLen: num('hash-len'),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  for (const f of runGenerateCommand(parseArgs(process.argv.slice(2)))) console.log(f);
}
