// The simulator's CPU model: processor sharing of the node's cores between starts,
// CPU-bound runs and idle VMs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuModel, type CpuJob } from '../../src/sim/cpu-model.js';
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
