// Discrete-event simulation of ONE node: the simulator is a shell around the
// same decision core (src/vmpool/core) as the daemon's VmPool. Arrivals stream
// from the trace slot by slot and merge with a heap of events: starts finishing,
// runs finishing, and the timers the core asks for. Time is virtual; costs come
// from a profile measured on a real node (`faascell bench`), starts share the
// node's cores (CpuModel), and the functions' measured costs reach the policies
// through the same CostStats the daemon's PerfManager keeps.
import { configSchema, MEMORY_DEFAULTS, SCHED_DEFAULTS } from '../config/schema.js';
import { CostStats, type CostSample, type FunctionStats } from '../perf/cost-stats.js';
import type { ResolvedPolicySet } from '../policies/index.js';
import { ArrivalExpander, type ExpandOptions } from '../traces/expand.js';
import type { Trace } from '../traces/types.js';
import { PoolCore, type ForgottenFunction } from '../vmpool/core/core.js';
import { TIMER_DEADLINE, TIMER_EXPIRE, TIMER_PREWARM } from '../vmpool/core/model.js';
import type { CoreEffects, CoreFunction, CoreInstance, CoreSnapshot, CoreStartPlan, Decision, FairnessMode, FunctionSpec, MemoryAccounting, RejectCode, SnapshotDropCause, StartFailure, StopCause, TimerKind } from '../vmpool/core/model.js';
import { StartCounter, type FaultModel } from './faults.js';

export type { Decision } from '../vmpool/core/model.js';

/** The daemon's limits.* defaults (the VMs' CPU weights) */
const LIMIT_DEFAULTS = configSchema.shape.limits.parse(undefined);
import { CpuModel, type CpuJob } from './cpu-model.js';
import { EventQueue } from './heap.js';
import { LatencyHistogram } from './histogram.js';
import { functionCosts, hasMemoryModel, type FunctionCosts, type Profile } from './profile.js';
import { MemorySampler, SampleClock } from './memory-model.js';

/** The simulated node's limits: the daemon's config keys of the same names, with the daemon's defaults. */
export interface SimNodeOptions {
  lowWatermark: number;
  highWatermark: number;
  maxConcurrentInvocations: number;
  maxQueueLength: number;
  maxConcurrentStarts: number | 'auto';
  /** host cores (default: the profile's node): what the daemon's decision core counts on (start slots, fairness) */
  cores: number;
  /**
   * issue 18: the cores the node's VMs really get, shared by the CPU model among starts, runs and idle VMs
   * (default `cores`). On a shared host less than `cores`, while the daemon still counts on `cores`.
   */
  vmCores?: number;
  /**
   * issue 18: limits.cpuWeight and limits.startCpuWeight: a boot or restore shares the cores with weight
   * startCpuWeight / cpuWeight relative to a run or an idle VM (CpuModel's water-filling)
   */
  cpuWeight: number;
  /** 'off' (as the daemon's limits.startCpuWeight may be): a start weighs cpuWeight */
  startCpuWeight: number | 'off';
  /** limits.startCpuWeightScope: 'first' (default) only a function's start with no instance weighs startCpuWeight; 'all' every start */
  startCpuWeightScope: 'first' | 'all';
  /** CPU of one idle VM (default: the profile's node) */
  idleVmCpu: number;
  snapshots: boolean;
  preferWarm: boolean;
  /** start back-off of a function whose starts keep failing (admission.startBackoffBaseMs / MaxMs) */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** share the cores between starts and VMs (false: every start takes its profiled time) */
  cpuModel: boolean;
  /** admission.fairness: how the capacity is shared under overload (issue 18) */
  fairness: FairnessMode;
  /** issue 24: node.memory.accounting, .reserve, .sampleIntervalMs (instances measured by the profile's memory model) */
  memoryAccounting: MemoryAccounting;
  memoryReserve: number;
  memorySampleMs: number;
}

export interface SimulationOptions {
  trace: Trace;
  policies: ResolvedPolicySet;
  profile: Profile;
  /** Memory budget for instances (MiB); Infinity = unlimited. */
  memoryMiB: number;
  /** Instance cap per function unless its profile entry (or the profile defaults) set maxInstances; default the daemon's (4). */
  maxInstancesPerFunction?: number;
  /** A queued request waiting longer than this is refused (default 60 s, as the daemon). */
  maxQueueDelayMs?: number;
  /** Multiply trace time by this (0.5 = twice as dense). Default 1. */
  timeScale?: number;
  /** Simulate only the first durationMs of (scaled) trace time. */
  durationMs?: number;
  expand?: ExpandOptions;
  node?: Partial<SimNodeOptions>;
  /** Label for the result (default: the keep-alive policy's name). */
  label?: string;
  /** Always call eviction.selectVictims, even for policies with orderKey(). For cross-checking. */
  exactEviction?: boolean;
  /** Receives every decision (the conformance test compares them with the daemon's). */
  onDecision?: (d: Decision) => void;
  /** Also report counts and latency per function (SimulationResult.byFunction). */
  byFunction?: boolean;
  /** Each function's weight in the fair sharing of the node under overload (default 1; the function property `share`). */
  shares?: Record<string, number>;
  /** Failures to inject: failed starts by kind and time, full tiers (faults.ts; the conformance test). */
  faults?: FaultModel;
  /** Changes of the node during the run: a function updated (a new version) or deleted, the daemon shut down. */
  events?: SimEvent[];
  /**
   * After the trace's end, run every timer too (keep-alive expiries, pre-warms, deadlines) until nothing is
   * left, as a daemon would; by default only the runs and starts in flight finish.
   */
  drain?: boolean;
  /** A shell around this node (the cluster simulator, src/sim/cluster/) hears what happens to its requests. */
  hooks?: SimHooks;
  /** Costs by trace function, computed once for many nodes (default: from the profile). */
  functionCosts?: FunctionCosts[];
  /** Define a function in the decision core at its first arrival (a node of a large cluster sees few of the trace's functions). */
  lazyFunctions?: boolean;
}

