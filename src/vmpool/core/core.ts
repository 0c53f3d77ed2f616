// PoolCore: every scheduling decision of a node, once. It is deterministic: time
// is passed in, it sets no timer and does no I/O; its decisions leave through
// CoreEffects and its timers are requested from the shell. Two shells drive it:
// VmPool (real clock, real Workers) and the simulator (virtual clock, modelled
// costs); the conformance test checks that both make the same decisions on the
// same trace, faults included.
//
// This file is the core's only entry point: each public method is an event, and
// the rules live in one module per responsibility, as plain functions over the
// shared state (state.ts):
//   queue.ts           each function's FIFO queue and deadlines; every refusal
//   estimates.ts       start slots, when a busy instance frees up, start cost, admission's wait estimate
//   serve.ts           serving a function's queue: warm instances first, then starts within every limit
//   node-wait.ts       functions waiting for a node-wide resource (slot, memory, concurrency, CPU), FIFO or fair
//   fairness.ts        max-min fair sharing of the CPU among functions under overload (issue 18)
//   instances.ts       launch, assign, available, stale, stop: every count changes there
//   keepalive.ts       idle time, expiry, unload-and-pre-warm, the pre-warm start
//   memory.ts          watermarks and eviction (all or nothing)
//   accounting.ts      what each instance is charged: its size, or its measured cost plus a reserve
//   pressure.ts        the host's memory running short: evict idle, refuse starts, stop the newest growing
//   snapshots.ts       placement on tiers, room, two-phase moves, drops
//   start-failures.ts  what a failed start does, and the back-off that bounds retries
//   forget.ts          forgetting a function that holds nothing, and recalling it as it was (the simulator's nodes)
// docs/architecture.md ("The decision core") states the rules in one table.

import type { CoreCounters } from './state.js';
import { CoreState } from './state.js';
import {
  TIMER_DEADLINE,
  TIMER_EXPIRE,
  TIMER_PREWARM,
  TIMER_RECHECK,
  type CoreConfig,
  type CoreEffects,
  CoreFunction,
  type CoreInstance,
  type CorePolicies,
  type CoreSnapshot,
  type FunctionSpec,
  type MemorySample,
  type StartFailure,
  type TimerKind,
} from './model.js';
import { deadlineOf, dropExpired, enqueue, armDeadline, reject, rejectHead, requeueHead } from './queue.js';
import { admissionView, noteStartCost, startSlots } from './estimates.js';
import { flush, setWant, unwait } from './node-wait.js';
import { activate, cpuGate, noteCpuShare, noteDemand, setShare, settleRun, settleStart } from './fairness.js';
import { pump, selectIdle } from './serve.js';
import { assign, available, leaveBusy, leaveStarting, liveInstances, makeStale, markStale, release, stopInst, unaccount } from './instances.js';
import { expiryTimer, prewarmTimer } from './keepalive.js';
import * as snapshots from './snapshots.js';
import { firstRunBroken, noteRestoredRun, noteStartSuccess, snapshotNotTaken, startFailed } from './start-failures.js';
import { applySamples, forgetEstimates, idleFit, memoryTotals, type MemoryTotals } from './accounting.js';
import { hostPressure, type PressureLevel, type PressureOutcome } from './pressure.js';
import { forget, holds, recall, type ForgottenFunction } from './forget.js';

export type { CoreCounters } from './state.js';
export type { MemoryTotals } from './accounting.js';
export type { ForgottenFunction } from './forget.js';
export { PRESSURE_OK, PRESSURE_EVICT, PRESSURE_REFUSE, PRESSURE_STOP, type PressureLevel, type PressureOutcome } from './pressure.js';

export class PoolCore {
  private readonly s: CoreState;
  /** the slot of a forgotten function in s.fns (deleted: every event for it is ignored), and how many there are */
  private vacant: CoreFunction | undefined;
  private forgottenN = 0;

  constructor(cfg: CoreConfig, p: CorePolicies, fx: CoreEffects) {
    this.s = new CoreState(cfg, p, fx);
  }

