// How much work a node pulls from the broker: a pure function of its pool's status.
//
// A node pulls only what it can serve now: an idle instance, or a start it may
// begin at once (VmPool's start slots). Nothing is pulled while a request waits in
// any of its queues: a busy node leaves work to the others instead of queueing it.
// `inFlight` counts the invocations it pulled and has not answered yet (whether
// still on their way to the pool, waiting, starting or running), so work in
// transit is never counted twice.

import type { PoolStatus } from '../vmpool/pool.js';

export type CapacityView = Pick<PoolStatus, 'busy' | 'starting' | 'startSlots' | 'queues'> & { instances: Array<Pick<PoolStatus['instances'][number], 'state'>> };

/** Work the node can have at once without queueing: its instances (idle, busy, starting) plus the starts it may begin now. */
export function slotsOf(s: CapacityView): number {
  let idle = 0;
  for (const i of s.instances) if (i.state === 'idle') idle++;
  return idle + s.busy + s.starting + Math.max(0, s.startSlots - s.starting);
}

export function queuedOf(s: Pick<PoolStatus, 'queues'>): number {
  let n = 0;
  for (const v of Object.values(s.queues)) n += v;
  return n;
}

/** How many more invocations the node may pull now (0: none). */
export function pullCapacity(s: CapacityView, inFlight: number, maxInFlight: number | 'auto'): number {
  if (queuedOf(s) > 0) return 0;
  const slots = slotsOf(s);
  const limit = maxInFlight === 'auto' ? slots : Math.min(slots, maxInFlight);
  return Math.max(0, limit - inFlight);
}
