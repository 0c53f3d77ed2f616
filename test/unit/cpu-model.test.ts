// The simulator's CPU model: processor sharing of the node's cores between starts,
// CPU-bound runs and idle VMs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CpuModel, weightedRates, type CpuJob } from '../../src/sim/cpu-model.js';
import { createPolicies } from '../../src/policies/index.js';
import { profileSchema } from '../../src/sim/profile.js';
import { simulate } from '../../src/sim/simulator.js';
import { faasrailTrace } from '../../src/traces/faasrail.js';

/** Runs the model's jobs to completion in time order; returns each job's finish time. */
function drain(m: CpuModel, jobs: Map<CpuJob, number>, pending: () => CpuJob[]): void {
  for (;;) {
    const live = pending().filter((j) => j.pos >= 0);
    if (live.length === 0) return;
    const next = live.reduce((a, b) => (b.finishAt < a.finishAt ? b : a));
    jobs.set(next, next.finishAt);
    m.end(next, next.finishAt);
  }
}

void test('starts beyond the cores stretch each other; fewer do not', () => {
  const all: CpuJob[] = [];
  const m = new CpuModel(2, () => undefined);
  for (let i = 0; i < 2; i++) all.push(m.begin(1000, 1000, 1, 0, i, 0, 0));
  const done = new Map<CpuJob, number>();
  drain(m, done, () => all);
  assert.deepEqual([...done.values()], [1000, 1000]);
  const four: CpuJob[] = [];
  const m4 = new CpuModel(2, () => undefined);
  for (let i = 0; i < 4; i++) four.push(m4.begin(1000, 1000, 1, 0, i, 0, 0));
  const d4 = new Map<CpuJob, number>();
  drain(m4, d4, () => four);
  for (const t of d4.values()) assert.ok(Math.abs(t - 2000) < 1e-6, `4 starts on 2 cores end at 2 s (${t})`);
});

void test('idle VMs take their share; the waiting part of a start does not stretch', () => {
  const m = new CpuModel(2, () => undefined);
  // 40 idle VMs at 5 % each = 2 cores of background: one start gets 2/3 of a core
  const j = m.begin(1000, 1500, 1, 0, 'x', 0, 2);
  assert.ok(Math.abs(j.finishAt - (1000 * 1.5 + 500)) < 1e-6, `${j.finishAt}`);
  // the background goes away halfway: the rest runs at full speed
  m.setBackground(0, 750);
  const cpuLeft = 1000 - 750 / 1.5;
  assert.ok(Math.abs(j.finishAt - (750 + cpuLeft + 500)) < 1e-6, `${j.finishAt}`);
});

void test('CPU-bound runs stretch when more of them than cores run at once; waiting functions do not', async () => {
  const profile = profileSchema.parse({ defaults: { coldMs: 100, restoreMs: 50, warmMs: 0, memoryMiB: 128, cpuShare: 1 }, node: { cores: 2, idleVmCpu: 0 } });
  // 4 requests at once to a 1 s function that keeps a core busy, on 2 cores
  const trace = faasrailTrace([{ name: 'burn', avgDurationMs: 1000, memoryMiB: 128, counts: [4] }], 1000, 't');
  const run = async (cpuShare: number, cpuModel: boolean) =>
    simulate({ trace, policies: await createPolicies({}, { baseDir: '.' }), profile: { ...profile, defaults: { ...profile.defaults, cpuShare } }, memoryMiB: Infinity, expand: { spread: 'even' }, node: { cpuModel, maxConcurrentStarts: 8, preferWarm: false } });
  const burning = await run(1, true);
  const waiting = await run(0, true);
  const flat = await run(1, false);
  assert.equal(burning.completed, 4);
  // the four overlapping runs share two cores and stretch; a function that waits (cpuShare 0) does not
  assert.ok(burning.p50Ms > 1.3 * waiting.p50Ms, `cpu-bound p50 ${burning.p50Ms} vs waiting ${waiting.p50Ms}`);
  assert.ok(waiting.p50Ms < 1300, `waiting p50 ${waiting.p50Ms}`);
  assert.ok(Math.abs(flat.p50Ms - waiting.p50Ms) < 50, `no CPU model p50 ${flat.p50Ms}`);
});

// issue 18: weighted processor sharing (a boot or restore weighs limits.startCpuWeight / limits.cpuWeight)
const demands = fc.array(fc.record({ cap: fc.double({ min: 0, max: 4, noNaN: true }), share: fc.constantFrom(0.5, 1, 2, 4, 10) }), { minLength: 1, maxLength: 12 });