  get cfg(): CoreConfig {
    return this.s.cfg;
  }
  get fns(): readonly CoreFunction[] {
    return this.s.fns;
  }
  get counters(): CoreCounters {
    return this.s.counters;
  }

  // ---- functions ---------------------------------------------------------

  /** Create a function, or update it: a new version makes its instances and snapshot stale. */
  defineFunction(name: string, spec: FunctionSpec, now: number): CoreFunction {
    const s = this.s;
    const f = s.byName.get(name);
    if (!f) {
      const nf = new CoreFunction(s.fns.length, name, spec, s.p.keepAliveFor(name));
      s.fns.push(nf);
      s.byName.set(name, nf);
      return nf;
    }
    f.maxInstances = spec.maxInstances;
    if (spec.snapshotBytes !== undefined) f.snapshotBytes = spec.snapshotBytes;
    setShare(s, f, spec.share ?? 1);
    if (spec.version !== f.version || spec.memoryMiB !== f.memoryMiB) {
      f.version = spec.version;
      f.memoryMiB = spec.memoryMiB;
      f.view.memoryMiB = spec.memoryMiB;
      f.keepWarm = false;
      f.restores = 0;
      // a new version starts with a clean slate: its predecessor's failures say nothing about it
      f.failStreak = 0;
      f.backoffUntil = 0;
      f.snapFailStreak = 0;
      f.noSnapshotUntil = 0;
      forgetEstimates(f);
      makeStale(s, f, now);
      if (f.snapshot) snapshots.dropSnapshot(s, f.snapshot, 'invalidated', now);
    }
    pump(s, f, now);
    flush(s, now);
    return f;
  }

  /** Delete a function: its waiting requests are refused, its instances stop, its snapshot goes. */
  removeFunction(f: CoreFunction, now: number): void {
    const s = this.s;
    if (f.deleted) return;
    f.deleted = true;
    s.byName.delete(f.name);
    while (f.queued > 0) rejectHead(s, f, 'deleted', undefined, now);
    makeStale(s, f, now);
    if (f.snapshot) snapshots.dropSnapshot(s, f.snapshot, 'invalidated', now);
    unwait(s, f);
    noteDemand(s, f);
    flush(s, now);
  }

  fn(name: string): CoreFunction | undefined {
    return this.s.byName.get(name);
  }

  /**
   * issue 23: forget a function that holds nothing (no instance in any state, nothing queued or waiting, no
   * snapshot, no deadline or recheck timer; a pre-warm timer the caller must know of: the core cannot tell one
   * that fired from one pending). Undefined when it holds something. What it learned comes back with
   * recallFunction(r, spec), at the same index, as if it had never been forgotten; `spec` is the one it will
   * be recalled with.
   */
  forgetFunction(f: CoreFunction, spec: FunctionSpec): ForgottenFunction | undefined {
    const s = this.s;
    if (s.fns[f.index] !== f || holds(s, f) !== undefined) return undefined;
    this.vacant ??= vacantFunction(s.p.keepAlive);
    this.forgottenN++;
    return forget(s, f, spec, this.vacant);
  }

  /** Define again a function forgotten by forgetFunction. */
  recallFunction(r: ForgottenFunction, spec: FunctionSpec): CoreFunction {
    this.forgottenN--;
    return recall(this.s, r, spec);
  }

  /** Functions defined and not forgotten (deleted ones included). */
  get functionCount(): number {
    return this.s.fns.length - this.forgottenN;
  }

  /** New measured costs of a function (PerfManager's statistics, or the simulator's). */
  setCosts(f: CoreFunction, c: Partial<Omit<CoreFunction['view'], 'name' | 'memoryMiB'>>): void {
    const v = f.view;
    if (c.coldStartMs !== undefined) v.coldStartMs = c.coldStartMs;
    if (c.restoreMs !== undefined) v.restoreMs = c.restoreMs;
    if (c.warmStartMs !== undefined) v.warmStartMs = c.warmStartMs;
    if (c.runMs !== undefined) v.runMs = c.runMs;
    if (c.restoreMsByTier !== undefined) v.restoreMsByTier = c.restoreMsByTier;
    if (c.cpuShare !== undefined) {
      noteCpuShare(this.s, v.cpuShare, c.cpuShare);
      v.cpuShare = c.cpuShare;
    } else if (c.runMs !== undefined) this.s.cpuBlind = true;
  }

