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

/** What one ingress sent to one node since that node's last heartbeat (total 0: nothing). */
export interface BookedView<F> {
  readonly total: number;
  /** invocations of `fn` among them */
  count(fn: F): number;
}

/**
 * A booking: the first function booked since the heartbeat inline, the others in a Map made on the
 * first second function (most bookings of an ingress on a node between two of its heartbeats are
 * of one function; voiding a Map on every heartbeat cost the cluster simulator a Map clear each time).
 */
class Booked<F> implements BookedView<F> {
  total = 0;
  private fn0: F | undefined = undefined;
  private n0 = 0;
  private more: Map<F, number> | undefined = undefined;

  constructor(public since: number) {}

  count(fn: F): number {
    if (this.total === 0) return 0;
    return this.fn0 === fn ? this.n0 : (this.more?.get(fn) ?? 0);
  }

  add(fn: F): void {
    this.total++;
    if (this.n0 === 0 || this.fn0 === fn) {
      this.fn0 = fn;
      this.n0++;
    } else (this.more ??= new Map()).set(fn, (this.more.get(fn) ?? 0) + 1);
  }

  /** A heartbeat voided it: nothing is booked against its node any more (kept for reuse). */
  clear(): void {
    this.total = 0;
    this.n0 = 0;
    this.fn0 = undefined;
    if (this.more !== undefined && this.more.size > 0) this.more.clear();
  }
}

/**
 * Invocations an ingress sent to each node since that node's last heartbeat.
 * Keys are node and function names in the daemon; the cluster simulator keys by
 * index (N, F = number), which changes nothing but the speed of the lookups.
 */
export class LocalityBook<N extends string | number = string, F extends string | number = string> {
  /**
   * node → fn → invocations sent to it since its last heartbeat. A node's entry, once made,
   * stays: a heartbeat voids it in place (total 0) and the next booking starts it again —
   * the simulator books every routed invocation and a heartbeat voids a booking about once
   * a second per node, so deleting and re-adding entries was a tenth of its time (issue 23).
   */
  private readonly booked = new Map<N, Booked<F>>();
  /** the same for index keys (the simulator's nodes): an array lookup instead of a hash */
  private readonly byIndex: (Booked<F> | undefined)[] = [];
  private readonly none: Booking = { fn: 0, total: 0 };

  /**
   * `beatAt` (optional): when the node's latest heartbeat was made. With it a booking made
   * before that heartbeat is void when it is next read (lazily; the simulator has one book
   * per ingress node and cannot tell each of them about every heartbeat); without it the
   * owner calls heartbeat() for every heartbeat it receives (the daemon).
   */
  constructor(private readonly beatAt?: (node: N) => number) {}

  /** A node's new heartbeat: what it reports now includes what was booked before it was made. */
  heartbeat(n: { node: N; at: number }): void {
    const b = this.entry(n.node);
    if (b !== undefined && b.total > 0 && n.at >= b.since) b.clear();
  }

  /** What was sent to `node` since its last heartbeat (undefined: nothing). */
  bookedAt(node: N): BookedView<F> | undefined {
    const b = this.entry(node);
    if (b === undefined || b.total === 0) return undefined;
    if (this.beatAt && this.beatAt(node) >= b.since) {
      b.clear();
      return undefined;
    }
    return b;
  }

  private entry(node: N): Booked<F> | undefined {
    return typeof node === 'number' ? this.byIndex[node] : this.booked.get(node);
  }

  booking(node: N, fn: F): Booking {
    const b = this.bookedAt(node);
    return b ? { fn: b.count(fn), total: b.total } : this.none;
  }

  book(node: N, fn: F, now: number): void {
    let b = this.bookedAt(node) as Booked<F> | undefined;
    if (b === undefined) {
      b = this.entry(node);
      if (b === undefined) {
        b = new Booked<F>(now);
        if (typeof node === 'number') this.byIndex[node] = b;
        else this.booked.set(node, b);
      }
      b.since = now;
    }
    b.add(fn);
  }

  choose(this: LocalityBook<string, string>, fn: string, nodes: Iterable<NodeStatus>, now: number, o: LocalityOptions): Placement {
    return choosePlacement(fn, nodes, now, o, (node) => this.booking(node, fn));
  }
}

/**
 * The locality rule, one candidate node at a time and without allocating: the
 * daemon's ingress offers every live node that reports the function
 * (choosePlacement), the cluster simulator (src/sim/cluster/) the nodes its
 * per-function index holds. Among the candidates of each kind (warm, snapshot,
 * busy) this node wins, then the larger count, then the shorter queue, then the
 * smaller name. Nodes are names in the daemon and indices in the simulator
 * (whose names are zero-padded indices: both orders agree).
 */
export class PlacementChooser<N extends string | number = string> {
  private self: N | undefined;
  private warmNode: N | undefined;
  private warmQueued = 0;
  private warmIdle = 0;
  private snapNode: N | undefined;
  private snapQueued = 0;
  private snapFree = 0;
  private busyNode: N | undefined;
  private busyQueued = 0;
  private busySoon = 0;

  reset(self: N): this {
    this.self = self;
    this.warmNode = this.snapNode = this.busyNode = undefined;
    return this;
  }

  /** A live node whose heartbeat reports `p` for the function, with `queued` and `free` from that heartbeat and what was booked against it since. */
  offer(node: N, queued: number, free: number, p: FunctionPresence, bookedFn: number, bookedTotal: number): void {
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

  private better(a: N, aQueued: number, ka: number, b: N | undefined, bQueued: number, kb: number): boolean {
    if (b === undefined) return true;
    if ((a === this.self) !== (b === this.self)) return a === this.self;
    if (ka !== kb) return ka > kb;
    if (aQueued !== bQueued) return aQueued < bQueued;
    return a < b;
  }

  /** The chosen node (undefined: the shared queue) and why. */
  get node(): N | undefined {
    return this.warmNode ?? this.snapNode ?? this.busyNode;
  }

  get why(): 'warm' | 'snapshot' | 'busy' | undefined {
    return this.warmNode !== undefined ? 'warm' : this.snapNode !== undefined ? 'snapshot' : this.busyNode !== undefined ? 'busy' : undefined;
  }

  result(this: PlacementChooser<string>): Placement {
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
  const c = new PlacementChooser<string>().reset(o.self);
  for (const n of nodes) {
    if (!isLive(n, now, o.nodeTimeoutMs)) continue;
    const p = n.functions[fn];
    if (!p) continue;
    const bk = booked(n.node);
    c.offer(n.node, n.queued, n.free, p, bk.fn, bk.total);
  }
  return c.result();
}
