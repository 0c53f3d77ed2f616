// Locality: which node an accepted invocation is sent to first. A pure choice
// over the nodes' last heartbeats:
//   1. a live node with an idle instance of the function (warm start), this node first;
//   2. else a live node with a snapshot of it and room to start (restore), this node first;
//   3. else a live node whose instance of it is busy or starting and that has nothing
//      queued (it serves the request when that run ends: warm, as VmPool's preferWarm);
//   4. else nobody: the shared queue, where any node with capacity pulls it.
// Heartbeats are up to `heartbeatMs` old, so the chooser books what it sent since a
// node's last heartbeat against that node (several requests in a burst do not all
// go to its one idle instance). A node that is busy anyway hands its addressed work
// to the shared queue after `localityWaitMs` (src/sources/broker/).

import { isLive, type NodeStatus } from './node-status.js';

export type Placement = { kind: 'node'; node: string; why: 'warm' | 'snapshot' | 'busy' } | { kind: 'shared' };

export interface LocalityOptions {
  self: string;
  nodeTimeoutMs: number;
}

export class LocalityBook {
  /** node → fn → invocations sent to it since its last heartbeat */
  private readonly booked = new Map<string, { since: number; byFn: Map<string, number>; total: number }>();

  /** A node's new heartbeat: what it reports now includes what was booked before it was made. */
  heartbeat(n: NodeStatus): void {
    const b = this.booked.get(n.node);
    if (b && n.at >= b.since) this.booked.delete(n.node);
  }

  booking(node: string, fn: string): { fn: number; total: number } {
    const b = this.booked.get(node);
    return { fn: b?.byFn.get(fn) ?? 0, total: b?.total ?? 0 };
  }

  book(node: string, fn: string, now: number): void {
    let b = this.booked.get(node);
    if (!b) this.booked.set(node, (b = { since: now, byFn: new Map(), total: 0 }));
    b.byFn.set(fn, (b.byFn.get(fn) ?? 0) + 1);
    b.total++;
  }

  choose(fn: string, nodes: Iterable<NodeStatus>, now: number, o: LocalityOptions): Placement {
    return choosePlacement(fn, nodes, now, o, (node) => this.booking(node, fn));
  }
}

export function choosePlacement(
  fn: string,
  nodes: Iterable<NodeStatus>,
  now: number,
  o: LocalityOptions,
  booked: (node: string) => { fn: number; total: number } = () => ({ fn: 0, total: 0 }),
): Placement {
  let warm: { n: NodeStatus; idle: number } | undefined;
  let snap: { n: NodeStatus; free: number } | undefined;
  let busy: { n: NodeStatus; soon: number } | undefined;
  const better = (a: NodeStatus, b: NodeStatus | undefined, ka: number, kb: number): boolean => {
    if (!b) return true;
    if ((a.node === o.self) !== (b.node === o.self)) return a.node === o.self;
    if (ka !== kb) return ka > kb;
    if (a.queued !== b.queued) return a.queued < b.queued;
    return a.node < b.node;
  };
  for (const n of nodes) {
    if (!isLive(n, now, o.nodeTimeoutMs)) continue;
    const p = n.functions[fn];
    if (!p) continue;
    const bk = booked(n.node);
    const idle = p.idle - bk.fn;
    if (idle > 0 && better(n, warm?.n, idle, warm?.idle ?? 0)) warm = { n, idle };
    const free = n.free - bk.total;
    if (p.snapshot && free > 0 && better(n, snap?.n, free, snap?.free ?? 0)) snap = { n, free };
    // what was booked beyond its idle instances waits for these
    const soon = p.busy + p.starting - Math.max(0, bk.fn - p.idle);
    if (soon > 0 && n.queued === 0 && better(n, busy?.n, soon, busy?.soon ?? 0)) busy = { n, soon };
  }
  if (warm) return { kind: 'node', node: warm.n.node, why: 'warm' };
  if (snap) return { kind: 'node', node: snap.n.node, why: 'snapshot' };
  if (busy) return { kind: 'node', node: busy.n.node, why: 'busy' };
  return { kind: 'shared' };
}