  // ---- requests ----------------------------------------------------------

  /** Request `req` (a number the shell chose) for `f` arrives. */
  arrive(f: CoreFunction, req: number, now: number): void {
    const s = this.s;
    s.counters.arrivals++;
    s.lastEstimateMs = NaN;
    if (s.closed || f.deleted) {
      reject(s, req, f, s.closed ? 'shutting_down' : 'deleted', undefined, now, now);
      return;
    }
    f.ka.onInvocation(f.view, now);
    activate(s, f);
    if (f.queued === 0 && f.idle.length > 0 && s.busyN < s.cfg.maxConcurrentInvocations && cpuGate(s, f, false)) {
      assign(s, req, now, selectIdle(s, f, now), false, now);
      noteDemand(s, f);
      return;
    }
    const d = s.p.admission.admit(admissionView(s, f, now), now);
    if (!d.admit) {
      reject(s, req, f, d.reason, d, now, now);
      return;
    }
    enqueue(s, f, req, now);
    pump(s, f, now);
    flush(s, now);
  }

  /**
   * The instance assigned to `req` could not run it: its VM was already gone, or
   * (`failure` restore-broken) it is a restored clone whose first run found the
   * restore unusable (it refused the resync the run carried). The request goes
   * back to the head of its queue; a broken snapshot is dropped, so a cold start
   * serves it.
   */
  runRefused(inst: CoreInstance, req: number, arrival: number, now: number, failure?: StartFailure): void {
    const s = this.s;
    const f = inst.f;
    if (failure?.kind === 'restore-broken') firstRunBroken(s, inst, failure, now);
    else s.counters.lostInstances++;
    if (inst.state === 'busy') stopInst(s, inst, failure ? 'broken' : 'lost', now);
    if (f.deleted || s.closed) reject(s, req, f, f.deleted ? 'deleted' : 'shutting_down', undefined, arrival, now);
    else {
      requeueHead(s, f, req, arrival);
      pump(s, f, now);
    }
    noteDemand(s, f);
    flush(s, now);
  }

  // ---- instance events ---------------------------------------------------

  /**
   * A start finished: the instance is ready (`cpuMs`: the CPU time its VMMs took for it, when the shell
   * measured it; fairness charges that rather than its time).
   */
  startDone(inst: CoreInstance, now: number, cpuMs?: number): void {
    const s = this.s;
    if (inst.state !== 'starting') return; // stopped meanwhile
    const f = inst.f;
    leaveStarting(s, inst);
    if (inst.counted) f.starting--;
    s.needDrain = true;
    inst.startCostMs = now - inst.createdAt;
    noteStartCost(s, inst);
    settleStart(s, inst, now, cpuMs);
    noteStartSuccess(f);
    if (inst.path === 'restore') {
      f.restores++;
      if (inst.snapshot && inst.snapshot === f.snapshot) snapshots.revisitPlacement(s, f, inst.snapshot, now);
    }
    if (inst.stale || f.deleted) stopInst(s, inst, 'stale', now);
    else available(s, inst, true, now);
    noteDemand(s, f);
    flush(s, now);
  }

  /** A run finished: the instance is free again (`cpuMs`: the CPU time the run took, when the shell measured it). */
  runDone(inst: CoreInstance, now: number, cpuMs?: number): void {
    const s = this.s;
    if (inst.state !== 'busy') return;
    settleRun(s, inst, now, cpuMs);
    leaveBusy(s, inst);
    inst.lastUsedAt = now;
    noteRestoredRun(inst);
    // with fairness the CPU it frees may go to a waiting function (when it is short: the pass decides)
    if (s.fair && s.fairWait.length > 0) s.needDrain = true;
    if (inst.stale || inst.f.deleted) stopInst(s, inst, 'stale', now);
    else available(s, inst, false, now);
    noteDemand(s, inst.f);
    flush(s, now);
  }

