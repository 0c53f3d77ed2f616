// The decision core's state: instances, functions, snapshots, storage tiers, and
// the interfaces through which its shells (VmPool in the daemon, the simulator)
// drive it and carry out its decisions. Plain mutable classes with index fields:
// the simulator runs millions of decisions per second through them.

import type {
  AdmissionPolicy,
  EvictionPolicy,
  FunctionView,
  InstanceView,
  KeepAlivePolicy,
  PlacementPolicy,
  Rng,
  SelectionPolicy,
  TierView,
} from '../../policies/types.js';
import type { FunctionCostView } from '../../perf/cost-stats.js';

export type CoreInstanceState = 'starting' | 'idle' | 'busy' | 'stopping';
export type StartKind = 'cold' | 'restore';

/** Why the core stops an instance. */
export type StopCause =
  /** keep-alive time ran out */
  | 'expired'
  /** memory pressure: the eviction policy chose it */
  | 'evicted'
  /** keep-alive said 0 */
  | 'keepalive-none'
  /** keep-alive unloads it now and pre-warms a fresh one later */
  | 'prewarm-unload'
  /** its function changed (code, shape, env) or was deleted */
  | 'stale'
  /** POST /evict */
  | 'requested'
  /** its Worker could not run an assigned request (the VM was already gone) */
  | 'lost'
  /** a restored clone whose first run found the restore unusable (the resync it carried was refused) */
  | 'broken'
  /** the host ran short of memory with nothing idle left to evict: the newest growing instance (pressure.ts) */
  | 'memory-pressure'
  | 'shutdown';

/** How a start ended without an instance (reported by the shell; decides what happens next). */
export type StartFailureKind =
  /** the VM did not come up: the oldest waiting request gets the failure */
  | 'boot'
  /** the function's init failed (deterministic): every request waiting for the function gets it */
  | 'init'
  /** the snapshot could not be restored: it is dropped and a cold start follows; no request fails */
  | 'restore-broken'
  /** the restore did not finish in time (host overloaded): the snapshot is kept; no request fails */
  | 'restore-slow'
  /** taking the cold start's snapshot failed (the shell reports snapshotFailed first): like a failed boot */
  | 'snapshot'
  /** stopped while starting (eviction, shutdown): nothing to report */
  | 'stopped';

export interface StartFailure {
  kind: StartFailureKind;
  /** what rejected requests carry (the shell's typed failure) */
  detail?: unknown;
}

export type SnapshotDropCause = 'broken' | 'invalidated' | 'tier-full' | 'replaced' | 'failed';

/** Timer kinds the core asks its shell for (numbers: the simulator packs them into heap payloads). */
export const TIMER_EXPIRE = 0;
export const TIMER_PREWARM = 1;
export const TIMER_DEADLINE = 2;
export const TIMER_RECHECK = 3;
export type TimerKind = typeof TIMER_EXPIRE | typeof TIMER_PREWARM | typeof TIMER_DEADLINE | typeof TIMER_RECHECK;

export type CoreStartPlan =
  /** boot; when `snapshot` is set, leave that snapshot behind (taken after init) */
  | { path: 'cold'; snapshot?: CoreSnapshot }
  | { path: 'restore'; snapshot: CoreSnapshot };

/**
 * What the core asks its shell to do. Called synchronously from inside a core
 * call: an implementation records or sends, and must not call back into the core.
 */
export interface CoreEffects {
  start(inst: CoreInstance, plan: CoreStartPlan, now: number): void;
  /** Run request `req` (arrived at `arrival`) on `inst`; `fresh`: it waited for this instance's start. */
  assign(req: number, inst: CoreInstance, fresh: boolean, arrival: number, now: number): void;
  reject(req: number, f: CoreFunction, reason: RejectCode, detail: unknown, arrival: number, now: number): void;
  stop(inst: CoreInstance, cause: StopCause, now: number): void;
  /** Call core.timer(kind, target, token, t) at time `at` (t ≥ at). Timers are never cancelled: stale ones are ignored. */
  wake(at: number, kind: TimerKind, target: number, token: number): void;
  /** The snapshot is no longer wanted: delete its files. */
  dropSnapshot(snap: CoreSnapshot, cause: SnapshotDropCause, now: number): void;
  /** Move the snapshot's files to another tier (adaptive placement). */
  moveSnapshot(snap: CoreSnapshot, from: string, to: string, now: number): void;
}

