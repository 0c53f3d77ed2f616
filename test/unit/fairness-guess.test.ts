// Issue 18, session 6: admission's estimate under max-min for a function none of whose runs has ended yet
// (fairness.ts fairWait). It counts what is known of such a run (the profiled run time, the node's mean run,
// at least what its oldest busy run has already taken), not the queueing deadline: on a fresh node the 2nd
// queued request of a function is not refused because another function has demand, and runs that really are
// long still get the requests behind them refused at once, not at the deadline. The decision core driven
// directly, times passed in (no shell, no VM).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CoreConfig } from '../../src/vmpool/core/model.js';
import { recordingCore } from '../helpers/recording-core.js';

const COLD_MS = 10_000;
const DEADLINE_MS = 60_000;

function core(over: Partial<CoreConfig> = {}, maxStarts = 1): ReturnType<typeof recordingCore> {
  return recordingCore({ maxQueueDelayMs: DEADLINE_MS, ...over }, { maxConcurrent: maxStarts, defaultColdMs: COLD_MS, defaultRestoreMs: 1000 });
}

void test('a fresh node: two functions, each with 2 requests queued during their first starts, none refused', async () => {
  // test/e2e/python.test.ts's clean-clone failure: "estimated wait 320 785 ms > 300 000; 1 queued, 1/1 starts
  // running" (the unknown run counted as long as the deadline)
  const { c, starts, assigned, refused } = await core({}, 1);
  const spec = { memoryMiB: 256, maxInstances: 1, version: '1' };
  const a = c.defineFunction('a', spec, 0);
  const b = c.defineFunction('b', spec, 0);
  c.arrive(a, 1, 0);
  c.arrive(b, 2, 10);
  c.arrive(a, 3, 100);
  c.arrive(b, 4, 200);
  assert.deepEqual(refused, [], 'nothing refused while the first starts run');
  assert.ok(c.lastEstimateMs < DEADLINE_MS, `estimate ${c.lastEstimateMs} ms`);
  // the starts end, the runs go (one start slot: a's, then b's); every request is served
  c.startDone(starts[0]!, COLD_MS, 3000);
  c.startDone(starts[1]!, 2 * COLD_MS, 3000);
  c.runDone(a.busy[0]!, 2 * COLD_MS + 500, 500);
  c.runDone(b.busy[0]!, 2 * COLD_MS + 600, 500);
  assert.deepEqual(assigned.sort(), [1, 2, 3, 4]);
  assert.deepEqual(refused, []);
});

void test('runs that really are long: the requests behind them are refused at once, not at the deadline', async () => {
  // two functions, one instance each, whose first runs take 100 s (longer than a request may wait): nothing of
  // them has ended, so only the time the runs have already taken tells how long they are
  const { c, starts, refused } = await core({}, 2);
  const spec = { memoryMiB: 256, maxInstances: 1, version: '1' };
  const a = c.defineFunction('a', spec, 0);
  const b = c.defineFunction('b', spec, 0);
  c.arrive(a, 1, 0);
  c.arrive(b, 2, 0);
  c.startDone(starts[0]!, 1000, 1000);
  c.startDone(starts[1]!, 1000, 1000);
  assert.equal(a.busy.length + b.busy.length, 2, 'both runs go');
  // a request of each every 2.5 s for 60 s while the runs go on
  let req = 10;
  for (let t = 2500; t <= 60_000; t += 2500) {
    c.arrive(a, req++, t);
    c.arrive(b, req++, t);
  }
  const atOnce = refused.filter((r) => r.now === r.arrival);
  // the guess counted the deadline: every request after the first queued one refused at once; the bound
  // admits the few that the time already run allows, then refuses at arrival
  const admitted = 48 - refused.length;
  assert.ok(admitted >= 4, `admitted ${admitted} of 48 while the runs were young`);
  assert.ok(admitted <= 12, `admitted ${admitted} of 48 behind runs that had already taken up to 60 s`);
  assert.equal(atOnce.length, refused.length, 'every refusal so far at arrival');
  // every request arriving once the runs had taken 30 s: refused at once
  for (let r = 10 + 2 * 12; r < req; r++) assert.ok(atOnce.some((x) => x.req === r), `request ${r} refused at once`);
});