  /**
   * The instance's VM ended: after a stop the core asked for, or on its own (a
   * crash while idle or busy, a failed start: `failure`).
   */
  gone(inst: CoreInstance, failure: StartFailure | undefined, now: number): void {
    const s = this.s;
    if (inst.state === 'stopping') {
      release(s, inst);
      flush(s, now);
      return;
    }
    const f = inst.f;
    const wasStarting = inst.state === 'starting';
    if (wasStarting) settleStart(s, inst, now);
    unaccount(s, inst, now);
    inst.state = 'stopping';
    f.ka.onStop?.(inst, f.view, now);
    if (wasStarting) startFailed(s, inst, failure, now);
    release(s, inst);
    pump(s, f, now);
    noteDemand(s, f);
    flush(s, now);
  }

  /** A cold start took its snapshot (after init): restores can use it from now on. */
  snapshotReady(snap: CoreSnapshot, bytes: number, ref: unknown, now: number): void {
    const s = this.s;
    if (!snapshots.snapshotReady(s, snap, bytes, ref, now)) return;
    pump(s, snap.f, now);
    flush(s, now);
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
    const s = this.s;
    const next = snapshots.snapshotNoRoom(s, inst, full, now);
    pump(s, inst.f, now);
    flush(s, now);
    return next;
  }

  /** Taking (or preparing) the snapshot failed; the function's next snapshots back off. */
  snapshotFailed(snap: CoreSnapshot, now: number): void {
    const s = this.s;
    if (snap.f.snapshot !== snap) return;
    snapshots.dropSnapshot(s, snap, 'failed', now);
    snapshotNotTaken(s, snap.f, now);
    pump(s, snap.f, now);
    flush(s, now);
  }

  /** A snapshot that exists on the node already (the daemon's catalogue at start). */
  addSnapshot(f: CoreFunction, version: string, tierName: string, bytes: number, lastUsed: number, ref: unknown): CoreSnapshot | undefined {
    return snapshots.addSnapshot(this.s, f, version, tierName, bytes, lastUsed, ref);
  }

  /** The shell moved a snapshot's files to the tier the core asked for (moveSnapshot); `bytes`: what they take there. */
  moveDone(snap: CoreSnapshot, bytes?: number): void {
    snapshots.moveDone(this.s, snap, bytes);
  }

  /** Moving a snapshot's files failed: it stays on its tier. */
  moveFailed(snap: CoreSnapshot): void {
    snapshots.moveFailed(this.s, snap);
  }

  // ---- memory --------------------------------------------------------------

  /**
   * The shell's sampler measured these instances (their VMMs' PSS). Under measured
   * accounting their charges follow (accounting.ts); memory freed lets waiting starts go.
   */
  measured(samples: readonly MemorySample[], now: number): void {
    applySamples(this.s, samples);
    flush(this.s, now);
  }

  /** The host's memory as the shell's guard read it (pressure.ts): evict, refuse starts, stop the newest growing instance. */
  hostPressure(level: PressureLevel, shortMiB: number, now: number): PressureOutcome {
    const out = hostPressure(this.s, level, shortMiB, now);
    flush(this.s, now);
    return out;
  }

  /** Stop the function's idle instances now and the others when they finish. */
  evictFunction(f: CoreFunction, now: number): number {
    const s = this.s;
    let n = 0;
    for (const inst of liveInstances(s, f)) {
      n++;
      if (inst.state === 'idle') stopInst(s, inst, 'requested', now);
      else markStale(inst);
    }
    flush(s, now);
    return n;
  }

  /** Refuse everything waiting and stop every instance; later arrivals are refused. */
  shutdown(now: number): void {
    const s = this.s;
    s.closed = true;
    for (const f of s.fns) while (f.queued > 0) rejectHead(s, f, 'shutting_down', undefined, now);
    for (const inst of liveInstances(s)) stopInst(s, inst, 'shutdown', now);
  }

