import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createPolicies, createRng, type PoliciesConfigInput } from '../../src/policies/index.js';
import { EventHeap } from '../../src/sim/heap.js';
import { LatencyHistogram } from '../../src/sim/histogram.js';
import { functionCosts, profileSchema, withTierDefaults, type Profile } from '../../src/sim/profile.js';
import { simulate, type SimulationOptions } from '../../src/sim/simulator.js';
import { runSimulateCommand } from '../../src/sim/cli.js';
import { faasrailTrace, type FaasrailRow } from '../../src/traces/faasrail.js';
import { loadAzureTrace } from '../../src/traces/azure.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/traces');

const profile: Profile = profileSchema.parse({
  accelerator: 'test',
  defaults: { coldMs: 3000, restoreMs: 200, warmMs: 5, memoryMiB: 256, runMs: 100 },
});

function trace(rows: Partial<FaasrailRow>[], slotMs = 60_000) {
  return faasrailTrace(
    rows.map((r, i) => ({ name: r.name ?? `f${i}`, avgDurationMs: r.avgDurationMs ?? 100, memoryMiB: r.memoryMiB ?? 128, counts: r.counts ?? [] })),
    slotMs,
    'test',
  );
}

async function sim(rows: Partial<FaasrailRow>[], cfg: PoliciesConfigInput, o: Partial<SimulationOptions> = {}, slotMs = 60_000) {
  return simulate({
    trace: trace(rows, slotMs),
    policies: await createPolicies(cfg, { baseDir: '.' }),
    profile,
    memoryMiB: Infinity,
    expand: { spread: 'even' },
    ...o,
  });
}

void test('event heap pops in time order, FIFO on ties', () => {
  const h = new EventHeap();
  const rng = createRng(5);
  const want: [number, number][] = [];
  for (let i = 0; i < 5000; i++) {
    const t = Math.floor(rng.next() * 100);
    h.push(t, i, 0);
    want.push([t, i]);
  }
  want.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (const [t, i] of want) {
    assert.ok(h.pop());
    assert.equal(h.topTime, t);
    assert.equal(h.topPayload, i);
  }
  assert.equal(h.pop(), false);
});

void test('latency histogram percentiles within 1 %', () => {
  const hist = new LatencyHistogram();
  for (let i = 1; i <= 10_000; i++) hist.record(i);
  assert.ok(Math.abs(hist.percentile(50) - 5000) / 5000 < 0.01);
  assert.ok(Math.abs(hist.percentile(99) - 9900) / 9900 < 0.01);
  assert.equal(hist.mean(), 5000.5);
});

void test('fixed TTL: first cold, then warm; latency and idle memory', async () => {
  const r = await sim([{ counts: [1, 1, 1, 1, 1] }], { keepAlive: { policy: 'fixed', ttlSeconds: 600 } });
  assert.equal(r.invocations, 5);
  assert.equal(r.coldStarts, 1);
  assert.equal(r.warm, 4);
  assert.equal(r.restores, 0);
  assert.ok(Math.abs(r.p50Ms - 105) < 2, `p50 ${r.p50Ms}`);
  assert.ok(Math.abs(r.meanMs - (3100 + 4 * 105) / 5) < 0.001);
  // idle: 33.1..90, 3 × (x.105..next), 270.105..300 s, 128 MiB
  const idleS = (90 - 33.1) + 3 * (60 - 0.105) + (300 - 270.105);
  assert.ok(Math.abs(r.wastedMemoryMiBSeconds - idleS * 128) < 0.01, `${r.wastedMemoryMiBSeconds}`);
  assert.equal(r.simulatedSeconds, 300);
});

void test('TTL shorter than the gap: restores from the snapshot, or cold without snapshots', async () => {
  const a = await sim([{ counts: [1, 1, 1, 1, 1] }], { keepAlive: { policy: 'fixed', ttlSeconds: 30 } });
  // the last instance would expire after the end of the trace
  assert.deepEqual([a.coldStarts, a.restores, a.warm, a.expirations], [1, 4, 0, 4]);
  const b = await sim([{ counts: [1, 1, 1, 1, 1] }], { keepAlive: 'none', placement: { policy: 'fixed', action: 'cold' } });
  assert.deepEqual([b.coldStarts, b.restores, b.warm], [5, 0, 0]);
  assert.equal(b.wastedMemoryMiBSeconds, 0);
});