/** What a cluster shell learns from one simulated node (issue 23). Function numbers are trace indices. */
export interface SimHooks {
  /** the request got an instance: one that was there (`fresh` false) or one whose start it waited for */
  onAssign?(req: number, fresh: boolean, path: 'cold' | 'restore', now: number): void;
  /** the request's run ended: its answer */
  onDone?(req: number, now: number): void;
  onReject?(req: number, reason: RejectCode, now: number): void;
  /** the function's instances or snapshot changed (what a heartbeat reports of it, and the node's memory) */
  onTouch?(fn: number, now: number): void;
}

export type SimEvent =
  | { at: number; kind: 'define'; fn: string; spec: FunctionSpec }
  | { at: number; kind: 'delete'; fn: string }
  | { at: number; kind: 'shutdown' };

export interface SimulationResult {
  policy: string;
  keepAlive: string;
  eviction: string;
  selection: string;
  placement: string;
  admission: string;
  memoryMiB: number | null;
  functions: number;
  invocations: number;
  completed: number;
  /** request level: served by an instance that was already there */
  warm: number;
  /** request level: waited for a restore */
  restores: number;
  /** request level: waited for a cold boot */
  coldStarts: number;
  /** pool level: instances booted / restored (a start may serve a request other than the one that triggered it) */
  coldBoots: number;
  restoresStarted: number;
  /** every request not completed: refused by admission, timed out in the queue, or still queued at the end */
  dropped: number;
  /** notFound: arrivals for a function deleted during the run (SimulationOptions.events) */
  rejected: { queueFull: number; overloaded: number; queueTimeout: number; unservedAtEnd: number; notFound: number };
  /** how long refused requests waited for their refusal (ms from arrival), every reason */
  refusalP50Ms: number;
  refusalP99Ms: number;
  /** fraction of the refusals answered within 1 s of their arrival */
  refusedWithin1s: number;
  /** Functions with a snapshot at the end. */
  snapshots: number;
  coldStartFraction: number;
  restoreFraction: number;
  warmFraction: number;
  droppedFraction: number;
  goodput: number;
  /** Idle instance memory × idle time. */
  wastedMemoryMiBSeconds: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Mean time requests spent queued (ms, over completed requests). */
  meanQueueMs: number;
  /** mean duration of a cold boot / restore in this run (stretched by CPU sharing) */
  meanColdBootMs: number;
  meanRestoreMs: number;
  evictions: number;
  expirations: number;
  prewarms: number;
  instancesCreated: number;
  peakMemoryMiB: number;
  simulatedSeconds: number;
  wallMs: number;
  events: number;
  eventsPerSecond: number;
  invocationsPerSecond: number;
  byFunction?: FunctionResult[];
}

// event kinds (low 3 bits of the heap payload; the rest is the instance slot or function index)
const E_READY = 0;
const E_FINISH = 1;
const E_TIMER = 2; // + TimerKind (0..3)
/** a run's CPU part is done: its waiting part follows (then E_FINISH) */
const E_RUNCPU = 6;
/** a shell event (an injected fault, a finished snapshot move, a node change): the payload indexes `aux` */
const E_AUX = 7;

/** Per instance slot: what the simulator itself tracks (the core owns the rest). */
class SlotState {
  costs!: FunctionCosts;
  fresh = false;
  /** the start or CPU-bound run of this instance the CPU model times (undefined: a fixed-time event) */
  job: CpuJob | undefined;
  startedAt = 0;
  /** the request in progress: when it arrived */
  arrival = 0;
  /** the waiting part of the run in progress, after its CPU part */
  waitMs = 0;
  /** the CPU time of the start in progress (what the daemon's worker measures of its VMMs; fairness charges it) */
  startCpuMs = 0;
  /** a restored clone whose first run refuses the resync it carries (fault `resync`) */
  resyncFault = false;
  /** the request in progress */
  req = 0;
}

/** Per function, when SimulationOptions.byFunction is set. */
export interface FunctionResult {
  name: string;
  invocations: number;
  completed: number;
  warm: number;
  restores: number;
  coldStarts: number;
  /** refused (any reason), and of those refused after waiting in the queue (at their deadline) */
  refused: number;
  refusedLate: number;
  p50Ms: number;
  p99Ms: number;
}

