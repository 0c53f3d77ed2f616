// Validation of the cluster simulator against real 3-node runs (issue 23 item 4).
//
//   npx tsx scripts/cluster-validation.ts [--profile FILE] [--run-ms 2] BENCH.json…
//
// Each BENCH.json is the output of `faascell bench cluster --sections locality`
// (bench/cluster.ts): three daemons, real VMs, 4 functions, 60 calls one after
// the other through a random node's API, locality on and off, with every call
// recorded (ingress node, function, node that ran it, start path). The simulator
// replays each run's very sequence through its cluster model (same nodes, memory,
// limits, heartbeat period, routing) and the table compares the start-path
// fractions with the spread of the real runs, and call by call.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createPolicies } from '../src/policies/index.js';
import { simulateCluster, type ClusterSimResult } from '../src/sim/cluster/cluster.js';
import { loadProfile, profileSchema } from '../src/sim/profile.js';
import { slotsTrace } from '../src/traces/slots.js';
import type { LocalityRun } from '../bench/cluster.js';

const FNS = ['fa', 'fb', 'fc', 'fd'];

interface Args {
  profile: string;
  runMs: number;
  files: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { profile: 'bench/profiles/tcg-node-2026-11-29.json', runMs: 2, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--profile') a.profile = argv[++i]!;
    else if (x === '--run-ms') a.runMs = Number(argv[++i]);
    else a.files.push(x);
  }
  if (a.files.length === 0) throw new Error('usage: cluster-validation.ts [--profile FILE] [--run-ms MS] BENCH.json…');
  return a;
}

interface SimRun {
  r: ClusterSimResult;
  paths: string[];
}

async function simulateRun(real: LocalityRun, locality: boolean, a: Args): Promise<SimRun> {
  const base = await loadProfile(a.profile);
  // the bench's daemons: one snapshot tier (shm, 8 GiB); hello.js answers in a few ms
  const profile = profileSchema.parse({ ...base, functions: Object.fromEntries(FNS.map((f) => [f, { runMs: a.runMs }])), tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 8192 }] });
  const trace = slotsTrace(
    FNS.map((name) => ({ name, avgDurationMs: a.runMs, memoryMiB: 256, counts: [0] })),
    3_600_000,
    'bench-cluster-locality',
  );
  const sets = await Promise.all([0, 1, 2].map(() => createPolicies({}, { baseDir: '.' })));
  const paths: string[] = [];
  const calls = real.calls.map((c) => ({ ingress: Number(c.ingress.replace(/^loc/, '')), fn: FNS.indexOf(c.fn) }));
  const r = simulateCluster({
    trace,
    profile,
    nodes: 3,
    policies: (k) => sets[k]!,
    memoryMiB: 768,
    maxInstancesPerFunction: 1,
    node: { maxConcurrentStarts: 1 },
    routing: locality ? 'locality' : 'shared',
    heartbeatMs: 500,
    sequence: { calls, gapMs: 5 },
    onNodeDecision: (_k, d) => {
      if (d.kind === 'assign') paths.push(d.fresh ? 'fresh' : 'warm');
    },
  });
  return { r, paths };
}

const pct = (x: number): string => `${(100 * x).toFixed(0)} %`;

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const runs = a.files.map((f) => ({ file: path.basename(f), res: JSON.parse(readFileSync(f, 'utf8')) as { cluster: { locality: Record<'on' | 'off', LocalityRun> } } }));
  const out: string[] = [];
  for (const mode of ['on', 'off'] as const) {
    const reals = runs.map((x) => x.res.cluster.locality[mode]);
    const frac = (r: LocalityRun, k: 'warm' | 'restore' | 'cold'): number => r[k] / r.n;
    out.push(`### locality ${mode}`, '', '| run | real warm / restore / cold | simulated warm / restore / cold | same path, call by call | real wall | simulated time |', '|---|---|---|---|---|---|');
    const sims: ClusterSimResult[] = [];
    for (let i = 0; i < reals.length; i++) {
      const real = reals[i]!;
      const s = await simulateRun(real, mode === 'on', a);
      sims.push(s.r);
      // call by call: the simulator's path of the i-th answer vs the real one (warm vs a start)
      let same = 0;
      real.calls.forEach((c, j) => {
        const sp = s.paths[j];
        if (sp === (c.path === 'warm' ? 'warm' : 'fresh')) same++;
      });
      out.push(
        `| ${runs[i]!.file} | ${pct(frac(real, 'warm'))} / ${pct(frac(real, 'restore'))} / ${pct(frac(real, 'cold'))} | ${pct(s.r.warmFraction)} / ${pct(s.r.restoreFraction)} / ${pct(s.r.coldStartFraction)} | ${same}/${real.n} | ${real.wallSeconds.toFixed(1)} s | ${s.r.simulatedSeconds.toFixed(1)} s |`,
      );
    }
    const lo = (k: 'warm' | 'restore' | 'cold'): number => Math.min(...reals.map((r) => frac(r, k)));
    const hi = (k: 'warm' | 'restore' | 'cold'): number => Math.max(...reals.map((r) => frac(r, k)));
    const within = (k: 'warm' | 'restore' | 'cold', x: number): boolean => x >= lo(k) - 1e-9 && x <= hi(k) + 1e-9;
    const simW = sims.map((r) => r.warmFraction);
    const simR = sims.map((r) => r.restoreFraction);
    const simC = sims.map((r) => r.coldStartFraction);
    out.push(
      '',
      `real spread: warm ${pct(lo('warm'))}–${pct(hi('warm'))}, restore ${pct(lo('restore'))}–${pct(hi('restore'))}, cold ${pct(lo('cold'))}–${pct(hi('cold'))}; ` +
        `simulated within it: warm ${simW.filter((x) => within('warm', x)).length}/${sims.length}, restore ${simR.filter((x) => within('restore', x)).length}/${sims.length}, cold ${simC.filter((x) => within('cold', x)).length}/${sims.length}; ` +
        `goodput (answered / sent): real ${pct(reals.reduce((s, r) => s + r.warm + r.restore + r.cold, 0) / reals.reduce((s, r) => s + r.n, 0))}, simulated ${pct(sims.reduce((s, r) => s + r.completed, 0) / sims.reduce((s, r) => s + r.invocations, 0))}`,
      '',
    );
  }
  console.log(out.join('\n'));
}

await main();
