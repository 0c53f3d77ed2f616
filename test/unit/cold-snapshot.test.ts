// snapshots.coldSnapshot (issue 9, item 1): a cold start that leaves a snapshot lets the same VM
// run on ('copy') instead of continuing from a restore of its own snapshot ('restore').
// Worker logic with a FakeDriver; the file mechanics of the copy on tmpfs are in
// test/integration/cold-snapshot-copy.test.ts. The real VM path (the snapshot is the post-init state,
// never touched by the source's requests) is test/e2e/snapshots.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ActorSystem, type ActorRef } from '../../src/core/actor.js';
import { realClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { NetworkManager, type NetworkMsg } from '../../src/network/network-manager.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { copySparse } from '../../src/runtimes/qemu/driver.js';
import type { SnapshotFiles, SnapshotOptions, SnapshotResult, VmConfig, VmHandle } from '../../src/runtimes/types.js';
import type { SnapshotMsg, SnapshotRef } from '../../src/snapshots/types.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import { Worker, type InvokeOutcome, type WorkerEvent, type WorkerMsg } from '../../src/worker/worker.js';
import { FakeDriver, fakeImage } from '../helpers/fake-driver.js';
import { Spy } from '../helpers/spy.js';

/** A FakeDriver whose VMs honour thenContinue, as the QEMU driver's do; failSnapshot makes the snapshot throw. */
class ContinuingDriver extends FakeDriver {
  readonly snapshotContinues = true;
  snapshotCalls: Array<SnapshotOptions | undefined> = [];
  failSnapshot = false;
  override async boot(cfg: VmConfig): Promise<VmHandle> {
    const vm = await super.boot(cfg);
    const plain = vm.snapshot.bind(vm);
    vm.snapshot = async (t: SnapshotFiles, o?: SnapshotOptions): Promise<SnapshotResult> => {
      this.snapshotCalls.push(o);
      if (this.failSnapshot) throw new Error('migration failed (fake)');
      const r = await plain(t);
      return o?.thenContinue ? { ...r, copyMs: 3, continueMs: 5, continued: true } : r;
    };
    return vm;
  }
}

async function rig(mode: 'copy' | 'restore' | undefined, failSnapshot = false, resyncWithRun?: boolean) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-cs-'));
  const sys = new ActorSystem(silentLogger, () => undefined);
  const registry = new Registry(openMemoryDb(), { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  const fn = registry.put('f', { code: Buffer.from('function main(p){return p}') }).def;
  const driver = new ContinuingDriver({});
  driver.failSnapshot = failSnapshot;
  const snaps = new Spy<SnapshotMsg>((m) => m.kind === 'commit' && m.reply?.resolve(4096));
  const events = new Spy<WorkerEvent>();
  const network = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
  const snapshots = sys.spawn<SnapshotMsg>('snapshots', snaps);
  const poolRef = sys.spawn<WorkerEvent>('vmpool', events);
  const snapshot: SnapshotRef = { id: 'snap-1', fn: 'f', tier: 'shm', dir, files: { kind: 'shared-memory', statePath: path.join(dir, 'state'), memoryPath: path.join(dir, 'mem') }, workingSetPath: path.join(dir, 'ws.json') };
  const worker = new Worker('vm-1', 1, { path: 'cold', fn, snapshotTarget: snapshot }, { driver, image: fakeImage, accelerator: 'tcg', registry, network, snapshots, clock: realClock, bootTimeoutMs: 5000, limits: { maxResultBytes: 1000, maxLogBytes: 100 }, coldSnapshot: mode, resyncWithRun }, poolRef);
  const ref = sys.spawn<WorkerMsg>('worker-vm-1', worker);
  const run = (to: ActorRef<WorkerMsg>, req: number): Promise<InvokeOutcome> =>
    new Promise<InvokeOutcome>((resolve, reject) => {
      const rec: ActivationRecord = { id: `a${req}`, function: 'f', functionVersion: 1, runtime: 'qemu', status: 'success', timestamps: {}, timings: {}, totalMs: 0, logs: [] };
      to.tell({ kind: 'run', run: { req, rec, params: { n: req }, fresh: req === 1, reply: { resolve, reject } } });
    });
  /** a second instance: a clone restored from the snapshot the cold start left (same driver) */
  const clone = (): { events: Spy<WorkerEvent>; ref: ActorRef<WorkerMsg> } => {
    const cloneEvents = new Spy<WorkerEvent>();
    const clonePool = sys.spawn<WorkerEvent>('vmpool-clone', cloneEvents);
    const w = new Worker('vm-2', 2, { path: 'restore', fn, snapshot }, { driver, image: fakeImage, accelerator: 'tcg', registry, network, snapshots, clock: realClock, bootTimeoutMs: 5000, limits: { maxResultBytes: 1000, maxLogBytes: 100 }, coldSnapshot: mode, resyncWithRun }, clonePool);
    return { events: cloneEvents, ref: sys.spawn<WorkerMsg>('worker-vm-2', w) };
  };
  return {
    worker,
    ref,
    run,
    clone,
    driver,
    events,
    snaps,
    close: async () => {
      await sys.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

void test('coldSnapshot copy (the default): the source VM takes the snapshot and runs on, no restore of its own snapshot', async () => {
  for (const mode of ['copy', undefined] as const) {
    const r = await rig(mode);
    try {
      await r.events.next((e) => e.kind === 'ready');
      assert.deepEqual(r.events.got.map((e) => e.kind), ['snapshotTaken', 'ready']);
      assert.equal(r.driver.boots, 1);
      assert.equal(r.driver.restores, 0, 'no restore on the cold path');
      assert.deepEqual(r.driver.snapshotCalls, [{ thenContinue: true }]);
      assert.equal(r.driver.live(), 1, 'the source VM is the instance');
      assert.deepEqual(r.worker.sm.history.slice(1).map((t) => t.to), ['initializing', 'snapshotting', 'idle']);
      const commit = r.snaps.got.find((m) => m.kind === 'commit');
      assert.ok(commit, 'the snapshot was committed');
    } finally {
      await r.close();
    }
  }
});

void test('coldSnapshot restore keeps the former path: the source is stopped and the instance continues from a restore', async () => {
  const r = await rig('restore');
  try {
    await r.events.next((e) => e.kind === 'ready');
    assert.deepEqual(r.events.got.map((e) => e.kind), ['snapshotTaken', 'ready']);
    assert.equal(r.driver.restores, 1);
    assert.deepEqual(r.driver.snapshotCalls, [undefined]);
    assert.equal(r.driver.live(), 1, 'only the restored VM runs');
    assert.deepEqual(r.worker.sm.history.slice(1).map((t) => t.to), ['initializing', 'snapshotting', 'restoring', 'idle']);
  } finally {
    await r.close();
  }
});

void test('coldSnapshot copy: a failed snapshot ends the instance as a snapshot failure and stops its VM', async () => {
  const r = await rig('copy', true);
  try {
    const gone = await r.events.next((e) => e.kind === 'gone');
    assert.deepEqual(r.events.got.map((e) => e.kind), ['snapshotFailed', 'gone']);
    assert.equal(gone.kind === 'gone' && gone.failure?.kind, 'snapshot');
    assert.equal(r.driver.live(), 0, 'no VM left');
    assert.equal(r.snaps.got.filter((m) => m.kind === 'commit').length, 0);
  } finally {
    await r.close();
  }
});

// issue 9: snapshots.coldSnapshot x snapshots.resync. The source of a copy runs on without any
// resync (it never was restored); every restored VM, the copy's clones included, gets its resync:
// carried by its first run (with-run) or as a separate request before it is ready (message).
for (const mode of ['copy', 'restore'] as const) {
  for (const resync of ['with-run', 'message'] as const) {
    void test(`coldSnapshot ${mode} + resync ${resync}: the cold start's own VM and a clone of its snapshot`, async () => {
      const r = await rig(mode, false, resync === 'with-run');
      try {
        await r.events.next((e) => e.kind === 'ready');
        assert.equal((await r.run(r.ref, 1)).ok, true);
        assert.equal((await r.run(r.ref, 2)).ok, true);
        const vms = () => r.driver.vms;
        const carried = resync === 'with-run' ? ['run+resync', 'run'] : ['resync', 'run', 'run'];
        if (mode === 'copy') {
          assert.deepEqual(vms().map((v) => v.ops), [['init', 'run', 'run']], 'the source runs on: no resync');
        } else {
          // the source only initialized; the instance is a restore of its own snapshot
          assert.deepEqual(vms()[0]!.ops, ['init']);
          assert.deepEqual(vms()[1]!.ops, carried);
        }
        const c = r.clone();
        await c.events.next((e) => e.kind === 'ready');
        assert.equal((await r.run(c.ref, 3)).ok, true);
        assert.equal((await r.run(c.ref, 4)).ok, true);
        assert.deepEqual(vms().at(-1)!.ops, resync === 'with-run' ? ['run+resync', 'run'] : ['resync', 'run', 'run'], 'the clone gets its resync before user code');
      } finally {
        await r.close();
      }
    });
  }
}

void test('copySparse fails with a clear error for a missing file', async () => {
  await assert.rejects(copySparse('/nonexistent/fc-mem', path.join(os.tmpdir(), 'fc-never')), /cp \/nonexistent\/fc-mem/);
});
