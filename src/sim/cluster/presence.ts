// What the nodes' last heartbeats say, indexed by function: for each function
// the nodes whose heartbeat reports it (an idle, busy or starting instance, or a
// ready snapshot). Routing an invocation looks only at those nodes, as the
// daemon's choosePlacement does when it skips nodes without the function; a
// heartbeat updates only the functions that changed since the node's previous one.
//
// Each function's candidates are kept in parallel typed arrays (node, idle, busy,
// starting, snapshot): the routing loop reads them in order, which at a thousand
// nodes is most of the simulator's work (docs/cluster-simulation.md).

/** The candidates of one function, [0, n). Read-only for users. */
export class FunctionCandidates {
  n = 0;
  node = new Int32Array(4);
  idle = new Int32Array(4);
  busy = new Int32Array(4);
  starting = new Int32Array(4);
  snapshot = new Uint8Array(4);

  grow(): void {
    const cap = this.node.length * 2;
    const g = <A extends Int32Array | Uint8Array>(a: A, make: (n: number) => A): A => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.node = g(this.node, (n) => new Int32Array(n));
    this.idle = g(this.idle, (n) => new Int32Array(n));
    this.busy = g(this.busy, (n) => new Int32Array(n));
    this.starting = g(this.starting, (n) => new Int32Array(n));
    this.snapshot = g(this.snapshot, (n) => new Uint8Array(n));
  }
}

const NONE = new FunctionCandidates();

export class PresenceIndex {
  /** function → nodes whose heartbeat reports it */
  private readonly byFn: (FunctionCandidates | undefined)[] = [];
  /** node → function → its position in that function's candidates */
  private readonly byNode: Map<number, number>[] = [];

  constructor(nodes: number) {
    for (let k = 0; k < nodes; k++) this.byNode.push(new Map());
  }

  /** The candidates of function `fn` (do not modify). */
  candidates(fn: number): FunctionCandidates {
    return this.byFn[fn] ?? NONE;
  }

  /** What node's heartbeat reports of fn: [idle, busy, starting, snapshot] or undefined. */
  get(node: number, fn: number): [number, number, number, boolean] | undefined {
    const i = this.byNode[node]!.get(fn);
    if (i === undefined) return undefined;
    const c = this.byFn[fn]!;
    return [c.idle[i]!, c.busy[i]!, c.starting[i]!, c.snapshot[i] === 1];
  }

  /** Functions a node's heartbeat reports. */
  count(node: number): number {
    return this.byNode[node]!.size;
  }

  /** A heartbeat of `node` reports these counts for `fn` (all zero and no snapshot: the function is gone from it). */
  set(node: number, fn: number, idle: number, busy: number, starting: number, snapshot: boolean): void {
    const m = this.byNode[node]!;
    let i = m.get(fn);
    if (idle === 0 && busy === 0 && starting === 0 && !snapshot) {
      if (i !== undefined) this.remove(node, fn, i);
      return;
    }
    let c = this.byFn[fn];
    if (i === undefined) {
      c ??= this.byFn[fn] = new FunctionCandidates();
      if (c.n === c.node.length) c.grow();
      i = c.n++;
      c.node[i] = node;
      m.set(fn, i);
    }
    c = c!;
    c.idle[i] = idle;
    c.busy[i] = busy;
    c.starting[i] = starting;
    c.snapshot[i] = snapshot ? 1 : 0;
  }

  /** The node restarted empty: its heartbeat reports nothing. */
  clearNode(node: number): void {
    for (const [fn, i] of [...this.byNode[node]!]) this.remove(node, fn, i);
  }

  private remove(node: number, fn: number, i: number): void {
    const c = this.byFn[fn]!;
    const last = --c.n;
    if (i !== last) {
      const moved = c.node[last]!;
      c.node[i] = moved;
      c.idle[i] = c.idle[last]!;
      c.busy[i] = c.busy[last]!;
      c.starting[i] = c.starting[last]!;
      c.snapshot[i] = c.snapshot[last]!;
      this.byNode[moved]!.set(fn, i);
    }
    this.byNode[node]!.delete(fn);
  }
}