void test('memory pressure: eviction makes room; without eviction requests queue and are dropped', async () => {
  const rows = [
    { name: 'a', counts: [1, 0, 1, 0, 1] },
    { name: 'b', counts: [0, 1, 0, 1, 0] },
  ];
  const lru = await sim(rows, { keepAlive: 'fixed', eviction: 'lru' }, { memoryMiB: 128 });
  assert.equal(lru.evictions, 4);
  assert.equal(lru.warm, 0);
  assert.equal(lru.dropped, 0);
  assert.equal(lru.peakMemoryMiB, 128);
  const none = await sim(rows, { keepAlive: 'fixed', eviction: 'none' }, { memoryMiB: 128 });
  assert.equal(none.evictions, 0);
  assert.deepEqual([none.coldStarts, none.warm, none.dropped], [1, 2, 2]);
  // Enough memory as a plain budget (watermarks at 1): no evictions, both stay warm.
  const big = await sim(rows, { keepAlive: 'fixed' }, { memoryMiB: 256, node: { lowWatermark: 1, highWatermark: 1 } });
  assert.deepEqual([big.coldStarts, big.warm, big.evictions], [2, 3, 0]);
  // With the daemon's watermarks (0.8 / 0.95) a start past 243 MiB evicts down to 205 MiB: one stays.
  const wm = await sim(rows, { keepAlive: 'fixed', placement: { policy: 'fixed', action: 'cold' } }, { memoryMiB: 256 });
  assert.deepEqual([wm.coldStarts, wm.warm, wm.evictions], [5, 0, 4]);
});

void test('per-function instance cap queues the burst', async () => {
  // 4 arrivals at 7.5, 22.5, 37.5, 52.5 s; each runs 20 s on the one instance.
  const r = await sim([{ counts: [4], avgDurationMs: 20_000 }], { keepAlive: 'fixed' }, { maxInstancesPerFunction: 1, maxQueueDelayMs: Infinity });
  assert.equal(r.instancesCreated, 1);
  assert.deepEqual([r.coldStarts, r.warm, r.dropped], [1, 3, 0]);
  // finishes at 30.5, 50.505, 70.51, 90.515 s; the first request waited 3 s for its cold start
  assert.ok(Math.abs(r.meanQueueMs - (3000 + 8000 + 13005 + 18010) / 4) < 0.01, `${r.meanQueueMs}`);
  const d = await sim([{ counts: [4], avgDurationMs: 20_000 }], { keepAlive: 'fixed' }, { maxInstancesPerFunction: 1, maxQueueDelayMs: 10_000 });
  assert.deepEqual([d.coldStarts, d.warm, d.dropped], [1, 2, 1]);
  // The cap from the profile's entry for the function.
  const capped = profileSchema.parse({ ...profile, functions: { f0: { maxInstances: 1 } } });
  const e = await sim([{ counts: [4], avgDurationMs: 20_000 }], { keepAlive: 'fixed' }, { profile: capped, maxQueueDelayMs: Infinity });
  assert.equal(e.instancesCreated, 1);
  const u = await sim([{ counts: [4], avgDurationMs: 20_000 }], { keepAlive: 'fixed' });
  assert.equal(u.instancesCreated, 2); // uncapped: the 2nd arrival (22.5 s) finds the first busy until 30.5 s
});

void test('greedy-dual under pressure keeps the expensive, frequent function', async () => {
  // 10-s slots: 10 calls of hot, then the cycle a, b, hot (x10) with room for two instances.
  // LRU always evicts the instance needed next; greedy-dual keeps hot (higher frequency).
  const n = 40;
  const hot = Array.from({ length: n }, (_, i) => (i < 10 || (i - 10) % 3 === 2 ? 1 : 0));
  const a = Array.from({ length: n }, (_, i) => (i >= 10 && (i - 10) % 3 === 0 ? 1 : 0));
  const b = Array.from({ length: n }, (_, i) => (i >= 10 && (i - 10) % 3 === 1 ? 1 : 0));
  const rows = [
    { name: 'hot', counts: hot, memoryMiB: 100 },
    { name: 'a', counts: a, memoryMiB: 100 },
    { name: 'b', counts: b, memoryMiB: 100 },
  ];
  const node = { lowWatermark: 1, highWatermark: 1 };
  const gd = await sim(rows, { keepAlive: 'greedy-dual' }, { memoryMiB: 200, node }, 10_000);
  const lru = await sim(rows, { keepAlive: 'fixed', eviction: 'lru' }, { memoryMiB: 200, node }, 10_000);
  assert.equal(lru.warm, 9); // only hot's first burst
  assert.equal(gd.warm, 9 + 10); // + every hot call of the cycle
  assert.ok(gd.evictions > 0);
});

void test('hybrid histogram pre-warms a periodic function', async () => {
  const counts = Array.from({ length: 300 }, (_, i) => (i % 10 === 0 ? 1 : 0));
  const r = await sim([{ counts }], {
    keepAlive: { policy: 'hybrid-histogram', fallbackTtlSeconds: 0, minSamples: 10 },
  });
  assert.equal(r.invocations, 30);
  assert.ok(r.prewarms >= 15, `prewarms ${r.prewarms}`);
  // The first 11 (no representative histogram yet) miss; later ones find a pre-warmed instance.
  assert.ok(r.warm >= 15, `warm ${r.warm}`);
  // Pre-warming keeps memory idle only ~3 minutes per 10 instead of all the time.
  const fixed = await sim([{ counts }], { keepAlive: { policy: 'fixed', ttlSeconds: 900 } });
  assert.ok(r.wastedMemoryMiBSeconds < fixed.wastedMemoryMiBSeconds / 2);
});

