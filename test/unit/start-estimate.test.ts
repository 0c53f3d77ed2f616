// Issue 18, session 7: admission's wait for a request that waits for a start counts what stretches starts now
// (estimates.ts startDuration): the starts beside it and the busy runs on the node's cores, shared by CPU weight
// (limits.startCpuWeight), no less than what starts took lately and what the starts under way have already
// taken. A request whose start cannot end before the deadline is refused at arrival, not at the deadline. The
// decision core driven directly on the virtual clock (times passed in; no shell, no VM).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PoolCore } from '../../src/vmpool/core/core.js';
import type { CoreConfig, CoreFunction, CoreInstance } from '../../src/vmpool/core/model.js';
import { recordingCore, type Refusal } from '../helpers/recording-core.js';

const COLD_MS = 4000;
const DEADLINE_MS = 60_000;

async function core(over: Partial<CoreConfig> = {}, starts: Partial<CoreConfig['starts']> = {}): Promise<{ c: PoolCore; launched: CoreInstance[]; refused: Refusal[] }> {
  const r = await recordingCore({ maxQueueDelayMs: DEADLINE_MS, ...over }, { maxConcurrent: 'auto', cores: 2, defaultColdMs: COLD_MS, defaultRestoreMs: 500, ...starts });
  return { c: r.c, launched: r.starts, refused: r.refused };
}

const spec = { memoryMiB: 256, maxInstances: 1, version: '1' };

function eight(c: PoolCore): CoreFunction[] {
  return Array.from({ length: 8 }, (_, i) => c.defineFunction(`f${i}`, spec, 0));
}

void test('a fresh idle node: 8 functions, two requests each at once, nothing refused', async () => {
  const { c, launched, refused } = await core();
  const fs = eight(c);
  fs.forEach((f, i) => c.arrive(f, i, 0));
  fs.forEach((f, i) => c.arrive(f, 100 + i, 100));
  assert.deepEqual(refused, []);
  assert.equal(launched.length, 2, 'two start slots on 2 cores');
  assert.ok(c.lastEstimateMs < DEADLINE_MS, `the last one's estimate ${c.lastEstimateMs} ms`);
});

void test('8 first starts at once on 2 cores, starts running long: a 2nd request of the last function is refused at arrival', async () => {
  const { c, launched, refused } = await core();
  const fs = eight(c);
  fs.forEach((f, i) => c.arrive(f, i, 0));
  assert.equal(launched.length, 2);
  // 25 s later the first two starts still run (a loaded host: 4 s alone): the 5 starts ahead of the last
  // function's and its own take as long, 2 at a time: its start cannot end within the deadline
  c.arrive(fs[7]!, 107, 25_000);
  assert.deepEqual(refused, [{ req: 107, reason: 'overloaded', arrival: 25_000, now: 25_000 }], 'refused at once');
  assert.ok(c.lastEstimateMs > DEADLINE_MS, `estimate ${c.lastEstimateMs} ms`);
  // the first function's 2nd request waits only for its own start under way (ends soon enough): admitted
  c.arrive(fs[0]!, 100, 25_000);
  assert.equal(refused.length, 1);
});

void test('starts measured slow lately: the estimate holds what they took, not their cost alone', async () => {
  const { c, launched, refused } = await core({}, { maxConcurrent: 1 });
  const fs = eight(c);
  fs.forEach((f, i) => c.arrive(f, i, 0));
  // one start slot; the first start took 15 s (its cost alone: 4 s)
  c.startDone(launched[0]!, 15_000, 4000);
  c.runDone(fs[0]!.busy[0]!, 15_100, 100);
  // at 15.1 s: 6 functions wait for a start before f7's 2nd request's (f1's under way): 15 s each
  c.arrive(fs[7]!, 107, 15_100);
  assert.equal(refused.length, 1, `f7's second request refused at once (estimate ${c.lastEstimateMs} ms)`);
  assert.equal(refused[0]!.now, 15_100);
  // a later function on a node whose starts ended long ago (beyond a queueing deadline) is judged on the node's mean
  // start (what a function never started costs), not stretched further
  const { c: c2, launched: l2, refused: r2 } = await core({}, { maxConcurrent: 1 });
  const g = c2.defineFunction('g', spec, 0);
  c2.arrive(g, 1, 0);
  c2.startDone(l2[0]!, 15_000, 4000);
  c2.runDone(g.busy[0]!, 15_100, 100);
  const h = c2.defineFunction('h', spec, 0);
  c2.arrive(h, 2, 15_100 + DEADLINE_MS + 1);
  assert.deepEqual(r2, []);
  assert.equal(c2.lastEstimateMs, 15_000, 'no load seen within the deadline: the mean start');
});

void test('busy runs stretch a start by CPU weight: equal weights 1.5x beside 2 busy cores, a 4x start weight not', async () => {
  for (const [startWeight, expected] of [
    [1, 1.5 * COLD_MS],
    [4, COLD_MS],
  ] as const) {
    const { c, launched } = await core({ fairness: 'off' }, { startWeight });
    const a = c.defineFunction('a', { ...spec, maxInstances: 2 }, 0);
    c.arrive(a, 1, 0);
    c.arrive(a, 2, 0);
    // both starts end on time (4 s): the node has seen starts take their cost; two runs keep the cores busy
    c.startDone(launched[0]!, COLD_MS, 3000);
    c.startDone(launched[1]!, COLD_MS, 3000);
    assert.equal(a.busy.length, 2);
    const b = c.defineFunction('b', spec, 0);
    c.arrive(b, 3, COLD_MS + 10);
    assert.equal(c.lastEstimateMs, expected, `start weight ${startWeight}`);
  }
});

void test('runs that get a third of a core (a shared host) make the fair wait 3x as long as runs that get a whole one', async () => {
  const est: number[] = [];
  for (const wall of [1000, 3000]) {
    const { c, launched } = await core();
    const a = c.defineFunction('a', spec, 0);
    const b = c.defineFunction('b', spec, 0);
    c.setCosts(a, { runMs: 1000, cpuShare: 1 });
    c.setCosts(b, { runMs: 1000, cpuShare: 1 });
    c.arrive(a, 1, 0);
    c.arrive(b, 2, 0);
    c.startDone(launched[0]!, COLD_MS, 3000);
    c.startDone(launched[1]!, COLD_MS, 3000);
    // each run asks for a core and takes 1 s of CPU: in `wall` ms
    c.runDone(a.busy[0]!, COLD_MS + wall, 1000);
    c.runDone(b.busy[0]!, COLD_MS + wall, 1000);
    for (let i = 0; i < 4; i++) {
      c.arrive(a, 10 + i, COLD_MS + wall + 1);
      c.arrive(b, 20 + i, COLD_MS + wall + 1);
    }
    est.push(c.lastEstimateMs);
  }
  assert.ok(est[1]! > 2.5 * est[0]!, `estimates ${est.join(' and ')} ms`);
});
