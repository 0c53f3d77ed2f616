// A VmPool status as a fake pool reports it, for the cluster tests (unit and integration).
import type { PoolStatus } from '../../src/vmpool/pool.js';

export function status(p: Partial<PoolStatus>): PoolStatus {
  return { memoryUsedMiB: 0, memoryBudgetMiB: 1024, snapshotsEnabled: true, busy: 0, starting: 0, startSlots: 1, instances: [], queues: {}, tiers: [], counters: {} as PoolStatus['counters'], ...p };
}

export function inst(fn: string, state: PoolStatus['instances'][number]['state'], stale = false): PoolStatus['instances'][number] {
  return { id: 'vm', inst: 1, fn, state, workerState: state, path: 'cold', memoryMiB: 256, createdAt: 0, lastUsedAt: 0, invocations: 0, stale, cpuSlot: -1 };
}