export class Simulator implements CoreEffects {
  private readonly heap = new EventQueue();
  private readonly core: PoolCore;
  private readonly costs: FunctionCosts[];
  private readonly fnByIndex: (CoreFunction | undefined)[] = [];
  /** trace function of each core function (the same index unless functions are defined lazily) */
  private readonly traceIdx: number[] = [];
  /** functions forgotten (forget), by trace index */
  private readonly forgotten = new Map<number, ForgottenFunction>();
  /** pre-warm timers in the heap that have not fired, by core function index: their token */
  private readonly prewarmPending = new Map<number, number>();
  /** lazy functions (a cluster's node): those whose last instance or snapshot went since forgetIdle last ran */
  private forgetCandidates: number[] = [];
  private readonly maxInst: number;
  private readonly hooks: SimHooks | undefined;
  private readonly stats = new CostStats(0);
  private readonly fnStats: FunctionStats[] = [];
  /**
   * By core function: a warm run was found to change nothing (CostStats.unchangedBy). It stays so: a
   * function's samples are its constant costs, and a sample equal to its mean leaves the mean as it is.
   */
  private readonly warmSettled: boolean[] = [];
  private readonly warmSample: CostSample = { fn: '', path: 'warm', warmMs: 0, runMs: 0, cpuShare: undefined };
  private readonly tierNames: string[];
  private readonly slots: SlotState[] = [];
  private readonly instBySlot: (CoreInstance | undefined)[] = [];
  private readonly hist = new LatencyHistogram();
  private readonly refusalHist = new LatencyHistogram();
  private refusedFast = 0;
  private readonly cpu: CpuModel | undefined;
  private readonly idleVmCpu: number;
  /** a start's share weight in the CPU model: limits.startCpuWeight / limits.cpuWeight */
  private readonly startShare: number;
  private readonly log: ((d: Decision) => void) | undefined;
  private queueWaitSum = 0;
  /** per function (byFunction): latency histograms and counts by path */
  private readonly fnHist: LatencyHistogram[] | undefined;
  private readonly fnCounts: Float64Array | undefined;
  private completed = 0;
  private reqSeq = 0;
  private coldBootMsSum = 0;
  private coldBootN = 0;
  private restoreMsSum = 0;
  private restoreN = 0;
  private events = 0;
  /** shell events waiting in the heap (E_AUX), by index; freed slots are reused */
  private readonly aux: Array<((now: number) => void) | undefined> = [];
  private readonly auxFree: number[] = [];
  private readonly startCounter = new StartCounter();
  /** arrivals for a function deleted by an event (never reach the core) */
  private notFound = 0;
  /** when the modelled memory sampler measures the instances (issue 24) */
  private readonly memClock: SampleClock | undefined;
  /** the trace's end (ms) */
  private endMs = Infinity;
  /**
   * Instances started and not yet released, in order of seq (each start appends; released ones are
   * dropped at the next sample): the sampler reads them in the daemon's order without a scan and a sort.
   */
  private readonly live: CoreInstance[] = [];
  private readonly liveSeq: number[] = [];
  private readonly sampler: MemorySampler;

  constructor(private readonly o: SimulationOptions) {
    const prof = o.profile;
    const n: SimNodeOptions = {
      lowWatermark: SCHED_DEFAULTS.lowWatermark,
      highWatermark: SCHED_DEFAULTS.highWatermark,
      maxConcurrentInvocations: SCHED_DEFAULTS.maxConcurrentInvocations,
      maxQueueLength: SCHED_DEFAULTS.maxQueueLength,
      maxConcurrentStarts: SCHED_DEFAULTS.maxConcurrentStarts,
      cores: prof.node.cores,
      idleVmCpu: prof.node.idleVmCpu,
      snapshots: true,
      preferWarm: SCHED_DEFAULTS.preferWarm,
      backoffBaseMs: SCHED_DEFAULTS.startBackoffBaseMs,
      backoffMaxMs: SCHED_DEFAULTS.startBackoffMaxMs,
      cpuModel: true,
      cpuWeight: LIMIT_DEFAULTS.cpuWeight,
      startCpuWeight: LIMIT_DEFAULTS.startCpuWeight,
      startCpuWeightScope: LIMIT_DEFAULTS.startCpuWeightScope,
      fairness: SCHED_DEFAULTS.fairness,
      memoryAccounting: MEMORY_DEFAULTS.accounting,
      memoryReserve: MEMORY_DEFAULTS.reserve,
      memorySampleMs: MEMORY_DEFAULTS.sampleIntervalMs,
      ...o.node,
    };
    this.idleVmCpu = n.idleVmCpu;
    this.startShare = n.startCpuWeight === 'off' ? 1 : n.startCpuWeight / n.cpuWeight;
    this.tierNames = prof.tiers.map((t) => t.name);
    this.log = o.onDecision;
    this.maxInst = o.maxInstancesPerFunction && o.maxInstancesPerFunction > 0 ? o.maxInstancesPerFunction : SCHED_DEFAULTS.maxInstances;
    this.hooks = o.hooks;
    this.costs = o.functionCosts ?? o.trace.functions.map((tf) => functionCosts(prof, tf.name, tf));
    const d = functionCosts(prof, '\0defaults');
    this.core = new PoolCore(
      {
        memoryBudgetMiB: o.memoryMiB > 0 ? o.memoryMiB : Infinity,
        lowWatermark: n.lowWatermark,
        highWatermark: n.highWatermark,
        maxConcurrentInvocations: n.maxConcurrentInvocations,
        maxQueueLength: n.maxQueueLength,
        maxQueueDelayMs: o.maxQueueDelayMs ?? SCHED_DEFAULTS.maxQueueDelayMs,
        snapshots: n.snapshots,
        tiers: prof.tiers.map((t) => ({ name: t.name, latencyRank: t.latencyRank, capacityBytes: t.capacityMiB * 1048576 })),
        starts: {
          maxConcurrent: n.maxConcurrentStarts,
          cores: n.cores,
          idleVmCpu: n.idleVmCpu,
          defaultColdMs: d.coldMs,
          defaultRestoreMs: d.restoreMs,
          preferWarm: n.preferWarm,
          backoffBaseMs: n.backoffBaseMs,
          backoffMaxMs: n.backoffMaxMs,
          startWeight: this.startShare, // as the daemon's poolConfig: admission knows starts weigh more
          startWeightScope: n.startCpuWeightScope, // the core marks which starts (CoreInstance.startWeighted)
        },
        cpuSlots: 0,
        exactEviction: o.exactEviction,
        recycleOnStop: true,
        fairness: n.fairness,
        memory: { accounting: n.memoryAccounting, reserve: n.memoryReserve },
      },
      o.policies,
      this,
    );
    if (!o.lazyFunctions) for (let i = 0; i < o.trace.functions.length; i++) this.define(i);
    this.cpu = n.cpuModel ? new CpuModel(n.vmCores ?? n.cores, (j) => this.rescheduleJob(j)) : undefined;
    // issue 24: the daemon's sampler, modelled (only when the profile says what instances cost)
    this.sampler = new MemorySampler(prof.node.vmSharedMiB);
    this.memClock = n.memoryAccounting === 'measured' && hasMemoryModel(prof) ? new SampleClock(n.memorySampleMs) : undefined;
    if (o.byFunction) {
      this.fnHist = o.trace.functions.map(() => new LatencyHistogram());
      this.fnCounts = new Float64Array(o.trace.functions.length * 6);
    }
    for (const e of o.events ?? []) this.later(e.at, (now) => this.nodeEvent(e, now));
  }

