// A snapshot tier whose file system is full (issue 12): the cold start's snapshot
// goes to the next tier placement allows, else the start goes on without one.
// Real Dispatcher, VmPool (decision core), Workers, SnapshotManager and
// PerfManager around the fake driver; only the free-space probe is fake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ActorSystem, type ActorRef } from '../../src/core/actor.js';
import { realClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Dispatcher, type DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import { NetworkManager, type NetworkMsg } from '../../src/network/network-manager.js';
import { PerfManager, type PerfMsg } from '../../src/perf/perf-manager.js';
import { createPolicies } from '../../src/policies/index.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { CallbackSink } from '../../src/sinks/callback.js';
import type { InvocationResult } from '../../src/sinks/types.js';
import { SnapshotManager } from '../../src/snapshots/manager.js';
import type { SnapshotMsg, SnapshotRecord } from '../../src/snapshots/types.js';
import { VmPool, type PoolMsg, type PoolStatus } from '../../src/vmpool/pool.js';
import { FakeDriver, fakeImage } from '../helpers/fake-driver.js';
import { defaultPoolConfig } from '../helpers/pool-harness.js';

async function setup(freeMiBByTier: Record<string, number>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-tierfb-'));
  const clock = realClock;
  const sys = new ActorSystem(silentLogger, () => undefined);
  const db = openMemoryDb();
  const registry = new Registry(db, { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60_000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  const tierSpecs = [
    { name: 'shm', latencyRank: 0, capacityBytes: 2 ** 40 },
    { name: 'disk', latencyRank: 1, capacityBytes: 2 ** 40 },
  ];
  const tiers = tierSpecs.map((t) => ({ name: t.name, path: path.join(dir, 'tier-' + t.name), latencyRank: t.latencyRank, capacityMiB: 1 << 20 }));
  // the free space each tier's file system reports (by the tier's directory)
  const statfs = (p: string) => {
    const t = tiers.find((x) => p === x.path || p.startsWith(x.path + path.sep));
    return { bavail: ((t ? freeMiBByTier[t.name] : undefined) ?? 1 << 20) * 256, bsize: 4096 };
  };
  const snapshots = sys.spawn<SnapshotMsg>('snapshots', new SnapshotManager({ db, tiers, imageVersion: fakeImage.version, kind: 'shared-memory', uncache: false, clock, statfs }));
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 1000));
  const network = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
  const policies = await createPolicies({}, { baseDir: dir });
  const config = { ...defaultPoolConfig({}, true), tiers: tierSpecs };
  const pool: ActorRef<PoolMsg> = sys.spawn<PoolMsg>(
    'vmpool',
    new VmPool({
      system: sys,
      clock,
      functions: () => registry.list(),
      workerDeps: { driver: new FakeDriver({}, clock), image: fakeImage, accelerator: 'tcg', registry, network, snapshots, clock, bootTimeoutMs: 60_000, limits: { maxResultBytes: 1 << 20, maxLogBytes: 1 << 20 } },
      policies,
      snapshots,
      config,
    }),
  );
  perf.tell({ kind: 'subscribe', to: pool, tiers: tierSpecs.map((t) => t.name) });
  const dispatcher = sys.spawn<DispatcherMsg>('dispatcher', new Dispatcher({ registry, pool, perf, runtime: 'qemu', clock, acquireTimeoutMs: 60_000 }));
  const def = registry.put('f', { code: Buffer.from('function main(p){return p}') }).def;
  pool.tell({ kind: 'functionChanged', fn: 'f', def });
  return {
    invoke: () => new Promise<InvocationResult>((resolve) => dispatcher.tell({ kind: 'invoke', req: { fn: 'f', params: {}, receivedAt: clock.now(), sink: new CallbackSink(resolve) } })),
    snapshots: () => snapshots.ask<SnapshotRecord[]>((reply) => ({ kind: 'list', reply }), 10_000),
    status: () => pool.ask<PoolStatus>((reply) => ({ kind: 'status', reply }), 10_000),
    evict: () => pool.ask<number>((reply) => ({ kind: 'evictFunction', fn: 'f', reply }), 10_000),
    close: async () => {
      await pool.ask<void>((reply) => ({ kind: 'shutdown', reply }), 10_000);
      await sys.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

void test('the fastest tier is full on its device: the snapshot lands on the next tier and is restored from there', async () => {
  const h = await setup({ shm: 10, disk: 4096 }); // 10 MiB free on shm: a 256 MiB guest's snapshot cannot fit
  try {
    const first = await h.invoke();
    assert.equal(first.activation.status, 'success');
    assert.equal(first.activation.startPath, 'cold');
    const snap = await until('a ready snapshot', async () => (await h.snapshots()).find((s) => s.status === 'ready'));
    assert.equal(snap.tier, 'disk');
    assert.equal((await h.snapshots()).length, 1, 'nothing left on the full tier');
    assert.ok((await h.evict()) >= 1);
    const second = await h.invoke();
    assert.equal(second.activation.startPath, 'restore');
    assert.equal(second.activation.snapshot?.tier, 'disk');
  } finally {
    await h.close();
  }
});

void test('every tier full on its device: the start goes on without a snapshot', async () => {
  const h = await setup({ shm: 10, disk: 100 });
  try {
    const first = await h.invoke();
    assert.equal(first.activation.status, 'success');
    assert.equal(first.activation.startPath, 'cold');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await h.snapshots(), []);
    const st = await h.status();
    assert.deepEqual(st.tiers.map((t) => t.snapshots), [0, 0], 'the core holds no snapshot either');
  } finally {
    await h.close();
  }
});

void test('room on the fastest tier: it is used (no fallback)', async () => {
  const h = await setup({ shm: 4096, disk: 4096 });
  try {
    assert.equal((await h.invoke()).activation.status, 'success');
    const snap = await until('a ready snapshot', async () => (await h.snapshots()).find((s) => s.status === 'ready'));
    assert.equal(snap.tier, 'shm');
    assert.ok((await h.evict()) >= 1);
    const second = await h.invoke();
    assert.equal(second.activation.startPath, 'restore');
  } finally {
    await h.close();
  }
});
