// THE adapter between the scheduling core and everything that watches it
// (metrics, dashboard). It is the only code here that knows the shape of
// VmPool's status and the SnapshotManager's list: when those change, only
// `readNodeState` changes.

import type { ActorRef } from '../core/actor.js';
import type { SnapshotMsg, SnapshotRecord } from '../snapshots/types.js';
import type { MemoryAccounting } from '../vmpool/core/model.js';
import type { PoolMsg, PoolStatus } from '../vmpool/pool.js';

const MiB = 1024 * 1024;

export interface InstanceInfo {
  id: string;
  fn: string;
  /** the instance's lifecycle state (booting, restoring, initializing, snapshotting, idle, running, failed, stopping, …) */
  state: string;
  memoryBytes: number;
  createdAt: number;
  invocations: number;
}

export interface MemoryCapacity {
  accounting: MemoryAccounting;
  /** the live instances' sizes added up */
  nominalBytes: number;
  /** their latest measured PSS added up (those measured), and how many have none yet */
  measuredBytes: number;
  unmeasured: number;
  /** how many more idle VMs of each size (MiB, as a string) the budget admits now */
  idleFit: Record<string, number>;
  /** the guard's level (0 ok, 1 evict, 2 refuse, 3 stop) when it runs */
  guardLevel?: number;
}

export interface SnapshotInfo {
  id: string;
  fn: string;
  tier: string;
  bytes: number;
  /** creating | ready */
  status: string;
}

export interface NodeState {
  /** epoch ms when read */
  at: number;
  memoryUsedBytes: number;
  memoryBudgetBytes: number;
  /** issue 24: how memory is counted, what the VMs measure, the room left (absent from a pool that does not say) */
  memory?: MemoryCapacity;
  instances: InstanceInfo[];
  /** requests waiting per function */
  queues: Record<string, number>;
  /** cumulative counts since the daemon started */
  counters: {
    /** instances started, by start path */
    starts: Record<string, number>;
    /** starts that failed through the platform (boot, snapshot, restore) */
    startFailures: number;
    /** starts whose function failed to initialise (the function's failure) */
    initFailures: number;
    prewarms: number;
    /** instances the node ended, by cause (memory_pressure, keepalive_expired, requested, lost, …) */
    stops: Record<string, number>;
    /** requests refused, by reason (queue_full, overloaded, queue_timeout, …) */
    rejections: Record<string, number>;
  };
  /** snapshot storage tiers: bytes used and capacity */
  tiers: Array<{ name: string; usedBytes: number; capacityBytes: number }>;
  snapshots: SnapshotInfo[];
}

/** Ask VmPool and the SnapshotManager (when there is one) and map their answers to a NodeState. */
export async function readNodeState(pool: ActorRef<PoolMsg>, snapshots: ActorRef<SnapshotMsg> | undefined, timeoutMs = 5000): Promise<NodeState> {
  const [st, snaps] = await Promise.all([
    pool.ask<PoolStatus>((reply) => ({ kind: 'status', reply }), timeoutMs),
    snapshots ? snapshots.ask<SnapshotRecord[]>((reply) => ({ kind: 'list', reply }), timeoutMs) : Promise.resolve([]),
  ]);
  return toNodeState(st, snaps, Date.now());
}

export function toNodeState(st: PoolStatus, snaps: SnapshotRecord[], at: number): NodeState {
  const c = st.counters;
  return {
    at,
    memoryUsedBytes: st.memoryUsedMiB * MiB,
    memoryBudgetBytes: st.memoryBudgetMiB * MiB,
    ...(st.memory
      ? {
          memory: {
            accounting: st.memory.accounting,
            nominalBytes: st.memory.nominalMiB * MiB,
            measuredBytes: st.memory.measuredMiB * MiB,
            unmeasured: st.memory.unmeasured,
            idleFit: { ...st.memory.idleFit },
            ...(st.memory.guard ? { guardLevel: st.memory.guard.level } : {}),
          },
        }
      : {}),
    instances: st.instances.map((i) => ({
      id: i.id,
      fn: i.fn,
      // the pool marks an instance stopping before its Worker gets there
      state: i.state === 'stopping' ? 'stopping' : i.workerState,
      memoryBytes: i.memoryMiB * MiB,
      createdAt: i.createdAt,
      invocations: i.invocations,
    })),
    queues: { ...st.queues },
    counters: {
      starts: { cold: c.coldStarts, restore: c.restoreStarts },
      startFailures: c.startFailures,
      initFailures: c.initFailures,
      prewarms: c.prewarms,
      stops: {
        memory_pressure: c.evictions,
        // issue 24: stopped by the host-memory guard with nothing idle left (their requests fail with memory_pressure)
        memory_guard: c.pressureStops,
        keepalive_expired: c.expirations,
        keepalive_unload: c.keepAliveStops,
        prewarm_unload: c.prewarmUnloads,
        definition_changed: c.staleStops,
        requested: c.requestedStops,
        lost: c.lostInstances,
      },
      rejections: {
        queue_full: c.rejectedQueueFull,
        overloaded: c.rejectedOverloaded,
        queue_timeout: c.rejectedQueueTimeout,
        deleted: c.rejectedDeleted,
        start_failed: c.rejectedStartFailed,
        start_backoff: c.rejectedStartBackoff,
        shutdown: c.rejectedShutdown,
      },
    },
    tiers: st.tiers.map((t) => ({ name: t.name, usedBytes: t.usedBytes, capacityBytes: t.capacityBytes })),
    snapshots: snaps.map((s) => ({ id: s.id, fn: s.function, tier: s.tier, bytes: s.sizeBytes, status: s.status })),
  };
}
