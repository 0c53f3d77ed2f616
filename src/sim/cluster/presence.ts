// What the nodes' last heartbeats say, indexed by function: for each function
// the nodes whose heartbeat reports it (an idle, busy or starting instance, or a
// ready snapshot). Routing an invocation looks only at those nodes, as the
// daemon's choosePlacement does when it skips nodes without the function; a
// heartbeat updates only the functions that changed since the node's previous one.

import type { FunctionPresence } from '../../cluster/node-status.js';

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

  constructor(nodes: number) {
    for (let k = 0; k < nodes; k++) this.byNode.push(new Map());
  }

  /** The entries of function `fn` (do not modify). */
  candidates(fn: number): readonly PresenceEntry[] {
    return this.byFn[fn] ?? EMPTY;
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
      return;
    }
    e.idle = idle;
    e.busy = busy;
    e.starting = starting;
    e.snapshot = snapshot;
  }

  /** The node restarted empty: its heartbeat reports nothing. */
  clearNode(node: number): void {
    for (const e of [...this.byNode[node]!.values()]) this.remove(e);
  }

  private remove(e: PresenceEntry): void {
    const list = this.byFn[e.fn]!;
    const last = list.pop()!;
    if (last !== e) {
      list[e.pos] = last;
      last.pos = e.pos;
    }
    this.byNode[e.node]!.delete(e.fn);
  }
}

const EMPTY: readonly PresenceEntry[] = [];
