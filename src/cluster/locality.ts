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

import { isLive, type FunctionPresence, type NodeStatus } from './node-status.js';

export type Placement = { kind: 'node'; node: string; why: 'warm' | 'snapshot' | 'busy' } | { kind: 'shared' };

export interface LocalityOptions {
  self: string;
  nodeTimeoutMs: number;
}

export interface Booking {
  fn: number;
  total: number;
}

export class LocalityBook {
  /** node → fn → invocations sent to it since its last heartbeat */
  private readonly booked = new Map<string, { since: number; byFn: Map<string, number>; total: number }>();
  private readonly none: Booking = { fn: 0, total: 0 };

  /**
   * `beatAt` (optional): when the node's latest heartbeat was made. With it a booking made
   * before that heartbeat is void when it is next read (lazily; the simulator has one book
   * per ingress node and cannot tell each of them about every heartbeat); without it the
   * owner calls heartbeat() for every heartbeat it receives (the daemon).
   */
  constructor(private readonly beatAt?: (node: string) => number) {}

  /** A node's new heartbeat: what it reports now includes what was booked before it was made. */
  heartbeat(n: Pick<NodeStatus, 'node' | 'at'>): void {
    const b = this.booked.get(n.node);
    if (b && n.at >= b.since) this.booked.delete(n.node);
  }

  private current(node: string): { since: number; byFn: Map<string, number>; total: number } | undefined {
    const b = this.booked.get(node);
    if (b && this.beatAt && this.beatAt(node) >= b.since) {
      this.booked.delete(node);
      return undefined;
    }
    return b;
  }

  booking(node: string, fn: string): Booking {
    const b = this.current(node);
    return b ? { fn: b.byFn.get(fn) ?? 0, total: b.total } : this.none;
  }

  /** booking(node, fn).fn without allocating (the simulator's hot path). */
  bookedFn(node: string, fn: string): number {
    return this.current(node)?.byFn.get(fn) ?? 0;
  }

  /** booking(node, fn).total without allocating. */
  bookedTotal(node: string): number {
    return this.current(node)?.total ?? 0;
  }

  book(node: string, fn: string, now: number): void {
    let b = this.current(node);
    if (!b) this.booked.set(node, (b = { since: now, byFn: new Map(), total: 0 }));
    b.byFn.set(fn, (b.byFn.get(fn) ?? 0) + 1);
    b.total++;
  }

  choose(fn: string, nodes: Iterable<NodeStatus>, now: number, o: LocalityOptions): Placement {
    return choosePlacement(fn, nodes, now, o, (node) => this.booking(node, fn));
  }
}

/**
 * The locality rule, one candidate node at a time and without allocating: the
 * daemon's ingress offers every live node that reports the function
 * (choosePlacement), the cluster simulator (src/sim/cluster/) the nodes its
 * per-function index holds. Among the candidates of each kind (warm, snapshot,
 * busy) this node wins, then the larger count, then the shorter queue, then the
 * smaller name.
 */
export class PlacementChooser {
  private self = '';
  private warmNode: string | undefined;
  private warmQueued = 0;
  private warmIdle = 0;
  private snapNode: string | undefined;
  private snapQueued = 0;
  private snapFree = 0;
  private busyNode: string | undefined;
  private busyQueued = 0;
  private busySoon = 0;

  reset(self: string): this {
    this.self = self;
    this.warmNode = this.snapNode = this.busyNode = undefined;
    return this;
  }

  /** A live node whose heartbeat reports `p` for the function, with `queued` and `free` from that heartbeat and what was booked against it since. */
  offer(node: string, queued: number, free: number, p: FunctionPresence, bookedFn: number, bookedTotal: number): void {
    const idle = p.idle - bookedFn;
    if (idle > 0 && this.better(node, queued, idle, this.warmNode, this.warmQueued, this.warmIdle)) {
      this.warmNode = node;
      this.warmQueued = queued;
      this.warmIdle = idle;
    }
    const room = free - bookedTotal;
    if (p.snapshot && room > 0 && this.better(node, queued, room, this.snapNode, this.snapQueued, this.snapFree)) {
      this.snapNode = node;
      this.snapQueued = queued;
      this.snapFree = room;
    }
    // what was booked beyond its idle instances waits for these
    const soon = p.busy + p.starting - Math.max(0, bookedFn - p.idle);
    if (soon > 0 && queued === 0 && this.better(node, queued, soon, this.busyNode, this.busyQueued, this.busySoon)) {
      this.busyNode = node;
      this.busyQueued = queued;
      this.busySoon = soon;
    }
  }

  private better(a: string, aQueued: number, ka: number, b: string | undefined, bQueued: number, kb: number): boolean {
    if (b === undefined) return true;
    if ((a === this.self) !== (b === this.self)) return a === this.self;
    if (ka !== kb) return ka > kb;
    if (aQueued !== bQueued) return aQueued < bQueued;
    return a < b;
  }

  /** The chosen node (undefined: the shared queue) and why. */
  get node(): string | undefined {
    return this.warmNode ?? this.snapNode ?? this.busyNode;
  }

  get why(): 'warm' | 'snapshot' | 'busy' | undefined {
    return this.warmNode !== undefined ? 'warm' : this.snapNode !== undefined ? 'snapshot' : this.busyNode !== undefined ? 'busy' : undefined;
  }

  result(): Placement {
    const node = this.node;
    return node === undefined ? { kind: 'shared' } : { kind: 'node', node, why: this.why! };
  }
}

export function choosePlacement(
  fn: string,
  nodes: Iterable<NodeStatus>,
  now: number,
  o: LocalityOptions,
  booked: (node: string) => Booking = () => ({ fn: 0, total: 0 }),
): Placement {
  const c = new PlacementChooser().reset(o.self);
  for (const n of nodes) {
    if (!isLive(n, now, o.nodeTimeoutMs)) continue;
    const p = n.functions[fn];
    if (!p) continue;
    const bk = booked(n.node);
    c.offer(n.node, n.queued, n.free, p, bk.fn, bk.total);
  }
  return c.result();
}
