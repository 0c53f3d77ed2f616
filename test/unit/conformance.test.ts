// Conformance: the same trace through (a) the simulator and (b) the real
// Dispatcher + VmPool + Workers + PerfManager + SnapshotManager with a fake
// runtime driver whose start and run times follow the same cost profile, on a
// virtual clock. Both drive the same decision core, but through different shells
// (event heap and modelled costs vs actors, messages and Workers): every start,
// every assignment of a request to an instance, every refusal and every stop
// (evictions included) must be identical. A shell that decides anything on its
// own, or feeds the core differently, fails this test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../src/core/clock.js';
import { createPolicies, type PoliciesConfigInput } from '../../src/policies/index.js';
import { profileSchema } from '../../src/sim/profile.js';
import { simulate, type Decision } from '../../src/sim/simulator.js';
import { TraceSource } from '../../src/sources/trace.js';
import { faasrailTrace } from '../../src/traces/faasrail.js';
import type { Trace } from '../../src/traces/types.js';
import { deploy, harness } from '../helpers/pool-harness.js';

const SLOT_MS = 10_000;
const COLD_MS = 3000; // boot 2800 + init 200
const RESTORE_MS = 400; // driver 300 + resync 100

const FUNCTIONS = [
  { name: 'a', avgDurationMs: 150.25, memoryMiB: 128, counts: [5, 8, 3, 0, 0, 10, 2, 0, 0, 0, 6, 1] },
  { name: 'b', avgDurationMs: 2500.5, memoryMiB: 256, counts: [0, 6, 0, 0, 4, 0, 0, 8, 0, 0, 0, 3] },
  { name: 'c', avgDurationMs: 40.125, memoryMiB: 128, counts: [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1] },
  { name: 'd', avgDurationMs: 9000.75, memoryMiB: 256, counts: [2, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0] },
  { name: 'e', avgDurationMs: 600.5, memoryMiB: 512, counts: [0, 0, 3, 3, 0, 0, 0, 3, 3, 0, 0, 0] },
  { name: 'f', avgDurationMs: 80.375, memoryMiB: 128, counts: [10, 0, 0, 0, 10, 0, 0, 0, 10, 0, 0, 0] },
  // a burst beyond its three instances: admission refuses early, or the queue times out
  { name: 'g', avgDurationMs: 5000.5, memoryMiB: 128, counts: [0, 0, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0] },
];

const NODE = {
  memoryMiB: 1024,
  maxInstances: 3,
  maxQueueDelayMs: 15_000,
  maxConcurrentStarts: 2,
};

const profile = profileSchema.parse({
  accelerator: 'test',
  defaults: { coldMs: COLD_MS, restoreMs: RESTORE_MS, warmMs: 0, memoryMiB: 256, restoreMsByTier: { shm: RESTORE_MS } },
  tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 1 << 20 }],
  node: { cores: 2, idleVmCpu: 0 },
});

const expand = { spread: 'random' as const, seed: 7 };

async function simulated(trace: Trace, cfg: PoliciesConfigInput): Promise<Decision[]> {
  const log: Decision[] = [];
  simulate({
    trace,
    policies: await createPolicies(cfg, { baseDir: '.' }),
    profile,
    memoryMiB: NODE.memoryMiB,
    maxInstancesPerFunction: NODE.maxInstances,
    maxQueueDelayMs: NODE.maxQueueDelayMs,
    expand,
    node: { cpuModel: false, maxConcurrentStarts: NODE.maxConcurrentStarts, snapshots: true, preferWarm: true },
    onDecision: (d) => log.push(d),
  });
  return log;
}

