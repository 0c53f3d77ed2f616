// Validation of the cluster simulator against real 3-node runs (issue 23 item 4).
//
//   npx tsx scripts/cluster-validation.ts [--profile FILE] [--run-ms 2] [--pull-rule starts|instances]
//                                         [--accounting measured|nominal] [--sample-ms MS] [--calls] BENCH.json…
//
// Each BENCH.json is the output of `faascell bench cluster --sections locality`
// (bench/cluster.ts): three daemons, real VMs, 4 functions, 60 calls one after
// the other through a random node's API, locality on and off, with every call
// recorded (ingress node, function, node that ran it, start path, latency). The
// simulator replays each run's very sequence through its cluster model (same
// nodes, memory, limits, heartbeat period, routing) and the tables compare the
// start-path fractions with the spread of the real runs, then call by call: the
// start path (warm / restore / cold), the node, and the latency (p50 real/sim).
// The simulated cluster runs the rules the real daemons ran with: the run's
// recorded `pullRule` and `memoryAccounting` (bench/cluster.ts records them since
// 2026-12-07), else --pull-rule and --accounting (default: the daemon's defaults;
// the 2026-12-06 runs ran under `instances` and `nominal`). Measured accounting
// needs the profile's memory model (src/sim/memory-model.ts); a profile without
// one gets the built-in model (DEFAULT_PROFILE's, from `faascell bench memory`),
// else measured accounting would silently act as nominal. --sample-ms sets the
// simulated nodes' node.memory.sampleIntervalMs (default the daemon's), to see
// what the sampler's phase does. --calls prints every call, real beside simulated.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_PULL_RULE, PULL_RULES, type PullRule } from '../src/cluster/capacity.js';
import { MEMORY_DEFAULTS } from '../src/config/schema.js';
import { createPolicies } from '../src/policies/index.js';
import { simulateCluster, type ClusterSimResult } from '../src/sim/cluster/cluster.js';
import { DEFAULT_PROFILE, hasMemoryModel, loadProfile, profileSchema, type Profile } from '../src/sim/profile.js';
import { slotsTrace } from '../src/traces/slots.js';
import type { LocalityRun } from '../bench/cluster.js';

const FNS = ['fa', 'fb', 'fc', 'fd'];
const PATHS = ['warm', 'restore', 'cold'] as const;
export type Path = (typeof PATHS)[number];
type Accounting = 'measured' | 'nominal';
/** the bench's pause between a call's answer and the next call, and the simulated broker round (ms) */
const GAP_MS = 5;
const ROUND_MS = 2;
/** the simulated ingress publish and outcome's way back (the simulator's default) */
const HOP_MS = 2;

export interface Args {
  profile: string;
  runMs: number;
  pullRule: PullRule;
  accounting: Accounting;
  sampleMs: number;
  calls: boolean;
  files: string[];
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { profile: 'bench/profiles/tcg-node-2026-11-29.json', runMs: 2, pullRule: DEFAULT_PULL_RULE, accounting: MEMORY_DEFAULTS.accounting, sampleMs: MEMORY_DEFAULTS.sampleIntervalMs, calls: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--profile') a.profile = argv[++i]!;
    else if (x === '--run-ms') a.runMs = Number(argv[++i]);
    else if (x === '--pull-rule') {
      const v = argv[++i];
      if (!PULL_RULES.includes(v as PullRule)) throw new Error(`--pull-rule: expected ${PULL_RULES.join(' or ')}, got ${v}`);
      a.pullRule = v as PullRule;
    } else if (x === '--accounting') {
      const v = argv[++i];
      if (v !== 'measured' && v !== 'nominal') throw new Error(`--accounting: expected measured or nominal, got ${v}`);
      a.accounting = v;
    } else if (x === '--sample-ms') {
      a.sampleMs = Number(argv[++i]);
      if (!(a.sampleMs >= 1)) throw new Error(`--sample-ms: expected a number of milliseconds ≥ 1, got ${argv[i]}`);
    } else if (x === '--calls') a.calls = true;
    else a.files.push(x);
  }
  if (a.files.length === 0) throw new Error('usage: cluster-validation.ts [--profile FILE] [--run-ms MS] [--pull-rule starts|instances] [--accounting measured|nominal] [--sample-ms MS] [--calls] BENCH.json…');
  return a;
}

