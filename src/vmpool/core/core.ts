// PoolCore: every scheduling decision of a node, once. Admission and queueing,
// start-path choice (warm / restore / cold), instance selection, memory with
// watermarks and eviction, start slots, keep-alive expiry and pre-warming, and
// what to do with a placement decision. It is deterministic: time is passed in,
// it sets no timer and does no I/O; its decisions leave through CoreEffects and
// its timers are requested from the shell. Two shells drive it: VmPool (real
// clock, real Workers) and the simulator (virtual clock, modelled costs); the
// conformance test checks that both make the same decisions on the same trace.
//
// Rules settled here (docs/architecture.md "Decision core"):
// - Any instance that becomes available serves the head of its function's FIFO
//   queue; a request is not bound to the start it triggered.
// - Starts are a scheduled resource: at most startSlots() run at once; functions
//   waiting for a slot (or memory, or the concurrency limit) wait FIFO, and an
//   arrival never starts ahead of them. A function whose snapshot is being created
//   waits for it and scales out by restoring instead of cold-booting copies. A
//   request waits for a busy instance that will free up before a new start could
//   finish (starts.preferWarm).
// - Memory: starting past high × budget evicts idle instances down to low × budget,
//   all or nothing: nobody is evicted unless that admits the start (within the
//   budget). Pre-warming never evicts and never crosses the high watermark.
// - Keep-alive: keepWarmMs 0 stops at once; prewarmAfterMs > 0 unloads now and
//   pre-warms later (0 or absent: no pre-warm); placement keep-warm keeps idle
//   instances until evicted; onStop is called for every stop that is not an
//   eviction (onEvict), whether or not the instance ever served.

import type { EvictionContext, PlacementStats } from '../../policies/types.js';
import { IdleHeap } from './idle-heap.js';
import {
  CoreFunction,
  CoreInstance,
  CoreSnapshot,
  CoreTier,
  TIMER_DEADLINE,
  TIMER_EXPIRE,
  TIMER_PREWARM,
  TIMER_RECHECK,
  type CoreConfig,
  type CoreEffects,
  type CorePolicies,
  type FunctionSpec,
  type RejectCode,
  type SnapshotDropCause,
  type StartFailure,
  type StopCause,
  type TimerKind,
} from './model.js';

const STARTED = 0;
/** waits for its own instances (cap, snapshot being made, a warm instance soon) */
const FN_WAIT = 1;
/** waits for a node-wide resource (start slot, memory, concurrency) */
const NODE_WAIT = 2;

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
  startFailures: number;
  evictions: number;
  expirations: number;
  keepAliveStops: number;
  staleStops: number;
  requestedStops: number;
  lostInstances: number;
  rejectedQueueFull: number;
  rejectedOverloaded: number;
  rejectedQueueTimeout: number;
  rejectedDeleted: number;
  rejectedStartFailed: number;
  rejectedShutdown: number;
  snapshotsCreated: number;
  snapshotsDropped: number;
  /** placement wanted a snapshot but its tier had no room */
  snapshotsSkipped: number;
  peakMemoryMiB: number;
}

function zeroCounters(): CoreCounters {
  return {
    arrivals: 0,
    warm: 0,
    freshCold: 0,
    freshRestore: 0,
    coldStarts: 0,
    restoreStarts: 0,
    prewarms: 0,
    startFailures: 0,
    evictions: 0,
    expirations: 0,
    keepAliveStops: 0,
    staleStops: 0,
    requestedStops: 0,
    lostInstances: 0,
    rejectedQueueFull: 0,
    rejectedOverloaded: 0,
    rejectedQueueTimeout: 0,
    rejectedDeleted: 0,
    rejectedStartFailed: 0,
    rejectedShutdown: 0,
    snapshotsCreated: 0,
    snapshotsDropped: 0,
    snapshotsSkipped: 0,
    peakMemoryMiB: 0,
  };
}

/** The admission view, one mutable object refreshed per call. */
interface AdmissionViewRW {
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

export class PoolCore {
  readonly fns: CoreFunction[] = [];
  readonly counters: CoreCounters = zeroCounters();
  private readonly byName = new Map<string, CoreFunction>();
  /** every instance slot ever used, by idx (recycled through `free`) */
  private readonly slots: CoreInstance[] = [];
  private readonly free: CoreInstance[] = [];
  private readonly globalIdle: CoreInstance[] = [];
  private readonly idleIndex = new IdleHeap<CoreInstance>();
  private readonly fastEviction: boolean;
  private readonly tiers: CoreTier[];
  private readonly evCtx: EvictionContext;
  private readonly av: AdmissionViewRW;
  // functions waiting for a node-wide resource, FIFO (head index; lazily compacted)
  private waitList: CoreFunction[] = [];
  private waitHead = 0;
  private needDrain = false;
  private draining = false;
  private used = 0;
  private idleMem = 0;
  /** idle memory × time (MiB·ms) of idle periods that ended; idleMemoryTime() adds the running ones */
  private idleMemTime = 0;
  private busyN = 0;
  private startingN = 0;
  private busyCpu = 0;
  private wantStartsTotal = 0;
  private seq = 0;
  private snapSeq = 0;
  private cpuCursor = 0;
  private closed = false;
  // node-wide start costs the core observed (fallback for functions never started)
  private coldSeen = 0;
  private coldMean = 0;
  private restoreSeen = 0;
  private restoreMean = 0;

