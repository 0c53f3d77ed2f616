// `faascell simulate --nodes N`: a cluster of N simulated nodes, each the daemon's
// own decision core in the one-node simulator's shell, behind the cluster's
// ingress and broker (broker.ts: the daemon's routing, pull and hand-back rules,
// heartbeats, node failures and redelivery). Arrivals stream from the trace;
// each is accepted by a random live node's ingress (as clients that call any
// node's API). The driver advances the nodes between broker rounds: only nodes
// with an event before the round are touched (a heap of nodes by their next event).

import type { PullRule } from '../../cluster/capacity.js';
import { clusterConfigSchema } from '../../cluster/config.js';
import { SCHED_DEFAULTS } from '../../config/schema.js';
import type { ResolvedPolicySet } from '../../policies/index.js';
import { ArrivalExpander, type ExpandOptions } from '../../traces/expand.js';
import type { Trace } from '../../traces/types.js';
import { EventHeap } from '../heap.js';
import { LatencyHistogram } from '../histogram.js';
import { functionCosts, type Profile } from '../profile.js';
import type { SimNodeOptions } from '../simulator.js';
import { ClusterBroker, type BrokerCounters, type BrokerRefusal, type BrokerDecision, type ClusterMsg, type RoutingPolicy } from './broker.js';
import { SimClusterNode } from './node.js';

const CLUSTER_DEFAULTS = clusterConfigSchema.parse({});

export interface ClusterSimOptions {
  trace: Trace;
  profile: Profile;
  nodes: number;
  /** one policy set per node life (nodes × (1 + restarts)); see policySetsNeeded() */
  policies: (k: number, life: number) => ResolvedPolicySet;
  /** every node's memory budget (MiB; Infinity: unlimited) */
  memoryMiB: number;
  node?: Partial<SimNodeOptions>;
  maxInstancesPerFunction?: number;
  maxQueueDelayMs?: number;
  routing?: RoutingPolicy;
  /** the cluster block's timings (defaults: the daemon's, docs/cluster.md) */
  heartbeatMs?: number;
  nodeTimeoutMs?: number;
  localityWaitMs?: number;
  ackWaitMs?: number;
  maxInFlight?: number | 'auto';
  /** cluster.pullRule (default the daemon's: starts) */
  pullRule?: PullRule;
  maxHandbacks?: number;
  /** cluster.maxDeliveries (default the daemon's: 5): a message delivered more often is answered daemon_restarted, never run again */
  maxDeliveries?: number;
  /** broker round (ms): work published during a round is delivered at its end (default 2: the measured broker hop) */
  roundMs?: number;
  /** added to every answer's latency: the ingress's publish and the outcome's way back (default 2 ms, measured in docs/cluster.md) */
  hopMs?: number;
  timeScale?: number;
  durationMs?: number;
  expand?: ExpandOptions;
  seed?: number;
  /** nodes that die at a time (and start again after restartAfterMs, if given) */
  failures?: Array<{ node: number; atMs: number; restartAfterMs?: number }>;
  /**
   * Instead of the trace's arrivals: these calls one after the other (the next is
   * sent `gapMs` after the previous one's answer), through the given ingress node;
   * the validation against `faascell bench cluster` replays its recorded sequence this way.
   */
  sequence?: { calls: Array<{ ingress: number; fn: number }>; gapMs: number };
  /** every broker decision (the cluster conformance test) */
  onBrokerDecision?: (d: BrokerDecision) => void;
  /** every node decision, with its node (the cluster conformance test) */
  onNodeDecision?: (node: number, d: import('../simulator.js').Decision) => void;
  /** keep per-node results (for small clusters) */
  perNode?: boolean;
  /** invocations that arrive before this (ms) are simulated but not counted in the request-level results (a cluster starting empty warms up first) */
  warmupMs?: number;
  /**
   * A snapshot tier every node reads (e.g. a network file system): a snapshot one
   * node makes can be restored on any other from this tier of the profile (its
   * restore cost is the profile's for that tier). Absent: snapshots stay on their node.
   */
  sharedSnapshotTier?: string;
  /** record the progress every this many simulated ms (ClusterSimResult.progress; the speed of each stretch of the day) */
  progressEveryMs?: number;
  /** called at each progress mark (e.g. to print it while a long run goes on) */
  onProgress?: (p: ClusterProgress) => void;
}

