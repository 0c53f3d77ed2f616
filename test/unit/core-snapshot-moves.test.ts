// The decision core's snapshot moves (issue 17 item 3, issue 19): two-phase (the tier changes only when the
// shell reports the files moved; a failed move frees the room reserved), sized by what the files take on the
// new tier, and a dense (tmpfs) tier reserves the guest's whole memory.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPolicies } from '../../src/policies/index.js';
import type { PlacementPolicy } from '../../src/policies/types.js';
import { PoolCore } from '../../src/vmpool/core/core.js';
import type { CoreEffects, CoreInstance, CoreSnapshot } from '../../src/vmpool/core/model.js';

const MiB = 1048576;

async function rig() {
  const p = await createPolicies({ keepAlive: { policy: 'fixed', ttlSeconds: 600 } }, { baseDir: '.' });
  // a new snapshot goes to disk; after one restore placement wants it on the dense shm tier
  const place: PlacementPolicy = { name: 'test', revisit: true, place: (_f, _t, st) => ({ action: 'snapshot', tier: (st?.samples ?? 0) >= 1 ? 'shm' : 'disk', reason: 'test' }) };
  p.placement = place;
  const started: CoreInstance[] = [];
  const moves: Array<[string, string]> = [];
  const fx: CoreEffects = {
    start: (inst) => void started.push(inst),
    assign: () => undefined,
    reject: () => undefined,
    stop: () => undefined,
    wake: () => undefined,
    dropSnapshot: () => undefined,
    moveSnapshot: (_s, from, to) => void moves.push([from, to]),
  };
  const core = new PoolCore(
    {
      memoryBudgetMiB: 4096,
      lowWatermark: 0.8,
      highWatermark: 0.95,
      maxConcurrentInvocations: 64,
      maxQueueLength: 100,
      maxQueueDelayMs: 60_000,
      snapshots: true,
      tiers: [
        { name: 'shm', latencyRank: 0, capacityBytes: 1024 * MiB, dense: true },
        { name: 'disk', latencyRank: 1, capacityBytes: 8192 * MiB },
      ],
      starts: { maxConcurrent: 2, cores: 2, idleVmCpu: 0, defaultColdMs: 100, defaultRestoreMs: 10, preferWarm: false, backoffBaseMs: 1000, backoffMaxMs: 60_000 },
      cpuSlots: 0,
    },
    p,
    fx,
  );
  const f = core.defineFunction('f', { memoryMiB: 256, maxInstances: 4, version: '1' }, 0);
  // a cold start that leaves a snapshot on disk, measured at 40 MiB (sparse)
  core.arrive(f, 1, 0);
  const cold = started[0]!;
  core.snapshotReady(cold.snapshot!, 40 * MiB, 'ref', 1);
  core.startDone(cold, 2);
  core.setCosts(f, { restoreMs: 10, restoreMsByTier: { disk: 10 } });
  // a second request while the first runs: a restore, then placement revisits and moves it to shm
  core.arrive(f, 2, 3);
  const restored = started[1]!;
  assert.equal(restored.path, 'restore');
  core.startDone(restored, 4);
  const usage = () => Object.fromEntries(core.tierUsage().map((t) => [t.name, t.usedBytes / MiB]));
  return { core, f, snap: f.snapshot as CoreSnapshot, moves, usage };
}

void test('a move to a dense tier reserves the guest memory there and keeps the snapshot where it is until the files moved', async () => {
  const { core, snap, moves, usage } = await rig();
  assert.deepEqual(moves, [['disk', 'shm']]);
  assert.equal(snap.tier.name, 'disk', 'restores keep reading it on disk');
  assert.deepEqual(usage(), { shm: 256, disk: 40 }, 'room for the whole 256 MiB guest reserved on shm (it is made dense there)');
  core.moveDone(snap, 256 * MiB);
  assert.equal(snap.tier.name, 'shm');
  assert.deepEqual(usage(), { shm: 256, disk: 0 }, 'sized by what the files take on the new tier');
  assert.equal(snap.bytes, 256 * MiB);
});

void test('a failed move frees the room reserved and leaves the snapshot on its tier', async () => {
  const { core, snap, usage } = await rig();
  core.moveFailed(snap);
  assert.equal(snap.tier.name, 'disk');
  assert.deepEqual(usage(), { shm: 0, disk: 40 });
});