void test('indexed eviction fast path matches selectVictims', async () => {
  const t = await loadAzureTrace(path.join(fixtures, 'azure'));
  for (const cfg of [{ keepAlive: 'fixed', eviction: 'lru' }, { keepAlive: 'greedy-dual' }] as PoliciesConfigInput[]) {
    const run = async (exact: boolean) =>
      simulate({ trace: t, policies: await createPolicies(cfg, { baseDir: '.' }), profile, memoryMiB: 400, exactEviction: exact });
    const fast = await run(false);
    const exact = await run(true);
    assert.ok(fast.evictions > 0);
    for (const k of ['warm', 'restores', 'coldStarts', 'evictions', 'dropped'] as const) assert.equal(fast[k], exact[k], `${cfg.keepAlive as string} ${k}`);
  }
});

void test('profiles: per-tier defaults from profiled functions; full tiers keep no snapshot', async () => {
  const p = withTierDefaults(
    profileSchema.parse({
      defaults: { coldMs: 3000, restoreMs: 200, warmMs: 5, memoryMiB: 256 },
      functions: { a: { restoreMsByTier: { shm: 100, disk: 300 } }, b: { restoreMsByTier: { shm: 120, disk: 500 } }, c: { restoreMsByTier: { shm: 140 } } },
    }),
  );
  assert.deepEqual(p.defaults.restoreMsByTier, { shm: 120, disk: 500 });
  const c = functionCosts(p, 'zz', { avgDurationMs: 42, memoryMiB: 64 });
  assert.deepEqual([c.coldMs, c.restoreMs, c.runMs, c.memoryMiB, c.snapshotMiB], [3000, 200, 42, 64, 64]);
  assert.equal(functionCosts(p, 'a').restoreMsByTier.disk, 300);
  // One 128-MiB snapshot fits the 200-MiB tier. Minute 1: a creates it, b finds no room (a's is not ready:
  // nothing to evict). Minute 2: a restores; b's cold start evicts a's snapshot (LRU) for its own. Minute 3:
  // a's cold start evicts b's, b boots cold again.
  const small = profileSchema.parse({ ...profile, tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 200 }] });
  const rows = [
    { name: 'a', counts: [1, 1, 1] },
    { name: 'b', counts: [1, 1, 1] },
  ];
  const r = simulate({ trace: trace(rows), policies: await createPolicies({ keepAlive: 'none' }, { baseDir: '.' }), profile: small, memoryMiB: Infinity, expand: { spread: 'even' } });
  assert.equal(r.snapshots, 1);
  assert.deepEqual([r.coldStarts, r.restores], [5, 1]);
});

void test('simulate command prints one JSON object', async () => {
  let out = '';
  await runSimulateCommand({
    trace: path.join(fixtures, 'faasrail.json'),
    format: 'faasrail',
    policy: 'greedy-dual',
    memoryMib: 1024,
    json: true,
    write: (s) => (out += s),
  });
  const o = JSON.parse(out) as Record<string, unknown>;
  for (const k of ['policy', 'memoryMiB', 'invocations', 'coldStarts', 'coldStartFraction', 'restoreFraction', 'wastedMemoryMiBSeconds', 'p50Ms', 'p99Ms']) {
    assert.ok(k in o, k);
  }
  assert.equal(o.policy, 'greedy-dual');
  assert.equal(o.memoryMiB, 1024);
  await assert.rejects(runSimulateCommand({ trace: fixtures, policy: 'bogus', write: () => {} }), /unknown keep-alive policy/);
});

void test('issue 21: costs per language runtime: its own sizes and defaults over the node-wide ones; nodejs20 keeps the node-wide costs', () => {
  const p = profileSchema.parse({
    defaults: { coldMs: 3000, restoreMs: 200, warmMs: 5, memoryMiB: 256, coldCpuMs: 2800 },
    bySize: { 256: { coldMs: 3100, restoreMs: 180 }, 1024: { coldMs: 3500, restoreMs: 260 } },
    byRuntime: { python3: { defaults: { warmMs: 7 }, bySize: { 512: { coldMs: 40_000, coldCpuMs: 38_000, restoreMs: 400 } } } },
  });
  const node = functionCosts(p, 'n', { memoryMiB: 512 });
  assert.deepEqual([node.coldMs, node.restoreMs, node.warmMs], [3100, 180, 5]);
  assert.deepEqual(functionCosts(p, 'n', { memoryMiB: 512, runtime: 'nodejs20' }), node);
  const py = functionCosts(p, 'p', { memoryMiB: 768, runtime: 'python3' });
  assert.deepEqual([py.coldMs, py.coldCpuMs, py.restoreMs, py.warmMs, py.memoryMiB], [40_000, 38_000, 400, 7, 768]);
  // a runtime value the schema does not know is refused
  assert.throws(() => profileSchema.parse({ defaults: { coldMs: 1, restoreMs: 1, warmMs: 1, memoryMiB: 256 }, byRuntime: { ruby: {} } }));
});