export type RejectCode =
  | 'queue_full'
  | 'overloaded'
  | 'queue_timeout'
  | 'deleted'
  | 'shutting_down'
  /** a start the request waited for failed (detail: the shell's typed failure) */
  | 'start_failed'
  /** the function's init failed in the start the request waited for: the function's failure, not the platform's (detail: the shell's typed failure) */
  | 'init_failed'
  /** the function's starts keep failing and it backs off: refused at once (detail: StartBackoffDetail) */
  | 'start_backoff';

/** What a start_backoff refusal carries: the last failure and when the next start may be tried. */
export interface StartBackoffDetail {
  failures: number;
  retryAt: number;
  last: StartFailure;
}

export interface CorePolicies {
  /** the keep-alive policy as one object (routes per function; its priority() orders eviction) */
  keepAlive: KeepAlivePolicy;
  keepAliveFor(fn: string): KeepAlivePolicy;
  eviction: EvictionPolicy;
  selection: SelectionPolicy;
  placement: PlacementPolicy;
  admission: AdmissionPolicy;
  rng: Rng;
}

export interface TierSpec {
  name: string;
  latencyRank: number;
  /** 0 or Infinity: unbounded */
  capacityBytes: number;
  /**
   * A snapshot here takes its guest's whole memory (a tmpfs tier: its RAM files are made dense so that
   * clones never grow them, docs/snapshots-memory.md): room is reserved at that size, whatever a snapshot
   * of the function measured elsewhere.
   */
  dense?: boolean;
}

export interface CoreConfig {
  /** Sum of the memory sizes of all live instances (MiB); Infinity: unbounded. */
  memoryBudgetMiB: number;
  /** Starting an instance past high × budget evicts idle ones down to low × budget (never past the budget itself). */
  lowWatermark: number;
  highWatermark: number;
  /** Requests running at once on the node (Infinity: unbounded). */
  maxConcurrentInvocations: number;
  /** Waiting requests per function beyond what its free instance slots serve (admission's bound). */
  maxQueueLength: number;
  /** A request waiting longer is refused (queue_timeout). */
  maxQueueDelayMs: number;
  snapshots: boolean;
  tiers: TierSpec[];
  starts: {
    /** Boots and restores at once: a number, or 'auto' = host cores minus the CPU that idle and busy VMs take (at least 1). */
    maxConcurrent: number | 'auto';
    cores: number;
    /** Host CPU (fraction of a core) one idle VM takes. */
    idleVmCpu: number;
    /** Start cost assumed before any start of that kind was measured (ms). */
    defaultColdMs: number;
    defaultRestoreMs: number;
    /** Let a request wait for a busy instance that will free up before a new start could finish. */
    preferWarm: boolean;
    /**
     * issue 18: a starting VM's CPU weight over a busy one's (limits.startCpuWeight / limits.cpuWeight; absent or
     * 1: equal): how much of the cores a start gets beside busy runs (estimates.ts startStretch).
     */
    startWeight?: number;
    /**
     * issue 18: which starts get startWeight (limits.startCpuWeightScope): 'first' only a start of a function with no
     * instance (none ready, none starting); 'all' (absent) every start. The core marks them: CoreInstance.startWeighted.
     */
    startWeightScope?: 'first' | 'all';
    /**
     * A function whose starts keep failing backs off (start-failures.ts): after the second failure in a
     * row its next start waits backoffBaseMs, doubling with each further failure up to backoffMaxMs; a
     * failed snapshot (broken restore, failed save) holds off its next snapshot the same way.
     */
    backoffBaseMs: number;
    backoffMaxMs: number;
  };
  /** CPU slots for pinning (InstanceView.cpuSlot round robin); 0: none. */
  cpuSlots: number;
  /** Always call eviction.selectVictims, even for policies with orderKey() (cross-checks). */
  exactEviction?: boolean;
  /** The shell needs no `gone` for stopped instances (the simulator): slots are recycled at once. */
  recycleOnStop?: boolean;
  /**
   * issue 18: how the node's capacity is shared when it cannot serve all offered load (fairness.ts).
   * 'max-min': the CPU goes max-min fair among the functions with demand, weighted by their `share`;
   * the default when absent; 'off': the behaviour before (functions waiting for a node-wide resource go FIFO).
   */
  fairness?: FairnessMode;
  /** How live instances are charged against memoryBudgetMiB (accounting.ts); absent: DEFAULT_MEMORY_ACCOUNTING. */
  memory?: MemoryAccountingConfig;
}

/** issue 24: measured accounting is the default in both shells (docs/density.md, "Defaults"); an unmeasured node still counts sizes. */
export const DEFAULT_MEMORY_ACCOUNTING: MemoryAccountingConfig = { accounting: 'measured', reserve: 0.1 };

