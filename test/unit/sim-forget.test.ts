// issue 23: a simulated node forgets a function that holds nothing (Simulator.forget,
// PoolCore.forgetFunction) and defines it again at its next arrival as it was. A node
// that forgets at every opportunity must make exactly the decisions of one that never
// forgets, under every keep-alive policy that keeps per-function state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createPolicies, type PoliciesConfigInput } from '../../src/policies/index.js';
import { DEFAULT_PROFILE } from '../../src/sim/profile.js';
import { Simulator } from '../../src/sim/simulator.js';
import type { Decision } from '../../src/vmpool/core/model.js';
import type { Trace } from '../../src/traces/types.js';
import { syntheticTrace } from '../helpers/synthetic-trace.js';

const KEEP_ALIVE: Array<{ label: string; policies: PoliciesConfigInput }> = [
  { label: 'fixed', policies: { keepAlive: { policy: 'fixed', ttlSeconds: 20 } } },
  { label: 'greedy-dual', policies: { keepAlive: 'greedy-dual', eviction: 'priority' } },
  // bins of 1 s over 60 s: idle gaps learned within a minute, pre-warm timers armed
  { label: 'hybrid-histogram', policies: { keepAlive: { policy: 'hybrid-histogram', binMinutes: 1 / 60, rangeMinutes: 1, minSamples: 2, headPercentile: 5, tailPercentile: 99 } } },
];

interface Arrival {
  fn: number;
  gapMs: number;
}

/** Drive one node through `arrivals`; `forget`: try to forget every function between events. */
async function run(t: Trace, policies: PoliciesConfigInput, memoryMiB: number, snapshots: boolean, arrivals: Arrival[], forget: boolean): Promise<{ log: string[]; forgotten: number; counters: unknown }> {
  const log: string[] = [];
  const sim = new Simulator({
    trace: t,
    profile: DEFAULT_PROFILE,
    memoryMiB,
    policies: await createPolicies(policies, { baseDir: '.' }),
    lazyFunctions: true,
    node: { snapshots },
    onDecision: (d: Decision) => log.push(JSON.stringify(d)),
  });
  let forgotten = 0;
  const tryForget = (): void => {
    if (!forget) return;
    // the cluster node's sweep (functions that lost their last instance or snapshot), then every function
    forgotten += sim.forgetIdle();
    for (let fn = 0; fn < t.functions.length; fn++) if (sim.forget(fn)) forgotten++;
  };
  let now = 0;
  let req = 0;
  for (const a of arrivals) {
    const at = now + a.gapMs;
    // every event before the arrival, one at a time, forgetting between them
    while (sim.nextEventTime() <= at) {
      sim.advance(sim.nextEventTime());
      tryForget();
    }
    sim.arrive(a.fn, ++req, at);
    now = at;
    tryForget();
  }
  const end = now + 5 * 60_000;
  while (sim.nextEventTime() <= end) {
    sim.advance(sim.nextEventTime());
    tryForget();
  }
  return { log, forgotten, counters: { ...sim.poolCore.counters } };
}

void test('a node that forgets functions decides as one that never forgets (every keep-alive policy, random short traces)', { timeout: 240_000 }, async () => {
  // eight functions in little memory: greedy-dual's instances stay until evicted
  const t = await syntheticTrace({ functions: 8, slots: 2, seed: 7, log10Rate: [0, 1] });
  const arrival = fc.record({ fn: fc.integer({ min: 0, max: t.functions.length - 1 }), gapMs: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 10_000, max: 90_000 })) });
  const totals = new Map<string, number>();
  for (const ka of KEEP_ALIVE) {
    await fc.assert(
      fc.asyncProperty(fc.array(arrival, { minLength: 1, maxLength: 60 }), fc.constantFrom(512, 1024, 4096), fc.boolean(), async (arrivals, memoryMiB, snapshots) => {
        const kept = await run(t, ka.policies, memoryMiB, snapshots, arrivals, false);
        const forgot = await run(t, ka.policies, memoryMiB, snapshots, arrivals, true);
        assert.deepEqual(forgot.log, kept.log, `${ka.label}: the same decisions`);
        assert.deepEqual(forgot.counters, kept.counters, `${ka.label}: the same counters`);
        totals.set(ka.label, (totals.get(ka.label) ?? 0) + forgot.forgotten);
      }),
      { numRuns: 40, seed: 23 },
    );
    assert.ok((totals.get(ka.label) ?? 0) > 0, `${ka.label}: functions were forgotten (and came back)`);
  }
});

void test('forget refuses a function that holds something; the one it forgot comes back with what it learned', async () => {
  const t = await syntheticTrace({ functions: 2, slots: 2, seed: 3, log10Rate: [0, 1] });
  const sim = new Simulator({ trace: t, profile: DEFAULT_PROFILE, memoryMiB: 4096, policies: await createPolicies({ keepAlive: { policy: 'fixed', ttlSeconds: 5 } }, { baseDir: '.' }), lazyFunctions: true, node: { snapshots: false } });
  assert.equal(sim.forget(0), false, 'never defined: nothing to forget');
  sim.arrive(0, 1, 0);
  assert.equal(sim.forget(0), false, 'a start under way');
  const f = sim.coreFunction(0)!;
  while (f.idle.length === 0) sim.advance(sim.nextEventTime());
  assert.equal(sim.forget(0), false, 'an instance');
  sim.advance(120_000);
  assert.equal(f.live, 0, 'expired');
  const learned = { ...f.view, heldMean: f.heldMean, vt: f.vt, memEstimate: [...f.memEstimate] };
  const defined = sim.poolCore.functionCount;
  assert.equal(sim.forget(0), true);
  assert.equal(sim.coreFunction(0), undefined);
  assert.equal(sim.poolCore.functionCount, defined - 1);
  assert.equal(sim.poolCore.fn(f.name), undefined, 'out of the core by name');
  const back = sim.coreFunction(0, true)!;
  assert.notEqual(back, f);
  assert.equal(back.index, f.index, 'its index again');
  assert.deepEqual({ ...back.view, heldMean: back.heldMean, vt: back.vt, memEstimate: [...back.memEstimate] }, learned);
  assert.equal(sim.poolCore.functionCount, defined);
});
