// Fairness in a cluster (issue 18): the cluster simulator's failure scenario (test/unit/cluster-sim.test.ts:
// 4 nodes of 2 cores and 2 GiB, 40 functions with ~20 s runs, one node dying and one restarting) with
// admission.fairness off and max-min, for runs of no measured CPU (the built-in profile) and of a given share of
// a core. Prints served / refused / unanswered and the broker's deadline refusals. No VM: a simulation.
//   npx tsx bench/cluster-fairness.ts [--shares none,0.05,0.5,1]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPolicies } from '../src/policies/index.js';
import { livesOf, simulateCluster, type ClusterSimOptions } from '../src/sim/cluster/cluster.js';
import { DEFAULT_PROFILE, type Profile } from '../src/sim/profile.js';
import { loadAzureTrace } from '../src/traces/azure.js';
import { synthesizeAzureFiles } from '../src/traces/generate.js';

const { values } = parseArgs({ options: { shares: { type: 'string', default: 'none,0.05,0.5,1' } } });
const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-cfair-'));
const files = synthesizeAzureFiles({ functions: 40, slots: 20, seed: 9, log10Rate: [-1, 1.3], durationMedianMs: 20_000, durationSigma: 0.3 });
writeFileSync(path.join(dir, 'invocations_per_function_md.anon.d01.csv'), files.invocations);
writeFileSync(path.join(dir, 'function_durations_percentiles.anon.d01.csv'), files.durations);
writeFileSync(path.join(dir, 'app_memory_percentiles.anon.d01.csv'), files.memory);
const trace = await loadAzureTrace(dir);
rmSync(dir, { recursive: true, force: true });
const failures = [
  { node: 1, atMs: 5 * 60_000, restartAfterMs: 4 * 60_000 },
  { node: 2, atMs: 8 * 60_000 },
];
console.log(`# ${trace.totalInvocations} invocations, 4 nodes, failures as in test/unit/cluster-sim.test.ts`);
console.log('| runs\' CPU share | fairness | served | refused (by the broker at the deadline) | unanswered | simulated s |');
console.log('|---|---|---|---|---|---|');
for (const share of values.shares.split(',')) {
  const profile: Profile = share === 'none' ? DEFAULT_PROFILE : { ...DEFAULT_PROFILE, defaults: { ...DEFAULT_PROFILE.defaults, cpuShare: Number(share) } };
  for (const fairness of ['off', 'max-min'] as const) {
    const o: Pick<ClusterSimOptions, 'nodes' | 'failures'> = { nodes: 4, failures };
    const sets = await Promise.all(Array.from({ length: 4 }, (_, k) => Promise.all(Array.from({ length: livesOf(o, k) }, () => createPolicies({ keepAlive: 'fixed' }, { baseDir: '.' })))));
    let expired = 0;
    const r = simulateCluster({
      trace,
      profile,
      nodes: 4,
      memoryMiB: 2048,
      failures,
      node: { fairness },
      policies: (k, life) => sets[k]![life]!,
      onBrokerDecision: (d) => {
        if (d.kind === 'expire') expired++;
      },
    });
    console.log(`| ${share === 'none' ? 'none measured' : share} | ${fairness} | ${r.completed} | ${r.refused} (${expired}) | ${r.unanswered} | ${r.simulatedSeconds.toFixed(0)} |`);
  }
}