/** How instances are charged against the memory budget (issue 24): their size, or what they cost the host. */
export type MemoryAccounting = 'nominal' | 'measured';

export interface MemoryAccountingConfig {
  /**
   * nominal: each instance counts its memory size. measured: what it costs the host, its PSS from the
   * shell's sampler (private pages plus its share of shared ones), never more than its size, plus a reserve.
   */
  accounting: MemoryAccounting;
  /** measured: the fraction of each instance's headroom (size − measured) kept in reserve for its growth */
  reserve: number;
}

/** One measurement of an instance by the shell's sampler: its VMM's proportional set size (MiB). */
export interface MemorySample {
  inst: CoreInstance;
  pssMiB: number;
}

export type FairnessMode = 'max-min' | 'off';

export interface FunctionSpec {
  memoryMiB: number;
  maxInstances: number;
  /** Instances and snapshots are reusable only for the same version (code, shape, env). */
  version: string;
  /** Expected snapshot size before one was measured (default: the memory size). */
  snapshotBytes?: number;
  /** issue 18: its weight in the node's fair sharing of capacity under overload (default 1). */
  share?: number;
}

export class CoreInstance implements InstanceView {
  id = '';
  /** unique, increasing over the core's life */
  seq = 0;
  fn = '';
  f!: CoreFunction;
  memoryMiB = 0;
  /** what it counts against the budget now (accounting.ts): its size (nominal), or its measured cost plus reserve */
  chargedMiB = 0;
  /** its latest measurement (PSS, MiB) and the one before (NaN: none yet) */
  measuredMiB = NaN;
  prevMeasuredMiB = NaN;
  state: CoreInstanceState = 'starting';
  createdAt = 0;
  lastUsedAt = 0;
  invocations = 0;
  startCostMs = 0;
  cpuSlot = -1;
  path: StartKind = 'cold';
  version = '';
  /** its function changed (or was deleted) since it started: stopped when it is free instead of reused */
  stale = false;
  /** counted among its function's current instances (live, starting); false once stale or stopping */
  counted = false;
  /** keep time of a pre-warmed instance that has not served yet (NaN: not pre-warmed) */
  prewarmKeepMs = NaN;
  busySince = 0;
  /** CPU charged while busy (its function's cpuShare when it was assigned) */
  cpuCharge = 0;
  /** fairness: the CPU (ms) its run or start was charged when granted (corrected when it ends) */
  vtCharge = 0;
  /** what its start was expected to take when launched (ms; admission counts what remains of it) */
  startExpectMs = 0;
  /** issue 18: its start gets the start CPU weight (starts.startWeightScope: its function's first, or every start) */
  startWeighted = false;
  /** its place in the core's list of starts under way (-1: none) */
  startingPos = -1;
  /** the snapshot this start creates (cold) or restores from */
  snapshot: CoreSnapshot | undefined = undefined;
  // list positions
  fnIdlePos = -1;
  globalIdlePos = -1;
  fnBusyPos = -1;
  // eviction index (IdleHeap)
  evKey = 0;
  heapPos = -1;
  // keep-alive expiry: one armed timer at a time, re-armed lazily
  expireAt = Infinity;
  armedAt = Infinity;
  armToken = 0;
  /** the shell's handle (VmPool: its Worker) */
  handle: unknown = undefined;

  constructor(readonly idx: number) {}
}

export class CoreSnapshot {
  ready = false;
  bytes: number;
  lastUsed: number;
  /** the shell's reference (paths); set when ready */
  ref: unknown = undefined;
  /** a move to this tier is under way (room reserved there); the snapshot stays on `tier` until it is reported done */
  moveTo: CoreTier | undefined = undefined;
  /** the room reserved on moveTo */
  moveBytes = 0;
  constructor(
    readonly id: number,
    readonly f: CoreFunction,
    readonly version: string,
    public tier: CoreTier,
    reservedBytes: number,
    now: number,
  ) {
    this.bytes = reservedBytes;
    this.lastUsed = now;
  }
}

export class CoreTier implements TierView {
  usedBytes = 0;
  readonly snaps: CoreSnapshot[] = [];
  constructor(
    readonly index: number,
    readonly name: string,
    readonly latencyRank: number,
    readonly capacityBytes: number,
    /** TierSpec.dense */
    readonly dense = false,
  ) {}
}

/** The costs policies read; the shell updates them (PerfManager's statistics, or the simulator's). */
export interface MutableFunctionView extends FunctionCostView {
  name: string;
  memoryMiB: number;
}

