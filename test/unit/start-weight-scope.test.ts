// Issue 18, session 7, "first starts first": limits.startCpuWeightScope 'first' gives the start CPU weight only to a
// start of a function that has no instance (none ready, none starting: its first, or after all were evicted), so a
// starved function gets its first instance early while a busy function's scale-out starts take no CPU from its own
// busy runs. The core marks each start (CoreInstance.startWeighted) where it decides it; admission's start estimate
// counts the weight only for those starts; the simulator's CPU model weights only them. Virtual clock, no VM.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/schema.js';
import { createPolicies } from '../../src/policies/index.js';
import { profileSchema } from '../../src/sim/profile.js';
import { simulate } from '../../src/sim/simulator.js';
import { faasrailTrace } from '../../src/traces/faasrail.js';
import { recordingCore } from '../helpers/recording-core.js';

const COLD_MS = 4000;
const spec = { memoryMiB: 256, maxInstances: 3, version: '1' };

void test('limits.startCpuWeightScope: first by default, all selectable, anything else names the key', () => {
  assert.equal(parseConfig({}).limits.startCpuWeightScope, 'first');
  assert.equal(parseConfig({ limits: { startCpuWeightScope: 'all' } }).limits.startCpuWeightScope, 'all');
  assert.throws(() => parseConfig({ limits: { startCpuWeightScope: 'some' } }), /limits\.startCpuWeightScope/);
});

void test("scope first: the core marks a function's first start, not its scale-out, and again once all were evicted", async () => {
  const { c, starts } = await recordingCore({ fairness: 'off', maxQueueDelayMs: 60_000 }, { maxConcurrent: 3, cores: 2, defaultColdMs: COLD_MS, startWeight: 4, startWeightScope: 'first' });
  const a = c.defineFunction('a', spec, 0);
  const b = c.defineFunction('b', spec, 0);
  c.arrive(a, 1, 0);
  c.arrive(a, 2, 0);
  c.arrive(b, 3, 0);
  assert.deepEqual(
    starts.map((i) => [i.fn, i.startWeighted]),
    [
      ['a', true],
      ['a', false],
      ['b', true],
    ],
  );
  for (const i of starts) c.startDone(i, COLD_MS, 3000);
  for (const i of [...a.busy, ...b.busy]) c.runDone(i, COLD_MS + 100, 100);
  // every instance of a evicted: a's next start is a first start again
  c.evictFunction(a, COLD_MS + 200);
  assert.equal(a.live, 0);
  c.arrive(a, 4, COLD_MS + 300);
  assert.equal(starts.length, 4);
  assert.deepEqual([starts[3]!.fn, starts[3]!.startWeighted], ['a', true]);
  // scope all: every start is marked
  const all = await recordingCore({ fairness: 'off' }, { maxConcurrent: 'auto', cores: 2, defaultColdMs: COLD_MS, startWeight: 4, startWeightScope: 'all' });
  const x = all.c.defineFunction('x', spec, 0);
  all.c.arrive(x, 1, 0);
  all.c.arrive(x, 2, 0);
  assert.deepEqual(all.starts.map((i) => i.startWeighted), [true, true]);
});

void test('scope first: admission stretches a scale-out start beside busy runs, not a first start', async () => {
  const { c, starts } = await recordingCore({ fairness: 'off', maxQueueDelayMs: 60_000 }, { maxConcurrent: 'auto', cores: 2, defaultColdMs: COLD_MS, startWeight: 4, startWeightScope: 'first' });
  const a = c.defineFunction('a', spec, 0);
  c.arrive(a, 1, 0);
  c.arrive(a, 2, 0);
  for (const i of starts) c.startDone(i, COLD_MS, 3000);
  assert.equal(a.busy.length, 2, 'two runs keep both cores busy');
  // b has no instance: its start weighs 4× a run and gets a whole core (its cost alone)
  const b = c.defineFunction('b', spec, 0);
  c.arrive(b, 3, COLD_MS + 10);
  assert.equal(c.lastEstimateMs, COLD_MS);
  // a's third instance is a scale-out start: weight 1 beside 2 busy runs and b's weighted start: (4 + 1 + 2) / 2
  c.arrive(a, 4, COLD_MS + 20);
  assert.equal(starts.length, 4);
  assert.equal(starts[3]!.startWeighted, false);
  assert.ok(c.lastEstimateMs >= 3.5 * COLD_MS - 20, `a scale-out start is stretched: ${c.lastEstimateMs} ms`);
});

void test("the simulator's CPU model weights only first starts: one function scaling out under CPU-bound runs", async () => {
  const profile = profileSchema.parse({ defaults: { coldMs: 800, restoreMs: 50, warmMs: 0, memoryMiB: 128, cpuShare: 1 }, node: { cores: 2, idleVmCpu: 0.05 } });
  const trace = faasrailTrace([{ name: 'f0', avgDurationMs: 700, memoryMiB: 128, counts: [3, 5, 2, 4] }], 1000, 't');
  const run = async (startCpuWeight: number, startCpuWeightScope: 'first' | 'all') =>
    simulate({ trace, policies: await createPolicies({}, { baseDir: '.' }), profile, memoryMiB: Infinity, expand: { spread: 'random', seed: 3 }, node: { startCpuWeight, cpuWeight: 100, startCpuWeightScope } });
  const plain = await run(100, 'all');
  const first = await run(400, 'first');
  const all = await run(400, 'all');
  // its first start runs alone (no busy run to take CPU from): with scope first only that start weighs more, so
  // nothing changes; with scope all its later starts (beside its busy runs) weigh more too and change the waits
  for (const k of ['completed', 'coldBoots', 'p50Ms', 'p99Ms', 'meanMs', 'meanColdBootMs'] as const) assert.equal(first[k], plain[k], k);
  assert.notEqual(all.p50Ms, plain.p50Ms, 'scope all: the later starts weigh more');
});
