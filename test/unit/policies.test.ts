import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AdaptivePlacement,
  createPolicies,
  createRng,
  FixedPlacement,
  GreedyDualKeepAlive,
  HybridHistogramKeepAlive,
  LruEviction,
  MruSelection,
  LruSelection,
  PriorityEviction,
  RandomEviction,
  policiesConfigSchema,
  StaticSlowdownPlacement,
  type EvictionContext,
  type FunctionView,
  type InstanceView,
  type KeepAlivePolicy,
  type TierView,
} from '../../src/policies/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function inst(id: string, fn: string, o: Partial<InstanceView> = {}): InstanceView {
  return { id, fn, memoryMiB: 256, state: 'idle', createdAt: 0, lastUsedAt: 0, invocations: 1, startCostMs: 1000, cpuSlot: -1, ...o };
}
function fnv(name: string, o: Partial<FunctionView> = {}): FunctionView {
  return { name, memoryMiB: 256, ...o };
}
function evCtx(keepAlive: KeepAlivePolicy, now = 0): EvictionContext {
  return { now, rng: createRng(7), keepAlive, fnOf: (i) => fnv(i.fn) };
}

const tiers: TierView[] = [
  { name: 'disk', latencyRank: 2, capacityBytes: 0, usedBytes: 0 },
  { name: 'mem', latencyRank: 0, capacityBytes: 0, usedBytes: 0 },
  { name: 'ssd', latencyRank: 1, capacityBytes: 0, usedBytes: 0 },
];

void test('rng is seeded and uniform-ish', () => {
  const a = createRng(42);
  const b = createRng(42);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b.next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  assert.notEqual(createRng(43).next(), createRng(42).next());
});

void test('config defaults and shorthands', () => {
  const c = policiesConfigSchema.parse({});
  assert.deepEqual(c.keepAlive, { policy: 'fixed', ttlSeconds: 600 });
  assert.deepEqual(c.eviction, { policy: 'priority' });
  assert.deepEqual(c.selection, { policy: 'mru' });
  assert.equal(c.placement.policy, 'fixed');
  const h = policiesConfigSchema.parse({ keepAlive: 'hybrid-histogram' });
  assert.deepEqual(h.keepAlive, {
    policy: 'hybrid-histogram', binMinutes: 1, rangeMinutes: 240, headPercentile: 5, tailPercentile: 99,
    marginPercent: 10, minSamples: 10, maxOutOfBoundsPercent: 10, fallbackTtlSeconds: 14400,
  });
  assert.throws(() => policiesConfigSchema.parse({ keepAlive: { policy: 'fixed', ttl: 3 } }));
  assert.throws(() => policiesConfigSchema.parse({ keepAlive: 'nope' }));
});

void test('fixed and none keep-alive', async () => {
  const p = await createPolicies({ keepAlive: { policy: 'fixed', ttlSeconds: 30 } }, { baseDir: '.' });
  assert.deepEqual(p.keepAlive.onIdle(inst('a', 'f'), fnv('f'), 0), { keepWarmMs: 30_000 });
  assert.equal((await createPolicies({}, { baseDir: '.' })).keepAlive.onIdle(inst('a', 'f'), fnv('f'), 0).keepWarmMs, 600_000);
  const n = await createPolicies({ keepAlive: 'none' }, { baseDir: '.' });
  assert.deepEqual(n.keepAlive.onIdle(inst('a', 'f'), fnv('f'), 0), { keepWarmMs: 0 });
});