  /** issue 24: measure the live instances at the daemon's sampling times (memory-model.ts). */
  private armMemorySample(now: number): void {
    const at = this.memClock?.arm(now);
    if (at !== undefined) this.later(at, (t) => this.sampleMemory(t));
  }

  private sampleMemory(now: number): void {
    this.memClock!.fired();
    const live = this.liveInstances();
    if (live.length === 0) return;
    // after the trace only when draining, and only while something else can still happen (instances kept warm
    // forever would be sampled forever)
    if (now < this.endMs || (this.o.drain && this.heap.size > 0)) this.armMemorySample(now);
    this.core.measured(this.sampler.sample(live), now);
  }

  /** The instances the core counts as live (core.liveCount of them), in order of seq. */
  private liveInstances(): CoreInstance[] {
    const live = this.live;
    const seqs = this.liveSeq;
    let k = 0;
    for (let i = 0; i < live.length; i++) {
      const inst = live[i]!;
      // released (seq 0), or its slot reused by a later start (a new seq, appended again)
      if (inst.seq !== seqs[i] || inst.state === 'stopping') continue;
      live[k] = inst;
      seqs[k++] = seqs[i]!;
    }
    if (k < live.length) {
      live.length = k;
      seqs.length = k;
    }
    return live;
  }

  /** Run `fn` at time `at` through the event heap (after the events already due then). */
  private later(at: number, fn: (now: number) => void): void {
    const i = this.auxFree.pop() ?? this.aux.length;
    this.aux[i] = fn;
    this.heap.push(at, (i << 3) | E_AUX, 0);
  }

  private nodeEvent(e: SimEvent, now: number): void {
    const core = this.core;
    if (e.kind === 'shutdown') core.shutdown(now);
    else if (e.kind === 'define') {
      const f = core.defineFunction(e.fn, e.spec, now);
      const i = this.o.trace.functions.findIndex((tf) => tf.name === e.fn);
      if (i >= 0) {
        this.fnByIndex[i] = f;
        this.traceIdx[f.index] = i;
      }
    }
    else {
      const f = core.fn(e.fn);
      if (f) core.removeFunction(f, now);
    }
  }

