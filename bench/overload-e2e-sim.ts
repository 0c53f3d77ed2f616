// test/e2e/overload.test.ts's scenario simulated on a loaded host (issue 18, session 5): four CPU-bound functions
// (runs of 0.1, 0.5, 1.3 and 1.2 s at 0.9 of a core), 22.5 requests/s for 40 s, admission.maxQueueDelayMs 10 s,
// the TCG node profile's start costs, with the cores other processes leave (2, 1, 0.5, 0.3), fairness max-min and
// off. Prints served per function and the refusals at the deadline. A simulation (no VM):
//   npx tsx bench/overload-e2e-sim.ts   (raw bench/runs/2026-12-07-overload-e2e-sim-s5.txt)
import { createPolicies } from '../src/policies/index.js';
import { profileSchema } from '../src/sim/profile.js';
import { simulate } from '../src/sim/simulator.js';
import { slotsTrace } from '../src/traces/slots.js';
const rows = [
  { name: 'pyaes', avgDurationMs: 100, memoryMiB: 256, counts: [90, 90, 90, 90] },
  { name: 'chameleon', avgDurationMs: 500, memoryMiB: 256, counts: [60, 60, 60, 60] },
  { name: 'matmul', avgDurationMs: 1300, memoryMiB: 256, counts: [45, 45, 45, 45] },
  { name: 'rotate', avgDurationMs: 1200, memoryMiB: 256, counts: [30, 30, 30, 30] },
];
for (const cores of [2, 1, 0.5, 0.3]) for (const fairness of ['max-min', 'off'] as const) {
  const profile = profileSchema.parse({ accelerator: 'tcg', defaults: { coldMs: 2245, coldCpuMs: 2020, restoreMs: 218, restoreCpuMs: 200, warmMs: 0.07, invokeCpuMs: 14, memoryMiB: 256, restoreMsByTier: { shm: 218 }, invokeVmmCpuMs: 10 },
    functions: Object.fromEntries(rows.map((r) => [r.name, { runMs: r.avgDurationMs, cpuShare: 0.9 }])), node: { cores, idleVmCpu: 0.028 }, tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 100_000 }] });
  const r = simulate({ trace: slotsTrace(rows, 10_000, 'e2e'), profile, policies: await createPolicies({}, { baseDir: '.' }), memoryMiB: 20_000, maxQueueDelayMs: 10_000, expand: { spread: 'random', seed: 1 }, node: { fairness }, byFunction: true });
  console.log(cores, fairness, r.byFunction!.map((f) => `${f.name} ${f.completed}`).join(', '), '| late', r.rejected.queueTimeout, 'cold', r.coldBoots, 'restores', r.restoresStarted);
}
