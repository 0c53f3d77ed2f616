// Measured memory accounting and the host-memory guard in the decision core
// (src/vmpool/core/accounting.ts, pressure.ts), driven directly: no shell, no VM.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPolicies } from '../../src/policies/index.js';
import { PoolCore, PRESSURE_EVICT, PRESSURE_OK, PRESSURE_REFUSE, PRESSURE_STOP } from '../../src/vmpool/core/core.js';
import type { CoreConfig, CoreEffects, CoreInstance, RejectCode, StopCause } from '../../src/vmpool/core/model.js';
import { coreConfig } from '../helpers/core-config.js';

interface Rec {
  starts: CoreInstance[];
  assigns: Array<{ req: number; inst: CoreInstance }>;
  rejects: Array<{ req: number; reason: RejectCode }>;
  stops: Array<{ inst: CoreInstance; cause: StopCause }>;
}

function cfg(over: Partial<CoreConfig> = {}): CoreConfig {
  return coreConfig(over);
}

async function core(over: Partial<CoreConfig> = {}, keepAlive: unknown = { policy: 'fixed', ttlSeconds: 3600 }) {
  const rec: Rec = { starts: [], assigns: [], rejects: [], stops: [] };
  const fx: CoreEffects = {
    start: (inst) => void rec.starts.push(inst),
    assign: (req, inst) => void rec.assigns.push({ req, inst }),
    reject: (req, _f, reason) => void rec.rejects.push({ req, reason }),
    stop: (inst, cause) => void rec.stops.push({ inst, cause }),
    wake: () => undefined,
    dropSnapshot: () => undefined,
    moveSnapshot: () => undefined,
  };
  const p = await createPolicies({ keepAlive: keepAlive as never, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' }, { baseDir: '.' });
  const c = new PoolCore(cfg(over), p, fx);
  return { c, rec };
}

const MEASURED = { memory: { accounting: 'measured' as const, reserve: 0.1 } };
// measured is the core's default since 2026-12-07: the nominal cases say so
const NOMINAL = { memory: { accounting: 'nominal' as const, reserve: 0 } };
let req = 0;

/** Start `n` instances of `fn` by sending n requests at once, finish the starts and the runs: n idle instances. */
function idle(c: PoolCore, rec: Rec, fn: string, n: number, now: number): CoreInstance[] {
  const f = c.fn(fn)!;
  const before = rec.starts.length;
  for (let i = 0; i < n; i++) c.arrive(f, ++req, now);
  const started = rec.starts.slice(before);
  for (const inst of started) c.startDone(inst, now + 1);
  // every run ends (those of instances that were idle already, too)
  for (const a of rec.assigns.splice(0)) c.runDone(a.inst, now + 2);
  return started;
}

void test('nominal accounting: every instance counts its size; measurements change nothing', async () => {
  const { c, rec } = await core(NOMINAL);
  c.defineFunction('f', { memoryMiB: 256, maxInstances: 10, version: '1' }, 0);
  const insts = idle(c, rec, 'f', 3, 0);
  assert.equal(c.memoryUsedMiB, 768);
  c.measured(insts.map((inst) => ({ inst, pssMiB: 50 })), 10);
  assert.equal(c.memoryUsedMiB, 768);
  const t = c.memoryTotals();
  assert.equal(t.nominalMiB, 768);
  assert.equal(t.measuredMiB, 150, 'the measurements are kept for status');
  // 1000 MiB budget, 768 used: no room for a fourth 256 MiB instance without evicting
  assert.equal(c.idleFit(256), 0);
  assert.equal(c.idleFit(128), 1);
});

void test('measured accounting: an instance is charged its PSS plus reserve × headroom; its function learns what the next start costs', async () => {
  const { c, rec } = await core(MEASURED);
  const f = c.defineFunction('f', { memoryMiB: 256, maxInstances: 20, version: '1' }, 0);
  const [a, b] = idle(c, rec, 'f', 2, 0);
  // not measured yet: charged their size, as nominal
  assert.equal(c.memoryUsedMiB, 512);
  c.measured([{ inst: a!, pssMiB: 55.2 }, { inst: b!, pssMiB: 60 }], 10);
  // ceil(56 + 0.1 × (256 − 56)) = 76; ceil(60 + 0.1 × 196) = 80
  assert.equal(a!.chargedMiB, 76);
  assert.equal(b!.chargedMiB, 80);
  assert.equal(c.memoryUsedMiB, 156);
  assert.deepEqual(f.memEstimate, [58, NaN], 'cold-booted instances of f cost ceil((56 + 60) / 2) = 58');
  // the next start is charged that estimate: ceil(58 + 0.1 × 198) = 78
  c.arrive(f, ++req, 20);
  c.arrive(f, ++req, 20);
  c.arrive(f, ++req, 20);
  assert.equal(rec.starts.length, 3, 'the first request took an idle instance, two more needed starts');
  assert.equal(rec.starts[2]!.chargedMiB, 78);
  assert.equal(c.memoryUsedMiB, 156 + 78);
  // a measurement above its size is charged its size, never more
  c.measured([{ inst: a!, pssMiB: 300 }], 30);
  assert.equal(a!.chargedMiB, 256);
  // a new version forgets what the old one cost
  c.defineFunction('f', { memoryMiB: 256, maxInstances: 20, version: '2' }, 40);
  assert.deepEqual(f.memEstimate, [NaN, NaN]);
});

void test('measured accounting admits more idle instances within the same budget; nominal refuses (waits) past it', async () => {
  for (const accounting of ['nominal', 'measured'] as const) {
    const { c, rec } = await core(accounting === 'measured' ? MEASURED : NOMINAL, { policy: 'fixed', ttlSeconds: 3600 });
    const f = c.defineFunction('f', { memoryMiB: 256, maxInstances: 100, version: '1' }, 0);
    // eviction would make room by stopping idle instances: count only what fits beside them
    let live: CoreInstance[] = [];
    for (let round = 0; round < 40; round++) {
      const before = rec.starts.length;
      for (let i = 0; i < live.length + 1; i++) c.arrive(f, ++req, round * 100);
      const fresh = rec.starts.slice(before);
      for (const inst of fresh) c.startDone(inst, round * 100 + 1);
      for (const a of rec.assigns.splice(0)) c.runDone(a.inst, round * 100 + 2);
      live = [...c.allInstances()].filter((i) => i.state === 'idle');
      c.measured(live.map((inst) => ({ inst, pssMiB: 40 })), round * 100 + 3);
      if (fresh.length === 0) break;
    }
    const n = [...c.allInstances()].filter((i) => i.state !== 'stopping').length;
    if (accounting === 'nominal') assert.equal(n, 3, '1000 MiB hold three 256 MiB instances');
    // ceil(40 + 0.1 × 216) = 62 each: 16 in 1000 MiB
    else assert.equal(n, 16, 'measured: 16 instances of 62 MiB');
    assert.equal(rec.stops.filter((s) => s.cause === 'evicted').length, 0);
  }
});

void test('eviction frees what instances are charged: a start evicts enough measured instances (all or nothing)', async () => {
  const { c, rec } = await core({ ...MEASURED, memoryBudgetMiB: 300, lowWatermark: 0.5 });
  c.defineFunction('small', { memoryMiB: 256, maxInstances: 10, version: '1' }, 0);
  const f = c.defineFunction('big', { memoryMiB: 256, maxInstances: 10, version: '1' }, 0);
  const smalls = idle(c, rec, 'small', 1, 0);
  c.measured(smalls.map((inst) => ({ inst, pssMiB: 30 })), 5);
  const more = idle(c, rec, 'small', 2, 10); // one served warm, one new (charged the estimate: 30 + 22.6)
  assert.equal(more.length, 1);
  c.measured([...c.allInstances()].map((inst) => ({ inst, pssMiB: 30 })), 15);
  assert.equal(c.memoryUsedMiB, 2 * 53);
  // big (unmeasured: 256) does not fit beside 106: the LRU idle instances are evicted down to 150 (low) — both
  c.arrive(f, ++req, 20);
  assert.equal(rec.stops.filter((s) => s.cause === 'evicted').length, 2);
  assert.equal(rec.starts.at(-1)!.fn, 'big');
  assert.equal(c.memoryUsedMiB, 256);
});

void test('guard: evict idle worth what the host lacks, then refuse starts, then stop the newest growing instance', async () => {
  const { c, rec } = await core(MEASURED);
  const f = c.defineFunction('f', { memoryMiB: 256, maxInstances: 20, version: '1' }, 0);
  const idles = idle(c, rec, 'f', 3, 0);
  c.measured(idles.map((inst) => ({ inst, pssMiB: 100 })), 5);
  // evict: 150 MiB short → two idle instances (116 each charged)
  const out = c.hostPressure(PRESSURE_EVICT, 150, 10);
  assert.equal(out.evicted, 2);
  assert.equal(rec.stops.filter((s) => s.cause === 'evicted').length, 2);
  assert.equal(c.counters.pressureEvictions, 2);
  // refuse (each level does what the milder ones do: the last idle instance goes too): requests wait, no start
  c.hostPressure(PRESSURE_REFUSE, 0, 20);
  assert.equal(c.counters.pressureEvictions, 3);
  const startsBefore = rec.starts.length;
  c.arrive(f, ++req, 21);
  c.arrive(f, ++req, 21);
  c.arrive(f, ++req, 21);
  assert.equal(rec.starts.length, startsBefore, 'no start while starts are refused');
  assert.equal(rec.rejects.length, 0, 'they wait (until their deadline)');
  // the host recovers: the waiting requests get their starts
  c.hostPressure(PRESSURE_OK, 0, 30);
  assert.equal(rec.starts.length, startsBefore + 3);
  const [s0, s1, s2] = rec.starts.slice(startsBefore);
  c.startDone(s0!, 40);
  c.startDone(s1!, 40);
  c.measured([{ inst: s0!, pssMiB: 120 }, { inst: s1!, pssMiB: 90 }], 41);
  c.measured([{ inst: s0!, pssMiB: 180 }, { inst: s1!, pssMiB: 90 }], 42);
  // stop, nothing idle: the newest growing instance is s2 (still starting); its request waits on
  let out2 = c.hostPressure(PRESSURE_STOP, 300, 50);
  assert.equal(out2.evicted, 0);
  assert.equal(out2.stopped, s2);
  assert.equal(rec.stops.at(-1)!.cause, 'memory-pressure');
  assert.equal(rec.rejects.length, 0, 'a stopped start fails no request');
  // again: the busy instance that grew (s0: 120 → 180), not s1 (flat), though s1 is newer
  out2 = c.hostPressure(PRESSURE_STOP, 300, 60);
  assert.equal(out2.stopped, s0);
  assert.equal(c.counters.pressureStops, 2);
  // again: nothing grows, the newest busy one
  out2 = c.hostPressure(PRESSURE_STOP, 300, 70);
  assert.equal(out2.stopped, s1);
  // nothing left: nothing to stop, and still no start while short
  out2 = c.hostPressure(PRESSURE_STOP, 300, 80);
  assert.equal(out2.stopped, undefined);
  assert.equal(c.liveCount, 0);
  assert.equal(rec.starts.length, startsBefore + 3);
  c.hostPressure(PRESSURE_OK, 0, 90);
  assert.equal(rec.starts.length, startsBefore + 4, 'the request whose start was stopped gets a start once the host has memory again');
});

void test('guard with an eviction policy that never evicts: least recently used idle instances go first', async () => {
  const rec: Rec = { starts: [], assigns: [], rejects: [], stops: [] };
  const p = await createPolicies({ keepAlive: { policy: 'fixed', ttlSeconds: 3600 }, eviction: 'none' }, { baseDir: '.' });
  const c = new PoolCore(cfg(MEASURED), p, {
    start: (inst) => void rec.starts.push(inst),
    assign: (r, inst) => void rec.assigns.push({ req: r, inst }),
    reject: () => undefined,
    stop: (inst, cause) => void rec.stops.push({ inst, cause }),
    wake: () => undefined,
    dropSnapshot: () => undefined,
    moveSnapshot: () => undefined,
  });
  c.defineFunction('f', { memoryMiB: 256, maxInstances: 20, version: '1' }, 0);
  const insts = idle(c, rec, 'f', 2, 0);
  const out = c.hostPressure(PRESSURE_EVICT, 10, 5);
  assert.equal(out.evicted, 1);
  assert.ok(insts.includes(rec.stops[0]!.inst));
});

void test('measured accounting is the default: a core configured without `memory` charges what its instances measure', async () => {
  const { c, rec } = await core();
  c.defineFunction('f', { memoryMiB: 256, maxInstances: 10, version: '1' }, 0);
  const insts = idle(c, rec, 'f', 3, 0);
  // not measured yet: their sizes
  assert.equal(c.memoryUsedMiB, 768);
  c.measured(insts.map((inst) => ({ inst, pssMiB: 50 })), 10);
  // ceil(50 + 0.1 × (256 − 50)) = 71 each
  assert.equal(c.memoryUsedMiB, 3 * 71);
});
