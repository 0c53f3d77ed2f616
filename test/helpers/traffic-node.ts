// The node of the traffic tests (export round trip, what-if): five functions over
// six minutes served by the real node stack on the fake driver with the
// conformance test's costs (cold 3 s, restore 400 ms), and the same settings for
// the simulator.
import { profileSchema } from '../../src/sim/profile.js';
import type { Trace } from '../../src/traces/types.js';
import { serveTrace, type ServedNode } from './served-node.js';

export const SLOT_MS = 60_000;
export const FUNCTIONS = [
  { name: 'a', avgDurationMs: 150.25, memoryMiB: 128, counts: [30, 48, 18, 0, 60, 12] },
  { name: 'b', avgDurationMs: 2500.5, memoryMiB: 256, counts: [0, 36, 0, 24, 0, 18] },
  { name: 'c', avgDurationMs: 40.125, memoryMiB: 128, counts: [6, 0, 0, 6, 0, 6] },
  { name: 'd', avgDurationMs: 9000.75, memoryMiB: 256, counts: [12, 12, 0, 12, 12, 0] },
  { name: 'e', avgDurationMs: 600.5, memoryMiB: 512, counts: [0, 18, 18, 0, 18, 0] },
];
export const NODE = { memoryMiB: 1024, maxInstances: 3, maxQueueDelayMs: 15_000, maxConcurrentStarts: 2 };
export const profile = profileSchema.parse({
  accelerator: 'test',
  defaults: { coldMs: 3000, restoreMs: 400, warmMs: 0, memoryMiB: 256, restoreMsByTier: { shm: 400 } },
  tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 1 << 20 }],
  node: { cores: 2, idleVmCpu: 0 },
});
export const policies = { keepAlive: { policy: 'fixed', ttlSeconds: 25 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' };
export const expand = { spread: 'random' as const, seed: 3 };

/** The node of the conformance settings serves the trace. */
export const NODE_OPTIONS = {
  snapshots: true,
  policies,
  behaviour: { bootMs: 2800, initMs: 200, restoreMs: 300, resyncMs: 100, ownRestoreMs: 0, snapshotMs: 0 },
  pool: {
    memoryBudgetMiB: NODE.memoryMiB,
    maxQueueDelayMs: NODE.maxQueueDelayMs,
    tiers: [{ name: 'shm', latencyRank: 0, capacityBytes: (1 << 20) * 1048576 }],
    starts: { maxConcurrent: NODE.maxConcurrentStarts, cores: 2, idleVmCpu: 0, defaultColdMs: 3000, defaultRestoreMs: 400, preferWarm: true },
  },
};

export async function served(trace: Trace): Promise<ServedNode> {
  return serveTrace({
    trace,
    node: NODE_OPTIONS,
    deploy: (fn) => ({ memoryMiB: FUNCTIONS.find((f) => f.name === fn)!.memoryMiB, maxInstances: NODE.maxInstances, timeoutMs: 60_000 }),
    params: (i) => ({ ms: FUNCTIONS[i]!.avgDurationMs }),
    expand,
  });
}

