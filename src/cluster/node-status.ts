// A node's heartbeat: what the others need for locality, and what `faascell
// cluster status` shows. Built from VmPool's status by a pure function.

import type { PoolStatus } from '../vmpool/pool.js';

export interface FunctionPresence {
  idle: number;
  busy: number;
  starting: number;
  /** a ready snapshot of the function's current version on this node */
  snapshot: boolean;
}

export interface NodeStatus {
  node: string;
  /** the node's HTTP API */
  url?: string;
  startedAt: number;
  /** epoch ms when this heartbeat was made */
  at: number;
  version: string;
  accelerator?: string;
  memoryUsedMiB: number;
  memoryBudgetMiB: number;
  instances: number;
  busy: number;
  starting: number;
  startSlots: number;
  queued: number;
  queues: Record<string, number>;
  functions: Record<string, FunctionPresence>;
  /** broker invocations pulled and not yet answered */
  inFlight: number;
  /** how many more it would pull now */
  free: number;
  /** host load average (1, 5, 15 min) */
  load: number[];
  counters: BrokerCounters;
}

export interface BrokerCounters {
  /** invocations pulled from the broker */
  pulled: number;
  /** outcomes published */
  answered: number;
  /** pulled copies that had been delivered before without an answer (a node died, hung or lost NATS) */
  redelivered: number;
  /** refused at capacity and handed back to the shared queue */
  handedBack: number;
  /** moved from an addressed queue to the shared one (the node was busy or down) */
  forwarded: number;
  /** invocations this node accepted (HTTP) and sent to the broker */
  accepted: number;
  /** of those, sent to a node chosen for locality */
  targeted: number;
  /** issue 18: refused at the broker's queue deadline by this node (as the ingress nobody took it from, or as a node that pulled it too late) */
  expired: number;
  /** issue 18: delivered more than cluster.maxDeliveries times (a redelivery loop) and answered with that failure by this node */
  givenUp: number;
}

export function emptyCounters(): BrokerCounters {
  return { pulled: 0, answered: 0, redelivered: 0, handedBack: 0, forwarded: 0, accepted: 0, targeted: 0, expired: 0, givenUp: 0 };
}

export interface SnapshotLike {
  function: string;
  status?: string;
}

/** Which functions the node has, and how: idle/busy/starting instances and ready snapshots. */
export function presenceOf(pool: Pick<PoolStatus, 'instances'>, snapshots: SnapshotLike[]): Record<string, FunctionPresence> {
  const out: Record<string, FunctionPresence> = {};
  const get = (fn: string): FunctionPresence => (out[fn] ??= { idle: 0, busy: 0, starting: 0, snapshot: false });
  for (const i of pool.instances) {
    if (i.stale) continue;
    const p = get(i.fn);
    if (i.state === 'idle') p.idle++;
    else if (i.state === 'busy') p.busy++;
    else if (i.state === 'starting') p.starting++;
  }
  for (const s of snapshots) if (s.status === undefined || s.status === 'ready') get(s.function).snapshot = true;
  return out;
}

export function isLive(n: Pick<NodeStatus, 'at'>, now: number, nodeTimeoutMs: number): boolean {
  return now - n.at <= nodeTimeoutMs;
}