/** One simulated call: the node that ran it, its start path, and its latency (undefined for the last call: see below). */
export interface SimCall {
  node: number;
  path: Path;
  ms: number | undefined;
  /** how its node got it: addressed (routed there for locality) or from the shared queue */
  via: 'shared' | 'addressed' | undefined;
}

export interface SimRun {
  r: ClusterSimResult;
  calls: SimCall[];
  pullRule: PullRule;
  accounting: Accounting;
  memoryModel: 'profile' | 'built-in' | 'none';
}

export async function simulateRun(real: LocalityRun, locality: boolean, base: Profile, a: Args): Promise<SimRun> {
  const pullRule = real.pullRule ?? a.pullRule;
  const accounting = real.memoryAccounting ?? a.accounting;
  // measured accounting without a memory model would count every VM at its size (nominal): use the built-in model
  const memoryModel = accounting === 'nominal' ? 'none' : hasMemoryModel(base) ? 'profile' : 'built-in';
  const model =
    memoryModel === 'built-in'
      ? {
          defaults: { ...base.defaults, coldPrivateMiB: DEFAULT_PROFILE.defaults.coldPrivateMiB, clonePrivateMiB: DEFAULT_PROFILE.defaults.clonePrivateMiB, snapshotSharedMiB: DEFAULT_PROFILE.defaults.snapshotSharedMiB, runGrowthMiB: DEFAULT_PROFILE.defaults.runGrowthMiB },
          node: { ...base.node, vmSharedMiB: DEFAULT_PROFILE.node.vmSharedMiB },
        }
      : {};
  // the bench's daemons: one snapshot tier (shm, 8 GiB); hello.js answers in a few ms
  const profile = profileSchema.parse({ ...base, ...model, functions: Object.fromEntries(FNS.map((f) => [f, { runMs: a.runMs }])), tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 8192 }] });
  const trace = slotsTrace(
    FNS.map((name) => ({ name, avgDurationMs: a.runMs, memoryMiB: 256, counts: [0] })),
    3_600_000,
    'bench-cluster-locality',
  );
  const sets = await Promise.all([0, 1, 2].map(() => createPolicies({}, { baseDir: '.' })));
  const started = new Map<string, Path>();
  const calls: SimCall[] = [];
  const arrivals: number[] = [];
  const routed: number[] = [];
  const viaOf = new Map<number, 'shared' | 'addressed'>();
  const r = simulateCluster({
    trace,
    profile,
    nodes: 3,
    policies: (k) => sets[k]!,
    memoryMiB: 768,
    maxInstancesPerFunction: 1,
    node: { maxConcurrentStarts: 1, memoryAccounting: accounting, memorySampleMs: a.sampleMs },
    routing: locality ? 'locality' : 'shared',
    heartbeatMs: 500,
    pullRule,
    roundMs: ROUND_MS,
    hopMs: HOP_MS,
    sequence: { calls: real.calls.map((c) => ({ ingress: Number(c.ingress.replace(/^loc/, '')), fn: FNS.indexOf(c.fn) })), gapMs: GAP_MS },
    onBrokerDecision: (d) => {
      if (d.kind === 'route') {
        arrivals.push(d.t);
        routed.push(d.id);
      } else if (d.kind === 'deliver') viaOf.set(d.id, d.via);
    },
    onNodeDecision: (k, d) => {
      if (d.kind === 'start') started.set(`${k}:${d.inst}`, d.path);
      else if (d.kind === 'assign') calls.push({ node: k, path: d.fresh ? (started.get(`${k}:${d.inst}`) ?? 'cold') : 'warm', ms: undefined, via: undefined });
    },
  });
  // calls go one after the other: call i+1 arrives GAP_MS after call i's answer, at the
  // end of a broker round, so call i's latency is known to one round (ROUND_MS); the
  // last call's is not recorded per call (it is in the result's histogram)
  for (let i = 0; i + 1 < arrivals.length && i < calls.length; i++) calls[i]!.ms = arrivals[i + 1]! - arrivals[i]! - GAP_MS + HOP_MS;
  // the delivery that ran it (the last one: a hand-back or a forward delivers again)
  calls.forEach((c, i) => (c.via = viaOf.get(routed[i]!)));
  return { r, calls, pullRule, accounting, memoryModel };
}