export class CoreFunction {
  readonly view: MutableFunctionView & FunctionView;
  memoryMiB: number;
  maxInstances: number;
  version: string;
  snapshotBytes: number;
  deleted = false;
  readonly idle: CoreInstance[] = [];
  readonly busy: CoreInstance[] = [];
  /** instances of the current version that are not stopping */
  live = 0;
  /** of those, still starting */
  starting = 0;
  // FIFO queue of waiting requests (parallel arrays, head index)
  qReq: number[] = [];
  qAt: number[] = [];
  qHead = 0;
  deadlineArmedAt = Infinity;
  deadlineToken = 0;
  recheckArmedAt = Infinity;
  recheckToken = 0;
  /** waits for a node-wide resource (start slot, memory, concurrency) */
  waiting = false;
  inWaitList = false;
  /** starts it waits for (counted node-wide for admission's estimate) */
  wantStarts = 0;
  snapshot: CoreSnapshot | undefined = undefined;
  /** placement said keep-warm: idle instances stay until evicted */
  keepWarm = false;
  /** successful restores (placement's sample count) */
  restores = 0;
  /** what a new instance of it costs once started, cold-booted / restored (MiB, measured; NaN: not yet) */
  memEstimate: [number, number] = [NaN, NaN];
  prewarmToken = 0;
  prewarmKeepMs = 0;
  // start failures (start-failures.ts)
  /** starts that failed in a row (reset by a start that succeeds) */
  failStreak = 0;
  /** when failStreak last grew */
  lastFailureAt = 0;
  /** no start before this time (ms); requests that only a start could serve are refused until then */
  backoffUntil = 0;
  lastStartFailure: StartFailure | undefined = undefined;
  /** snapshots of it that failed in a row (broken at restore, or not taken); reset by a restored clone's successful run */
  snapFailStreak = 0;
  /** no new snapshot of it before this time (ms) */
  noSnapshotUntil = 0;
  // fairness (fairness.ts, issue 18)
  /** weight of its fair share of the node's capacity */
  share = 1;
  /** virtual time: CPU granted to it (ms of a core) divided by its share */
  vt = 0;
  /** position in the fair wait heap (-1: not in it), and its entry order there (ties go FIFO) */
  waitPos = -1;
  waitSeq = 0;
  /** counted in the node's demand weight (queued requests, busy or starting instances) */
  inDemand = false;
  /** why it waits (fairness.ts BLOCK_*), and the CPU it waits for */
  blockedOn = 0;
  blockedCpu = 0;
  /** how long its runs held an instance, as the core saw them (mean over the last ones; what a run is charged) */
  heldMean = 0;
  heldSeen = 0;
  /** the CPU time its runs took as the shell measured it (ms, mean over the last ones; what a run is charged when known) */
  cpuMsMean = 0;
  cpuMsSeen = 0;
  /** the shell's per-function data (VmPool: the FunctionDef) */
  handle: unknown = undefined;

  constructor(
    readonly index: number,
    readonly name: string,
    spec: FunctionSpec,
    readonly ka: KeepAlivePolicy,
  ) {
    this.memoryMiB = spec.memoryMiB;
    this.maxInstances = spec.maxInstances;
    this.version = spec.version;
    this.snapshotBytes = spec.snapshotBytes ?? spec.memoryMiB * 1048576;
    this.share = spec.share ?? 1;
    // every cost field present from the start (undefined: not measured yet): one shape for every function's
    // view, so the core's reads of it stay monomorphic (setCosts fills them in per-function orders)
    this.view = { name, memoryMiB: spec.memoryMiB, coldStartMs: undefined, restoreMs: undefined, warmStartMs: undefined, runMs: undefined, restoreMsByTier: undefined, cpuShare: undefined };
  }

  get queued(): number {
    return this.qReq.length - this.qHead;
  }
}

/** One decision of the core, as both shells report it (the conformance test compares them). */
export type Decision =
  | { t: number; kind: 'start'; inst: number; fn: string; path: StartKind; snapshot: boolean }
  | { t: number; kind: 'assign'; req: number; inst: number; fn: string; fresh: boolean }
  | { t: number; kind: 'reject'; req: number; fn: string; reason: RejectCode }
  | { t: number; kind: 'stop'; inst: number; fn: string; cause: StopCause }
  | { t: number; kind: 'dropSnapshot'; fn: string; tier: string; cause: SnapshotDropCause }
  | { t: number; kind: 'moveSnapshot'; fn: string; from: string; to: string };
