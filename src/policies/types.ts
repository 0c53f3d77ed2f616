// Policy interfaces. The same objects drive the real VmPool and the simulator
// (src/sim), so a policy never reads the wall clock or global state: time is
// always passed in (`now`, epoch ms in the daemon, virtual ms in the simulator)
// and randomness comes from the injected Rng.

/** A read-only view of one VM instance, as policies see it. */
export interface InstanceView {
  readonly id: string;
  readonly fn: string;
  readonly memoryMiB: number;
  /**
   * What it counts against the node's memory budget, i.e. what evicting it frees: its size under nominal
   * accounting, its measured cost plus reserve under measured accounting (node.memory.accounting).
   * Absent: memoryMiB. Eviction policies add this up to cover what a start needs.
   */
  readonly chargedMiB?: number;
  /** 'idle' instances are the only ones keep-alive and eviction act on. */
  readonly state: 'starting' | 'idle' | 'busy' | 'stopping';
  readonly createdAt: number;
  /** When it last became idle (or was created). */
  readonly lastUsedAt: number;
  readonly invocations: number;
  /** Cost of starting this function again if this instance is lost (measured cold or restore time, ms). */
  readonly startCostMs: number;
  /** Host CPU slot (index into the node's VM CPU set) or -1. */
  readonly cpuSlot: number;
}

/** What the node knows about a function, as policies see it. */
export interface FunctionView {
  readonly name: string;
  readonly memoryMiB: number;
  /** Measured (or profiled) cost of each start path, ms; undefined when not known yet. */
  readonly coldStartMs?: number;
  readonly restoreMs?: number;
  readonly warmStartMs?: number;
  /** Typical run time of the function itself, ms. */
  readonly runMs?: number;
  /** Restore latency per snapshot tier (measured, or estimated from how the tiers compare for other functions). */
  readonly restoreMsByTier?: Readonly<Record<string, number>>;
  /** Fraction of a host core one busy instance takes while it runs (measured); undefined: not known yet. */
  readonly cpuShare?: number;
}

export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
}

export interface KeepAliveDecision {
  /** How long the idle instance stays warm before it is stopped (ms). Infinity: until memory pressure evicts it. 0: stop now. */
  keepWarmMs: number;
  /**
   * Pre-warming (hybrid-histogram): when set, stop the instance now and start a
   * fresh one after `prewarmAfterMs`; that one then stays warm for `keepWarmMs`.
   */
  prewarmAfterMs?: number;
}

export interface KeepAlivePolicy {
  readonly name: string;
  /** An invocation of `fn` arrived (before the start path is chosen). Histogram and frequency policies learn here. */
  onInvocation(fn: FunctionView, now: number): void;
  /** An instance has just become idle: how long should it be kept? (Callers read the decision and keep nothing: a policy may return a shared frozen object.) */
  onIdle(inst: InstanceView, fn: FunctionView, now: number): KeepAliveDecision;
  /**
   * Value of keeping an idle instance when memory is short; lower is evicted
   * first. Policies without a notion of value (fixed TTL) omit it and the
   * eviction policy decides alone.
   */
  priority?(inst: InstanceView, fn: FunctionView, now: number): number;
  /** An instance was evicted under memory pressure (greedy-dual advances its clock here). */
  onEvict?(inst: InstanceView, fn: FunctionView, now: number): void;
  /**
   * ADDED (policies helper): an instance stopped for any reason other than
   * eviction under memory pressure (keep-alive expiry, pre-warm stop, crash,
   * function deleted). Optional; greedy-dual uses it to know when a function
   * has no warm instance left (its frequency is then reset).
   */
  onStop?(inst: InstanceView, fn: FunctionView, now: number): void;
}

export interface EvictionContext {
  now: number;
  rng: Rng;
  keepAlive: KeepAlivePolicy;
  fnOf(inst: InstanceView): FunctionView;
}

export interface EvictionPolicy {
  readonly name: string;
  /**
   * Choose idle instances to stop so that at least `needMiB` is freed, in the
   * order they should be stopped. May return fewer (or none: policy `none`),
   * in which case the request that needed the memory waits or is refused.
   */
  selectVictims(idle: readonly InstanceView[], needMiB: number, ctx: EvictionContext): InstanceView[];
  /**
   * ADDED (policies helper), optional fast path. When present, selectVictims
   * must equal "idle instances in ascending orderKey (ties: smaller lastUsedAt
   * first) until needMiB is covered", and an instance's key must not change
   * while it stays idle. A caller with many idle instances may then keep them
   * in a priority queue keyed by orderKey (evaluated when the instance becomes
   * idle) instead of calling selectVictims (the simulator does).
   */
  orderKey?(inst: InstanceView, ctx: EvictionContext): number;
}

export interface SelectionPolicy {
  readonly name: string;
  /** Pick one of the idle warm instances of a function (non-empty list) for the next invocation. */
  select(idle: readonly InstanceView[], now: number): InstanceView;
}

/** A snapshot storage tier, as placement policies see it. */
export interface TierView {
  readonly name: string;
  /** 0 = fastest. */
  readonly latencyRank: number;
  readonly capacityBytes: number;
  readonly usedBytes: number;
}

/** Measured restore behaviour of one function, per tier (from PerfManager or a static table). */
export interface PlacementStats {
  /** Restore latency + run time on that tier divided by warm latency + run time (>= 1). */
  slowdownByTier: Record<string, number | undefined>;
  samples: number;
}

export type PlacementDecision =
  | { action: 'snapshot'; tier: string; reason: string }
  | { action: 'cold'; reason: string }
  | { action: 'keep-warm'; reason: string };

export interface PlacementPolicy {
  readonly name: string;
  /** Ask again after every restore (with fresher statistics) and move or drop the snapshot when the answer changes. */
  readonly revisit?: boolean;
  place(fn: FunctionView, tiers: readonly TierView[], stats: PlacementStats | undefined): PlacementDecision;
}

/** Everything configurable about a node's resource management, resolved into objects. */
export interface PolicySet {
  keepAlive: KeepAlivePolicy;
  eviction: EvictionPolicy;
  selection: SelectionPolicy;
  placement: PlacementPolicy;
  admission: AdmissionPolicy;
}

/**
 * What admission sees when a request cannot be served by an idle instance at
 * once (requests that can are always admitted). One object, refreshed per call:
 * read it, do not keep it.
 */
export interface AdmissionView {
  readonly fn: FunctionView;
  /** requests of this function already waiting (this one not counted) */
  readonly queued: number;
  readonly busy: number;
  readonly idle: number;
  readonly starting: number;
  /** instances the function may still start (its maxInstances minus live ones) */
  readonly startable: number;
  /** node.admission maxQueueLength: waiting requests per function beyond what its free instance slots serve */
  readonly maxQueueLength: number;
  /** how long a request may wait for an instance (ms) */
  readonly maxQueueDelayMs: number;
  /**
   * The decision core's estimate of how long this request would wait until an
   * instance serves it (ms): the sooner of a warm instance freeing up and a new
   * start finishing, counting the starts queued ahead of it. Infinity when it can
   * only wait for an instance that is not there.
   */
  readonly estimatedWaitMs: number;
  readonly startsInFlight: number;
  readonly startSlots: number;
}

export type AdmissionDecision =
  | { readonly admit: true }
  | { readonly admit: false; readonly reason: 'queue_full' | 'overloaded'; readonly message: string; readonly retryAfterMs?: number };

export interface AdmissionPolicy {
  readonly name: string;
  admit(view: AdmissionView, now: number): AdmissionDecision;
}
