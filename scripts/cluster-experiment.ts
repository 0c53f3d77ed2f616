// Routing and snapshot sharing at data-centre scale (issue 23 item 7,
// docs/cluster-simulation.md): the cluster simulator (the daemon's decision core
// on every node, the daemon's routing and pull rules) on seeded synthetic Azure-
// format days, at several cluster sizes with the same load per node.
//
//   npx tsx scripts/cluster-experiment.ts [--nodes 100,1000] [--functions-per-node 20]
//       [--minutes 30] [--warmup-minutes 15] [--variants 'locality,least-loaded,…'] [--cores 8] [--memory-mib 32768] [--threads 2] [--seed 11] [--out DIR]
//
// For each size: locality (the daemon's rule), least-loaded, random, hash
// (OpenWhisk's home node) and shared (locality off), all with cluster.pullRule
// `starts`; locality with the `instances` rule (today's default); and locality,
// least-loaded and random with a snapshot tier every node reads. Writes
// results.csv, results.md and the plots (Vega-Lite → SVG/PNG) into --out;
// `--plots-from A/results.csv,B/results.csv --out DIR` plots earlier runs together.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { writePlot } from '../src/plots/render.js';
import type { ClusterSimResult } from '../src/sim/cluster/cluster.js';
import { runClusterSimulateCommand, type ClusterCommandOptions } from '../src/sim/cluster/cli.js';
import { DEFAULT_PROFILE } from '../src/sim/profile.js';
import { parseCsvLine } from '../src/traces/csv.js';
import { writeAzureTrace } from '../src/traces/generate.js';

interface Args {
  nodes: number[];
  functionsPerNode: number;
  minutes: number;
  cores: number;
  memoryMiB: number;
  threads: number;
  seed: number;
  out: string;
  sharedRestoreMs: number;
  warmupMinutes: number;
  /** only the variants with these labels (default all) */
  variants: string[] | undefined;
  /** only plot the rows of these results.csv files */
  plotsFrom: string[] | undefined;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { nodes: [100, 1000], functionsPerNode: 20, minutes: 30, cores: 8, memoryMiB: 32768, threads: 2, seed: 11, out: 'bench/results/cluster-experiment', sharedRestoreMs: 500, warmupMinutes: 15, variants: undefined, plotsFrom: undefined };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i] ?? '';
    if (k === '--nodes') a.nodes = v.split(',').map(Number);
    else if (k === '--functions-per-node') a.functionsPerNode = Number(v);
    else if (k === '--minutes') a.minutes = Number(v);
    else if (k === '--cores') a.cores = Number(v);
    else if (k === '--memory-mib') a.memoryMiB = Number(v);
    else if (k === '--threads') a.threads = Number(v);
    else if (k === '--seed') a.seed = Number(v);
    else if (k === '--out') a.out = v;
    else if (k === '--shared-restore-ms') a.sharedRestoreMs = Number(v);
    else if (k === '--warmup-minutes') a.warmupMinutes = Number(v);
    else if (k === '--variants') a.variants = v.split(',').map((x) => x.trim());
    else if (k === '--plots-from') a.plotsFrom = v.split(',');
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

interface Variant {
  label: string;
  routing: string;
  pullRule: 'instances' | 'starts';
  shared: boolean;
}

const VARIANTS: Variant[] = [
  { label: 'locality', routing: 'locality', pullRule: 'starts', shared: false },
  { label: 'least-loaded', routing: 'least-loaded', pullRule: 'starts', shared: false },
  { label: 'random', routing: 'random', pullRule: 'starts', shared: false },
  { label: 'hash (OpenWhisk)', routing: 'hash', pullRule: 'starts', shared: false },
  { label: 'shared queue only', routing: 'shared', pullRule: 'starts', shared: false },
  { label: 'locality, pullRule instances', routing: 'locality', pullRule: 'instances', shared: false },
  { label: 'locality + shared tier', routing: 'locality', pullRule: 'starts', shared: true },
  { label: 'least-loaded + shared tier', routing: 'least-loaded', pullRule: 'starts', shared: true },
  { label: 'random + shared tier', routing: 'random', pullRule: 'starts', shared: true },
];

