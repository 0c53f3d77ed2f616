// Issue 18, session 5: does max-min cost anything where the CPU is not short? test/unit/sim-golden.test.ts's
// node scenario (80 functions, 3 GiB, the built-in profile, seed 23: memory pressure, runs without a measured
// CPU) through the simulator with admission.fairness off and max-min, nominal and measured memory accounting.
// One seed's cold-boot count swings several-fold with small rule differences, so `--seeds 1,2,3` repeats the
// scenario over other seeds and sums them.
//   npx tsx bench/fairness-default.ts [--seeds 23,1,2]   (a simulation: seconds of CPU per seed;
//   raw bench/runs/2026-12-07-fairness-default-s5*.txt)
import { createPolicies } from '../src/policies/index.js';
import { DEFAULT_PROFILE } from '../src/sim/profile.js';
import { simulate } from '../src/sim/simulator.js';
import { syntheticTrace } from '../test/helpers/synthetic-trace.js';

const at = process.argv.indexOf('--seeds');
const seeds = (at > 0 ? process.argv[at + 1] ?? '' : '23').split(',').map(Number);
if (seeds.some((x) => !Number.isInteger(x))) throw new Error(`--seeds: a comma-separated list of integers, not ${process.argv[at + 1]}`);

const sum = new Map<string, { completed: number; coldBoots: number; restores: number; dropped: number }>();
console.log('| seed | `admission.fairness` | memory accounting | completed | cold boots | restores | dropped | p50 | p99 |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const seed of seeds) {
  const t = await syntheticTrace({ functions: 80, slots: 40, seed, log10Rate: [-1, 1.5] });
  for (const memoryAccounting of ['nominal', 'measured'] as const) {
    for (const fairness of ['off', 'max-min'] as const) {
      const policies = await createPolicies({ keepAlive: 'fixed' }, { baseDir: '.' });
      const r = simulate({ trace: t, profile: DEFAULT_PROFILE, memoryMiB: 3072, policies, node: { fairness, memoryAccounting } });
      console.log(`| ${seed} | \`${fairness}\` | ${memoryAccounting} | ${r.completed} | ${r.coldBoots} | ${r.restoresStarted} | ${r.dropped} | ${Math.round(r.p50Ms)} ms | ${Math.round(r.p99Ms)} ms |`);
      const k = `\`${fairness}\` | ${memoryAccounting}`;
      const a = sum.get(k) ?? { completed: 0, coldBoots: 0, restores: 0, dropped: 0 };
      a.completed += r.completed;
      a.coldBoots += r.coldBoots;
      a.restores += r.restoresStarted;
      a.dropped += r.dropped;
      sum.set(k, a);
    }
  }
}
if (seeds.length > 1) {
  console.log(`\nsum over seeds ${seeds.join(', ')}:\n\n| \`admission.fairness\` | memory accounting | completed | cold boots | restores | dropped |\n|---|---|---|---|---|---|`);
  for (const [k, a] of sum) console.log(`| ${k} | ${a.completed} | ${a.coldBoots} | ${a.restores} | ${a.dropped} |`);
}
