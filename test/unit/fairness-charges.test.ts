// Issue 18, session 5: what fairness charges and what admission expects, in the decision core driven
// directly (no shell, no VM, times passed in): a start or a run is charged the CPU time the shell measured,
// not its (stretched) wall time; a start under way counts at what remains of it in admission's estimate;
// and the fair rule acts only when the CPU is short (a node under memory pressure decides nearly as with `off`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPolicies } from '../../src/policies/index.js';
import { DEFAULT_PROFILE } from '../../src/sim/profile.js';
import { simulate } from '../../src/sim/simulator.js';
import { PoolCore } from '../../src/vmpool/core/core.js';
import type { CoreConfig, CoreEffects, CoreInstance } from '../../src/vmpool/core/model.js';
import { coreConfig } from '../helpers/core-config.js';
import { syntheticTrace } from '../helpers/synthetic-trace.js';

const COLD_MS = 10_000;

async function core(over: Partial<CoreConfig> = {}): Promise<{ c: PoolCore; starts: CoreInstance[]; assigned: CoreInstance[] }> {
  const starts: CoreInstance[] = [];
  const assigned: CoreInstance[] = [];
  const fx: CoreEffects = {
    start: (inst) => void starts.push(inst),
    assign: (_req, inst) => void assigned.push(inst),
    reject: () => undefined,
    stop: () => undefined,
    wake: () => undefined,
    dropSnapshot: () => undefined,
    moveSnapshot: () => undefined,
  };
  const p = await createPolicies({ keepAlive: { policy: 'fixed', ttlSeconds: 3600 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' }, { baseDir: '.' });
  const cfg = coreConfig({ memoryBudgetMiB: 100_000, fairness: 'max-min', ...over }, { maxConcurrent: 1, defaultColdMs: COLD_MS, defaultRestoreMs: 1000 });
  return { c: new PoolCore(cfg, p, fx), starts, assigned };
}

const spec = { memoryMiB: 256, maxInstances: 4, version: '1' };

void test('a start whose wall time the load stretched is charged the CPU time it took, not its time', async () => {
  const { c, starts } = await core();
  const a = c.defineFunction('a', spec, 0);
  const b = c.defineFunction('b', spec, 0);
  c.arrive(a, 1, 0);
  c.arrive(b, 2, 0);
  // one start slot: a's start runs, b's waits; a's boot takes 30 s of wall time on a loaded host, 3 s of CPU
  assert.equal(starts.length, 1);
  c.startDone(starts[0]!, 30_000, 3000);
  assert.equal(a.vt, 3000, 'charged its CPU time');
  // b's start reports no CPU time (a driver without it): charged its time
  assert.equal(starts.length, 2);
  c.startDone(starts[1]!, 45_000);
  assert.equal(b.vt, 15_000, 'charged its time');
});

void test('a run is charged the CPU time the shell measured over it, not its time busy', async () => {
  const { c, starts, assigned } = await core();
  const a = c.defineFunction('a', spec, 0);
  c.arrive(a, 1, 0);
  c.startDone(starts[0]!, 1000, 800);
  assert.equal(assigned.length, 1);
  const before = a.vt;
  // a 10-s run (stretched by its neighbours) that took 2 s of CPU
  c.runDone(assigned[0]!, 11_000, 2000);
  assert.equal(a.vt - before, 2000);
});

void test("admission's start estimate counts a start under way at what remains of it", async () => {
  const { c } = await core();
  const a = c.defineFunction('a', spec, 0);
  const b = c.defineFunction('b', spec, 0);
  c.arrive(a, 1, 0);
  // b comes 8 s into a's 10-s start, one start slot: 2 s left of a's, then its own 10 s (before: 2 × 10 s)
  c.arrive(b, 2, 8000);
  assert.equal(c.lastEstimateMs, 2000 + COLD_MS);
  // a start past what it was expected to take counts nothing more itself, but says how long starts take now
  // (issue 18, session 7: estimates.ts startDuration): 15 s each for b's queued start and d's own (before: 2 × 10 s)
  const d = c.defineFunction('d', spec, 0);
  c.arrive(d, 3, 15_000);
  assert.equal(c.lastEstimateMs, 2 * 15_000);
});

void test('nodes under memory pressure, not short of CPU: max-min costs no material boots or drops over off', async () => {
  // test/unit/sim-golden.test.ts's node scenario (80 functions, 3 GiB, the built-in profile: runs report no
  // CPU) with both settings, over the 24 seeds of bench/fairness-default.ts. Before the rule acted only on a
  // short CPU, max-min booted 1.7-8x and dropped 8-11x as often. One seed's boot count swings either way by up to
  // 2x with any change of a rule or of the clone model (bench/runs/2026-12-07-fairness-default-s6-seeds.txt: seed 4
  // 272 vs 511, seed 5 859 vs 393), so the bounds hold for the sums. Session 6, the guess bounded by what is known
  // and clonePrivateMiB 36.5: max-min completes 0.08 % less, boots 0.3 % more, drops 2.3 % more than off
  // (…-s6-seeds-merged.txt; at clonePrivateMiB 40: 11 % fewer boots): boots bounded at +10 % for that swing
  const sum = { on: { completed: 0, coldBoots: 0, dropped: 0 }, off: { completed: 0, coldBoots: 0, dropped: 0 } };
  for (let seed = 1; seed <= 24; seed++) {
    const t = await syntheticTrace({ functions: 80, slots: 40, seed, log10Rate: [-1, 1.5] });
    for (const [key, fairness] of [['on', 'max-min'], ['off', 'off']] as const) {
      const r = simulate({ trace: t, profile: DEFAULT_PROFILE, memoryMiB: 3072, policies: await createPolicies({ keepAlive: 'fixed' }, { baseDir: '.' }), node: { fairness } });
      sum[key].completed += r.completed;
      sum[key].coldBoots += r.coldBoots;
      sum[key].dropped += r.dropped;
    }
  }
  const { on, off } = sum;
  const fig = `seeds 1-24: max-min ${on.completed} completed, ${on.coldBoots} boots, ${on.dropped} dropped; off ${off.completed}, ${off.coldBoots}, ${off.dropped}`;
  assert.ok(on.completed >= 0.995 * off.completed, fig);
  assert.ok(on.coldBoots <= 1.1 * off.coldBoots, fig);
  assert.ok(on.dropped <= 1.05 * off.dropped, fig);
});