  run(): SimulationResult {
    const wall0 = performance.now();
    const o = this.o;
    const trace = o.trace;
    const scale = o.timeScale ?? 1;
    const endMs = Math.min(trace.nSlots * trace.slotMs * scale, o.durationMs ?? Infinity);
    this.endMs = endMs;
    const x = new ArrivalExpander(trace, o.expand);
    const heap = this.heap;
    const core = this.core;
    let done = false;
    for (let slot = 0; slot < trace.nSlots && !done; slot++) {
      if (slot * trace.slotMs * scale >= endMs) break;
      const n = x.slot(slot);
      const times = x.times;
      const fns = x.fns;
      for (let i = 0; i < n; i++) {
        const t = times[i]! * scale;
        if (t >= endMs) {
          done = true;
          break;
        }
        while (heap.peekTime() <= t) this.step(); // Infinity when empty
        this.events++;
        if (this.fnCounts) this.fnCounts[fns[i]! * 6]!++;
        const f = this.fnByIndex[fns[i]!] ?? this.define(fns[i]!);
        // a deleted function is unknown to the node: the daemon's Dispatcher answers 404 before the core
        if (f.deleted) {
          this.notFound++;
          continue;
        }
        core.arrive(f, ++this.reqSeq, t);
        this.afterEvent(t);
      }
    }
    // events up to the end; then only work in flight (runs and starts), no more timers
    let simEnd = endMs;
    while (heap.size > 0 && heap.peekTime() <= endMs) this.step();
    while (heap.pop()) {
      const kind = heap.topPayload & 7;
      // no timers after the end (unless drain); runs, starts and shell events finish
      if (!o.drain && kind >= E_TIMER && kind < E_RUNCPU) continue;
      simEnd = Math.max(simEnd, heap.topTime);
      this.dispatch(kind, heap.topPayload >> 3, heap.topTag, heap.topTime);
    }
    const unserved = core.queuedCount;

    const wallMs = performance.now() - wall0;
    const c = core.counters;
    const inv = c.arrivals;
    const frac = (k: number): number => (inv > 0 ? k / inv : 0);
    const p = o.policies;
    const dropped = inv - this.completed;
    return {
      policy: o.label ?? p.keepAlive.name,
      keepAlive: p.keepAlive.name,
      eviction: p.eviction.name,
      selection: p.selection.name,
      placement: p.placement.name,
      admission: p.admission.name,
      memoryMiB: Number.isFinite(core.cfg.memoryBudgetMiB) ? core.cfg.memoryBudgetMiB : null,
      functions: trace.functions.length,
      invocations: inv,
      completed: this.completed,
      warm: c.warm,
      restores: c.freshRestore,
      coldStarts: c.freshCold,
      coldBoots: c.coldStarts,
      restoresStarted: c.restoreStarts,
      dropped,
      rejected: { queueFull: c.rejectedQueueFull, overloaded: c.rejectedOverloaded, queueTimeout: c.rejectedQueueTimeout, unservedAtEnd: unserved, notFound: this.notFound },
      refusalP50Ms: this.refusalHist.percentile(50),
      refusalP99Ms: this.refusalHist.percentile(99),
      refusedWithin1s: this.refusalHist.count > 0 ? this.refusedFast / this.refusalHist.count : 1,
      snapshots: this.fnByIndex.filter((f) => f?.snapshot?.ready).length,
      coldStartFraction: frac(c.freshCold),
      restoreFraction: frac(c.freshRestore),
      warmFraction: frac(c.warm),
      droppedFraction: frac(dropped),
      goodput: frac(this.completed),
      wastedMemoryMiBSeconds: core.idleMemoryTime(simEnd) / 1000,
      p50Ms: this.hist.percentile(50),
      p99Ms: this.hist.percentile(99),
      meanMs: this.hist.mean(),
      meanQueueMs: this.completed > 0 ? this.queueWaitSum / this.completed : 0,
      meanColdBootMs: this.coldBootN > 0 ? this.coldBootMsSum / this.coldBootN : 0,
      meanRestoreMs: this.restoreN > 0 ? this.restoreMsSum / this.restoreN : 0,
      evictions: c.evictions,
      expirations: c.expirations,
      prewarms: c.prewarms,
      instancesCreated: c.coldStarts + c.restoreStarts,
      peakMemoryMiB: c.peakMemoryMiB,
      simulatedSeconds: simEnd / 1000,
      wallMs,
      events: this.events,
      eventsPerSecond: wallMs > 0 ? (this.events * 1000) / wallMs : 0,
      invocationsPerSecond: wallMs > 0 ? (inv * 1000) / wallMs : 0,
      byFunction: this.fnHist ? this.functionResults() : undefined,
    };
  }

  private functionResults(): FunctionResult[] {
    const k = this.fnCounts!;
    return this.o.trace.functions.map((tf, i) => ({
      name: tf.name,
      invocations: k[i * 6]!,
      completed: this.fnHist![i]!.count,
      warm: k[i * 6 + 1]!,
      restores: k[i * 6 + 2]!,
      coldStarts: k[i * 6 + 3]!,
      refused: k[i * 6 + 4]!,
      refusedLate: k[i * 6 + 5]!,
      p50Ms: this.fnHist![i]!.percentile(50),
      p99Ms: this.fnHist![i]!.percentile(99),
    }));
  }

  // ---- driven by a cluster shell (src/sim/cluster/) ------------------------------

  /** The decision core of this node (read-only use: counters, instance counts, start slots). */
  get poolCore(): PoolCore {
    return this.core;
  }

  /** Trace function `fn` (its index) arrives as request `req` at `t` (no earlier than the events processed so far). */
  arrive(fn: number, req: number, t: number): void {
    this.events++;
    this.core.arrive(this.fnByIndex[fn] ?? this.define(fn), req, t);
    this.afterEvent(t);
  }

  /** Time of this node's next event (Infinity: none). */
  nextEventTime(): number {
    return this.heap.peekTime();
  }

  /** Process every event up to and including `until`. */
  advance(until: number): void {
    const heap = this.heap;
    while (heap.size > 0 && heap.peekTime() <= until) this.step();
  }

  /** Events processed so far. */
  get eventCount(): number {
    return this.events;
  }

  /** Requests whose run ended. */
  get completedCount(): number {
    return this.completed;
  }

