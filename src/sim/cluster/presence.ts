// What the nodes' last heartbeats say, indexed by function: for each function
// the nodes whose heartbeat reports it (an idle, busy or starting instance, or a
// ready snapshot). Routing an invocation looks only at those nodes, as the
// daemon's choosePlacement does when it skips nodes without the function; a
// heartbeat updates only the functions that changed since the node's previous one.
// The nodes with idle instances are also kept by idle count, as one bit per node
// (an update is O(1), and the nodes of a count are read in node order): the
// locality choice reads the best warm candidate from there instead of scanning
// every node that has the function (issue 23).

import type { FunctionPresence } from '../../cluster/node-status.js';
import type { LocalityBook } from '../../cluster/locality.js';

/** A node's heartbeat entry for one function, and its place in that function's candidate list. */
export interface PresenceEntry extends FunctionPresence {
  node: number;
  fn: number;
  pos: number;
}

export class PresenceIndex {
  /** function → nodes whose heartbeat reports it */
  private readonly byFn: (PresenceEntry[] | undefined)[] = [];
  /** node → function → its entry */
  private readonly byNode: Map<number, PresenceEntry>[] = [];
  /**
   * function → the nodes reporting idle instances, by idle count: bit `node` of words
   * [(count − 1)·words, count·words) is set when the node reports `count` idle instances
   */
  private readonly idleBits: (Uint32Array | undefined)[] = [];
  /** 32-bit words per idle count (one bit per node) */
  readonly words: number;

  constructor(nodes: number) {
    this.words = Math.max(1, Math.ceil(nodes / 32));
    for (let k = 0; k < nodes; k++) this.byNode.push(new Map());
  }

  /** The entries of function `fn` (do not modify). */
  candidates(fn: number): readonly PresenceEntry[] {
    return this.byFn[fn] ?? EMPTY;
  }

  /**
   * The nodes reporting idle instances of function `fn`, as bits by idle count (see idleBits; do not
   * modify); its length / words is the largest count seen. Undefined: none ever.
   */
  idleBitsOf(fn: number): Uint32Array | undefined {
    return this.idleBits[fn];
  }

  /** The nodes reporting idle instances of `fn`: `[i]` those reporting i idle instances, in node order. */
  idleNodes(fn: number): number[][] {
    const out: number[][] = [[]];
    const bits = this.idleBits[fn];
    const w = this.words;
    for (let i = 1; bits !== undefined && i <= bits.length / w; i++) {
      const nodes: number[] = [];
      for (let node = 0; node < w * 32; node++) if (bits[(i - 1) * w + (node >>> 5)]! & (1 << (node & 31))) nodes.push(node);
      out.push(nodes);
    }
    return out;
  }

  get(node: number, fn: number): PresenceEntry | undefined {
    return this.byNode[node]!.get(fn);
  }

  /** Functions a node's heartbeat reports. */
  count(node: number): number {
    return this.byNode[node]!.size;
  }

  /** A heartbeat of `node` reports `p` for `fn` (all zero and no snapshot: the function is gone from it). */
  set(node: number, fn: number, idle: number, busy: number, starting: number, snapshot: boolean): void {
    const m = this.byNode[node]!;
    let e = m.get(fn);
    if (idle === 0 && busy === 0 && starting === 0 && !snapshot) {
      if (e) this.remove(e);
      return;
    }
    if (!e) {
      const list = (this.byFn[fn] ??= []);
      e = { node, fn, pos: list.length, idle, busy, starting, snapshot };
      list.push(e);
      m.set(fn, e);
      if (idle > 0) this.bucketIn(e);
      return;
    }
    if (e.idle !== idle) {
      if (e.idle > 0) this.bucketOut(e);
      e.idle = idle;
      if (idle > 0) this.bucketIn(e);
    }
    e.busy = busy;
    e.starting = starting;
    e.snapshot = snapshot;
  }

  /** The node restarted empty: its heartbeat reports nothing. */
  clearNode(node: number): void {
    for (const e of [...this.byNode[node]!.values()]) this.remove(e);
  }

  private remove(e: PresenceEntry): void {
    if (e.idle > 0) this.bucketOut(e);
    const list = this.byFn[e.fn]!;
    const last = list.pop()!;
    if (last !== e) {
      list[e.pos] = last;
      last.pos = e.pos;
    }
    this.byNode[e.node]!.delete(e.fn);
  }

  private bucketIn(e: PresenceEntry): void {
    const w = this.words;
    let bits = this.idleBits[e.fn];
    if (bits === undefined || bits.length < e.idle * w) {
      const more = new Uint32Array(e.idle * w);
      if (bits !== undefined) more.set(bits);
      this.idleBits[e.fn] = bits = more;
    }
    bits[(e.idle - 1) * w + (e.node >>> 5)]! |= 1 << (e.node & 31);
  }

  private bucketOut(e: PresenceEntry): void {
    this.idleBits[e.fn]![(e.idle - 1) * this.words + (e.node >>> 5)]! &= ~(1 << (e.node & 31));
  }
}

/**
 * The locality rule's warm choice (PlacementChooser's first kind: src/cluster/locality.ts) without
 * scanning every node that has `fn`: the ingress `self` when it has an idle instance left, else the best
 * of the nodes by idle count, read from the largest count down. Bookings (what this ingress sent since a
 * node's last heartbeat) only lower a node's count, so a list whose count is below the best found cannot
 * hold a better node; within a list (node order) the first live node with nothing booked and nothing
 * queued beats the rest. -1: no live node has an idle instance left (the chooser then looks at
 * snapshots and busy instances). The same node as the chooser's over every candidate
 * (test/unit/cluster-presence.test.ts checks one against the other).
 */
export function warmChoice(index: PresenceIndex, fn: number, self: number, book: LocalityBook<number, number>, live: (node: number) => boolean, queued: ArrayLike<number>): number {
  const se = index.get(self, fn);
  if (se !== undefined && se.idle > 0 && live(self) && se.idle - bookedFor(book, self, fn) > 0) return self;
  const bits = index.idleBitsOf(fn);
  if (bits === undefined) return -1;
  const w = index.words;
  let best = -1;
  let bestIdle = 0;
  let bestQueued = 0;
  for (let i = bits.length / w; i >= 1 && i >= bestIdle; i--) {
    scan: for (let k = 0, off = (i - 1) * w; k < w; k++) {
      let word = bits[off + k]!;
      while (word !== 0) {
        const low = word & -word;
        word ^= low;
        const node = (k << 5) | (31 - Math.clz32(low));
        if (node === self) continue;
        const q = queued[node]!;
        // at most i idle left: a node that loses to the best found even so needs no look at the bookings
        if (best >= 0 && i === bestIdle && (q > bestQueued || (q === bestQueued && node > best))) continue;
        if (!live(node)) continue;
        const idle = i - bookedFor(book, node, fn);
        if (idle <= 0) continue;
        if (best < 0 || idle > bestIdle || (idle === bestIdle && (q < bestQueued || (q === bestQueued && node < best)))) {
          best = node;
          bestIdle = idle;
          bestQueued = q;
        }
        if (idle === i && q === 0) break scan;
      }
    }
  }
  return best;
}

/** What `book` sent of `fn` to `node` since that node's last heartbeat. */
function bookedFor(book: LocalityBook<number, number>, node: number, fn: number): number {
  const b = book.bookedAt(node);
  return b === undefined ? 0 : b.count(fn);
}

const EMPTY: readonly PresenceEntry[] = [];