/** How one run's calls compare with their simulation, call by call. */
export interface CallComparison {
  /** calls whose simulated start path (warm, restore, cold) is the real one */
  samePath: number;
  /** calls the simulation ran on the node of the same index */
  sameNode: number;
  /** whether the run recorded each call's delivery (bench/cluster.ts since 2026-12-07) */
  hasVia: boolean;
  realAddressed: number;
  simAddressed: number;
  /** calls delivered the same way (addressed or shared) */
  sameVia: number;
  /** real path (rows) × simulated path (columns) */
  confusion: Record<Path, Record<Path, number>>;
  /** latency pairs (ms): every call the simulation timed, and by path where both sides took the same path */
  latency: Record<'all' | Path, { real: number[]; sim: number[] }>;
}

function emptyConfusion(): Record<Path, Record<Path, number>> {
  return Object.fromEntries(PATHS.map((p) => [p, Object.fromEntries(PATHS.map((q) => [q, 0]))])) as Record<Path, Record<Path, number>>;
}

function emptyLatency(): CallComparison['latency'] {
  return { all: { real: [], sim: [] }, warm: { real: [], sim: [] }, restore: { real: [], sim: [] }, cold: { real: [], sim: [] } };
}

const nodeOf = (s: string): number => Number(s.replace(/^loc/, ''));

/** The i-th real call against the i-th simulated one (calls go one at a time: the i-th answer is the i-th call's). */
export function compareCalls(real: LocalityRun['calls'], sim: readonly SimCall[]): CallComparison {
  const c: CallComparison = { samePath: 0, sameNode: 0, hasVia: real.every((x) => x.via !== undefined), realAddressed: 0, simAddressed: 0, sameVia: 0, confusion: emptyConfusion(), latency: emptyLatency() };
  real.forEach((x, j) => {
    const sc = sim[j];
    if (!sc) return;
    const rp = x.path as Path;
    c.confusion[rp][sc.path]++;
    if (sc.path === rp) c.samePath++;
    if (sc.node === nodeOf(x.node)) c.sameNode++;
    if (x.via === 'addressed') c.realAddressed++;
    if (sc.via === 'addressed') c.simAddressed++;
    if (x.via !== undefined && x.via === sc.via) c.sameVia++;
    if (sc.ms === undefined) return;
    c.latency.all.real.push(x.ms);
    c.latency.all.sim.push(sc.ms);
    // by path only where both agree: otherwise the ratio would compare a warm call with a start
    if (sc.path === rp) {
      c.latency[rp].real.push(x.ms);
      c.latency[rp].sim.push(sc.ms);
    }
  });
  return c;
}