/** How far a run got: at simulated time `simulatedS`, the invocations accepted so far and the time it took. */
export interface ClusterProgress {
  simulatedS: number;
  accepted: number;
  wallMs: number;
  cpuMs: number;
  /** what the nodes hold at that time (summed over the nodes): instances not stopping, idle ones, functions defined, snapshots ready */
  instances?: number;
  idle?: number;
  functions?: number;
  snapshots?: number;
  /** the JavaScript heap in use (MiB; a cell's own heap in a parallel run) */
  heapMiB?: number;
}

export interface ClusterNodeResult {
  name: string;
  invocations: number;
  coldBoots: number;
  restores: number;
  evictions: number;
  peakMemoryMiB: number;
  snapshots: number;
}

export interface ClusterSimResult {
  nodes: number;
  routing: RoutingPolicy;
  functions: number;
  memoryMiBPerNode: number | null;
  invocations: number;
  completed: number;
  goodput: number;
  /** request level */
  warm: number;
  restores: number;
  coldStarts: number;
  warmFraction: number;
  restoreFraction: number;
  coldStartFraction: number;
  /** refused as the answer (after hand-backs), and not answered by the end */
  refused: number;
  refusedByReason: Record<string, number>;
  unanswered: number;
  /** pool level, summed over the nodes (every life) */
  coldBoots: number;
  restoresStarted: number;
  evictions: number;
  expirations: number;
  /** snapshots held at the end, summed over nodes, and how many distinct functions they cover */
  snapshots: number;
  snapshotFunctions: number;
  /** memory: the largest node's peak, and the whole cluster's mean over the simulated time */
  peakNodeMemoryMiB: number;
  meanClusterMemoryMiB: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  broker: BrokerCounters;
  simulatedSeconds: number;
  wallMs: number;
  /** CPU time of this process during the run (user + system) */
  cpuMs: number;
  invocationsPerSecond: number;
  nodeEvents: number;
  perNode?: ClusterNodeResult[];
  /** progress marks (ClusterSimOptions.progressEveryMs), summed over the cells of a parallel run */
  progress?: ClusterProgress[];
  /** the latency histogram (merging the cells of a parallel run) */
  latency?: { buckets: number[]; count: number; sum: number; max: number };
}

/** How many policy sets a run needs per node: one per life. */
export function livesOf(o: Pick<ClusterSimOptions, 'nodes' | 'failures'>, k: number): number {
  return 1 + (o.failures ?? []).filter((f) => f.node === k && f.restartAfterMs !== undefined).length;
}

export class ClusterSimulator {
  readonly broker: ClusterBroker;
  readonly nodes: SimClusterNode[] = [];
  private readonly nodeHeap = new EventHeap();
  private readonly nodeVer: Uint32Array;
  private readonly moved: number[] = [];
  private readonly hist = new LatencyHistogram();
  private completed = 0;
  private readonly paths = new Float64Array(3);
  private readonly hopMs: number;
  private seqNext = 0;
  private readonly warmupMs: number;
  /** invocations accepted (and refused) after the warm-up */
  private counted = 0;
  private refusedAfterWarmup = 0;
  /** functions with a snapshot on the shared tier (sharedSnapshotTier) */
  private readonly sharedSnapshots = new Set<number>();
  private seqDueAt = Infinity;

