// Issue 18, session 5: does max-min cost anything where the CPU is not short? test/unit/sim-golden.test.ts's
// node scenario (80 functions, 3 GiB, the built-in profile, seed 23: memory pressure, runs without a measured
// CPU) through the simulator with admission.fairness off and max-min, nominal and measured memory accounting.
//   npx tsx bench/fairness-default.ts   (a simulation: seconds of CPU; raw bench/runs/2026-12-07-fairness-default-s5.txt)
import { createPolicies } from '../src/policies/index.js';
import { DEFAULT_PROFILE } from '../src/sim/profile.js';
import { simulate } from '../src/sim/simulator.js';
import { syntheticTrace } from '../test/helpers/synthetic-trace.js';

const t = await syntheticTrace({ functions: 80, slots: 40, seed: 23, log10Rate: [-1, 1.5] });
console.log('| `admission.fairness` | memory accounting | completed | cold boots | restores | dropped | p50 | p99 |');
console.log('|---|---|---|---|---|---|---|---|');
for (const memoryAccounting of ['nominal', 'measured'] as const) {
  for (const fairness of ['off', 'max-min'] as const) {
    const policies = await createPolicies({ keepAlive: 'fixed' }, { baseDir: '.' });
    const r = simulate({ trace: t, profile: DEFAULT_PROFILE, memoryMiB: 3072, policies, node: { fairness, memoryAccounting } });
    console.log(`| \`${fairness}\` | ${memoryAccounting} | ${r.completed} | ${r.coldBoots} | ${r.restoresStarted} | ${r.dropped} | ${Math.round(r.p50Ms)} ms | ${Math.round(r.p99Ms)} ms |`);
  }
}