async function real(trace: Trace, cfg: PoliciesConfigInput): Promise<{ log: Decision[]; answered: number; sent: number }> {
  const clock = new VirtualClock(0);
  const log: Decision[] = [];
  const h = await harness({
    clock,
    snapshots: true,
    policies: cfg,
    behaviour: { bootMs: COLD_MS - 200, initMs: 200, restoreMs: RESTORE_MS - 100, resyncMs: 100, ownRestoreMs: 0, snapshotMs: 0 },
    pool: {
      memoryBudgetMiB: NODE.memoryMiB,
      maxQueueDelayMs: NODE.maxQueueDelayMs,
      tiers: [{ name: 'shm', latencyRank: 0, capacityBytes: (1 << 20) * 1048576 }],
      starts: { maxConcurrent: NODE.maxConcurrentStarts, cores: 2, idleVmCpu: 0, defaultColdMs: COLD_MS, defaultRestoreMs: RESTORE_MS, preferWarm: true },
    },
    onDecision: (d) => log.push(d),
  });
  try {
    for (const f of FUNCTIONS) deploy(h, f.name, { memoryMiB: f.memoryMiB, maxInstances: NODE.maxInstances, timeoutMs: 60_000 });
    await clock.settle();
    const src = new TraceSource({ trace, dispatcher: h.dispatcher, clock, expand, params: (i) => ({ ms: FUNCTIONS[i]!.avgDurationMs }) });
    const done = src.done();
    await src.start();
    await clock.run();
    await done;
    return { log, ...src.progress };
  } finally {
    await h.close();
  }
}

/** Decisions up to the end of the trace (after it, the simulator runs no more timers), in a canonical order. */
function canonical(log: Decision[], endMs: number): string[] {
  const order = { start: 0, assign: 1, reject: 2, stop: 3, dropSnapshot: 4, moveSnapshot: 5 } as const;
  return log
    .filter((d) => d.t < endMs)
    .map((d) => ({ d, key: [d.t.toFixed(6), order[d.kind], 'inst' in d ? d.inst : 0, 'req' in d ? d.req : 0] as const }))
    .sort((x, y) => (x.key[0] === y.key[0] ? x.key[1] - y.key[1] || x.key[2] - y.key[2] || x.key[3] - y.key[3] : Number(x.key[0]) - Number(y.key[0])))
    .map(({ d }) => JSON.stringify({ ...d, t: Number(d.t.toFixed(6)) }));
}

function compare(sim: string[], daemon: string[]): void {
  const n = Math.min(sim.length, daemon.length);
  for (let i = 0; i < n; i++) {
    if (sim[i] !== daemon[i]) {
      assert.fail(`decision ${i} differs\n  simulator: ${sim[i]}\n  daemon:    ${daemon[i]}\n  before it: ${sim.slice(Math.max(0, i - 3), i).join('\n             ')}`);
    }
  }
  assert.equal(daemon.length, sim.length, `the daemon made ${daemon.length} decisions, the simulator ${sim.length}`);
}

const COMMON = ['"kind":"start"', '"path":"restore"', '"fresh":false', '"cause":"evicted"', '"kind":"reject"'];
for (const [label, cfg, kinds] of [
  ['fixed TTL, LRU eviction, deadline admission', { keepAlive: { policy: 'fixed', ttlSeconds: 25 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' }, [...COMMON, '"cause":"expired"']],
  // greedy-dual keeps instances until evicted: no expiry
  ['greedy-dual, priority eviction, queue-length admission', { keepAlive: 'greedy-dual', eviction: 'priority', selection: 'lru', placement: 'fixed', admission: 'queue-length' }, COMMON],
] as Array<[string, PoliciesConfigInput, string[]]>) {
  void test(`daemon and simulator make the same decisions: ${label}`, { timeout: 120_000 }, async () => {
    const trace = faasrailTrace(FUNCTIONS, SLOT_MS, 'conformance');
    const endMs = trace.nSlots * SLOT_MS;
    const simLog = await simulated(trace, cfg);
    const r = await real(trace, cfg);
    assert.equal(r.answered, r.sent, 'every request answered');
    const s = canonical(simLog, endMs);
    const d = canonical(r.log, endMs);
    // the trace exercises every kind of decision
    for (const k of kinds) {
      assert.ok(s.some((x) => x.includes(k)), `the simulator log has ${k}`);
    }
    compare(s, d);
  });
}