  /** Trace function `fn` in this node's decision core (undefined: never seen here; `define`: create it). */
  coreFunction(fn: number, define = false): CoreFunction | undefined {
    return this.fnByIndex[fn] ?? (define ? this.define(fn) : undefined);
  }

  /** The trace function of a core function. */
  traceIndexOf(f: CoreFunction): number {
    return this.traceIdx[f.index]!;
  }

  private define(i: number): CoreFunction {
    const r = this.forgotten.get(i);
    let f: CoreFunction;
    if (r) {
      this.forgotten.delete(i);
      f = this.core.recallFunction(r, this.specOf(i));
    } else f = this.core.defineFunction(this.o.trace.functions[i]!.name, this.specOf(i), 0);
    this.traceIdx[f.index] = i;
    this.fnByIndex[i] = f;
    return f;
  }

  /** Forget every function that lost its last instance or snapshot since the last call and holds nothing now. */
  forgetIdle(): number {
    const c = this.forgetCandidates;
    if (c.length === 0) return 0;
    this.forgetCandidates = [];
    let n = 0;
    for (const fn of c) if (this.forget(fn)) n++;
    return n;
  }

  private specOf(i: number): FunctionSpec {
    const c = this.costs[i]!;
    // as in the daemon, a snapshot is reserved at the function's memory size until one was measured
    return { memoryMiB: c.memoryMiB, maxInstances: c.maxInstances ?? this.maxInst, version: '1', share: this.o.shares?.[this.o.trace.functions[i]!.name] };
  }

  /**
   * issue 23: forget trace function `fn` on this node when it holds nothing (PoolCore.forgetFunction; no pre-warm
   * timer pending either): its next arrival defines it again as it was (its learned costs stay: fnStats and
   * warmSettled are by core index, which it keeps). Not with node events (they find functions by name). True
   * when forgotten.
   */
  forget(fn: number): boolean {
    const f = this.fnByIndex[fn];
    if (!f || this.o.events?.length || this.prewarmPending.has(f.index)) return false;
    const r = this.core.forgetFunction(f, this.specOf(fn));
    if (!r) return false;
    this.forgotten.set(fn, r);
    this.fnByIndex[fn] = undefined;
    return true;
  }

  private step(): void {
    const heap = this.heap;
    heap.pop();
    this.dispatch(heap.topPayload & 7, heap.topPayload >> 3, heap.topTag, heap.topTime);
  }

  private dispatch(kind: number, idx: number, tag: number, now: number): void {
    this.events++;
    const core = this.core;
    if (kind === E_AUX) {
      const fn = this.aux[idx]!;
      this.aux[idx] = undefined;
      this.auxFree.push(idx);
      fn(now);
    } else if (kind === E_RUNCPU) {
      const inst = this.instAt(idx);
      const s = this.slots[idx];
      if (!inst || !s || inst.state !== 'busy' || !s.job || s.job.version !== tag) return;
      this.cpu!.end(s.job, now);
      s.job = undefined;
      // the rest of the run waits (timers, I/O): no CPU
      this.heap.push(now + s.waitMs, (inst.idx << 3) | E_FINISH, inst.seq >>> 0);
    } else if (kind === E_FINISH) {
      const inst = this.instAt(idx);
      if (!inst || inst.state !== 'busy') return;
      const s = this.slots[idx]!;
      if (s.job || (inst.seq >>> 0) !== tag) return; // its CPU part is still running
      this.completed++;
      this.hist.record(now - s.arrival);
      if (this.fnHist) this.fnHist[this.traceIdx[inst.f.index]!]!.record(now - s.arrival);
      // what the record says, read before runDone: its decisions may stop this instance and reuse its slot
      const f = inst.f;
      const c = s.costs;
      const fresh = s.fresh;
      const req = s.req;
      const path = inst.path;
      const startMs = inst.startCostMs;
      const tier = path === 'restore' ? inst.snapshot?.tier.name : undefined;
      // the run's CPU time as the daemon's worker measures it (the VMM's CPU over the run: observe's share × the run)
      const share = runCpuShare(c);
      core.runDone(inst, now, share !== undefined ? share * c.runMs : undefined);
      this.observe(f, c, fresh, path, startMs, tier);
      const h = this.hooks;
      if (h) {
        h.onDone?.(req, now);
        h.onTouch?.(this.traceIdx[f.index]!, now);
      }
    } else if (kind === E_READY) {
      const inst = this.instAt(idx);
      const s = this.slots[idx];
      if (!inst || !s || inst.state !== 'starting') return;
      if (s.job && s.job.version !== tag) return; // re-timed by the CPU model
      if (s.job) this.cpu!.end(s.job, now);
      s.job = undefined;
      const ms = now - s.startedAt;
      if (inst.path === 'cold') {
        this.coldBootMsSum += ms;
        this.coldBootN++;
      } else {
        this.restoreMsSum += ms;
        this.restoreN++;
      }
      const snap = inst.snapshot;
      if (snap && inst.path === 'cold' && !snap.ready) core.snapshotReady(snap, s.costs.snapshotMiB * 1048576, undefined, now);
      core.startDone(inst, now, s.startCpuMs);
      this.hooks?.onTouch?.(this.traceIdx[inst.f.index]!, now);
    } else {
      if (kind === E_TIMER + TIMER_PREWARM && this.prewarmPending.get(idx) === tag) this.prewarmPending.delete(idx);
      core.timer((kind - E_TIMER) as TimerKind, idx, tag, now);
    }
    this.afterEvent(now);
  }