void test('water-filling: no demand above its cap, the cores all handed out when demand exceeds them', () => {
  fc.assert(
    fc.property(demands, fc.double({ min: 0.1, max: 8, noNaN: true }), (ds, cores) => {
      const caps = ds.map((d) => d.cap);
      const r = weightedRates(caps, ds.map((d) => d.share), cores);
      const got = caps.map((c, i) => c * r[i]!);
      for (let i = 0; i < ds.length; i++) assert.ok(r[i]! >= 0 && r[i]! <= 1 + 1e-12, `rate ${r[i]} within [0, 1]`);
      const demand = caps.reduce((a, b) => a + b, 0);
      const used = got.reduce((a, b) => a + b, 0);
      if (demand >= cores) assert.ok(Math.abs(used - cores) < 1e-9 * Math.max(1, cores), `work conserved: ${used} of ${cores}`);
      else assert.ok(Math.abs(used - demand) < 1e-9, 'every demand met');
      // a demand below its cap gets no less per unit of share than one with a smaller share weight
      for (let i = 0; i < ds.length; i++)
        for (let j = 0; j < ds.length; j++)
          if (r[i]! < 1 - 1e-12 && caps[i]! > 0 && caps[j]! > 0) assert.ok(r[j]! <= (r[i]! * ds[j]!.share) / ds[i]!.share + 1e-9, 'rates in proportion to share weights');
    }),
  );
});

void test('water-filling with equal share weights is plain processor sharing: min(1, cores / demand)', () => {
  fc.assert(
    fc.property(demands, fc.double({ min: 0.1, max: 8, noNaN: true }), fc.constantFrom(0.5, 1, 4), (ds, cores, share) => {
      const caps = ds.map((d) => d.cap);
      const demand = caps.reduce((a, b) => a + b, 0);
      const want = demand <= cores ? 1 : cores / demand;
      for (const x of weightedRates(caps, caps.map(() => share), cores)) assert.ok(Math.abs(x - want) < 1e-12, `${x} vs ${want}`);
    }),
  );
});

void test('a start weighing 4 runs beside two CPU-bound runs on one core gets 4/6 of it', () => {
  const m = new CpuModel(1, () => undefined);
  const r1 = m.begin(1000, 1000, 1, 0, 'r1', 1, 0);
  const r2 = m.begin(1000, 1000, 1, 0, 'r2', 1, 0);
  const s = m.begin(1000, 1000, 1, 0, 's', 0, 0, 4);
  assert.ok(Math.abs(m.rateOf(s) - 4 / 6) < 1e-12, `${m.rateOf(s)}`);
  assert.ok(Math.abs(m.rateOf(r1) - 1 / 6) < 1e-12 && m.rateOf(r1) === m.rateOf(r2));
  assert.ok(Math.abs(s.finishAt - 1500) < 1e-9, `${s.finishAt}`);
  // the start ends: the runs share the core equally for the rest (1000 - 1500/6 ms of CPU left each)
  m.end(s, s.finishAt);
  assert.ok(Math.abs(r1.finishAt - (1500 + 2 * (1000 - 1500 / 6))) < 1e-6, `${r1.finishAt}`);
  // on two cores the start is held to its cap (one core); the runs share the other
  const m2 = new CpuModel(2, () => undefined);
  const a = m2.begin(1000, 1000, 1, 0, 'a', 1, 0);
  m2.begin(1000, 1000, 1, 0, 'b', 1, 0);
  const s2 = m2.begin(1000, 1000, 1, 0, 's', 0, 0, 4);
  assert.equal(m2.rateOf(s2), 1);
  assert.ok(Math.abs(m2.rateOf(a) - 0.5) < 1e-12);
});

void test('a start that weighs as much as a VM changes nothing: equal weights are the former model', async () => {
  const profile = profileSchema.parse({ defaults: { coldMs: 800, restoreMs: 50, warmMs: 0, memoryMiB: 128, cpuShare: 1 }, node: { cores: 2, idleVmCpu: 0.05 } });
  const trace = faasrailTrace(Array.from({ length: 6 }, (_, i) => ({ name: `f${i}`, avgDurationMs: 700, memoryMiB: 128, counts: [3, 5, 2, 4] })), 1000, 't');
  const run = async (startCpuWeight: number, cpuWeight: number) =>
    simulate({ trace, policies: await createPolicies({}, { baseDir: '.' }), profile, memoryMiB: Infinity, expand: { spread: 'random', seed: 3 }, node: { startCpuWeight, cpuWeight } });
  const a = await run(100, 100);
  const b = await run(250, 250);
  const c = await run(400, 100);
  for (const k of ['completed', 'coldBoots', 'p50Ms', 'p99Ms', 'meanMs', 'meanColdBootMs'] as const) assert.equal(a[k], b[k], k);
  // starts weighing 4× the runs end sooner while CPU-bound runs are busy
  assert.ok(c.meanColdBootMs < a.meanColdBootMs, `${c.meanColdBootMs} < ${a.meanColdBootMs}`);
});
