// How much work a node pulls from the broker: pure functions of its pool's status.
//
// A node pulls only what it can serve now: an idle instance, or a start it may
// begin at once (VmPool's start slots). Nothing is pulled while a request waits in
// any of its queues: a busy node leaves work to the others instead of queueing it.
// `inFlight` counts the invocations it pulled and has not answered yet (whether
// still on their way to the pool, waiting, starting or running), so work in
// transit is never counted twice. The broker Source (src/sources/broker/) and the
// cluster simulator (src/sim/cluster/) both pull by these rules.

import type { PoolStatus } from '../vmpool/pool.js';

export type CapacityView = Pick<PoolStatus, 'busy' | 'starting' | 'startSlots' | 'queues'> & { instances: Array<Pick<PoolStatus['instances'][number], 'state'>> };

/** The numbers the pull rules need (from PoolStatus, or from a simulated node's decision core). */
export interface PullState {
  idle: number;
  busy: number;
  starting: number;
  startSlots: number;
  /** requests waiting in the node's queues */
  queued: number;
}

/** Work the node can have at once without queueing: its instances (idle, busy, starting) plus the starts it may begin now. */
export function slotsOfState(s: PullState): number {
  return s.idle + s.busy + s.starting + Math.max(0, s.startSlots - s.starting);
}

/** How many more invocations the shared queue's loop may pull now (0: none). */
export function sharedAllowance(s: PullState, inFlight: number, maxInFlight: number | 'auto'): number {
  if (s.queued > 0) return 0;
  const slots = slotsOfState(s);
  const limit = maxInFlight === 'auto' ? slots : Math.min(slots, maxInFlight);
  return Math.max(0, limit - inFlight);
}

/**
 * The addressed queue's loop pulls one at a time, and may take one beyond the
 * capacity: the requester chose this node because it had the function warm or
 * snapshotted. 1 or 0.
 */
export function addressedAllowance(s: PullState, inFlight: number, maxInFlight: number | 'auto'): number {
  if (s.queued > 0) return 0;
  const slots = maxInFlight === 'auto' ? slotsOfState(s) : Math.min(slotsOfState(s), maxInFlight);
  return inFlight < slots + 1 ? 1 : 0;
}

export function queuedOf(s: Pick<PoolStatus, 'queues'>): number {
  let n = 0;
  for (const v of Object.values(s.queues)) n += v;
  return n;
}

/** The pull state of a pool status. */
export function pullState(s: CapacityView): PullState {
  let idle = 0;
  for (const i of s.instances) if (i.state === 'idle') idle++;
  return { idle, busy: s.busy, starting: s.starting, startSlots: s.startSlots, queued: queuedOf(s) };
}

/** Work the node can have at once without queueing (see slotsOfState). */
export function slotsOf(s: CapacityView): number {
  return slotsOfState(pullState(s));
}

/** How many more invocations the node may pull now (0: none). */
export function pullCapacity(s: CapacityView, inFlight: number, maxInFlight: number | 'auto'): number {
  return sharedAllowance(pullState(s), inFlight, maxInFlight);
}
