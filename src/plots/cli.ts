// `faascell plot`: plots from result files, rendered with Vega-Lite.
//   replay records (JSONL, `faascell replay --out`, the experiment's real-records*.jsonl):
//     latency CDF per start path, start-path mix over time
//   experiment results (results.csv of `npm run experiment`):
//     cold-start fraction vs memory per policy (lines), cold starts per policy and memory (bars)

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ReplayRecord } from '../replay/replay.js';
import { writePlot, type PlotFormat } from './render.js';
import { coldStartsPerPolicySpec, coldStartVsMemorySpec, latencyCdfSpec, startPathMixSpec, type LatencyPoint, type PolicyPoint } from './specs.js';

export interface PlotOptions {
  files: string[];
  out: string;
  format?: string;
  binSeconds?: string;
  write?: (s: string) => void;
}

export class PlotInputError extends Error {}

/** A replay record's start path as plotted: failed requests are `error`. */
export function plottedPath(r: Pick<ReplayRecord, 'status' | 'startPath'>): string {
  return r.status === 200 && r.startPath ? r.startPath : 'error';
}

export function readReplayRecords(file: string): ReplayRecord[] {
  const out: ReplayRecord[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      let r: ReplayRecord;
      try {
        r = JSON.parse(line) as ReplayRecord;
      } catch {
        throw new PlotInputError(`${file}:${i + 1}: not a JSON line`);
      }
      if (typeof r.sentMs !== 'number' || typeof r.status !== 'number') throw new PlotInputError(`${file}:${i + 1}: not a replay record (needs sentMs and status)`);
      out.push(r);
    });
  return out;
}

/** Rows of an experiment results.csv; an "unlimited" memory budget reads as Infinity (its own bar, not a point on a log axis). */
export function readExperimentCsv(file: string): PolicyPoint[] {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const cols = (head ?? '').split(',');
  const at = (name: string): number => {
    const i = cols.indexOf(name);
    if (i < 0) throw new PlotInputError(`${file}: no column ${name} (an experiment results.csv has variant, policy, memoryGiB, coldStartFraction)`);
    return i;
  };
  const [v, p, m, c] = [at('variant'), at('policy'), at('memoryGiB'), at('coldStartFraction')];
  return lines
    .map((l) => l.split(','))
    .map((f) => ({ variant: f[v]!, policy: f[p]!, memoryGiB: f[m] === 'unlimited' ? Infinity : Number(f[m]), coldStartFraction: Number(f[c]) }));
}

export async function runPlotCommand(o: PlotOptions): Promise<string[]> {
  const write = o.write ?? ((s: string) => process.stdout.write(s));
  const formats = (o.format ?? 'svg,png').split(',').map((f) => f.trim()) as PlotFormat[];
  for (const f of formats) if (!['svg', 'png', 'json'].includes(f)) throw new PlotInputError(`--format: ${f} is not one of svg, png, json`);
  const bin = Number(o.binSeconds ?? 10);
  if (!(bin > 0)) throw new PlotInputError('--bin-seconds: must be a positive number');
  if (o.files.length === 0) throw new PlotInputError('give at least one file: replay records (.jsonl) or an experiment results.csv');
  const written: string[] = [];
  const latency: LatencyPoint[] = [];
  let replays = 0;
  for (const file of o.files) {
    const base = path.basename(file).replace(/\.(jsonl|csv)$/i, '');
    if (/\.csv$/i.test(file)) {
      const pts = readExperimentCsv(file);
      const plain = pts.filter((x) => x.variant === 'no-snapshots');
      written.push(...(await writePlot(coldStartVsMemorySpec(plain.length ? plain : pts, 'Cold-start fraction vs memory, per keep-alive policy'), path.join(o.out, `${base}-coldstart-vs-memory`), formats)));
      written.push(...(await writePlot(coldStartsPerPolicySpec(pts, 'Cold starts per policy and memory'), path.join(o.out, `${base}-coldstarts-per-policy`), formats)));
    } else if (/\.jsonl$/i.test(file)) {
      const recs = readReplayRecords(file);
      if (recs.length === 0) throw new PlotInputError(`${file}: no records`);
      replays++;
      const pts = recs.filter((r) => r.latencyMs !== null).map((r) => ({ startPath: plottedPath(r), latencyMs: r.latencyMs!, run: base }));
      latency.push(...pts);
      written.push(...(await writePlot(latencyCdfSpec(pts.map(({ run: _r, ...p }) => p), `Latency CDF per start path (${base}, ${recs.length} requests)`), path.join(o.out, `${base}-latency-cdf`), formats)));
      const mix = recs.map((r) => ({ t: r.sentMs / 1000, startPath: plottedPath(r) }));
      written.push(...(await writePlot(startPathMixSpec(mix, `Start-path mix over time (${base})`, bin), path.join(o.out, `${base}-start-path-mix`), formats)));
    } else {
      throw new PlotInputError(`${file}: expected replay records (.jsonl) or an experiment results.csv`);
    }
  }
  if (replays > 1) written.push(...(await writePlot(latencyCdfSpec(latency, 'Latency CDF per start path, per run'), path.join(o.out, 'latency-cdf-by-run'), formats)));
  for (const f of written) write(`${f}\n`);
  return written;
}
