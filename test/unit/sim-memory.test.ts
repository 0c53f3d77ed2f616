// The simulator's memory model (src/sim/memory-model.ts) and measured accounting in
// the simulator: what an instance is modelled to cost, and what that changes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPolicies } from '../../src/policies/index.js';
import { modelPss, SampleClock } from '../../src/sim/memory-model.js';
import { functionCosts, hasMemoryModel, profileSchema } from '../../src/sim/profile.js';
import { simulate } from '../../src/sim/simulator.js';
import { faasrailTrace } from '../../src/traces/faasrail.js';

const base = { accelerator: 'test', defaults: { coldMs: 3000, restoreMs: 200, warmMs: 5, memoryMiB: 256, runMs: 200 } };
const withModel = profileSchema.parse({
  ...base,
  defaults: { ...base.defaults, coldPrivateMiB: 80, clonePrivateMiB: 15, snapshotSharedMiB: 40, runGrowthMiB: 1 },
  node: { cores: 2, idleVmCpu: 0, vmSharedMiB: 30 },
});
const plain = profileSchema.parse(base);

void test('modelled PSS: own pages by start path and runs, the common pages split among VMs, a snapshot among its clones', () => {
  const c = { memoryMiB: 256, coldPrivateMiB: 80, clonePrivateMiB: 15, snapshotSharedMiB: 40, runGrowthMiB: 1 };
  assert.equal(modelPss(c, false, 0, 0, 1, 30), 110);
  assert.equal(modelPss(c, false, 4, 0, 3, 30), 94);
  // a clone among 4 clones of its snapshot and 10 VMs: 15 + 2 runs + 40/4 + 30/10
  assert.equal(modelPss(c, true, 2, 4, 10, 30), 30);
  assert.ok(hasMemoryModel(withModel));
  assert.ok(!hasMemoryModel(plain));
  // without parameters an instance costs its size
  const f = functionCosts(plain, 'x', { memoryMiB: 512 });
  assert.deepEqual([f.coldPrivateMiB, f.clonePrivateMiB, f.snapshotSharedMiB, f.runGrowthMiB], [512, 512, 0, 0]);
  const g = functionCosts(withModel, 'x', { memoryMiB: 512 });
  assert.deepEqual([g.coldPrivateMiB, g.clonePrivateMiB, g.snapshotSharedMiB, g.runGrowthMiB], [80, 15, 40, 1]);
});

void test('sample clock: multiples of the interval, armed once, re-armed after it fired', () => {
  const k = new SampleClock(1000);
  assert.equal(k.arm(1500), 2000);
  assert.equal(k.arm(1700), undefined);
  k.fired();
  assert.equal(k.arm(2000), 3000);
  assert.equal(new SampleClock(0).arm(5), undefined);
});

async function run(profile: typeof plain, accounting: 'nominal' | 'measured') {
  // 20 functions of 256 MiB, each invoked every 30 s, in a 2 GiB budget: nominal keeps 8 warm at most
  const fns = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, avgDurationMs: 200, memoryMiB: 256, counts: Array.from({ length: 20 }, (_, s) => (s % 3 === i % 3 ? 2 : 0)) }));
  return simulate({
    trace: faasrailTrace(fns, 10_000, 'memory'),
    policies: await createPolicies({ keepAlive: { policy: 'fixed', ttlSeconds: 600 }, eviction: 'lru' }, { baseDir: '.' }),
    profile,
    memoryMiB: 2048,
    expand: { spread: 'even' },
    node: { memoryAccounting: accounting, cpuModel: false },
  });
}

void test('simulator: measured accounting keeps more instances warm in the same budget; without a memory model it is nominal', async () => {
  const nominal = await run(withModel, 'nominal');
  const measured = await run(withModel, 'measured');
  assert.equal(measured.invocations, nominal.invocations);
  assert.ok(nominal.evictions > 0, 'the budget binds under nominal accounting');
  assert.ok(measured.evictions < nominal.evictions, `fewer evictions (${measured.evictions} vs ${nominal.evictions})`);
  assert.ok(measured.warm > nominal.warm, `more warm starts (${measured.warm} vs ${nominal.warm})`);
  // no memory model in the profile: measured accounting has nothing to measure and decides as nominal
  const a = await run(plain, 'nominal');
  const b = await run(plain, 'measured');
  assert.deepEqual({ ...b, wallMs: 0, eventsPerSecond: 0, invocationsPerSecond: 0 }, { ...a, wallMs: 0, eventsPerSecond: 0, invocationsPerSecond: 0 });
});