void test('greedy-dual: priority = clock + freq*cost/size, ordering and clock inflation', () => {
  const gd = new GreedyDualKeepAlive();
  // f: cheap to restart, g: expensive, h: expensive but big.
  for (let k = 0; k < 4; k++) gd.onInvocation(fnv('f'), k);
  gd.onInvocation(fnv('g'), 5);
  gd.onInvocation(fnv('h'), 6);
  const f1 = inst('f1', 'f', { startCostMs: 100, memoryMiB: 100, lastUsedAt: 10 });
  const g1 = inst('g1', 'g', { startCostMs: 3000, memoryMiB: 100, lastUsedAt: 1 });
  const h1 = inst('h1', 'h', { startCostMs: 3000, memoryMiB: 1000, lastUsedAt: 2 });
  assert.equal(gd.onIdle(f1, fnv('f'), 10).keepWarmMs, Infinity);
  gd.onIdle(g1, fnv('g'), 11);
  gd.onIdle(h1, fnv('h'), 12);
  assert.equal(gd.priority(f1, fnv('f')), 4 * 100 / 100); // 4
  assert.equal(gd.priority(g1, fnv('g')), 3000 / 100); // 30
  assert.equal(gd.priority(h1, fnv('h')), 3000 / 1000); // 3
  // priority eviction: h (3) then f (4); LRU would take g first (oldest).
  const idle = [f1, g1, h1];
  assert.deepEqual(new PriorityEviction().selectVictims(idle, 1, evCtx(gd)).map((i) => i.id), ['h1']);
  assert.deepEqual(new PriorityEviction().selectVictims(idle, 1001, evCtx(gd)).map((i) => i.id), ['h1', 'f1']);
  assert.deepEqual(new LruEviction().selectVictims(idle, 1, evCtx(gd)).map((i) => i.id), ['g1']);
  // Evicting h sets the clock to its priority (3); f's frequency survives (f1 still warm).
  gd.onEvict(h1, fnv('h'));
  assert.equal(gd.clock, 3);
  assert.equal(gd.frequency('h'), 0, 'h has no warm instance left: frequency reset');
  // A fresh use of f now gets the inflated clock: 3 + 5*100/100 = 8.
  gd.onInvocation(fnv('f'), 20);
  gd.onIdle(f1, fnv('f'), 21);
  assert.equal(gd.priority(f1, fnv('f')), 8);
  // Evict f1 (8): clock 8, f reset; g (30) untouched.
  gd.onEvict(f1, fnv('f'));
  assert.equal(gd.clock, 8);
  assert.equal(gd.frequency('f'), 0);
  assert.equal(gd.priority(g1, fnv('g')), 30);
  // Clock never decreases: evicting something with priority below the clock.
  const low = inst('x', 'x', { startCostMs: 1, memoryMiB: 1000 });
  gd.onEvict(low, fnv('x'));
  assert.equal(gd.clock, 8 + 1 / 1000);
});

void test('greedy-dual is wired with priority eviction by default', async () => {
  const p = await createPolicies({ keepAlive: 'greedy-dual' }, { baseDir: '.' });
  assert.equal(p.eviction.name, 'priority');
  assert.equal(typeof p.keepAlive.priority, 'function');
});

void test('hybrid-histogram: windows from a periodic function', () => {
  const hh = new HybridHistogramKeepAlive();
  const f = fnv('p');
  // Every 10 minutes (+ a few seconds of jitter): all idle times in bin 10.
  let t = 0;
  for (let k = 0; k < 30; k++) {
    hh.onInvocation(f, t);
    t += 10 * 60_000 + (k % 3) * 1000;
  }
  const w = hh.windows('p');
  assert.equal(w.representative, true);
  assert.equal(w.samples, 29);
  assert.equal(w.prewarmMs, Math.round(10 * 60_000 * 0.9)); // 9 min
  assert.equal(w.keepAliveMs, Math.round(11 * 60_000 * 1.1)); // 12.1 min
  const d = hh.onIdle(inst('p1', 'p'), f, t);
  assert.equal(d.prewarmAfterMs, 540_000);
  assert.equal(d.keepWarmMs, 726_000 - 540_000);
});

