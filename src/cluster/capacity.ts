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

export type CapacityView = Pick<PoolStatus, 'busy' | 'starting' | 'startSlots' | 'queues'> & { instances: Array<Pick<PoolStatus['instances'][number], 'state'> & { fn?: string }> };

/** The numbers the pull rules need (from PoolStatus, or from a simulated node's decision core). */
export interface PullState {
  idle: number;
  busy: number;
  starting: number;
  startSlots: number;
  /** requests waiting in the node's queues */
  queued: number;
  /** of those, the ones not waiting for a start already under way for their function (what the `starts` rule blocks on) */
  blocking?: number;
}

/** Work the node can have at once without queueing: its instances (idle, busy, starting) plus the starts it may begin now. */
export function slotsOfState(s: PullState): number {
  return s.idle + s.busy + s.starting + Math.max(0, s.startSlots - s.starting);
}

/**
 * How a node counts what it may take from the shared queue (`cluster.pullRule`):
 * - `instances`: its instances (idle, busy, starting) plus the starts it may begin,
 *   minus what it pulled and has not answered. An idle instance counts for work of
 *   any function, so a node holding many idle instances pulls as many invocations
 *   of functions it must start first, and its queue then blocks every pull while
 *   those starts run (issue 23: the cluster simulator shows a 100-node cluster of
 *   many functions collapsing this way).
 * - `starts`: only the starts it may begin now, minus what it pulled that is not
 *   running yet; and a request that waits for a start already under way for its
 *   function does not stop the node from pulling (it is not overload: the node's
 *   other idle instances can still take addressed warm work). Warm work reaches a
 *   node through its addressed queue (locality).
 */
export type PullRule = 'instances' | 'starts';
export const PULL_RULES: readonly PullRule[] = ['instances', 'starts'];
/** `cluster.pullRule`'s default (instances before 2026-12-07: docs/cluster-simulation.md, Finding 1). */
export const DEFAULT_PULL_RULE: PullRule = 'starts';

/** How many more invocations the shared queue's loop may pull now (0: none). */
export function sharedAllowance(s: PullState, inFlight: number, maxInFlight: number | 'auto', rule: PullRule = 'instances'): number {
  if (waiting(s, rule) > 0) return 0;
  const capped = (n: number): number => (maxInFlight === 'auto' ? n : Math.min(n, maxInFlight - inFlight));
  if (rule === 'starts') {
    // pulled, not yet running: on its way into the pool (a request waiting for a start is queued)
    const transit = Math.max(0, inFlight - s.busy);
    return Math.max(0, capped(Math.max(0, s.startSlots - s.starting) - transit));
  }
  const slots = slotsOfState(s);
  const limit = maxInFlight === 'auto' ? slots : Math.min(slots, maxInFlight);
  return Math.max(0, limit - inFlight);
}

/** What stops a node from pulling: anything queued (instances), or work waiting for more than the starts under way (starts). */
function waiting(s: PullState, rule: PullRule): number {
  return rule === 'starts' ? (s.blocking ?? s.queued) : s.queued;
}

/**
 * The addressed queue's loop pulls one at a time, and may take one beyond the
 * capacity: the requester chose this node because it had the function warm or
 * snapshotted. 1 or 0.
 */
export function addressedAllowance(s: PullState, inFlight: number, maxInFlight: number | 'auto', rule: PullRule = 'instances'): number {
  if (waiting(s, rule) > 0) return 0;
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
  const starting = new Map<string, number>();
  for (const i of s.instances) {
    if (i.state === 'idle') idle++;
    else if (i.state === 'starting' && i.fn !== undefined) starting.set(i.fn, (starting.get(i.fn) ?? 0) + 1);
  }
  let blocking = 0;
  for (const [fn, n] of Object.entries(s.queues)) blocking += Math.max(0, n - (starting.get(fn) ?? 0));
  return { idle, busy: s.busy, starting: s.starting, startSlots: s.startSlots, queued: queuedOf(s), blocking };
}

/** Work the node can have at once without queueing (see slotsOfState). */
export function slotsOf(s: CapacityView): number {
  return slotsOfState(pullState(s));
}

/** How many more invocations the node may pull now (0: none). */
export function pullCapacity(s: CapacityView, inFlight: number, maxInFlight: number | 'auto', rule: PullRule = 'instances'): number {
  return sharedAllowance(pullState(s), inFlight, maxInFlight, rule);
}
