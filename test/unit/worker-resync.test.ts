// issue 9: a restored clone's resync carried by its first run (WorkerDeps.resyncWithRun,
// snapshots.resync 'with-run'), with a FakeDriver: one channel request instead of two, the
// clone is ready without a round trip, and a refused resync sends the request elsewhere.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ActorSystem } from '../../src/core/actor.js';
import { realClock, VirtualClock, type Clock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { NetworkManager, type NetworkMsg } from '../../src/network/network-manager.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import type { SnapshotMsg, SnapshotRef } from '../../src/snapshots/types.js';
import { Worker, type InvokeOutcome, type WorkerEvent, type WorkerMsg } from '../../src/worker/worker.js';
import { FakeDriver, fakeImage, type FakeBehaviour } from '../helpers/fake-driver.js';
import { Spy } from '../helpers/spy.js';

function rig(behaviour: FakeBehaviour, resyncWithRun: boolean, clock: Clock = realClock) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-wr-'));
  const sys = new ActorSystem(silentLogger, () => undefined);
  const registry = new Registry(openMemoryDb(), { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  const fn = registry.put('f', { code: Buffer.from('function main(p){return p}') }).def;
  const driver = new FakeDriver(behaviour, clock);
  const snaps = new Spy<SnapshotMsg>();
  const events = new Spy<WorkerEvent>();
  const network = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
  const snapshots = sys.spawn<SnapshotMsg>('snapshots', snaps);
  const poolRef = sys.spawn<WorkerEvent>('vmpool', events);
  const snapshot: SnapshotRef = { id: 'snap-1', fn: 'f', tier: 'shm', dir, files: { kind: 'shared-memory', statePath: path.join(dir, 'state'), memoryPath: path.join(dir, 'mem') }, workingSetPath: path.join(dir, 'ws.json') };
  const worker = new Worker('vm-1', 3, { path: 'restore', fn, snapshot }, { driver, image: fakeImage, accelerator: 'tcg', registry, network, snapshots, clock, bootTimeoutMs: 5000, limits: { maxResultBytes: 1000, maxLogBytes: 100 }, resyncWithRun }, poolRef);
  const ref = sys.spawn<WorkerMsg>('worker-vm-1', worker);
  const recs: ActivationRecord[] = [];
  return {
    events,
    snaps,
    driver,
    recs,
    run: (req: number, settle = true): Promise<InvokeOutcome> =>
      new Promise<InvokeOutcome>((resolve, reject) => {
        const rec: ActivationRecord = { id: `a${req}`, function: 'f', functionVersion: 1, runtime: 'qemu', status: 'success', timestamps: {}, timings: {}, totalMs: 0, logs: [] };
        recs.push(rec);
        ref.tell({ kind: 'run', run: { req, rec, params: { n: req }, fresh: req === 1, reply: settle ? { resolve, reject } : { resolve: () => undefined, reject: () => undefined } } });
        if (!settle) resolve({ ok: true, result: undefined, logs: [] });
      }),
    close: async () => {
      await sys.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

void test('with-run: the clone is ready without a resync request; its first run carries the resync, later runs do not', async () => {
  // virtual time that does not move until the clone is ready: a separate resync (1000 ms) would need it to
  const clock = new VirtualClock();
  const t0 = clock.now();
  const r = rig({ resyncMs: 1000 }, true, clock);
  try {
    await clock.settle();
    await r.events.next((e) => e.kind === 'ready');
    assert.equal(clock.now(), t0, 'ready without waiting for a separate resync');
    const first = r.run(1);
    await clock.run(t0 + 100);
    assert.equal((await first).ok, true);
    await r.events.next((e) => e.kind === 'runDone');
    const second = r.run(2);
    await clock.run(t0 + 200);
    assert.equal((await second).ok, true);
    assert.deepEqual(r.driver.vms[0]!.ops, ['run+resync', 'run']);
    assert.equal(r.recs[0]!.startPath, 'restore');
    assert.equal(r.recs[0]!.startDetails?.resync, 'with-run');
  } finally {
    await r.close();
  }
});

void test('message (before issue 9): a separate resync request, then plain runs', async () => {
  const r = rig({}, false);
  try {
    await r.events.next((e) => e.kind === 'ready');
    assert.equal((await r.run(1)).ok, true);
    assert.deepEqual(r.driver.vms[0]!.ops, ['resync', 'run']);
  } finally {
    await r.close();
  }
});

void test('with-run: a refused resync sends the request back to VmPool, reports the snapshot broken and ends the clone', async () => {
  const r = rig({ failResync: true }, true);
  try {
    await r.events.next((e) => e.kind === 'ready');
    void r.run(1, false);
    const refused = await r.events.next((e) => e.kind === 'runRefused');
    assert.equal(refused.kind === 'runRefused' && refused.req, 1);
    await r.events.next((e) => e.kind === 'gone');
    const told = r.snaps.got.filter((m) => m.kind === 'restoreFailed');
    assert.equal(told.length, 1);
    assert.equal(told[0]!.kind === 'restoreFailed' && told[0]!.broken, true);
    assert.equal(r.driver.live(), 0);
  } finally {
    await r.close();
  }
});