void test('hybrid-histogram: frequent function keeps warm (no pre-warm), spread sets the tail', () => {
  const hh = new HybridHistogramKeepAlive({ headPercentile: 5, tailPercentile: 99 });
  const f = fnv('q');
  let t = 0;
  // 95 gaps of 20 s (bin 0) and 5 gaps of 30 min (bin 30)
  for (let k = 0; k < 100; k++) {
    hh.onInvocation(f, t);
    t += k % 20 === 19 ? 30 * 60_000 : 20_000;
  }
  const w = hh.windows('q');
  assert.equal(w.representative, true);
  assert.equal(w.prewarmMs, 0);
  assert.equal(w.keepAliveMs, Math.round(31 * 60_000 * 1.1));
  assert.deepEqual(hh.onIdle(inst('q1', 'q'), f, t), { keepWarmMs: w.keepAliveMs });
});

void test('hybrid-histogram: fallback when not representative', () => {
  const hh = new HybridHistogramKeepAlive({ fallbackTtlSeconds: 3600, minSamples: 10 });
  const f = fnv('r');
  // Too few samples.
  for (let k = 0; k < 5; k++) hh.onInvocation(f, k * 60_000);
  assert.deepEqual(hh.onIdle(inst('r1', 'r'), f, 0), { keepWarmMs: 3_600_000 });
  assert.equal(hh.windows('r').representative, false);
  // Enough samples but too many beyond 4 h.
  const g = fnv('s');
  let t = 0;
  for (let k = 0; k < 40; k++) {
    hh.onInvocation(g, t);
    t += k % 4 === 0 ? 5 * 3600_000 : 60_000;
  }
  const w = hh.windows('s');
  assert.ok(w.samples >= 10 && w.outOfBounds >= 9);
  assert.equal(w.representative, false);
  assert.equal(w.keepAliveMs, 3_600_000);
  // Unknown function: fallback.
  assert.deepEqual(hh.onIdle(inst('z', 'zz'), fnv('zz'), 0), { keepWarmMs: 3_600_000 });
});

void test('eviction: lru order, random is seeded, none, and fewer when not enough', async () => {
  const idle = [inst('a', 'f', { lastUsedAt: 5 }), inst('b', 'f', { lastUsedAt: 1 }), inst('c', 'g', { lastUsedAt: 3 })];
  const ka = (await createPolicies({}, { baseDir: '.' })).keepAlive;
  assert.deepEqual(new LruEviction().selectVictims(idle, 300, evCtx(ka)).map((i) => i.id), ['b', 'c']);
  assert.deepEqual(new LruEviction().selectVictims(idle, 10_000, evCtx(ka)).map((i) => i.id), ['b', 'c', 'a']);
  assert.deepEqual(new LruEviction().selectVictims(idle, 0, evCtx(ka)), []);
  // priority eviction without keep-alive priority = LRU
  assert.deepEqual(new PriorityEviction().selectVictims(idle, 300, evCtx(ka)).map((i) => i.id), ['b', 'c']);
  const r1 = new RandomEviction().selectVictims(idle, 600, evCtx(ka)).map((i) => i.id);
  const r2 = new RandomEviction().selectVictims(idle, 600, evCtx(ka)).map((i) => i.id);
  assert.deepEqual(r1, r2);
  assert.equal(r1.length, 3);
  const none = await createPolicies({ eviction: 'none' }, { baseDir: '.' });
  assert.deepEqual(none.eviction.selectVictims(idle, 100, evCtx(ka)), []);
  // Many victims (sorted path) keep LRU order.
  const many = Array.from({ length: 50 }, (_, k) => inst(`m${k}`, 'f', { lastUsedAt: (k * 37) % 50, memoryMiB: 10 }));
  const v = new LruEviction().selectVictims(many, 200, evCtx(ka)).map((i) => i.lastUsedAt);
  assert.deepEqual(v, Array.from({ length: 20 }, (_, k) => k));
});

