// scripts/cluster-validation.ts (issue 23 item 4): the call-by-call comparison of
// a real 3-node run with its simulation, and the replay itself on a recorded run
// (bench/runs/, committed): one simulated answer per real call, under the rules
// the run recorded (or the ones given for runs that did not record them).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import type { LocalityRun } from '../../bench/cluster.js';
import { loadProfile } from '../../src/sim/profile.js';
import { compareCalls, parseArgs, simulateRun, type SimCall } from '../../scripts/cluster-validation.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = (file: string, mode: 'on' | 'off'): LocalityRun =>
  (JSON.parse(readFileSync(path.join(ROOT, 'bench', 'runs', file), 'utf8')) as { cluster: { locality: Record<'on' | 'off', LocalityRun> } }).cluster.locality[mode];

test('compareCalls: path, node and delivery call by call; latency by path only where both took the same path', () => {
  const real: LocalityRun['calls'] = [
    { ingress: 'loc1', fn: 'fa', node: 'loc0', path: 'warm', ms: 10, via: 'addressed' },
    { ingress: 'loc2', fn: 'fb', node: 'loc1', path: 'cold', ms: 3000, via: 'shared' },
    { ingress: 'loc0', fn: 'fc', node: 'loc2', path: 'restore', ms: 200, via: 'shared' },
  ];
  const sim: SimCall[] = [
    { node: 0, path: 'warm', ms: 19, via: 'addressed' },
    { node: 2, path: 'cold', ms: 2300, via: 'shared' },
    // the last call: its latency is not known per call
    { node: 2, path: 'warm', ms: undefined, via: 'addressed' },
  ];
  const c = compareCalls(real, sim);
  assert.equal(c.samePath, 2);
  assert.equal(c.sameNode, 2);
  assert.equal(c.hasVia, true);
  assert.equal(c.realAddressed, 1);
  assert.equal(c.simAddressed, 2);
  assert.equal(c.sameVia, 2);
  assert.deepEqual(c.confusion, { warm: { warm: 1, restore: 0, cold: 0 }, restore: { warm: 1, restore: 0, cold: 0 }, cold: { warm: 0, restore: 0, cold: 1 } });
  assert.deepEqual(c.latency.all, { real: [10, 3000], sim: [19, 2300] });
  assert.deepEqual(c.latency.warm, { real: [10], sim: [19] });
  assert.deepEqual(c.latency.cold, { real: [3000], sim: [2300] });
  assert.deepEqual(c.latency.restore, { real: [], sim: [] });
});

test('compareCalls: a run that did not record deliveries compares none', () => {
  const c = compareCalls([{ ingress: 'loc0', fn: 'fa', node: 'loc0', path: 'cold', ms: 2500 }], [{ node: 0, path: 'cold', ms: 2200, via: 'shared' }]);
  assert.equal(c.hasVia, false);
  assert.equal(c.sameVia, 0);
  assert.equal(c.simAddressed, 0);
  assert.equal(c.samePath, 1);
});

test('simulateRun: one simulated answer per real call, under the rules the run recorded', async () => {
  const real = run('2026-12-07-cluster-locality-s5-run4-diag.json', 'on');
  assert.equal(real.pullRule, 'starts');
  const a = parseArgs(['--pull-rule', 'instances', '--accounting', 'nominal', 'x.json']);
  const s = await simulateRun(real, true, await loadProfile(a.profile), a);
  // the run's own rules win over the command line's
  assert.equal(s.pullRule, 'starts');
  assert.equal(s.accounting, 'measured');
  assert.equal(s.memoryModel, 'built-in');
  assert.equal(s.calls.length, real.n);
  assert.equal(s.r.completed, real.n);
  const count = (p: SimCall['path']): number => s.calls.filter((c) => c.path === p).length;
  assert.equal(count('warm'), s.r.warm);
  assert.equal(count('restore'), s.r.restores);
  assert.equal(count('cold'), s.r.coldStarts);
  for (const [i, c] of s.calls.entries()) {
    assert.ok(c.node >= 0 && c.node < 3, `call ${i}: node ${c.node}`);
    assert.ok(c.via === 'addressed' || c.via === 'shared', `call ${i}: via ${c.via}`);
    // every call but the last is timed: at least the hop, and a start at least its cost
    if (i < s.calls.length - 1) assert.ok(c.ms !== undefined && c.ms >= 2, `call ${i}: ${c.ms} ms`);
    else assert.equal(c.ms, undefined);
  }
});

test('simulateRun: a run without recorded rules takes them from the command line', async () => {
  const real = run('2026-12-06-cluster-locality-run1.json', 'off');
  assert.equal(real.pullRule, undefined);
  const a = parseArgs(['--pull-rule', 'instances', '--accounting', 'nominal', 'x.json']);
  const s = await simulateRun(real, false, await loadProfile(a.profile), a);
  assert.equal(s.pullRule, 'instances');
  assert.equal(s.accounting, 'nominal');
  assert.equal(s.memoryModel, 'none');
  assert.equal(s.calls.length, real.n);
  // locality off: everything goes through the shared queue
  assert.ok(s.calls.every((c) => c.via === 'shared'));
});

test('parseArgs: a bad value names its flag', () => {
  assert.throws(() => parseArgs(['--pull-rule', 'greedy', 'x.json']), /--pull-rule: expected instances or starts, got greedy/);
  assert.throws(() => parseArgs(['--accounting', 'pss', 'x.json']), /--accounting: expected measured or nominal, got pss/);
  assert.throws(() => parseArgs(['--sample-ms', '0', 'x.json']), /--sample-ms/);
  assert.throws(() => parseArgs([]), /usage: cluster-validation\.ts/);
});