  constructor(private readonly o: ClusterSimOptions) {
    const n = o.nodes;
    if (!(n >= 1 && Number.isInteger(n))) throw new Error(`--nodes: a whole number ≥ 1 (got ${n})`);
    const names = Array.from({ length: n }, (_, k) => nodeName(k, n));
    this.hopMs = o.hopMs ?? 2;
    this.warmupMs = o.warmupMs ?? 0;
    this.broker = new ClusterBroker({
      names,
      fnNames: o.trace.functions.map((f) => f.name),
      routing: o.routing ?? 'locality',
      roundMs: o.roundMs ?? 2,
      heartbeatMs: o.heartbeatMs ?? CLUSTER_DEFAULTS.heartbeatMs,
      nodeTimeoutMs: o.nodeTimeoutMs ?? CLUSTER_DEFAULTS.nodeTimeoutMs,
      localityWaitMs: o.localityWaitMs ?? CLUSTER_DEFAULTS.localityWaitMs,
      ackWaitMs: o.ackWaitMs ?? CLUSTER_DEFAULTS.ackWaitMs,
      maxInFlight: o.maxInFlight ?? CLUSTER_DEFAULTS.maxInFlight,
      pullRule: o.pullRule ?? CLUSTER_DEFAULTS.pullRule,
      maxHandbacks: o.maxHandbacks ?? CLUSTER_DEFAULTS.maxHandbacks,
      maxDeliveries: o.maxDeliveries,
      // what waits in the broker is refused at the nodes' queue deadline (every invocation answered)
      queueDeadlineMs: o.maxQueueDelayMs ?? SCHED_DEFAULTS.maxQueueDelayMs,
      seed: o.seed ?? 1,
    });
    this.broker.onDecision = o.onBrokerDecision;
    this.broker.onOutcome = (m, t, refusal) => this.outcome(m, t, refusal);
    this.nodeVer = new Uint32Array(n);
    if (o.sharedSnapshotTier !== undefined && !o.profile.tiers.some((t) => t.name === o.sharedSnapshotTier)) throw new Error(`sharedSnapshotTier: the profile has no tier '${o.sharedSnapshotTier}'`);
    const costs = o.trace.functions.map((tf) => functionCosts(o.profile, tf.name, tf));
    for (let k = 0; k < n; k++) {
      const lives = Array.from({ length: livesOf(o, k) }, (_, life) => o.policies(k, life));
      const node = new SimClusterNode(
        k,
        this.broker,
        {
          trace: o.trace,
          profile: o.profile,
          memoryMiB: o.memoryMiB,
          maxInstancesPerFunction: o.maxInstancesPerFunction,
          maxQueueDelayMs: o.maxQueueDelayMs,
          node: o.node,
          functionCosts: costs,
          onDecision: o.onNodeDecision ? (d) => o.onNodeDecision!(k, d) : undefined,
        },
        lives,
        (j) => this.moved.push(j),
        o.sharedSnapshotTier !== undefined ? { tier: o.sharedSnapshotTier, catalogue: this.sharedSnapshots } : undefined,
      );
      this.nodes.push(node);
      this.broker.attach(k, node);
    }
    for (const f of o.failures ?? []) {
      if (!(f.node >= 0 && f.node < n)) throw new Error(`failure: no node ${f.node} (0…${n - 1})`);
      this.broker.fail(f.node, f.atMs, f.restartAfterMs);
    }
  }

