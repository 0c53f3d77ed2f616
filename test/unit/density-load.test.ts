// bench density-load (issue 24 item 5): the load's plan, its FaaSRail spec, the exact-arrival traces the
// replay and the simulator read, and the per-phase summaries (real records, simulator hooks). No VM.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { exactTrace, faasrailSpecText, MEMORY_FOR, outcomeOfRecords, planDensityLoad, SimOutcome } from '../../bench/density-load-plan.js';
import { simulatePhase } from '../../bench/density-load.js';
import type { ReplayRecord } from '../../src/replay/replay.js';
import { ArrivalExpander, loadTrace } from '../../src/traces/index.js';

const OPTS = { functions: 40, requests: 200, seconds: 150, skew: 0.8, seed: 7 };

async function specOf(rows: ReturnType<typeof planDensityLoad>, seconds: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-dl-test-'));
  try {
    const file = path.join(dir, 'spec.csv');
    writeFileSync(file, faasrailSpecText(rows, seconds));
    return await loadTrace(file, 'faasrail');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the plan: seeded, skewed, every function at least once, sizes alternating 128/256 MiB', () => {
  const a = planDensityLoad(OPTS);
  assert.deepEqual(planDensityLoad(OPTS), a, 'same seed, same load');
  assert.equal(a.length, 40);
  assert.ok(a.every((r) => r.arrivalsMs.length >= 1));
  assert.ok(a[0]!.arrivalsMs.length > a[39]!.arrivalsMs.length, 'the first function is the most popular');
  assert.deepEqual([...new Set(a.map((r) => r.memoryMiB))].sort(), [128, 256]);
  assert.deepEqual(a.slice(0, 4).map((r) => r.benchmark), ['helloworld', 'pyaes', 'helloworld', 'pyaes']);
  assert.deepEqual(MEMORY_FOR, { helloworld: 128, pyaes: 256 });
  for (const r of a) {
    assert.ok(r.arrivalsMs.every((t, i) => t >= 0 && t < 150_000 && (i === 0 || t >= r.arrivalsMs[i - 1]!)), 'sorted, inside the load');
  }
  const total = a.reduce((s, r) => s + r.arrivalsMs.length, 0);
  assert.ok(total >= 190 && total <= 240, `about the requests asked for: ${total}`);
  assert.throws(() => planDensityLoad({ ...OPTS, functions: 0 }), /functions/);
});

test('the FaaSRail spec: read back by the trace reader, one function per row, per-minute counts', async () => {
  const rows = planDensityLoad(OPTS);
  const spec = await specOf(rows, 150);
  assert.equal(spec.format, 'faasrail');
  assert.equal(spec.functions.length, 40);
  assert.equal(spec.nSlots, 3, '150 s: three minute columns');
  assert.equal(spec.functions[0]!.benchmark, 'helloworld');
  assert.equal(spec.functions[1]!.benchmark, 'pyaes');
  assert.deepEqual(spec.functions[1]!.request, { message_length: 64, num_iterations: 2 });
  assert.equal(spec.functions[0]!.name, 'helloworld-44136fa355b36-r1');
  rows.forEach((r, i) => assert.equal(spec.functions[i]!.total, r.arrivalsMs.length));
});

test('exact traces: the expander replays the planned instants; the preparation comes first, once per function', async () => {
  const rows = planDensityLoad(OPTS);
  const spec = await specOf(rows, 150);
  const load = exactTrace(spec, rows);
  const x = new ArrivalExpander(load);
  const got: Array<[number, number]> = [];
  for (let s = 0; s < load.nSlots; s++) {
    const n = x.slot(s);
    for (let i = 0; i < n; i++) got.push([x.times[i]!, x.fns[i]!]);
  }
  const want = rows.flatMap((r, fn) => r.arrivalsMs.map((t) => [t, fn] as [number, number])).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  assert.deepEqual(got, want);
  assert.equal(load.functions[1]!.memoryMiB, 256);
  assert.equal(load.functions[0]!.memoryMiB, 128);
  // slot counts agree with the exact arrivals
  let counted = 0;
  for (let e = 0; e < load.entryCount.length; e++) counted += load.entryCount[e]!;
  assert.equal(counted, load.totalInvocations);

  const sim = exactTrace(spec, rows, { prepMs: 40_000, offsetMs: 120_000 });
  assert.equal(sim.totalInvocations, load.totalInvocations + 40);
  const times = sim.exact!.times;
  const fns = sim.exact!.fns;
  assert.deepEqual([...fns.subarray(0, 40)], rows.map((_, i) => i), 'one preparation request per function, in order');
  assert.ok(times[39]! < 40_000 && times[40]! >= 120_000);
  assert.throws(() => exactTrace(spec, rows.slice(1)), /40 functions/);
});

