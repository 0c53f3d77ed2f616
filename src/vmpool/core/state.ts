// The decision core's shared state: one object that the core's modules (queue,
// estimates, node-wait, serve, instances, keepalive, memory, snapshots,
// start-failures) read and change through plain functions. PoolCore
// (core.ts) is the only entry point; nothing outside src/vmpool/core mutates it.
// Plain fields on one class of stable shape: the simulator runs millions of
// decisions per second through them.

import type { EvictionContext } from '../../policies/types.js';
import { IdleHeap } from './idle-heap.js';
import type { PressureLevel } from './pressure.js';
import { CoreTier, DEFAULT_MEMORY_ACCOUNTING, type CoreConfig, type CoreEffects, type CoreFunction, type CoreInstance, type CorePolicies } from './model.js';

export interface CoreCounters {
  arrivals: number;
  /** requests served by an instance that was already there */
  warm: number;
  /** requests that waited for a start, by its path */
  freshCold: number;
  freshRestore: number;
  /** instances started, by path (pool level) */
  coldStarts: number;
  restoreStarts: number;
  prewarms: number;
  /** starts that ended without an instance through the platform (boot, snapshot, restore; not the function's init), and restored clones whose first run found the restore broken */
  startFailures: number;
  /** starts whose function failed to initialise (its code: the function's failure, not the platform's) */
  initFailures: number;
  evictions: number;
  /** of the evictions, those the host's memory pressure asked for (pressure.ts) */
  pressureEvictions: number;
  /** instances stopped because the host ran short of memory with nothing idle left (typed failure memory_pressure) */
  pressureStops: number;
  expirations: number;
  /** instances the keep-alive policy stopped when they became idle (keepWarmMs 0) */
  keepAliveStops: number;
  /** idle instances unloaded now to be pre-warmed later (keep-alive prewarmAfterMs) */
  prewarmUnloads: number;
  staleStops: number;
  requestedStops: number;
  lostInstances: number;
  rejectedQueueFull: number;
  rejectedOverloaded: number;
  rejectedQueueTimeout: number;
  rejectedDeleted: number;
  rejectedStartFailed: number;
  /** answered with their function's init failure (not refused by the node: the function failed) */
  failedInit: number;
  /** refused at once while the function's starts keep failing (its start back-off) */
  rejectedStartBackoff: number;
  rejectedShutdown: number;
  snapshotsCreated: number;
  snapshotsDropped: number;
  /** placement wanted a snapshot but its tier had no room, or the function's snapshots keep failing */
  snapshotsSkipped: number;
  /** snapshot moves between tiers that the shell reported done / failed */
  snapshotsMoved: number;
  snapshotMovesFailed: number;
  peakMemoryMiB: number;
}

export function zeroCounters(): CoreCounters {
  return {
    arrivals: 0,
    warm: 0,
    freshCold: 0,
    freshRestore: 0,
    coldStarts: 0,
    restoreStarts: 0,
    prewarms: 0,
    startFailures: 0,
    initFailures: 0,
    evictions: 0,
    pressureEvictions: 0,
    pressureStops: 0,
    expirations: 0,
    keepAliveStops: 0,
    prewarmUnloads: 0,
    staleStops: 0,
    requestedStops: 0,
    lostInstances: 0,
    rejectedQueueFull: 0,
    rejectedOverloaded: 0,
    rejectedQueueTimeout: 0,
    rejectedDeleted: 0,
    rejectedStartFailed: 0,
    failedInit: 0,
    rejectedStartBackoff: 0,
    rejectedShutdown: 0,
    snapshotsCreated: 0,
    snapshotsDropped: 0,
    snapshotsSkipped: 0,
    snapshotsMoved: 0,
    snapshotMovesFailed: 0,
    peakMemoryMiB: 0,
  };
}

/** The admission view, one mutable object refreshed per call. */
export interface AdmissionViewRW {
  fn: CoreFunction['view'];
  queued: number;
  busy: number;
  idle: number;
  starting: number;
  startable: number;
  maxQueueLength: number;
  maxQueueDelayMs: number;
  estimatedWaitMs: number;
  startsInFlight: number;
  startSlots: number;
}