  run(): ClusterSimResult {
    const wall0 = performance.now();
    const cpu0 = process.cpuUsage();
    const o = this.o;
    const trace = o.trace;
    const broker = this.broker;
    const roundMs = o.roundMs ?? 2;
    const scale = o.timeScale ?? 1;
    const endMs = Math.min(trace.nSlots * trace.slotMs * scale, o.durationMs ?? Infinity);
    const drainUntil = (o.sequence ? Infinity : endMs) + 15 * 60_000;
    const x = new ArrivalExpander(trace, o.expand);
    let slot = -1;
    let nInSlot = 0;
    let i = 0;
    let arrivalsDone = false;
    // the next arrival: from the trace slot by slot, or the next call of a sequence
    const nextArrival = (): number => {
      if (o.sequence) return this.seqNext < o.sequence.calls.length ? this.seqDueAt : Infinity;
      while (!arrivalsDone && i >= nInSlot) {
        slot++;
        if (slot >= trace.nSlots || slot * trace.slotMs * scale >= endMs) {
          arrivalsDone = true;
          break;
        }
        nInSlot = x.slot(slot);
        i = 0;
      }
      if (arrivalsDone) return Infinity;
      const t = x.times[i]! * scale;
      if (t >= endMs) {
        arrivalsDone = true;
        return Infinity;
      }
      return t;
    };
    if (o.sequence) this.seqDueAt = 0;
    const every = o.progressEveryMs ?? Infinity;
    let mark = every;
    let T = 0;
    for (;;) {
      const ta = nextArrival();
      if (ta === Infinity && broker.outstanding === 0) break;
      const tNext = Math.min(ta, this.nodeHeap.peekTime(), broker.nextWork());
      if (tNext === Infinity) break;
      T = Math.max(T + roundMs, Math.ceil(tNext / roundMs) * roundMs);
      if (T > drainUntil) break;
      for (; T >= mark; mark += every) this.noteProgress(mark, wall0, cpu0);
      this.advanceNodes(T);
      broker.begin(T);
      for (let t = nextArrival(); t <= T; t = nextArrival()) {
        if (o.sequence) {
          const c = o.sequence.calls[this.seqNext++]!;
          this.seqDueAt = Infinity;
          broker.accept(c.fn, t, broker.isAlive(c.ingress) ? c.ingress : broker.randomLiveNode());
        } else {
          const ingress = broker.randomLiveNode();
          if (ingress >= 0) broker.accept(x.fns[i]!, t, ingress);
          if (t >= this.warmupMs) this.counted++;
          i++;
        }
      }
      broker.deliver(T);
      this.flushMoved();
    }
    const simEnd = T;
    const wallMs = performance.now() - wall0;
    const cpu = process.cpuUsage(cpu0);
    return this.result(simEnd, wallMs, (cpu.user + cpu.system) / 1000);
  }

  private readonly progress: ClusterProgress[] = [];

  private noteProgress(at: number, wall0: number, cpu0: NodeJS.CpuUsage): void {
    const cpu = process.cpuUsage(cpu0);
    let instances = 0;
    let idle = 0;
    let functions = 0;
    let snapshots = 0;
    for (const node of this.nodes) {
      if (node.isDead) continue;
      const c = node.sim.poolCore;
      instances += c.liveCount;
      idle += c.idleCount;
      functions += c.functionCount;
      for (const f of c.fns) if (f.snapshot?.ready) snapshots++;
    }
    const p: ClusterProgress = {
      simulatedS: at / 1000,
      accepted: this.broker.counters.accepted,
      wallMs: performance.now() - wall0,
      cpuMs: (cpu.user + cpu.system) / 1000,
      instances,
      idle,
      functions,
      snapshots,
      heapMiB: Math.round(process.memoryUsage().heapUsed / 1048576),
    };
    this.progress.push(p);
    this.o.onProgress?.(p);
  }

  private advanceNodes(T: number): void {
    const h = this.nodeHeap;
    while (h.size > 0 && h.peekTime() <= T) {
      h.pop();
      const k = h.topPayload;
      if (h.topTag !== this.nodeVer[k] || !this.broker.isAlive(k)) continue;
      this.nodes[k]!.sim.advance(T);
      this.push(k);
    }
    this.flushMoved();
  }

  private flushMoved(): void {
    const m = this.moved;
    for (let j = 0; j < m.length; j++) this.push(m[j]!);
    m.length = 0;
  }

  private push(k: number): void {
    const t = this.nodes[k]!.sim.nextEventTime();
    this.nodeVer[k] = (this.nodeVer[k]! + 1) >>> 0;
    if (t < Infinity) this.nodeHeap.push(t, k, this.nodeVer[k]);
  }

  private outcome(m: ClusterMsg, t: number, refusal: BrokerRefusal | undefined): void {
    if (this.o.sequence) this.seqDueAt = t + this.o.sequence.gapMs;
    if (m.arrival < this.warmupMs) return;
    if (refusal !== undefined) {
      this.refusedAfterWarmup++;
      return;
    }
    this.completed++;
    if (m.path >= 0) this.paths[m.path]!++;
    this.hist.record(t - m.arrival + this.hopMs);
  }