  /** What PerfManager would learn from this request's record (and VmPool from PerfManager). */
  private observe(f: CoreFunction, c: FunctionCosts, fresh: boolean, path: CoreInstance['path'], startMs: number, tier: string | undefined): void {
    if (!fresh && this.warmSettled[f.index] === true) return;
    const fs = (this.fnStats[f.index] ??= this.stats.of(f.name));
    const w = this.warmSample;
    const cpuShare = runCpuShare(c);
    if (!fresh) {
      w.fn = f.name;
      w.warmMs = c.warmMs;
      w.runMs = c.runMs;
      w.cpuShare = cpuShare;
      // a warm run like the last ones changes no mean: nothing to learn (most of a day's invocations)
      if (this.stats.unchangedBy(fs, w)) {
        this.warmSettled[f.index] = true;
        return;
      }
      this.stats.observeInto(fs, w);
    } else {
      this.stats.observeInto(fs, { fn: f.name, path, startMs, tier, runMs: c.runMs, cpuShare });
    }
    this.core.setCosts(f, this.stats.viewOf(fs, this.tierNames));
  }

  private instAt(idx: number): CoreInstance | undefined {
    return this.instBySlot[idx];
  }

  private afterEvent(now: number): void {
    // the idle VMs' CPU matters only while jobs (starts, CPU-bound runs) share the cores with them
    if (this.cpu && this.cpu.jobs > 0) this.cpu.setBackground(this.background(), now);
  }

  /** CPU the idle VMs take (busy ones are jobs of the CPU model when their function uses CPU). */
  private background(): number {
    return this.core.idleCount * this.idleVmCpu;
  }

  private rescheduleJob(j: CpuJob): void {
    const inst = j.owner as CoreInstance;
    this.heap.push(j.finishAt, (inst.idx << 3) | j.kind, j.version);
  }

  // ---- CoreEffects ---------------------------------------------------------

  start(inst: CoreInstance, plan: CoreStartPlan, now: number): void {
    let s = this.slots[inst.idx];
    if (!s) this.slots[inst.idx] = s = new SlotState();
    this.instBySlot[inst.idx] = inst;
    const c = this.costs[this.traceIdx[inst.f.index]!]!;
    if (this.memClock) {
      this.live.push(inst);
      this.liveSeq.push(inst.seq);
      this.sampler.started(inst, c);
    }
    s.costs = c;
    s.startedAt = now;
    s.resyncFault = false;
    this.armMemorySample(now);
    this.log?.({ t: now, kind: 'start', inst: inst.seq, fn: inst.fn, path: plan.path, snapshot: plan.snapshot !== undefined });
    this.hooks?.onTouch?.(this.traceIdx[inst.f.index]!, now);
    const faults = this.o.faults;
    if (faults && this.injectFaults(faults, inst, plan, s, now)) return;
    const restore = plan.path === 'restore';
    const wall = restore ? (c.restoreMsByTier[plan.snapshot.tier.name] ?? c.restoreMs) : c.coldMs;
    // its CPU time: the profile's, at most its time alone (the CPU model stretches its time, not its CPU)
    s.startCpuMs = Math.min(wall, restore ? c.restoreCpuMs : c.coldCpuMs);
    if (this.cpu) {
      s.job = this.cpu.begin(s.startCpuMs, wall, 1, now, inst, E_READY, this.background(), inst.startWeighted ? this.startShare : 1);
    } else {
      s.job = undefined;
      this.heap.push(now + wall, (inst.idx << 3) | E_READY, 0);
    }
  }

  /**
   * This start's faults (faults.ts), as the daemon's Workers would report them. True when the start fails
   * (its failure is scheduled instead of its end).
   */
  private injectFaults(faults: FaultModel, inst: CoreInstance, plan: CoreStartPlan, s: SlotState, now: number): boolean {
    const core = this.core;
    const seq = inst.seq;
    const same = (): boolean => inst.seq === seq && inst.state === 'starting';
    if (plan.path === 'cold' && plan.snapshot && faults.tierFull?.(plan.snapshot.tier.name, now)) {
      // the SnapshotManager finds the tier's device full: placement decides again without it
      this.later(now, (t) => {
        const full = new Set<string>();
        let snap = inst.snapshot;
        while (snap && same() && faults.tierFull!(snap.tier.name, t)) {
          full.add(snap.tier.name);
          snap = core.snapshotNoRoom(inst, full, t);
        }
      });
    }
    const fault = faults.start?.({ fn: inst.fn, nth: this.startCounter.next(inst.fn), path: plan.path, seq, snapshot: plan.snapshot !== undefined, t: now });
    if (!fault) return false;
    if (fault.kind === 'resync') {
      s.resyncFault = plan.path === 'restore';
      return false;
    }
    s.job = undefined;
    const kind = fault.kind;
    this.later(now + fault.afterMs, (t) => {
      if (!same()) return;
      if (kind === 'snapshot') {
        if (inst.snapshot) core.snapshotFailed(inst.snapshot, t);
        core.gone(inst, { kind: 'snapshot' }, t);
      } else core.gone(inst, { kind } satisfies StartFailure, t);
      this.afterEvent(t);
    });
    return true;
  }