const rec = (status: number, startPath: string | null, latencyMs: number | null, error?: string): ReplayRecord => ({ scheduledMs: 0, sentMs: 0, lagMs: 0, function: 'f', traceFunction: 'f', status, startPath, latencyMs, totalMs: latencyMs, ...(error ? { error } : {}) });

test('a real phase summed up: paths, refusals by code, failures, goodput, percentiles of the answered', () => {
  const o = outcomeOfRecords([
    rec(200, 'warm', 10),
    rec(200, 'warm', 20),
    rec(200, 'restore', 300),
    rec(200, 'cold', 4000),
    rec(503, null, 5, 'overloaded: wait too long'),
    rec(429, null, 3, 'queue_full: node queue full'),
    rec(503, null, 60_000, 'queue_timeout: waited 60 s'),
    rec(0, null, null, 'timeout'),
  ]);
  assert.equal(o.offered, 8);
  assert.equal(o.served, 4);
  assert.deepEqual([o.warm, o.restore, o.cold], [2, 1, 1]);
  assert.deepEqual(o.refused, { overloaded: 1, queue_full: 1, queue_timeout: 1 });
  assert.equal(o.failed, 1);
  assert.equal(o.goodput, 0.5);
  assert.equal(o.p50Ms, 20);
  assert.equal(o.p99Ms, 4000);
  assert.ok(Number.isNaN(outcomeOfRecords([]).goodput));
});

test('a simulated phase summed up through the hooks: requests numbered from 1, the preparation left out', async () => {
  const rows = planDensityLoad({ ...OPTS, functions: 2, requests: 2 });
  const spec = await specOf(rows, 150);
  const trace = exactTrace(spec, rows, { prepMs: 2000, offsetMs: 60_000 });
  const c = new SimOutcome(trace, 2);
  // requests 1 and 2: the preparation; 3 and 4: the load
  c.hooks.onAssign(1, true, 'cold');
  c.hooks.onDone(1, 5000);
  c.hooks.onAssign(3, true, 'restore');
  c.hooks.onDone(3, trace.exact!.times[2]! + 400);
  c.hooks.onReject(4, 'overloaded');
  const o = c.outcome();
  assert.equal(o.offered, 2);
  assert.equal(o.served, 1);
  assert.deepEqual([o.warm, o.restore, o.cold], [0, 1, 0]);
  assert.deepEqual(o.refused, { overloaded: 1 });
  assert.equal(o.p50Ms, 400);
  assert.equal(o.goodput, 0.5);
});

test('the simulator on the load: every function prepared, every load request accounted for, both accountings', async () => {
  const rows = planDensityLoad(OPTS);
  const spec = await specOf(rows, 150);
  const plan = { opts: OPTS, budgetMiB: Math.round(rows.reduce((s, r) => s + r.memoryMiB, 0) / 3), rows };
  for (const acc of ['nominal', 'measured'] as const) {
    const s = await simulatePhase(spec, plan, path.join(os.tmpdir(), 'fc-dl-unused'), acc);
    assert.equal(s.prepServed, 40, `${acc}: the preparation made every snapshot`);
    const o = s.outcome;
    assert.equal(o.offered, spec.totalInvocations);
    const refused = Object.values(o.refused).reduce((a, b) => a + b, 0);
    assert.equal(o.served + refused + o.failed, o.offered, `${acc}: every request answered or refused`);
    assert.equal(o.cold, 0, `${acc}: the load starts with every snapshot made`);
    assert.ok(s.peakChargedMiB <= plan.budgetMiB);
    assert.ok(s.prepEvictions > 0 && s.evictions >= 0, `${acc}: the load's evictions apart from the preparation's (${s.prepEvictions} in it: a third of the sizes fit)`);
  }
});