export class CoreState {
  readonly fns: CoreFunction[] = [];
  readonly counters: CoreCounters = zeroCounters();
  readonly byName = new Map<string, CoreFunction>();
  /** every instance slot ever used, by idx (recycled through `free`) */
  readonly slots: CoreInstance[] = [];
  readonly free: CoreInstance[] = [];
  readonly globalIdle: CoreInstance[] = [];
  /** idle instances by eviction order (only with fastEviction) */
  readonly idleIndex = new IdleHeap<CoreInstance>();
  /** the eviction policy exposes orderKey(): victims come from idleIndex instead of a scan */
  readonly fastEviction: boolean;
  readonly tiers: CoreTier[];
  readonly evCtx: EvictionContext;
  readonly av: AdmissionViewRW;
  /** functions waiting for a node-wide resource, FIFO (head index; lazily compacted) */
  waitList: CoreFunction[] = [];
  waitHead = 0;
  /** a resource was freed during this call: the waiting functions get their turn before it returns */
  needDrain = false;
  draining = false;
  /** memory charged for the live instances (MiB; accounting.ts: their sizes, or measured costs plus reserve) */
  usedMiB = 0;
  /** of which idle */
  idleMiB = 0;
  /** measured accounting (cfg.memory) and its reserve fraction */
  readonly measuredAccounting: boolean;
  readonly reserve: number;
  /** the host's memory pressure as the shell's guard last reported it (pressure.ts): 0 ok, 1 evict, 2 refuse, 3 stop */
  hostLevel: PressureLevel = 0;
  /** idle memory × time (MiB·ms) of idle periods that ended; idleMemoryTime() adds the running ones */
  idleMemTime = 0;
  busyN = 0;
  startingN = 0;
  /** issue 18: of the starts under way, those with the start CPU weight (CoreInstance.startWeighted) */
  weightedStartingN = 0;
  /** the starts under way (admission counts each at what remains of it: estimates.ts startEstimate) */
  readonly startingList: CoreInstance[] = [];
  /** scratch for startEstimate: when the starts under way end (a typed array: no boxed numbers per estimate) */
  slotEnds = new Float64Array(8);
  /** CPU the busy instances take (sum of their functions' cpuShare when assigned) */
  busyCpu = 0;
  /** starts the waiting functions want (admission's estimate counts them as queued ahead) */
  wantStartsTotal = 0;
  // fairness (fairness.ts, issue 18)
  /** admission.fairness is max-min */
  readonly fair: boolean;
  /**
   * the fair rule acts now: fair, and the CPU is short for a waiting function (fairness.ts cpuShort; set
   * before each pass); otherwise the waiting functions are served FIFO, as with fairness off
   */
  fairNow = false;
  /** the CPU the waiting functions' runs take (cores; cpuShort, at the latest pass) */
  cpuWanted = 0;
  /** functions waiting for a node-wide resource, as a heap by virtual time (beside waitList when fair) */
  readonly fairWait: CoreFunction[] = [];
  fairSeq = 0;
  /** virtual time of the latest grant: a function that becomes backlogged starts there (no credit banked while idle) */
  vtFloor = 0;
  /** the fair pass (node-wait.ts flush) is going through the waiting functions in order */
  inPass = false;
  /** in the pass: CPU that functions earlier in it wait for, and whether one of them waits for a start slot or memory */
  cpuReserved = 0;
  startsBlocked = false;
  /** sum of the shares of the functions with demand (queued requests, busy or starting instances) */
  demandShares = 0;
  /** measured CPU shares of runs, summed over the functions that have one (the guess for those that have none) */
  cpuShareSum = 0;
  cpuShareN = 0;
  /** run times were measured without a CPU share (the node's runs report no CPU time: fairWait's guess ends) */
  cpuBlind = false;
  /** the CPU time starts took as the shells measured it (fairness charges it: fairness.ts settleStart) */
  coldCpuMean = 0;
  coldCpuSeen = 0;
  restoreCpuMean = 0;
  restoreCpuSeen = 0;
  /** how long runs held their instance, node-wide (the guess for functions none of whose runs ended yet) */
  heldMean = 0;
  heldSeen = 0;
  /**
   * the longest mean run time (how long its runs held an instance) a function has had on this node: admission's
   * guess for a function none of whose runs ended (not a mean over runs: the many short runs of one function
   * say nothing of an unknown one's; the longest errs on the side of an early refusal)
   */
  heldFnMax = 0;
  /**
   * issue 18: the busy runs' wall time × their CPU share and their measured CPU time, both decayed per run: their
   * ratio is how much slower than their CPU the runs go lately (what the host leaves the node: fairness.ts fairWait)
   */
  runWallDecayed = 0;
  runCpuDecayed = 0;
  /** the admission estimate of the latest arrival that was not served at once (the shell records it) */
  lastEstimateMs = NaN;
  seq = 0;
  snapSeq = 0;
  cpuCursor = 0;
  closed = false;
  /** node-wide start costs the core observed (the estimate for functions never started) */
  coldSeen = 0;
  coldMean = 0;
  restoreSeen = 0;
  restoreMean = 0;
  /**
   * issue 18: how long starts really took lately (wall ms, a mean over the last few of each kind) and when the
   * latest ended: admission's start estimate holds at least that while it is recent (estimates.ts startDuration)
   */
  coldLately = 0;
  coldLatelyAt = -Infinity;
  restoreLately = 0;
  restoreLatelyAt = -Infinity;
  /** scratch for startDuration: the ages of the starts under way of one kind */
  readonly startAges: number[] = [];
  /** applySamples' scratch: per function (index × 4) sums and counts of a batch's idle measurements, and the functions seen */
  sampleAcc = new Float64Array(0);
  readonly sampleSeen: CoreFunction[] = [];

  constructor(
    readonly cfg: CoreConfig,
    readonly p: CorePolicies,
    readonly fx: CoreEffects,
  ) {
    this.fastEviction = !cfg.exactEviction && typeof p.eviction.orderKey === 'function';
    this.fair = (cfg.fairness ?? 'max-min') === 'max-min';
    const memory = cfg.memory ?? DEFAULT_MEMORY_ACCOUNTING;
    this.measuredAccounting = memory.accounting === 'measured';
    this.reserve = this.measuredAccounting ? Math.min(1, Math.max(0, memory.reserve)) : 0;
    this.tiers = cfg.tiers.map((t, i) => new CoreTier(i, t.name, t.latencyRank, t.capacityBytes > 0 ? t.capacityBytes : Infinity, t.dense === true));
    this.evCtx = { now: 0, rng: p.rng, keepAlive: p.keepAlive, fnOf: (inst) => (inst as CoreInstance).f.view };
    this.av = {
      fn: undefined as unknown as CoreFunction['view'],
      queued: 0,
      busy: 0,
      idle: 0,
      starting: 0,
      startable: 0,
      maxQueueLength: cfg.maxQueueLength,
      maxQueueDelayMs: cfg.maxQueueDelayMs,
      estimatedWaitMs: 0,
      startsInFlight: 0,
      startSlots: 0,
    };
  }
}