  constructor(
    readonly cfg: CoreConfig,
    private readonly p: CorePolicies,
    private readonly fx: CoreEffects,
  ) {
    this.fastEviction = !cfg.exactEviction && typeof p.eviction.orderKey === 'function';
    this.tiers = cfg.tiers.map((t, i) => new CoreTier(i, t.name, t.latencyRank, t.capacityBytes > 0 ? t.capacityBytes : Infinity));
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

  // ---- functions ---------------------------------------------------------

  /** Create a function, or update it: a new version makes its instances and snapshot stale. */
  defineFunction(name: string, spec: FunctionSpec, now: number): CoreFunction {
    const f = this.byName.get(name);
    if (!f) {
      const nf = new CoreFunction(this.fns.length, name, spec, this.p.keepAliveFor(name));
      this.fns.push(nf);
      this.byName.set(name, nf);
      return nf;
    }
    f.maxInstances = spec.maxInstances;
    if (spec.snapshotBytes !== undefined) f.snapshotBytes = spec.snapshotBytes;
    if (spec.version !== f.version || spec.memoryMiB !== f.memoryMiB) {
      f.version = spec.version;
      f.memoryMiB = spec.memoryMiB;
      f.view.memoryMiB = spec.memoryMiB;
      f.keepWarm = false;
      f.restores = 0;
      this.makeStale(f, now);
      if (f.snapshot) this.dropSnapshot(f.snapshot, 'invalidated', now);
    }
    this.pump(f, now);
    this.flush(now);
    return f;
  }

  /** Delete a function: its waiting requests are refused, its instances stop, its snapshot goes. */
  removeFunction(f: CoreFunction, now: number): void {
    if (f.deleted) return;
    f.deleted = true;
    this.byName.delete(f.name);
    while (f.queued > 0) this.rejectHead(f, 'deleted', undefined, now);
    this.makeStale(f, now);
    if (f.snapshot) this.dropSnapshot(f.snapshot, 'invalidated', now);
    this.setWant(f, 0);
    f.waiting = false;
    this.flush(now);
  }

  fn(name: string): CoreFunction | undefined {
    return this.byName.get(name);
  }

  /** New measured costs of a function (PerfManager's statistics, or the simulator's). */
  setCosts(f: CoreFunction, c: Partial<Omit<CoreFunction['view'], 'name' | 'memoryMiB'>>): void {
    const v = f.view;
    if (c.coldStartMs !== undefined) v.coldStartMs = c.coldStartMs;
    if (c.restoreMs !== undefined) v.restoreMs = c.restoreMs;
    if (c.warmStartMs !== undefined) v.warmStartMs = c.warmStartMs;
    if (c.runMs !== undefined) v.runMs = c.runMs;
    if (c.restoreMsByTier !== undefined) v.restoreMsByTier = c.restoreMsByTier;
    if (c.cpuShare !== undefined) v.cpuShare = c.cpuShare;
  }

  // ---- requests ----------------------------------------------------------

  /** Request `req` (a number the shell chose) for `f` arrives. */
  arrive(f: CoreFunction, req: number, now: number): void {
    this.counters.arrivals++;
    if (this.closed || f.deleted) {
      this.reject(req, f, this.closed ? 'shutting_down' : 'deleted', undefined, now, now);
      return;
    }
    f.ka.onInvocation(f.view, now);
    if (f.queued === 0 && f.idle.length > 0 && this.busyN < this.cfg.maxConcurrentInvocations) {
      const inst = f.idle.length === 1 ? f.idle[0]! : (this.p.selection.select(f.idle, now) as CoreInstance);
      this.assign(req, now, inst, false, now);
      return;
    }
    const d = this.p.admission.admit(this.admissionView(f, now), now);
    if (!d.admit) {
      this.reject(req, f, d.reason, d, now, now);
      return;
    }
    this.enqueue(f, req, now, now);
    this.pump(f, now);
    this.flush(now);
  }

  /** The instance assigned to `req` could not run it (its VM was gone): back to the head of the queue. */
  runRefused(inst: CoreInstance, req: number, arrival: number, now: number): void {
    const f = inst.f;
    this.counters.lostInstances++;
    if (inst.state === 'busy') this.stopInst(inst, 'lost', now);
    if (f.deleted || this.closed) {
      this.reject(req, f, f.deleted ? 'deleted' : 'shutting_down', undefined, arrival, now);
    } else {
      if (f.qHead > 0) {
        f.qHead--;
        f.qReq[f.qHead] = req;
        f.qAt[f.qHead] = arrival;
      } else {
        f.qReq.unshift(req);
        f.qAt.unshift(arrival);
      }
      this.armDeadline(f, this.deadlineOf(arrival));
      this.pump(f, now);
    }
    this.flush(now);
  }

  // ---- instance events ---------------------------------------------------

  /** A start finished: the instance is ready. */
  startDone(inst: CoreInstance, now: number): void {
    if (inst.state !== 'starting') return; // stopped meanwhile
    const f = inst.f;
    this.startingN--;
    if (!inst.stale) f.starting--;
    this.needDrain = true;
    inst.startCostMs = now - inst.createdAt;
    if (inst.path === 'cold') {
      this.coldSeen++;
      this.coldMean += (inst.startCostMs - this.coldMean) / Math.min(this.coldSeen, 20);
    } else {
      this.restoreSeen++;
      this.restoreMean += (inst.startCostMs - this.restoreMean) / Math.min(this.restoreSeen, 20);
      f.restores++;
      if (inst.snapshot && inst.snapshot === f.snapshot) this.revisitPlacement(f, inst.snapshot, now);
    }
    if (inst.stale || f.deleted) this.stopInst(inst, 'stale', now);
    else this.available(inst, true, now);
    this.flush(now);
  }

  /** A run finished: the instance is free again. */
  runDone(inst: CoreInstance, now: number): void {
    if (inst.state !== 'busy') return;
    this.leaveBusy(inst);
    inst.lastUsedAt = now;
    if (inst.stale || inst.f.deleted) this.stopInst(inst, 'stale', now);
    else this.available(inst, false, now);
    this.flush(now);
  }

  /**
   * The instance's VM ended: after a stop the core asked for, or on its own (a
   * crash while idle or busy, a failed start: `failure`).
   */
  gone(inst: CoreInstance, failure: StartFailure | undefined, now: number): void {
    if (inst.state === 'stopping') {
      this.release(inst);
      this.flush(now);
      return;
    }
    const f = inst.f;
    const wasStarting = inst.state === 'starting';
    this.unaccount(inst, now);
    inst.state = 'stopping';
    f.ka.onStop?.(inst, f.view, now);
    if (wasStarting) {
      this.counters.startFailures++;
      const snap = inst.snapshot;
      if (snap && inst.path === 'restore' && failure?.kind === 'restore-broken' && f.snapshot === snap) this.dropSnapshot(snap, 'broken', now);
      if (failure?.kind === 'boot' && f.queued > 0) this.rejectHead(f, 'start_failed', failure.detail, now);
      if (failure?.kind === 'init') while (f.queued > 0) this.rejectHead(f, 'start_failed', failure.detail, now);
    }
    this.release(inst);
    this.pump(f, now);
    this.flush(now);
  }

  /** A cold start took its snapshot (after init): restores can use it from now on. */
  snapshotReady(snap: CoreSnapshot, bytes: number, ref: unknown, now: number): void {
    const f = snap.f;
    if (f.snapshot !== snap || snap.ready) return;
    snap.tier.usedBytes += bytes - snap.bytes;
    snap.bytes = bytes;
    f.snapshotBytes = bytes;
    snap.ready = true;
    snap.ref = ref;
    snap.lastUsed = now;
    this.counters.snapshotsCreated++;
    this.pump(f, now);
    this.flush(now);
  }

  /**
   * The tier placement chose for this cold start's snapshot has no room on its
   * device (SnapshotManager's free-space check: its file system holds less than
   * the core's accounting thinks, e.g. a full tmpfs). Placement decides again
   * without the tiers already found full for this start (`full`): the snapshot
   * goes to another tier with room, else the start goes on without one.
   * Returns the new snapshot to prepare, or undefined.
   */
  snapshotNoRoom(inst: CoreInstance, full: ReadonlySet<string>, now: number): CoreSnapshot | undefined {
    const snap = inst.snapshot;
    const f = inst.f;
    if (!snap || f.snapshot !== snap || snap.ready) return undefined;
    this.dropSnapshot(snap, 'failed', now);
    const next = this.placeSnapshot(f, now, (t) => !full.has(t.name));
    // the start now leaves the new snapshot (its snapshotReady / snapshotFailed name this one)
    inst.snapshot = next;
    if (!next) this.counters.snapshotsSkipped++;
    this.pump(f, now);
    this.flush(now);
    return next;
  }

  /** Taking the snapshot failed (the start itself may go on). */
  snapshotFailed(snap: CoreSnapshot, now: number): void {
    if (snap.f.snapshot !== snap) return;
    this.dropSnapshot(snap, 'failed', now);
    this.pump(snap.f, now);
    this.flush(now);
  }

  /** A snapshot that exists on the node already (the daemon's catalogue at start). */
  addSnapshot(f: CoreFunction, version: string, tierName: string, bytes: number, lastUsed: number, ref: unknown): CoreSnapshot | undefined {
    const tier = this.tiers.find((t) => t.name === tierName);
    if (!tier || version !== f.version || !this.cfg.snapshots) return undefined;
    if (f.snapshot) return undefined; // one per function: the caller offers newest first
    const snap = new CoreSnapshot(++this.snapSeq, f, version, tier, bytes, lastUsed);
    snap.ready = true;
    snap.ref = ref;
    f.snapshot = snap;
    f.snapshotBytes = bytes;
    tier.snaps.push(snap);
    tier.usedBytes += bytes;
    return snap;
  }

  /** Stop the function's idle instances now and the others when they finish. */
  evictFunction(f: CoreFunction, now: number): number {
    let n = 0;
    for (const inst of this.slots) {
      if (inst.f !== f || inst.state === 'stopping' || inst.seq === 0) continue;
      n++;
      if (inst.state === 'idle') this.stopInst(inst, 'requested', now);
      else this.markStale(inst);
    }
    this.flush(now);
    return n;
  }

  /** Refuse everything waiting and stop every instance; later arrivals are refused. */
  shutdown(now: number): void {
    this.closed = true;
    for (const f of this.fns) while (f.queued > 0) this.rejectHead(f, 'shutting_down', undefined, now);
    for (const inst of this.slots) if (inst.seq !== 0 && inst.state !== 'stopping') this.stopInst(inst, 'shutdown', now);
  }

  timer(kind: TimerKind, target: number, token: number, now: number): void {
    switch (kind) {
      case TIMER_EXPIRE: {
        const inst = this.slots[target];
        if (!inst || inst.armToken !== token || inst.armedAt === Infinity) return;
        inst.armedAt = Infinity;
        if (inst.state !== 'idle') return; // re-armed when it is idle again
        if (now >= inst.expireAt) {
          this.counters.expirations++;
          this.stopInst(inst, 'expired', now);
        } else if (Number.isFinite(inst.expireAt)) this.armExpiry(inst, inst.expireAt);
        break;
      }
      case TIMER_PREWARM: {
        const f = this.fns[target];
        if (!f || f.prewarmToken !== token) return;
        this.prewarm(f, now);
        break;
      }
      case TIMER_DEADLINE: {
        const f = this.fns[target];
        if (!f || f.deadlineToken !== token || f.deadlineArmedAt === Infinity) return;
        f.deadlineArmedAt = Infinity;
        this.dropExpired(f, now);
        if (f.queued > 0) this.armDeadline(f, this.deadlineOf(f.qAt[f.qHead]!));
        else this.setWant(f, 0);
        break;
      }
      case TIMER_RECHECK: {
        const f = this.fns[target];
        if (!f || f.recheckToken !== token || f.recheckArmedAt === Infinity) return;
        f.recheckArmedAt = Infinity;
        this.pump(f, now);
        break;
      }
    }
    this.flush(now);
  }

  // ---- read-only state for shells and status -----------------------------

  get memoryUsedMiB(): number {
    return this.used;
  }
  get busyCount(): number {
    return this.busyN;
  }
  get startingCount(): number {
    return this.startingN;
  }
  get idleCount(): number {
    return this.globalIdle.length;
  }
  get idleMemoryMiB(): number {
    return this.idleMem;
  }
  /** Memory held by idle instances integrated over time up to `now` (MiB·ms): what keeping them warm cost. */
  idleMemoryTime(now: number): number {
    let t = this.idleMemTime;
    for (const inst of this.globalIdle) t += inst.memoryMiB * (now - inst.lastUsedAt);
    return t;
  }
  get queuedCount(): number {
    let n = 0;
    for (const f of this.fns) n += f.queued;
    return n;
  }
  /** Live instances (not stopping), in slot order. */
  *instances(): IterableIterator<CoreInstance> {
    for (const inst of this.slots) if (inst.seq !== 0 && inst.state !== 'stopping') yield inst;
  }
  /** Every instance the core still tracks, stopping ones included. */
  *allInstances(): IterableIterator<CoreInstance> {
    for (const inst of this.slots) if (inst.seq !== 0) yield inst;
  }
  tierUsage(): Array<{ name: string; usedBytes: number; capacityBytes: number; snapshots: number }> {
    return this.tiers.map((t) => ({ name: t.name, usedBytes: t.usedBytes, capacityBytes: t.capacityBytes, snapshots: t.snaps.length }));
  }

  /** Start slots now: configured, or host cores minus what idle and busy VMs take (at least 1). */
  startSlots(): number {
    const s = this.cfg.starts;
    if (s.maxConcurrent !== 'auto') return s.maxConcurrent;
    const load = this.globalIdle.length * s.idleVmCpu + this.busyCpu;
    return Math.max(1, Math.floor(s.cores - load + 1e-9));
  }

  // ---- queue -------------------------------------------------------------

  private enqueue(f: CoreFunction, req: number, arrival: number, now: number): void {
    f.qReq.push(req);
    f.qAt.push(arrival);
    if (f.queued === 1) this.armDeadline(f, this.deadlineOf(arrival));
    void now;
  }

  private qPop(f: CoreFunction): void {
    f.qHead++;
    if (f.qHead === f.qReq.length) {
      f.qReq.length = 0;
      f.qAt.length = 0;
      f.qHead = 0;
    } else if (f.qHead > 1024 && f.qHead * 2 > f.qReq.length) {
      f.qReq = f.qReq.slice(f.qHead);
      f.qAt = f.qAt.slice(f.qHead);
      f.qHead = 0;
    }
  }

  private rejectHead(f: CoreFunction, reason: RejectCode, detail: unknown, now: number): void {
    const req = f.qReq[f.qHead]!;
    const arrival = f.qAt[f.qHead]!;
    this.qPop(f);
    this.reject(req, f, reason, detail, arrival, now);
  }

  private dropExpired(f: CoreFunction, now: number): void {
    while (f.queued > 0 && now >= this.deadlineOf(f.qAt[f.qHead]!)) this.rejectHead(f, 'queue_timeout', undefined, now);
  }

  /**
   * When a request that arrived at `arrival` times out. The deadline timer and
   * every expiry check use this one expression: `now - arrival >= limit` can round
   * below the limit at the very time the timer fires, and the timer would re-arm
   * for the same instant forever.
   */
  private deadlineOf(arrival: number): number {
    return arrival + this.cfg.maxQueueDelayMs;
  }

  private reject(req: number, f: CoreFunction, reason: RejectCode, detail: unknown, arrival: number, now: number): void {
    const c = this.counters;
    switch (reason) {
      case 'queue_full':
        c.rejectedQueueFull++;
        break;
      case 'overloaded':
        c.rejectedOverloaded++;
        break;
      case 'queue_timeout':
        c.rejectedQueueTimeout++;
        break;
      case 'deleted':
        c.rejectedDeleted++;
        break;
      case 'start_failed':
        c.rejectedStartFailed++;
        break;
      case 'shutting_down':
        c.rejectedShutdown++;
        break;
    }
    this.fx.reject(req, f, reason, detail, arrival, now);
  }

  /** Serve f's queue: warm instances first, then new starts within every limit. */
  private pump(f: CoreFunction, now: number): void {
    while (f.queued > 0) {
      if (now >= this.deadlineOf(f.qAt[f.qHead]!)) {
        this.rejectHead(f, 'queue_timeout', undefined, now);
        continue;
      }
      if (this.busyN >= this.cfg.maxConcurrentInvocations) {
        this.await(f);
        return;
      }
      if (f.idle.length > 0) {
        const inst = f.idle.length === 1 ? f.idle[0]! : (this.p.selection.select(f.idle, now) as CoreInstance);
        const arrival = f.qAt[f.qHead]!;
        const req = f.qReq[f.qHead]!;
        this.qPop(f);
        this.assign(req, arrival, inst, false, now);
        continue;
      }
      if (f.queued <= f.starting) break; // starts under way cover everyone waiting
      const r = this.tryStart(f, now);
      if (r === STARTED) continue;
      if (r === NODE_WAIT) {
        this.await(f);
        return;
      }
      break;
    }
    this.unwait(f);
  }

  private tryStart(f: CoreFunction, now: number): number {
    if (f.deleted || this.closed) return FN_WAIT;
    if (f.live >= f.maxInstances) return FN_WAIT;
    // scale out from the snapshot being taken instead of cold-booting copies
    if (f.snapshot && !f.snapshot.ready) return FN_WAIT;
    if (this.cfg.starts.preferWarm && f.busy.length > 0) {
      const wait = this.warmWait(f, f.queued - f.starting, now);
      if (wait < this.startEstimate(f)) {
        this.armRecheck(f, now + Math.max(1, wait));
        return FN_WAIT;
      }
    }
    // FIFO among functions waiting for node-wide resources: no overtaking
    if (this.firstWaiting() !== undefined && this.firstWaiting() !== f) return NODE_WAIT;
    if (this.startingN >= this.startSlots()) return NODE_WAIT;
    if (!this.admitMemory(f.memoryMiB, now, true)) return NODE_WAIT;
    this.launch(f, NaN, now);
    return STARTED;
  }

  /** When the k-th request beyond f's starting instances would get a warm instance (ms from now). */
  private warmWait(f: CoreFunction, k: number, now: number): number {
    const run = f.view.runMs;
    if (run === undefined || f.busy.length === 0) return Infinity;
    let earliest = Infinity;
    for (const b of f.busy) {
      // an instance past its expected run time is assumed to need at least as long again as it has
      // run so far (a run 100× the mean is no sign that it ends in one mean run time)
      const end = b.busySince + run > now ? b.busySince + run : now + Math.max(run, now - b.busySince);
      if (end < earliest) earliest = end;
    }
    return earliest - now + Math.floor((Math.max(1, k) - 1) / f.busy.length) * run;
  }

  /** Expected time until a start for f now would be ready: its cost, times the rounds of starts queued ahead. */
  private startEstimate(f: CoreFunction): number {
    const restore = this.cfg.snapshots && f.snapshot?.ready === true;
    const cost = restore
      ? (f.view.restoreMs ?? (this.restoreSeen > 0 ? this.restoreMean : this.cfg.starts.defaultRestoreMs))
      : (f.view.coldStartMs ?? (this.coldSeen > 0 ? this.coldMean : this.cfg.starts.defaultColdMs));
    const slots = this.startSlots();
    const ahead = Math.max(0, this.startingN + this.wantStartsTotal - f.wantStarts - slots + 1);
    return cost * (1 + Math.ceil(ahead / slots));
  }

  private admissionView(f: CoreFunction, now: number): AdmissionViewRW {
    const v = this.av;
    v.fn = f.view;
    v.queued = f.queued;
    v.busy = f.busy.length;
    v.idle = f.idle.length;
    v.starting = f.starting;
    v.startable = Math.max(0, f.maxInstances - f.live);
    v.startsInFlight = this.startingN;
    v.startSlots = this.startSlots();
    // this request is number queued+1; covered by a start under way, a warm instance, or a new start
    const k = f.queued + 1 - f.starting;
    let est: number;
    if (k <= 0) est = this.startEstimate(f);
    else {
      const warm = this.warmWait(f, k, now);
      const start = v.startable > 0 || f.starting > 0 ? this.startEstimate(f) : Infinity;
      est = Math.min(warm, start);
      if (!Number.isFinite(est) && f.live > 0) est = this.startEstimate(f); // instances exist but nothing measured yet
    }
    v.estimatedWaitMs = est;
    return v;
  }

  // ---- waiting for node-wide resources -----------------------------------

  private await(f: CoreFunction): void {
    f.waiting = true;
    this.setWant(f, Math.max(0, Math.min(f.queued - f.starting, f.maxInstances - f.live)));
    if (!f.inWaitList) {
      f.inWaitList = true;
      this.waitList.push(f);
    }
  }

  private unwait(f: CoreFunction): void {
    f.waiting = false;
    this.setWant(f, 0);
  }

  private setWant(f: CoreFunction, n: number): void {
    this.wantStartsTotal += n - f.wantStarts;
    f.wantStarts = n;
  }

  private firstWaiting(): CoreFunction | undefined {
    const w = this.waitList;
    while (this.waitHead < w.length) {
      const f = w[this.waitHead]!;
      if (f.waiting && f.queued > 0 && !f.deleted) return f;
      f.inWaitList = false;
      f.waiting = false;
      this.setWant(f, 0);
      this.waitHead++;
    }
    if (this.waitHead > 0) {
      w.length = 0;
      this.waitHead = 0;
    }
    return undefined;
  }

  /** Resources were freed during this call: let the waiting functions go, in order. */
  private flush(now: number): void {
    if (this.draining) return;
    this.draining = true;
    let guard = 0;
    while (this.needDrain) {
      this.needDrain = false;
      for (;;) {
        const f = this.firstWaiting();
        if (!f) break;
        this.pump(f, now);
        if (f.waiting) break; // still blocked: everyone behind it waits too
        f.inWaitList = false;
        this.waitHead++;
      }
      if (++guard > 1_000_000) throw new Error('PoolCore: drain does not terminate');
    }
    this.draining = false;
  }

  // ---- starting ------------------------------------------------------------

  private launch(f: CoreFunction, prewarmKeepMs: number, now: number): CoreInstance {
    const inst = this.free.pop() ?? this.newSlot();
    inst.seq = ++this.seq;
    inst.id = `i${inst.seq}`;
    inst.fn = f.name;
    inst.f = f;
    inst.memoryMiB = f.memoryMiB;
    inst.state = 'starting';
    inst.createdAt = now;
    inst.lastUsedAt = now;
    inst.invocations = 0;
    inst.startCostMs = 0;
    inst.version = f.version;
    inst.stale = false;
    inst.prewarmKeepMs = prewarmKeepMs;
    inst.snapshot = undefined;
    inst.expireAt = Infinity;
    inst.armedAt = Infinity;
    inst.cpuSlot = this.cfg.cpuSlots > 0 ? this.cpuCursor++ % this.cfg.cpuSlots : -1;
    f.live++;
    f.starting++;
    this.startingN++;
    this.used += f.memoryMiB;
    if (this.used > this.counters.peakMemoryMiB) this.counters.peakMemoryMiB = this.used;
    const snap = f.snapshot;
    if (this.cfg.snapshots && snap?.ready) {
      inst.path = 'restore';
      inst.snapshot = snap;
      snap.lastUsed = now;
      this.counters.restoreStarts++;
      this.fx.start(inst, { path: 'restore', snapshot: snap }, now);
    } else {
      inst.path = 'cold';
      this.counters.coldStarts++;
      const target = this.cfg.snapshots && !snap && !f.keepWarm ? this.placeSnapshot(f, now) : undefined;
      inst.snapshot = target;
      this.fx.start(inst, target ? { path: 'cold', snapshot: target } : { path: 'cold' }, now);
    }
    return inst;
  }

  private newSlot(): CoreInstance {
    const inst = new CoreInstance(this.slots.length);
    this.slots.push(inst);
    return inst;
  }

  private prewarm(f: CoreFunction, now: number): void {
    if (f.deleted || this.closed || f.idle.length > 0 || f.starting > 0 || f.queued > 0 || f.live >= f.maxInstances) return;
    // speculative: never takes a start slot someone waits for, never evicts
    if (this.firstWaiting() !== undefined || this.startingN >= this.startSlots()) return;
    if (!this.admitMemory(f.memoryMiB, now, false)) return;
    this.counters.prewarms++;
    this.launch(f, f.prewarmKeepMs, now);
  }

  // ---- becoming available, idle, busy ------------------------------------

  /** An instance is free (just started, or a run ended): the head of its queue, else idle. */
  private available(inst: CoreInstance, fromStart: boolean, now: number): void {
    const f = inst.f;
    this.dropExpired(f, now);
    if (f.queued > 0 && this.busyN < this.cfg.maxConcurrentInvocations) {
      const arrival = f.qAt[f.qHead]!;
      const req = f.qReq[f.qHead]!;
      this.qPop(f);
      this.assign(req, arrival, inst, fromStart && inst.invocations === 0, now);
      if (f.queued === 0) this.unwait(f);
      return;
    }
    this.goIdle(inst, now);
  }

  private assign(req: number, arrival: number, inst: CoreInstance, fresh: boolean, now: number): void {
    const f = inst.f;
    if (inst.state === 'idle') this.leaveIdle(inst, now);
    inst.state = 'busy';
    inst.invocations++;
    inst.busySince = now;
    inst.cpuCharge = f.view.cpuShare ?? 0;
    this.busyCpu += inst.cpuCharge;
    inst.fnBusyPos = f.busy.length;
    f.busy.push(inst);
    this.busyN++;
    if (!fresh) this.counters.warm++;
    else if (inst.path === 'cold') this.counters.freshCold++;
    else this.counters.freshRestore++;
    this.fx.assign(req, inst, fresh, arrival, now);
  }

  private leaveBusy(inst: CoreInstance): void {
    const f = inst.f;
    const a = f.busy;
    const last = a.pop()!;
    if (last !== inst) {
      a[inst.fnBusyPos] = last;
      last.fnBusyPos = inst.fnBusyPos;
    }
    inst.fnBusyPos = -1;
    if (this.busyN >= this.cfg.maxConcurrentInvocations) this.needDrain = true;
    this.busyN--;
    this.busyCpu -= inst.cpuCharge;
    if (this.busyCpu < 1e-9) this.busyCpu = 0;
  }

  private goIdle(inst: CoreInstance, now: number): void {
    const f = inst.f;
    inst.state = 'idle';
    inst.lastUsedAt = now;
    let keep: number;
    if (!Number.isNaN(inst.prewarmKeepMs) && inst.invocations === 0) {
      keep = inst.prewarmKeepMs;
    } else {
      const d = f.ka.onIdle(inst, f.view, now);
      keep = d.keepWarmMs;
      if (!f.keepWarm && d.prewarmAfterMs !== undefined && d.prewarmAfterMs > 0) {
        this.counters.keepAliveStops++;
        this.stopInst(inst, 'prewarm-unload', now);
        f.prewarmKeepMs = keep;
        f.prewarmToken++;
        this.fx.wake(now + d.prewarmAfterMs, TIMER_PREWARM, f.index, f.prewarmToken);
        return;
      }
    }
    if (f.keepWarm) keep = Infinity;
    if (!(keep > 0)) {
      this.counters.keepAliveStops++;
      this.stopInst(inst, 'keepalive-none', now);
      return;
    }
    this.enterIdle(inst, keep, now);
  }

  private enterIdle(inst: CoreInstance, keepMs: number, now: number): void {
    const f = inst.f;
    inst.fnIdlePos = f.idle.length;
    f.idle.push(inst);
    inst.globalIdlePos = this.globalIdle.length;
    this.globalIdle.push(inst);
    this.idleMem += inst.memoryMiB;
    if (this.fastEviction) {
      this.evCtx.now = now;
      inst.evKey = this.p.eviction.orderKey!(inst, this.evCtx);
      this.idleIndex.push(inst);
    }
    inst.expireAt = now + keepMs;
    if (Number.isFinite(inst.expireAt) && inst.armedAt > inst.expireAt) this.armExpiry(inst, inst.expireAt);
    // an idle instance can be evicted for a start that waits for memory
    if (this.waitHead < this.waitList.length) this.needDrain = true;
  }

  private leaveIdle(inst: CoreInstance, now: number): void {
    const f = inst.f;
    const a = f.idle;
    const lastF = a.pop()!;
    if (lastF !== inst) {
      a[inst.fnIdlePos] = lastF;
      lastF.fnIdlePos = inst.fnIdlePos;
    }
    const g = this.globalIdle;
    const lastG = g.pop()!;
    if (lastG !== inst) {
      g[inst.globalIdlePos] = lastG;
      lastG.globalIdlePos = inst.globalIdlePos;
    }
    inst.fnIdlePos = -1;
    inst.globalIdlePos = -1;
    this.idleMem -= inst.memoryMiB;
    // lastUsedAt is when it became idle
    this.idleMemTime += inst.memoryMiB * (now - inst.lastUsedAt);
    if (this.fastEviction) this.idleIndex.remove(inst);
  }

  private armExpiry(inst: CoreInstance, at: number): void {
    inst.armedAt = at;
    inst.armToken++;
    this.fx.wake(at, TIMER_EXPIRE, inst.idx, inst.armToken);
  }

  private armDeadline(f: CoreFunction, at: number): void {
    if (f.deadlineArmedAt <= at) return; // an earlier one re-arms itself when it fires
    f.deadlineArmedAt = at;
    f.deadlineToken++;
    this.fx.wake(at, TIMER_DEADLINE, f.index, f.deadlineToken);
  }

  private armRecheck(f: CoreFunction, at: number): void {
    if (f.recheckArmedAt <= at) return;
    f.recheckArmedAt = at;
    f.recheckToken++;
    this.fx.wake(at, TIMER_RECHECK, f.index, f.recheckToken);
  }

  // ---- stopping ------------------------------------------------------------

  private makeStale(f: CoreFunction, now: number): void {
    for (const inst of this.slots) {
      if (inst.seq === 0 || inst.f !== f || inst.state === 'stopping' || inst.stale) continue;
      if (inst.state === 'idle') this.stopInst(inst, 'stale', now);
      else this.markStale(inst);
    }
  }

  /** Stops when it becomes free; no longer counts against its function's current instances. */
  private markStale(inst: CoreInstance): void {
    if (inst.stale) return;
    inst.stale = true;
    inst.f.live--;
    if (inst.state === 'starting') inst.f.starting--;
  }

  /** Remove an instance from every count and list (it stops, or ended on its own). */
  private unaccount(inst: CoreInstance, now: number): void {
    const f = inst.f;
    // by list position: goIdle may stop an instance that is in no list yet
    if (inst.fnIdlePos >= 0) this.leaveIdle(inst, now);
    else if (inst.fnBusyPos >= 0) this.leaveBusy(inst);
    else if (inst.state === 'starting') {
      this.startingN--;
      if (!inst.stale) f.starting--;
      // a cold start that was to leave a snapshot behind will not: free its reservation
      const snap = inst.snapshot;
      if (snap && inst.path === 'cold' && !snap.ready && f.snapshot === snap) this.dropSnapshot(snap, 'failed', now);
    }
    if (!inst.stale) f.live--;
    inst.stale = true; // its counts are settled: nothing may decrement them again
    this.used -= inst.memoryMiB;
    inst.armedAt = Infinity;
    inst.armToken++;
    this.needDrain = true;
  }

  private stopInst(inst: CoreInstance, cause: StopCause, now: number): void {
    if (inst.state === 'stopping') return;
    const f = inst.f;
    this.unaccount(inst, now);
    inst.state = 'stopping';
    if (cause === 'evicted') f.ka.onEvict?.(inst, f.view, now);
    else f.ka.onStop?.(inst, f.view, now);
    if (cause === 'requested') this.counters.requestedStops++;
    else if (cause === 'stale') this.counters.staleStops++;
    this.fx.stop(inst, cause, now);
    if (this.cfg.recycleOnStop) this.release(inst);
  }

  private release(inst: CoreInstance): void {
    if (inst.seq === 0) return;
    inst.seq = 0;
    inst.handle = undefined;
    inst.snapshot = undefined;
    this.free.push(inst);
  }

  // ---- memory --------------------------------------------------------------

  /** Room for `need` MiB more: evict idle instances past the high watermark, all or nothing. */
  private admitMemory(need: number, now: number, allowEvict: boolean): boolean {
    const B = this.cfg.memoryBudgetMiB;
    if (this.used + need <= this.cfg.highWatermark * B) return true;
    if (!allowEvict) return false;
    if (this.used + need - B > this.idleMem) return false; // even every idle instance would not do
    const low = this.cfg.lowWatermark * B;
    if (this.fastEviction) {
      // the same victims as selectVictims: lowest orderKey first until down to the low watermark
      while (this.used + need > low && this.idleIndex.size > 0) this.evict(this.idleIndex.peek()!, now);
      return this.used + need <= B;
    }
    this.evCtx.now = now;
    const victims = this.p.eviction.selectVictims(this.globalIdle, this.used + need - low, this.evCtx) as CoreInstance[];
    let freeable = 0;
    for (const v of victims) if (v.state === 'idle') freeable += v.memoryMiB;
    if (this.used + need - freeable > B) return false;
    for (const v of victims === this.globalIdle ? victims.slice() : victims) if (v.state === 'idle') this.evict(v, now);
    return true;
  }

  private evict(inst: CoreInstance, now: number): void {
    this.counters.evictions++;
    this.stopInst(inst, 'evicted', now);
  }

  // ---- snapshots -------------------------------------------------------------

  /** Placement decides whether this cold start leaves a snapshot, and where. */
  private placeSnapshot(f: CoreFunction, now: number, usable?: (t: CoreTier) => boolean): CoreSnapshot | undefined {
    // `usable`: a second placement for the same start, without the tiers whose device was full (snapshotNoRoom)
    const tiers = usable ? this.tiers.filter(usable) : this.tiers;
    if (tiers.length === 0) return undefined;
    const d = this.p.placement.place(f.view, tiers, this.placementStats(f));
    if (d.action === 'keep-warm' && !usable) {
      f.keepWarm = true;
      return undefined;
    }
    if (d.action !== 'snapshot') return undefined;
    const tier = tiers.find((t) => t.name === d.tier);
    if (!tier || !this.makeTierRoom(tier, f.snapshotBytes, f, now)) {
      this.counters.snapshotsSkipped++;
      return undefined;
    }
    const snap = new CoreSnapshot(++this.snapSeq, f, f.version, tier, f.snapshotBytes, now);
    tier.snaps.push(snap);
    tier.usedBytes += snap.bytes;
    f.snapshot = snap;
    return snap;
  }

  private placementStats(f: CoreFunction): PlacementStats | undefined {
    const v = f.view;
    if (v.restoreMsByTier === undefined && v.restoreMs === undefined) return undefined;
    const run = v.runMs ?? 0;
    const base = (v.warmStartMs ?? 0) + run || 1;
    const slowdownByTier: Record<string, number | undefined> = {};
    for (const t of this.tiers) {
      const r = v.restoreMsByTier?.[t.name] ?? (v.restoreMsByTier === undefined ? v.restoreMs : undefined);
      slowdownByTier[t.name] = r === undefined ? undefined : (r + run) / base;
    }
    return { slowdownByTier, samples: f.restores };
  }

  /** Evict least recently used ready snapshots of other functions until `bytes` fit (all or nothing). */
  private makeTierRoom(tier: CoreTier, bytes: number, forFn: CoreFunction, now: number): boolean {
    if (tier.usedBytes + bytes <= tier.capacityBytes) return true;
    const candidates = tier.snaps.filter((s) => s.ready && s.f !== forFn).sort((a, b) => a.lastUsed - b.lastUsed);
    let freeable = 0;
    for (const s of candidates) freeable += s.bytes;
    if (tier.usedBytes - freeable + bytes > tier.capacityBytes) return false;
    for (const s of candidates) {
      if (tier.usedBytes + bytes <= tier.capacityBytes) break;
      this.dropSnapshot(s, 'tier-full', now);
    }
    return true;
  }

  /** After a restore, placements that revisit their choice may move or drop the snapshot. */
  private revisitPlacement(f: CoreFunction, snap: CoreSnapshot, now: number): void {
    if (!this.p.placement.revisit) return;
    const d = this.p.placement.place(f.view, this.tiers, this.placementStats(f));
    if (d.action === 'snapshot' && d.tier === snap.tier.name) return;
    if (d.action !== 'snapshot') {
      this.dropSnapshot(snap, 'replaced', now);
      if (d.action === 'keep-warm') f.keepWarm = true;
      return;
    }
    const to = this.tiers.find((t) => t.name === d.tier);
    if (!to || !this.makeTierRoom(to, snap.bytes, f, now)) return;
    const from = snap.tier;
    from.usedBytes -= snap.bytes;
    from.snaps.splice(from.snaps.indexOf(snap), 1);
    snap.tier = to;
    to.snaps.push(snap);
    to.usedBytes += snap.bytes;
    this.fx.moveSnapshot(snap, from.name, to.name, now);
  }

  private dropSnapshot(snap: CoreSnapshot, cause: SnapshotDropCause, now: number): void {
    const f = snap.f;
    if (f.snapshot === snap) f.snapshot = undefined;
    const t = snap.tier;
    const i = t.snaps.indexOf(snap);
    if (i < 0) return;
    t.snaps.splice(i, 1);
    t.usedBytes -= snap.bytes;
    this.counters.snapshotsDropped++;
    this.fx.dropSnapshot(snap, cause, now);
  }
}