  private result(simEnd: number, wallMs: number, cpuMs: number): ClusterSimResult {
    const b = this.broker.counters;
    // request-level results: the invocations that arrived after the warm-up
    const inv = this.o.sequence ? b.accepted : this.counted;
    const frac = (x: number): number => (inv > 0 ? x / inv : 0);
    let coldBoots = 0;
    let restoresStarted = 0;
    let evictions = 0;
    let expirations = 0;
    let snapshots = 0;
    let peak = 0;
    let memTime = 0;
    let events = 0;
    const snapFns = new Set<number>();
    const perNode: ClusterNodeResult[] = [];
    for (const node of this.nodes) {
      const r: ClusterNodeResult = { name: nodeName(node.k, this.o.nodes), invocations: 0, coldBoots: 0, restores: 0, evictions: 0, peakMemoryMiB: node.peakMemoryMiB, snapshots: 0 };
      for (const life of node.lives()) {
        const c = life.poolCore.counters;
        r.invocations += c.arrivals;
        r.coldBoots += c.coldStarts;
        r.restores += c.restoreStarts;
        r.evictions += c.evictions;
        expirations += c.expirations;
        events += life.eventCount;
      }
      if (!node.isDead) {
        for (const f of node.sim.poolCore.fns) {
          if (f.snapshot?.ready) {
            r.snapshots++;
            snapFns.add(node.sim.traceIndexOf(f));
          }
        }
      }
      coldBoots += r.coldBoots;
      restoresStarted += r.restores;
      evictions += r.evictions;
      snapshots += r.snapshots;
      peak = Math.max(peak, node.peakMemoryMiB);
      memTime += node.memoryTimeUntil(node.isDead ? 0 : simEnd);
      if (this.o.perNode) perNode.push(r);
    }
    const refused = this.o.sequence ? b.refused : this.refusedAfterWarmup;
    return {
      nodes: this.o.nodes,
      routing: this.broker.o.routing,
      functions: this.o.trace.functions.length,
      memoryMiBPerNode: Number.isFinite(this.o.memoryMiB) ? this.o.memoryMiB : null,
      invocations: inv,
      completed: this.completed,
      goodput: frac(this.completed),
      warm: this.paths[0]!,
      restores: this.paths[1]!,
      coldStarts: this.paths[2]!,
      warmFraction: frac(this.paths[0]!),
      restoreFraction: frac(this.paths[1]!),
      coldStartFraction: frac(this.paths[2]!),
      refused,
      refusedByReason: { ...b.refusedByReason },
      unanswered: inv - this.completed - refused,
      coldBoots,
      restoresStarted,
      evictions,
      expirations,
      snapshots,
      snapshotFunctions: snapFns.size,
      peakNodeMemoryMiB: peak,
      meanClusterMemoryMiB: memTime / Math.max(simEnd, 1),
      p50Ms: this.hist.percentile(50),
      p99Ms: this.hist.percentile(99),
      meanMs: this.hist.mean(),
      broker: { ...b, refusedByReason: { ...b.refusedByReason } },
      simulatedSeconds: simEnd / 1000,
      wallMs,
      cpuMs,
      invocationsPerSecond: wallMs > 0 ? (inv * 1000) / wallMs : 0,
      nodeEvents: events,
      perNode: this.o.perNode ? perNode : undefined,
      progress: this.o.progressEveryMs !== undefined ? this.progress : undefined,
      latency: { buckets: this.hist.buckets(), count: this.hist.count, sum: this.hist.sum, max: this.hist.max },
    };
  }
}

/** n0, n1, … zero-padded so that names sort like numbers (the locality rule breaks ties by name). */
export function nodeName(k: number, n: number): string {
  return `n${String(k).padStart(String(Math.max(0, n - 1)).length, '0')}`;
}

export function simulateCluster(o: ClusterSimOptions): ClusterSimResult {
  return new ClusterSimulator(o).run();
}