void test('selection: mru, lru, random', async () => {
  const idle = [inst('a', 'f', { lastUsedAt: 5 }), inst('b', 'f', { lastUsedAt: 9 }), inst('c', 'f', { lastUsedAt: 1 })];
  assert.equal(new MruSelection().select(idle).id, 'b');
  assert.equal(new LruSelection().select(idle).id, 'c');
  const p = await createPolicies({ selection: 'random', seed: 3 }, { baseDir: '.' });
  const seen = new Set<string>();
  for (let k = 0; k < 50; k++) seen.add(p.selection.select(idle, 0).id);
  assert.equal(seen.size, 3);
});

void test('placement: fixed', () => {
  assert.deepEqual(new FixedPlacement({ tier: 'ssd' }).place(fnv('f'), tiers), { action: 'snapshot', tier: 'ssd', reason: 'fixed tier ssd' });
  assert.equal((new FixedPlacement().place(fnv('f'), tiers) as { tier: string }).tier, 'mem');
  assert.equal((new FixedPlacement({ tier: 'nvme' }).place(fnv('f'), tiers) as { tier: string }).tier, 'mem');
  assert.equal(new FixedPlacement({ action: 'cold' }).place(fnv('f'), tiers).action, 'cold');
  assert.equal(new FixedPlacement().place(fnv('f'), []).action, 'cold');
  const memFull = tiers.map((t) => (t.name === 'mem' ? { ...t, capacityBytes: 10, usedBytes: 10 } : t));
  assert.equal((new FixedPlacement().place(fnv('f'), memFull) as { tier: string }).tier, 'ssd');
  assert.equal((new FixedPlacement({ tier: 'mem' }).place(fnv('f'), memFull) as { tier: string }).tier, 'mem');
});

void test('placement: slowdown-static table', () => {
  const p = new StaticSlowdownPlacement({
    threshold: 2,
    functions: {
      slowest: { coldSlowdown: 10, tiers: { mem: 1.1, ssd: 1.5, disk: 1.9 } },
      middle: { coldSlowdown: 10, tiers: { mem: 1.1, ssd: 1.8, disk: 2.5 } },
      warm: { coldSlowdown: 10, tiers: { mem: 2.2, ssd: 3, disk: 5 } },
      cold: { coldSlowdown: 1.5, tiers: { mem: 1.1, ssd: 1.2, disk: 1.3 } },
    },
  });
  assert.deepEqual(p.place(fnv('slowest'), tiers), { action: 'snapshot', tier: 'disk', reason: p.place(fnv('slowest'), tiers).reason });
  assert.equal((p.place(fnv('middle'), tiers) as { tier: string }).tier, 'ssd');
  assert.equal(p.place(fnv('warm'), tiers).action, 'keep-warm');
  assert.equal(p.place(fnv('cold'), tiers).action, 'cold');
  // unknown function → fastest tier
  assert.equal((p.place(fnv('other'), tiers) as { tier: string }).tier, 'mem');
  // cold slowdown computed from the FunctionView: (200+1000)/(5+1000) < 2 → cold
  const q = new StaticSlowdownPlacement({ functions: { long: { tiers: { mem: 1.01 } } } });
  assert.equal(q.place(fnv('long', { coldStartMs: 200, warmStartMs: 5, runMs: 1000 }), tiers).action, 'cold');
  // full tier skipped
  const full = tiers.map((t) => (t.name === 'disk' ? { ...t, capacityBytes: 10, usedBytes: 10 } : t));
  assert.equal((p.place(fnv('slowest'), full) as { tier: string }).tier, 'ssd');
});

