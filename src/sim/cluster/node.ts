// One simulated node of a cluster: the one-node simulator (src/sim/simulator.ts,
// the daemon's decision core with modelled costs) driven by the broker instead of
// a trace. Its hooks tell the broker what became of each request and which
// functions changed (for heartbeats), and integrate the node's memory over time.

import type { PullState } from '../../cluster/capacity.js';
import type { ResolvedPolicySet } from '../../policies/index.js';
import type { CoreFunction } from '../../vmpool/core/model.js';
import { Simulator, type SimHooks, type SimulationOptions } from '../simulator.js';
import type { ClusterBroker, NodePort } from './broker.js';

export class SimClusterNode implements NodePort {
  sim: Simulator;
  /** requests in the decision core's queues (delivered, neither assigned nor refused yet) */
  private queued = 0;
  /**
   * the same per function, as parallel arrays (state() sums over them every round the node
   * changed: an array walk instead of a Map's entries), each function's place in them, and the
   * request → function of those queued
   */
  private readonly qFns: CoreFunction[] = [];
  private readonly qCounts: number[] = [];
  private readonly qPos = new Map<number, number>();
  private readonly reqFn = new Map<number, number>();
  private dirty = new Set<number>();
  /** the set takeDirty() returned last time, emptied and reused (a heartbeat reads it at once) */
  private spareDirty = new Set<number>();
  private readonly st: PullState = { idle: 0, busy: 0, starting: 0, startSlots: 0, queued: 0 };
  /** memory held by instances × time (MiB·ms), of this node's lives */
  memoryTime = 0;
  peakMemoryMiB = 0;
  private lastUsed = 0;
  private lastT = 0;
  /** decision cores of earlier lives (a node that died and started again), for their counters */
  readonly pastLives: Simulator[] = [];
  private readonly hooks: SimHooks;

  constructor(
    readonly k: number,
    private readonly broker: ClusterBroker,
    private readonly base: Omit<SimulationOptions, 'hooks' | 'policies' | 'lazyFunctions'>,
    /** policy sets for this node's lives (a restart takes the next: policies keep per-function state) */
    private readonly policies: ResolvedPolicySet[],
    /** called when this node's next event may have moved (after a delivery) */
    private readonly moved: (k: number) => void,
    /** a snapshot tier all nodes share: the functions that have a snapshot there */
    private readonly shared?: { tier: string; catalogue: Set<number> },
  ) {
    this.hooks = {
      onAssign: (req, fresh, path) => {
        this.dequeued(req);
        broker.assigned(k, req, fresh, path);
      },
      onDone: (req, now) => broker.done(k, req, now),
      onReject: (req, reason, now) => {
        this.dequeued(req);
        broker.refused(k, req, reason, now);
      },
      onTouch: (fn, now) => {
        this.dirty.add(fn);
        if (this.shared && !this.shared.catalogue.has(fn) && this.sim.coreFunction(fn)?.snapshot?.ready) this.shared.catalogue.add(fn);
        this.integrate(now);
        broker.markChanged(k, now);
      },
    };
    this.sim = this.newLife();
  }

  private newLife(): Simulator {
    const p = this.policies.shift();
    if (!p) throw new Error(`cluster simulator: node ${this.k} has no policy set left for another life`);
    return new Simulator({ ...this.base, policies: p, lazyFunctions: true, hooks: this.hooks });
  }

  private dequeued(req: number): void {
    this.queued--;
    const fn = this.reqFn.get(req)!;
    this.reqFn.delete(req);
    const i = this.qPos.get(fn)!;
    if (--this.qCounts[i]! > 0) return;
    // the last one of its function: the array's last entry takes its place
    this.qPos.delete(fn);
    const last = this.qFns.length - 1;
    if (i < last) {
      this.qFns[i] = this.qFns[last]!;
      this.qCounts[i] = this.qCounts[last]!;
      this.qPos.set(this.sim.traceIndexOf(this.qFns[i]), i);
    }
    this.qFns.length = last;
    this.qCounts.length = last;
  }

  private integrate(now: number): void {
    const used = this.sim.poolCore.memoryUsedMiB;
    this.memoryTime += this.lastUsed * (now - this.lastT);
    this.lastUsed = used;
    this.lastT = now;
    if (used > this.peakMemoryMiB) this.peakMemoryMiB = used;
  }

  /** Memory × time up to `now` (MiB·ms). */
  memoryTimeUntil(now: number): number {
    return this.memoryTime + this.lastUsed * Math.max(0, now - this.lastT);
  }

  state(): PullState {
    const c = this.sim.poolCore;
    const s = this.st;
    s.idle = c.idleCount;
    s.busy = c.busyCount;
    s.starting = c.startingCount;
    s.startSlots = c.startSlots();
    s.queued = this.queued;
    let blocking = 0;
    const fns = this.qFns;
    const counts = this.qCounts;
    for (let i = 0; i < fns.length; i++) blocking += Math.max(0, counts[i]! - fns[i]!.starting);
    s.blocking = blocking;
    return s;
  }

  takeDirty(): Iterable<number> {
    const d = this.dirty;
    // issue 23: a function that lost its last instance or snapshot and holds nothing now is forgotten (its next
    // delivery defines it again as it was): at a heartbeat, outside any decision of the core
    this.sim.forgetIdle();
    this.spareDirty.clear();
    this.dirty = this.spareDirty;
    this.spareDirty = d;
    return d;
  }

  presence(fn: number, out: Int32Array): void {
    const f = this.sim.coreFunction(fn);
    if (!f) {
      out.fill(0);
      return;
    }
    out[0] = f.idle.length;
    out[1] = f.busy.length;
    out[2] = f.starting;
    out[3] = f.snapshot?.ready ? 1 : 0;
  }

  deliver(fn: number, req: number, now: number): void {
    if (this.shared?.catalogue.has(fn)) {
      // another node made a snapshot of it on the shared tier: this node's catalogue has it too
      const f = this.sim.coreFunction(fn, true)!;
      // its measured size (the core reserves the function's memory size until a snapshot was measured)
      const c = this.base.functionCosts?.[fn];
      if (!f.snapshot) this.sim.poolCore.addSnapshot(f, f.version, this.shared.tier, c ? c.snapshotMiB * 1048576 : f.snapshotBytes, now, undefined);
    }
    this.queued++;
    this.reqFn.set(req, fn);
    const i = this.qPos.get(fn);
    if (i !== undefined) this.qCounts[i]!++;
    else {
      this.qPos.set(fn, this.qFns.length);
      this.qFns.push(this.sim.coreFunction(fn, true)!);
      this.qCounts.push(1);
    }
    this.sim.arrive(fn, req, now);
    this.moved(this.k);
  }

  kill(now: number): void {
    this.integrate(now);
    this.lastUsed = 0;
    this.pastLives.push(this.sim);
    this.queued = 0;
    this.qFns.length = 0;
    this.qCounts.length = 0;
    this.qPos.clear();
    this.reqFn.clear();
    this.dirty.clear();
  }

  restart(now: number): void {
    this.sim = this.newLife();
    this.lastT = now;
    this.lastUsed = 0;
    this.moved(this.k);
  }

  /** Every life of this node (the current one last). */
  lives(): Simulator[] {
    return [...this.pastLives, this.sim];
  }

  get isDead(): boolean {
    return !this.broker.isAlive(this.k);
  }
}
