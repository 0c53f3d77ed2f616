// Worker start paths with a FakeDriver: what the SnapshotManager is told when a
// restore fails, and when it is merely cut short by a stop.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Actor, ActorSystem } from '../../src/core/actor.js';
import { silentLogger } from '../../src/core/logger.js';
import { NetworkManager, type NetworkMsg } from '../../src/network/network-manager.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import type { SnapshotMsg, SnapshotRef } from '../../src/snapshots/types.js';
import type { InstanceEvent } from '../../src/worker/worker.js';
import { Worker } from '../../src/worker/worker.js';
import { FakeDriver, fakeImage, sleep, type FakeBehaviour } from '../helpers/fake-driver.js';

class Spy<M> extends Actor<M> {
  readonly got: M[] = [];
  protected receive(msg: M): void {
    this.got.push(msg);
  }
}

async function restoreScenario(behaviour: FakeBehaviour, stopAfterMs?: number): Promise<{ snapshotMsgs: SnapshotMsg[]; driver: FakeDriver; events: InstanceEvent[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-w-'));
  const sys = new ActorSystem(silentLogger, () => undefined);
  try {
    const registry = new Registry(openMemoryDb(), { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
    const fn = registry.put('f', { code: Buffer.from('function main(p){return p}') }).def;
    const driver = new FakeDriver(behaviour);
    const snaps = new Spy<SnapshotMsg>();
    const pool = new Spy<InstanceEvent>();
    const network = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
    const snapshots = sys.spawn<SnapshotMsg>('snapshots', snaps);
    const poolRef = sys.spawn<InstanceEvent>('vmpool', pool);
    const worker = new Worker('vm-1', 'pending', { driver, image: fakeImage, accelerator: 'tcg', registry, network, snapshots, bootTimeoutMs: 5000 }, poolRef);
    const ref = sys.spawn('worker-vm-1', worker);
    const snapshot: SnapshotRef = { id: 'snap-1', fn: 'f', tier: 'shm', dir, files: { kind: 'shared-memory', statePath: path.join(dir, 'state'), memoryPath: path.join(dir, 'mem') } };
    ref.tell({ kind: 'start', plan: { path: 'restore', fn, snapshot } });
    if (stopAfterMs !== undefined) {
      await sleep(stopAfterMs);
      await worker.abort('evicted while restoring');
    }
    await sleep(300);
    return { snapshotMsgs: snaps.got, driver, events: pool.got };
  } finally {
    await sys.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

void test('a restore that fails is reported to the SnapshotManager, then the Worker cold-boots', async () => {
  const r = await restoreScenario({ failResync: true });
  const restored = r.snapshotMsgs.filter((m) => m.kind === 'restored');
  assert.equal(restored.length, 1);
  assert.equal(restored[0]!.kind === 'restored' && restored[0]!.ok, false);
  assert.equal(r.driver.restores, 1);
  assert.equal(r.driver.boots, 1, 'falls back to a cold boot');
});

void test('a restore cut short by a stop says nothing about the snapshot and does not fall back', async () => {
  const r = await restoreScenario({ resyncMs: 150 }, 30);
  assert.deepEqual(r.snapshotMsgs.filter((m) => m.kind === 'restored'), [], 'the snapshot is not reported broken');
  assert.equal(r.driver.boots, 0, 'no cold boot after a stop');
  assert.equal(r.driver.live(), 0, 'the restored VM is stopped');
});