interface Row {
  nodes: number;
  variant: Variant;
  r: ClusterSimResult;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  mkdirSync(a.out, { recursive: true });
  if (a.plotsFrom) {
    await writePlots(a.out, readPlotRows(a.plotsFrom));
    return;
  }
  // the profile: this machine's TCG costs, plus a tier every node reads (restores from it cost sharedRestoreMs)
  const profileFile = path.join(a.out, 'profile.json');
  const base = DEFAULT_PROFILE;
  writeFileSync(
    profileFile,
    JSON.stringify({ ...base, defaults: { ...base.defaults, restoreMsByTier: { ...base.defaults.restoreMsByTier, shared: a.sharedRestoreMs } }, tiers: [...base.tiers, { name: 'shared', latencyRank: 2, capacityMiB: 0 }] }, null, 2),
  );
  const rows: Row[] = [];
  for (const n of a.nodes) {
    const traceDir = path.join(os.tmpdir(), `fc-cluster-exp-${n * a.functionsPerNode}-${a.seed}-day`);
    if (!existsSync(path.join(traceDir, 'invocations_per_function_md.anon.d01.csv'))) writeAzureTrace(traceDir, { functions: n * a.functionsPerNode, seed: a.seed });
    for (const v of VARIANTS.filter((x) => !a.variants || a.variants.includes(x.label))) {
      const opts: ClusterCommandOptions = {
        trace: traceDir,
        nodes: n,
        routing: v.routing,
        pullRule: v.pullRule,
        memoryMib: a.memoryMiB,
        cores: a.cores,
        profile: profileFile,
        durationS: a.minutes * 60,
        warmupS: a.warmupMinutes * 60,
        threads: a.threads,
        seed: a.seed,
        ...(v.shared ? { sharedSnapshotTier: 'shared' } : {}),
        write: () => undefined,
      };
      const r = await runClusterSimulateCommand(opts);
      rows.push({ nodes: n, variant: v, r });
      console.error(
        `${String(n).padStart(5)} nodes ${v.label.padEnd(30)} warm ${pct(r.warmFraction)} restore ${pct(r.restoreFraction)} cold ${pct(r.coldStartFraction)} boots ${r.coldBoots} p99 ${r.p99Ms.toFixed(0)} ms mem ${(r.meanClusterMemoryMiB / 1024).toFixed(0)} GiB — ${r.invocations} inv, ${(r.wallMs / 1000).toFixed(0)} s wall, ${(r.cpuMs / 1000).toFixed(0)} s CPU`,
      );
    }
  }
  writeResults(a, rows);
  await writePlots(a.out, plotRows(rows));
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;

function writeResults(a: Args, rows: Row[]): void {
  const head = ['nodes', 'variant', 'routing', 'pullRule', 'sharedTier', 'invocations', 'warm', 'restore', 'cold', 'refused', 'unanswered', 'coldBoots', 'restoresStarted', 'evictions', 'p50Ms', 'p99Ms', 'meanClusterMemoryGiB', 'snapshotsAtEnd', 'routedWarm', 'routedSnapshot', 'toShared', 'forwarded', 'handedBack', 'wallS', 'cpuS'];
  const csv = [head.join(',')];
  for (const { nodes, variant: v, r } of rows) {
    csv.push(
      [nodes, `"${v.label}"`, v.routing, v.pullRule, v.shared, r.invocations, r.warmFraction, r.restoreFraction, r.coldStartFraction, r.refused, r.unanswered, r.coldBoots, r.restoresStarted, r.evictions, r.p50Ms.toFixed(1), r.p99Ms.toFixed(1), (r.meanClusterMemoryMiB / 1024).toFixed(1), r.snapshots, r.broker.targetedWarm, r.broker.targetedSnapshot, r.broker.toShared, r.broker.forwarded, r.broker.handedBack, (r.wallMs / 1000).toFixed(1), (r.cpuMs / 1000).toFixed(1)].join(','),
    );
  }
  writeFileSync(path.join(a.out, 'results.csv'), csv.join('\n') + '\n');
  const md = [`| nodes | variant | warm | restore | cold | cold boots | p50 | p99 | mean memory | addressed (warm, or by the policy) / snapshot / shared queue | forwarded | CPU |`, '|---|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const { nodes, variant: v, r } of rows) {
    const b = r.broker;
    md.push(
      `| ${nodes} | ${v.label} | ${pct(r.warmFraction)} | ${pct(r.restoreFraction)} | ${pct(r.coldStartFraction)} | ${r.coldBoots} | ${r.p50Ms.toFixed(0)} ms | ${r.p99Ms >= 1000 ? `${(r.p99Ms / 1000).toFixed(1)} s` : `${r.p99Ms.toFixed(0)} ms`} | ${(r.meanClusterMemoryMiB / 1024).toFixed(0)} GiB | ${b.targetedWarm + b.targetedOther} / ${b.targetedSnapshot} / ${b.toShared} | ${b.forwarded} | ${(r.cpuMs / 1000).toFixed(0)} s |`,
    );
  }
  writeFileSync(path.join(a.out, 'results.md'), `Cluster experiment: ${a.functionsPerNode} functions per node, ${a.minutes} minutes (the first ${a.warmupMinutes} not counted in the request-level columns) of a seeded synthetic Azure-format day (seed ${a.seed}), ${a.cores} cores and ${a.memoryMiB} MiB per node, TCG start costs (the built-in profile), shared tier restores ${a.sharedRestoreMs} ms.\n\n${md.join('\n')}\n`);
}

/** One plot row per result: what the plots need (from this run, or from earlier runs' results.csv). */
interface PlotRow {
  nodes: number;
  variant: string;
  warm: number;
  restore: number;
  cold: number;
  coldBoots: number;
  memoryGiB: number;
}

function plotRows(rows: Row[]): PlotRow[] {
  return rows.map(({ nodes, variant: v, r }) => ({ nodes, variant: v.label, warm: r.warmFraction, restore: r.restoreFraction, cold: r.coldStartFraction, coldBoots: r.coldBoots, memoryGiB: r.meanClusterMemoryMiB / 1024 }));
}

/** The rows of results.csv files this script wrote (to plot several runs together: --plots-from A.csv,B.csv). */
function readPlotRows(files: string[]): PlotRow[] {
  return files.flatMap((f) => {
    const [head, ...lines] = readFileSync(f, 'utf8').trim().split('\n');
    const cols = head!.split(',');
    return lines.map((l) => {
      const cells = parseCsvLine(l);
      const get = (c: string): string => cells[cols.indexOf(c)]!;
      return { nodes: Number(get('nodes')), variant: get('variant'), warm: Number(get('warm')), restore: Number(get('restore')), cold: Number(get('cold')), coldBoots: Number(get('coldBoots')), memoryGiB: Number(get('meanClusterMemoryGiB')) };
    });
  });
}

async function writePlots(out: string, rows: PlotRow[]): Promise<void> {
  const order = VARIANTS.map((v) => v.label).filter((l) => rows.some((r) => r.variant === l));
  const y = { field: 'variant', type: 'nominal', sort: order, title: null, axis: { labelLimit: 260 } };
  const row = { field: 'nodes', type: 'ordinal', title: 'nodes', header: { labelFontSize: 13 } };
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json' };
  const mix = {
    ...base,
    title: 'Invocations that waited for a start, by routing (cluster simulator)',
    data: { values: rows.flatMap((r) => [{ ...r, path: 'restore', share: r.restore }, { ...r, path: 'cold', share: r.cold }]) },
    facet: { row },
    spec: {
      width: 420,
      mark: 'bar',
      encoding: {
        y,
        x: { field: 'share', type: 'quantitative', axis: { format: '.1%' }, title: 'share of the invocations' },
        color: { field: 'path', type: 'nominal', scale: { domain: ['restore', 'cold'], range: ['#1565c0', '#ef6c00'] }, title: 'start' },
      },
    },
  };
  const per = (field: 'coldBoots' | 'memoryGiB', title: string, colour: string): unknown => ({
    ...base,
    title,
    data: { values: rows.map((r) => ({ ...r, value: r[field] / r.nodes })) },
    facet: { row },
    spec: { width: 420, mark: 'bar', encoding: { y, x: { field: 'value', type: 'quantitative', title: title.toLowerCase() }, color: { value: colour } } },
  });
  for (const [name, spec] of [
    ['start-paths', mix],
    ['cold-boots', per('coldBoots', 'Cold boots per node', '#ef6c00')],
    ['memory', per('memoryGiB', 'Instance memory per node, mean over the run (GiB)', '#546e7a')],
  ] as const) {
    console.error(`plot: ${(await writePlot(spec as TopLevelSpec, path.join(out, name), ['svg', 'png', 'json'])).join(', ')}`);
  }
}

await main();