void test('placement: adaptive', () => {
  const p = new AdaptivePlacement({ threshold: 2, minSamples: 5 });
  const f = fnv('f', { coldStartMs: 3000, warmStartMs: 5, runMs: 100 });
  assert.equal((p.place(f, tiers, undefined) as { tier: string }).tier, 'mem');
  assert.equal((p.place(f, tiers, { samples: 2, slowdownByTier: { disk: 1.1 } }) as { tier: string }).tier, 'mem');
  assert.equal((p.place(f, tiers, { samples: 9, slowdownByTier: { mem: 1.2, ssd: 1.7, disk: 4 } }) as { tier: string }).tier, 'ssd');
  assert.equal(p.place(f, tiers, { samples: 9, slowdownByTier: { mem: 2.5, ssd: 3 } }).action, 'keep-warm');
  const longRun = fnv('g', { coldStartMs: 300, warmStartMs: 5, runMs: 2000 });
  assert.equal(p.place(longRun, tiers, { samples: 9, slowdownByTier: { mem: 1.01 } }).action, 'cold');
});

void test('per-function keep-alive override routes by function', async () => {
  const p = await createPolicies(
    { keepAlive: 'fixed', perFunction: { hot: { policy: 'greedy-dual' }, off: 'none' } },
    { baseDir: '.' },
  );
  assert.equal(p.keepAliveFor('hot').name, 'greedy-dual');
  assert.equal(p.keepAliveFor('x').name, 'fixed');
  assert.equal(p.keepAlive.onIdle(inst('1', 'hot'), fnv('hot'), 0).keepWarmMs, Infinity);
  assert.equal(p.keepAlive.onIdle(inst('2', 'off'), fnv('off'), 0).keepWarmMs, 0);
  assert.equal(p.keepAlive.onIdle(inst('3', 'x'), fnv('x'), 0).keepWarmMs, 600_000);
  assert.equal(typeof p.keepAlive.priority, 'function');
  assert.equal(p.keepAlive.priority!(inst('3', 'x'), fnv('x'), 0), -Infinity);
});

void test('user policy modules: the shipped example, a class, and clear errors', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faascell-pol-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = await createPolicies(
    { keepAlive: { policy: 'module', module: './examples/policies/keepalive-double-ttl.mjs', options: { baseTtlSeconds: 10 } } },
    { baseDir: repoRoot },
  );
  assert.equal(p.keepAlive.name, 'double-ttl');
  const f = fnv('f');
  p.keepAlive.onInvocation(f, 0);
  assert.equal(p.keepAlive.onIdle(inst('1', 'f'), f, 100).keepWarmMs, 10_000);
  p.keepAlive.onInvocation(f, 5000); // within TTL → doubles
  assert.equal(p.keepAlive.onIdle(inst('1', 'f'), f, 5100).keepWarmMs, 20_000);

  writeFileSync(path.join(dir, 'sel.mjs'), 'export default class Pick { constructor(o) { this.o = o; } select(idle) { return idle[this.o.i]; } }\n');
  const q = await createPolicies({ selection: { policy: 'module', module: './sel.mjs', options: { i: 1 } } }, { baseDir: dir });
  assert.equal(q.selection.select([inst('a', 'f'), inst('b', 'f')], 0).id, 'b');
  assert.equal(q.selection.name, 'module:sel.mjs');

  writeFileSync(path.join(dir, 'bad.mjs'), 'export default () => ({ name: "bad", onIdle() { return { keepWarmMs: 1 }; } });\n');
  await assert.rejects(
    createPolicies({ keepAlive: { policy: 'module', module: './bad.mjs' } }, { baseDir: dir }),
    /policies\.keepAlive: .*missing method\(s\) onInvocation/,
  );
  await assert.rejects(
    createPolicies({ perFunction: { f: { policy: 'module', module: './missing.mjs' } } }, { baseDir: dir }),
    /policies\.perFunction\.f: cannot import policy module '\.\/missing\.mjs'/,
  );
  writeFileSync(path.join(dir, 'throws.mjs'), 'export default () => { throw new Error("boom"); };\n');
  await assert.rejects(
    createPolicies({ eviction: { policy: 'module', module: './throws.mjs' } }, { baseDir: dir }),
    /policies\.eviction: .*failed to build the policy: boom/,
  );
});