  assign(req: number, inst: CoreInstance, fresh: boolean, arrival: number, now: number): void {
    const s = this.slots[inst.idx]!;
    const c = s.costs;
    this.log?.({ t: now, kind: 'assign', req, inst: inst.seq, fn: inst.fn, fresh });
    if (s.resyncFault) {
      // the clone's first run refuses the resync it carries: the request goes back, the snapshot is broken
      s.resyncFault = false;
      s.job = undefined;
      const seq = inst.seq;
      this.later(now, (t) => {
        if (inst.seq === seq && inst.state === 'busy') this.core.runRefused(inst, req, arrival, t, { kind: 'restore-broken' });
        this.afterEvent(t);
      });
      return;
    }
    s.fresh = fresh;
    s.arrival = arrival;
    s.req = req;
    this.queueWaitSum += now - arrival;
    if (this.fnCounts) this.fnCounts[this.traceIdx[inst.f.index]! * 6 + (!fresh ? 1 : inst.path === 'restore' ? 2 : 3)]!++;
    const service = (fresh ? 0 : c.warmMs) + c.runMs;
    const cpuMs = Math.min(service + c.invokeCpuMs, c.invokeCpuMs + Math.min(1, c.cpuShare) * service);
    if (this.cpu && cpuMs > 0) {
      // the run's CPU (the invocation's own cost on the node, then the function's share) is a job that
      // shares the cores and stretches when they are oversubscribed; its waiting part follows, without CPU
      s.waitMs = Math.max(0, service + c.invokeCpuMs - cpuMs);
      s.job = this.cpu.begin(cpuMs, cpuMs, 1, now, inst, E_RUNCPU, this.background());
    } else {
      s.job = undefined;
      this.heap.push(now + service, (inst.idx << 3) | E_FINISH, inst.seq >>> 0);
    }
    const h = this.hooks;
    if (h) {
      h.onAssign?.(req, fresh, inst.path, now);
      h.onTouch?.(this.traceIdx[inst.f.index]!, now);
    }
  }

  reject(req: number, f: CoreFunction, reason: RejectCode, _detail: unknown, arrival: number, now: number): void {
    this.log?.({ t: now, kind: 'reject', req, fn: f.name, reason });
    const waited = now - arrival;
    this.refusalHist.record(waited);
    if (waited <= 1000) this.refusedFast++;
    const ti = this.traceIdx[f.index];
    if (this.fnCounts && ti !== undefined) {
      this.fnCounts[ti * 6 + 4]!++;
      if (reason === 'queue_timeout') this.fnCounts[ti * 6 + 5]!++;
    }
    this.hooks?.onReject?.(req, reason, now);
  }

  stop(inst: CoreInstance, cause: StopCause, now: number): void {
    const s = this.slots[inst.idx];
    if (s?.job && this.cpu) {
      this.cpu.end(s.job, now);
      s.job = undefined;
    }
    this.log?.({ t: now, kind: 'stop', inst: inst.seq, fn: inst.fn, cause });
    this.hooks?.onTouch?.(this.traceIdx[inst.f.index]!, now);
    if (this.o.lazyFunctions && inst.f.live === 0 && inst.f.snapshot === undefined) this.forgetCandidates.push(this.traceIdx[inst.f.index]!);
  }

  wake(at: number, kind: TimerKind, target: number, token: number): void {
    // keep-alive expiries (minutes ahead) and queue deadlines: far off, and mostly stale when they fire
    this.heap.push(at, (target << 3) | (E_TIMER + kind), token >>> 0, kind === TIMER_EXPIRE || kind === TIMER_DEADLINE);
    if (kind === TIMER_PREWARM) this.prewarmPending.set(target, token >>> 0);
  }

  dropSnapshot(snap: CoreSnapshot, cause: SnapshotDropCause, now: number): void {
    this.log?.({ t: now, kind: 'dropSnapshot', fn: snap.f.name, tier: snap.tier.name, cause });
    this.hooks?.onTouch?.(this.traceIdx[snap.f.index]!, now);
    if (this.o.lazyFunctions && snap.f.live === 0) this.forgetCandidates.push(this.traceIdx[snap.f.index]!);
  }

  moveSnapshot(snap: CoreSnapshot, from: string, to: string, now: number): void {
    this.log?.({ t: now, kind: 'moveSnapshot', fn: snap.f.name, from, to });
    // the files are copied at once (the simulator has no I/O); the core moves it when told, as in the daemon
    this.later(now, () => this.core.moveDone(snap));
  }
}

export function simulate(o: SimulationOptions): SimulationResult {
  return new Simulator(o).run();
}

/**
 * A run's CPU share as the daemon measures it: the VMM's CPU time over the run (the agent's own work included);
 * a profile without CPU costs measured none (as the daemon with a driver that reports no CPU time).
 */
function runCpuShare(c: FunctionCosts): number | undefined {
  return c.cpuShare > 0 || c.invokeVmmCpuMs > 0 ? Math.min(1, c.cpuShare + c.invokeVmmCpuMs / Math.max(1, c.runMs)) : undefined;
}