const pct = (x: number): string => `${(100 * x).toFixed(0)} %`;
const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};
const msOf = (x: number): string => (Number.isNaN(x) ? '–' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const base = await loadProfile(a.profile);
  const runs = a.files.map((f) => ({ file: path.basename(f), res: JSON.parse(readFileSync(f, 'utf8')) as { cluster: { locality: Record<'on' | 'off', LocalityRun> } } }));
  const out: string[] = [];
  for (const mode of ['on', 'off'] as const) {
    const reals = runs.map((x) => x.res.cluster.locality[mode]);
    const frac = (r: LocalityRun, k: Path): number => r[k] / r.n;
    const sims: SimRun[] = [];
    for (const real of reals) sims.push(await simulateRun(real, mode === 'on', base, a));
    const rules = [...new Set(sims.map((s) => `pull rule ${s.pullRule}, ${s.accounting} accounting${s.memoryModel === 'none' ? '' : ` (memory model: ${s.memoryModel}, sampled every ${a.sampleMs} ms)`}`))].join('; ');
    out.push(
      `### locality ${mode}`,
      '',
      `simulated with ${rules}`,
      '',
      '| run | real warm / restore / cold | simulated warm / restore / cold | same path, call by call | same node | addressed real / simulated (same delivery) | real wall | simulated time |',
      '|---|---|---|---|---|---|---|---|',
    );
    // call by call, over every run: real path (rows) × simulated path (columns)
    const confusion = emptyConfusion();
    const lat = emptyLatency();
    const p50Rows: string[] = [];
    for (let i = 0; i < reals.length; i++) {
      const real = reals[i]!;
      const s = sims[i]!;
      const c = compareCalls(real.calls, s.calls);
      for (const p of PATHS) for (const q of PATHS) confusion[p][q] += c.confusion[p][q];
      for (const k of ['all', ...PATHS] as const) {
        lat[k].real.push(...c.latency[k].real);
        lat[k].sim.push(...c.latency[k].sim);
      }
      const runReal = c.latency.all.real;
      const runSim = c.latency.all.sim;
      p50Rows.push(`| ${runs[i]!.file} | ${msOf(median(runReal))} | ${msOf(median(runSim))} | ${(median(runReal) / median(runSim)).toFixed(1)} |`);
      out.push(
        `| ${runs[i]!.file} | ${pct(frac(real, 'warm'))} / ${pct(frac(real, 'restore'))} / ${pct(frac(real, 'cold'))} | ${pct(s.r.warmFraction)} / ${pct(s.r.restoreFraction)} / ${pct(s.r.coldStartFraction)} | ${c.samePath}/${real.n} | ${c.sameNode}/${real.n} | ${c.hasVia ? `${c.realAddressed} / ${c.simAddressed} (${c.sameVia}/${real.n})` : `– / ${c.simAddressed}`} | ${real.wallSeconds.toFixed(1)} s | ${s.r.simulatedSeconds.toFixed(1)} s |`,
      );
    }
    const lo = (k: Path): number => Math.min(...reals.map((r) => frac(r, k)));
    const hi = (k: Path): number => Math.max(...reals.map((r) => frac(r, k)));
    const within = (k: Path, x: number): boolean => x >= lo(k) - 1e-9 && x <= hi(k) + 1e-9;
    const simFrac = (k: Path): number[] => sims.map((s) => (k === 'warm' ? s.r.warmFraction : k === 'restore' ? s.r.restoreFraction : s.r.coldStartFraction));
    const n = sims.length;
    out.push(
      '',
      `real spread: warm ${pct(lo('warm'))}–${pct(hi('warm'))}, restore ${pct(lo('restore'))}–${pct(hi('restore'))}, cold ${pct(lo('cold'))}–${pct(hi('cold'))}; ` +
        `simulated within it: ${PATHS.map((k) => `${k} ${simFrac(k).filter((x) => within(k, x)).length}/${n}`).join(', ')}; ` +
        `goodput (answered / sent): real ${pct(reals.reduce((t, r) => t + r.warm + r.restore + r.cold, 0) / reals.reduce((t, r) => t + r.n, 0))}, simulated ${pct(sims.reduce((t, s) => t + s.r.completed, 0) / sims.reduce((t, s) => t + s.r.invocations, 0))}`,
      '',
      `start path call by call, all runs (rows: real, columns: simulated):`,
      '',
      '| real \\ simulated | warm | restore | cold |',
      '|---|---|---|---|',
      ...PATHS.map((p) => `| ${p} | ${PATHS.map((q) => confusion[p][q]).join(' | ')} |`),
      '',
      `latency per call, p50 (real: client-side through a node's HTTP API; simulated: answer − arrival + ${HOP_MS} ms hop, to one ${ROUND_MS} ms broker round; the last call of each run not counted):`,
      '',
      '| run | real p50 | simulated p50 | real / simulated |',
      '|---|---|---|---|',
      ...p50Rows,
      ...(['all', ...PATHS] as const).map(
        (k) => `| all runs, ${k === 'all' ? 'every call' : `${k} in both (${lat[k].real.length} calls)`} | ${msOf(median(lat[k].real))} | ${msOf(median(lat[k].sim))} | ${lat[k].real.length ? (median(lat[k].real) / median(lat[k].sim)).toFixed(1) : '–'} |`,
      ),
      '',
    );
    if (a.calls) {
      out.push('every call (N:ingress fn→node path [a: addressed, s: shared], real | simulated):', '');
      for (let i = 0; i < reals.length; i++) {
        const row = reals[i]!.calls.map((c, j) => {
          const sc = sims[i]!.calls[j];
          const v = (x: string | undefined): string => (x ? x[0]! : '');
          return `${j + 1}:${nodeOf(c.ingress)}${c.fn.slice(1)}→${nodeOf(c.node)}${c.path[0]}${v(c.via)}|${sc ? `${sc.node}${sc.path[0]}${v(sc.via)}` : '?'}`;
        });
        out.push(`    ${runs[i]!.file}: ${row.join(' ')}`, '');
      }
    }
  }
  console.log(out.join('\n'));
}

// run as a script (the unit test imports its functions)
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