  timer(kind: TimerKind, target: number, token: number, now: number): void {
    const s = this.s;
    switch (kind) {
      case TIMER_EXPIRE:
        expiryTimer(s, s.slots[target], token, now);
        break;
      case TIMER_PREWARM:
        prewarmTimer(s, s.fns[target], token, now);
        break;
      case TIMER_DEADLINE: {
        const f = s.fns[target];
        if (!f || f.deadlineToken !== token || f.deadlineArmedAt === Infinity) return;
        f.deadlineArmedAt = Infinity;
        dropExpired(s, f, now);
        if (f.queued > 0) armDeadline(s, f, deadlineOf(s, f.qAt[f.qHead]!));
        else if (s.fairNow && f.waiting) {
          // it no longer waits: whoever waits behind it may go now
          unwait(s, f);
          s.needDrain = true;
        } else setWant(s, f, 0);
        noteDemand(s, f);
        break;
      }
      case TIMER_RECHECK: {
        const f = s.fns[target];
        if (!f || f.recheckToken !== token || f.recheckArmedAt === Infinity) return;
        f.recheckArmedAt = Infinity;
        pump(s, f, now);
        break;
      }
    }
    flush(s, now);
  }

  // ---- read-only state for shells and status -----------------------------

  get memoryUsedMiB(): number {
    return this.s.usedMiB;
  }
  /** Charged, nominal and measured memory of the live instances. */
  memoryTotals(): MemoryTotals {
    return memoryTotals(this.s);
  }
  /** How many more idle instances of this size the budget admits now. */
  idleFit(sizeMiB: number): number {
    return idleFit(this.s, sizeMiB);
  }
  /** The host memory pressure level last reported (0 ok … 3 stop). */
  get hostLevel(): PressureLevel {
    return this.s.hostLevel;
  }
  /** Instances that are not stopping. */
  get liveCount(): number {
    let n = 0;
    for (const inst of this.s.slots) if (inst.seq !== 0 && inst.state !== 'stopping') n++;
    return n;
  }
  get busyCount(): number {
    return this.s.busyN;
  }
  get startingCount(): number {
    return this.s.startingN;
  }
  get idleCount(): number {
    return this.s.globalIdle.length;
  }
  /** Memory held by idle instances integrated over time up to `now` (MiB·ms): what keeping them warm cost. */
  idleMemoryTime(now: number): number {
    const s = this.s;
    let t = s.idleMemTime;
    for (const inst of s.globalIdle) t += inst.memoryMiB * (now - inst.lastUsedAt);
    return t;
  }
  get queuedCount(): number {
    let n = 0;
    for (const f of this.s.fns) n += f.queued;
    return n;
  }
  /** Every instance the core still tracks, stopping ones included. */
  *allInstances(): IterableIterator<CoreInstance> {
    for (const inst of this.s.slots) if (inst.seq !== 0) yield inst;
  }
  tierUsage(): Array<{ name: string; usedBytes: number; capacityBytes: number; snapshots: number }> {
    return this.s.tiers.map((t) => ({ name: t.name, usedBytes: t.usedBytes, capacityBytes: t.capacityBytes, snapshots: t.snaps.length }));
  }
  /** Start slots now: configured, or host cores minus what idle and busy VMs take (at least 1). */
  startSlots(): number {
    return startSlots(this.s);
  }
  /** The admission estimate of the latest arrival that was not served at once (ms; NaN before any). */
  get lastEstimateMs(): number {
    return this.s.lastEstimateMs;
  }
}

/** What a forgotten function's slot holds: deleted (arrivals and pumps ignore it), tokens no timer carries. */
function vacantFunction(ka: CorePolicies['keepAlive']): CoreFunction {
  const v = new CoreFunction(-1, '', { memoryMiB: 0, maxInstances: 0, version: '' }, ka);
  v.deleted = true;
  v.prewarmToken = -1;
  v.deadlineToken = -1;
  v.recheckToken = -1;
  return v;
}
