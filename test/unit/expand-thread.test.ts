// Arrivals expanded on a worker thread (src/traces/expand-thread.ts, issue 23 item 5): the same arrivals as
// ArrivalExpander in this thread, slot by slot, across batches and for a slot larger than a batch; a
// simulation gives the same result either way; closing early stops the worker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPolicies, createRng } from '../../src/policies/index.js';
import { loadProfile } from '../../src/sim/profile.js';
import { simulate } from '../../src/sim/simulator.js';
import { ArrivalExpander, openArrivals, type ExpandableTrace, type Spread } from '../../src/traces/expand.js';
import { BATCH_ARRIVALS, ThreadedArrivals } from '../../src/traces/expand-thread.js';
import { faasrailTrace } from '../../src/traces/faasrail.js';

/** A CSR trace of `nSlots` slots: most small, slot 7 larger than a worker batch, slot 3 empty. */
function bigTrace(nSlots: number, functions: number): ExpandableTrace {
  const rng = createRng(5);
  const slotStart = new Uint32Array(nSlots + 1);
  const fn: number[] = [];
  const count: number[] = [];
  for (let s = 0; s < nSlots; s++) {
    slotStart[s] = fn.length;
    if (s === 3) continue;
    for (let f = 0; f < functions; f++) {
      if (rng.next() < 0.3) continue;
      fn.push(f);
      count.push(s === 7 && f === 0 ? BATCH_ARRIVALS + 1234 : 1 + Math.floor(rng.next() * 400));
    }
  }
  slotStart[nSlots] = fn.length;
  return { slotMs: 60_000, nSlots, slotStart, entryFn: Uint32Array.from(fn), entryCount: Uint32Array.from(count), functions: { length: functions } };
}

for (const spread of ['random', 'even'] as Spread[]) {
  void test(`threaded arrivals equal the in-thread expander's, slot by slot (${spread})`, () => {
    const t = bigTrace(60, 40);
    const here = new ArrivalExpander(t, { spread, seed: 3 });
    const there = openArrivals(t, { spread, seed: 3, thread: true });
    assert.ok(there instanceof ThreadedArrivals);
    let total = 0;
    try {
      for (let s = 0; s < t.nSlots; s++) {
        const n = here.slot(s);
        assert.equal(there.slot(s), n, `slot ${s}: count`);
        assert.deepEqual(there.times.subarray(0, n), here.times.subarray(0, n), `slot ${s}: times`);
        assert.deepEqual(there.fns.subarray(0, n), here.fns.subarray(0, n), `slot ${s}: functions`);
        total += n;
      }
    } finally {
      there.close();
    }
    assert.ok(total > 4 * BATCH_ARRIVALS, `several batches (${total} arrivals)`);
  });
}

void test('threaded arrivals: closed before the trace ends, the worker stops', async () => {
  const x = new ThreadedArrivals(bigTrace(200, 60), { seed: 1 });
  assert.ok(x.slot(0) > 0);
  assert.ok(x.slot(1) > 0);
  x.close();
  assert.throws(() => x.slot(150), /closed/);
  await x.stopped; // the worker ended
});

void test('a simulation with its arrivals from a worker thread gives the same result', async () => {
  const rng = createRng(9);
  const rows = Array.from({ length: 30 }, (_, i) => ({ name: `f${i}`, avgDurationMs: 50 + i * 20, memoryMiB: 128, counts: Array.from({ length: 20 }, () => Math.floor(rng.next() * 300)) }));
  const trace = faasrailTrace(rows, 60_000, 'test');
  const profile = await loadProfile(undefined);
  const run = async (thread: boolean) => {
    const r = simulate({ trace, policies: await createPolicies({ keepAlive: 'fixed' }, { baseDir: '.' }), profile, memoryMiB: 2048, expand: { seed: 4, thread } });
    return { ...r, wallMs: 0, eventsPerSecond: 0, invocationsPerSecond: 0 };
  };
  const a = await run(false);
  const b = await run(true);
  assert.ok(a.invocations > BATCH_ARRIVALS, `more than one batch (${a.invocations} invocations)`);
  assert.deepEqual(b, a);
});
