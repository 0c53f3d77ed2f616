// Instances through their decision states: launched (starting), assigned
// (busy), available again (the head of the queue, else idle), stale (its
// function changed: stopped when free), stopped and released. Every count the
// core keeps (live, starting, busy, idle, memory) changes here and only here
// (a measured instance's charge changes in accounting.ts).

import type { CoreState } from './state.js';
import { CoreInstance, type CoreFunction, type StopCause } from './model.js';
import { dropExpired, qPop } from './queue.js';
import { awaitNode, unwait } from './node-wait.js';
import { BLOCK_CPU, BLOCK_ORDER, blockedOn, chargeRun, cpuGate, cpuNeed } from './fairness.js';
import { goIdle, leaveIdle } from './keepalive.js';
import { dropSnapshot, placeSnapshot } from './snapshots.js';
import { chargeStart } from './accounting.js';
import { startCost, startWeighted } from './estimates.js';

export function launch(s: CoreState, f: CoreFunction, prewarmKeepMs: number, now: number): CoreInstance {
  const inst = s.free.pop() ?? newSlot(s);
  inst.seq = ++s.seq;
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
  inst.counted = true;
  inst.prewarmKeepMs = prewarmKeepMs;
  inst.snapshot = undefined;
  inst.expireAt = Infinity;
  inst.armedAt = Infinity;
  inst.cpuSlot = s.cfg.cpuSlots > 0 ? s.cpuCursor++ % s.cfg.cpuSlots : -1;
  // issue 18: the start weight for this start? (decided here, once: the shell's cgroup and the simulator's CPU model follow it)
  inst.startWeighted = startWeighted(s, f);
  if (inst.startWeighted) s.weightedStartingN++;
  f.live++;
  f.starting++;
  s.startingN++;
  inst.startExpectMs = startCost(s, f);
  inst.startingPos = s.startingList.length;
  s.startingList.push(inst);
  const snap = f.snapshot;
  if (s.cfg.snapshots && snap?.ready) {
    inst.path = 'restore';
    inst.snapshot = snap;
    chargeStart(s, inst);
    snap.lastUsed = now;
    s.counters.restoreStarts++;
    s.fx.start(inst, { path: 'restore', snapshot: snap }, now);
  } else {
    inst.path = 'cold';
    chargeStart(s, inst);
    s.counters.coldStarts++;
    const target = s.cfg.snapshots && !snap && !f.keepWarm ? placeSnapshot(s, f, now) : undefined;
    inst.snapshot = target;
    s.fx.start(inst, target ? { path: 'cold', snapshot: target } : { path: 'cold' }, now);
  }
  return inst;
}

/** A start is no longer under way (ready, failed or stopped): out of the count and the list. */
export function leaveStarting(s: CoreState, inst: CoreInstance): void {
  s.startingN--;
  if (inst.startWeighted) s.weightedStartingN--;
  const l = s.startingList;
  const i = inst.startingPos;
  if (i < 0) return;
  inst.startingPos = -1;
  const last = l.pop()!;
  if (last === inst) return;
  l[i] = last;
  last.startingPos = i;
}

function newSlot(s: CoreState): CoreInstance {
  const inst = new CoreInstance(s.slots.length);
  s.slots.push(inst);
  return inst;
}

/**
 * An instance is free (just started, or a run ended): the head of its queue, else idle. With fairness, it
 * leaves the CPU to a function waiting before its own (it waits idle meanwhile).
 */
export function available(s: CoreState, inst: CoreInstance, fromStart: boolean, now: number): void {
  const f = inst.f;
  dropExpired(s, f, now);
  if (f.queued > 0 && !cpuGate(s, f, false)) {
    goIdle(s, inst, now);
    blockedOn(f, s.inPass ? BLOCK_CPU : BLOCK_ORDER, cpuNeed(s, f));
    awaitNode(s, f);
    return;
  }
  if (f.queued > 0 && s.busyN < s.cfg.maxConcurrentInvocations) {
    const arrival = f.qAt[f.qHead]!;
    const req = f.qReq[f.qHead]!;
    qPop(f);
    assign(s, req, arrival, inst, fromStart && inst.invocations === 0, now);
    if (f.queued === 0) unwait(s, f);
    return;
  }
  goIdle(s, inst, now);
}

export function assign(s: CoreState, req: number, arrival: number, inst: CoreInstance, fresh: boolean, now: number): void {
  const f = inst.f;
  if (inst.state === 'idle') leaveIdle(s, inst, now);
  inst.state = 'busy';
  inst.invocations++;
  inst.busySince = now;
  inst.cpuCharge = s.fair ? cpuNeed(s, f) : (f.view.cpuShare ?? 0);
  s.busyCpu += inst.cpuCharge;
  chargeRun(s, inst);
  inst.fnBusyPos = f.busy.length;
  f.busy.push(inst);
  s.busyN++;
  if (!fresh) s.counters.warm++;
  else if (inst.path === 'cold') s.counters.freshCold++;
  else s.counters.freshRestore++;
  s.fx.assign(req, inst, fresh, arrival, now);
}

export function leaveBusy(s: CoreState, inst: CoreInstance): void {
  const f = inst.f;
  const a = f.busy;
  const last = a.pop()!;
  if (last !== inst) {
    a[inst.fnBusyPos] = last;
    last.fnBusyPos = inst.fnBusyPos;
  }
  inst.fnBusyPos = -1;
  if (s.busyN >= s.cfg.maxConcurrentInvocations) s.needDrain = true;
  s.busyN--;
  s.busyCpu -= inst.cpuCharge;
  if (s.busyCpu < 1e-9) s.busyCpu = 0;
}

/**
 * The instances that are not stopping (of `f`, or all), oldest first. Slots are recycled in an order that
 * depends on when each shell reports an instance gone: decisions over many instances go by age instead.
 */
export function liveInstances(s: CoreState, f?: CoreFunction): CoreInstance[] {
  const out: CoreInstance[] = [];
  for (const inst of s.slots) if (inst.seq !== 0 && inst.state !== 'stopping' && (f === undefined || inst.f === f)) out.push(inst);
  return out.sort((a, b) => a.seq - b.seq);
}

/** Its function changed: idle instances stop now, the others when they are free. */
export function makeStale(s: CoreState, f: CoreFunction, now: number): void {
  for (const inst of liveInstances(s, f)) {
    if (inst.stale) continue;
    if (inst.state === 'idle') stopInst(s, inst, 'stale', now);
    else markStale(inst);
  }
}

/** Stops when it becomes free; no longer counts against its function's current instances. */
export function markStale(inst: CoreInstance): void {
  if (inst.stale) return;
  inst.stale = true;
  uncount(inst);
}

/** Leave the function's counts of current instances (once). */
function uncount(inst: CoreInstance): void {
  if (!inst.counted) return;
  inst.counted = false;
  inst.f.live--;
  if (inst.state === 'starting') inst.f.starting--;
}

/** Remove an instance from every count and list (it stops, or ended on its own). */
export function unaccount(s: CoreState, inst: CoreInstance, now: number): void {
  const f = inst.f;
  // by list position: goIdle may stop an instance that is in no list yet
  if (inst.fnIdlePos >= 0) leaveIdle(s, inst, now);
  else if (inst.fnBusyPos >= 0) leaveBusy(s, inst);
  else if (inst.state === 'starting') {
    leaveStarting(s, inst);
    // a cold start that was to leave a snapshot behind will not: free its reservation
    const snap = inst.snapshot;
    if (snap && inst.path === 'cold' && !snap.ready && f.snapshot === snap) dropSnapshot(s, snap, 'failed', now);
  }
  uncount(inst);
  s.usedMiB -= inst.chargedMiB;
  inst.armedAt = Infinity;
  inst.armToken++;
  s.needDrain = true;
}

export function stopInst(s: CoreState, inst: CoreInstance, cause: StopCause, now: number): void {
  if (inst.state === 'stopping') return;
  const f = inst.f;
  unaccount(s, inst, now);
  inst.state = 'stopping';
  if (cause === 'evicted') f.ka.onEvict?.(inst, f.view, now);
  else f.ka.onStop?.(inst, f.view, now);
  if (cause === 'requested') s.counters.requestedStops++;
  else if (cause === 'stale') s.counters.staleStops++;
  s.fx.stop(inst, cause, now);
  if (s.cfg.recycleOnStop) release(s, inst);
}

export function release(s: CoreState, inst: CoreInstance): void {
  if (inst.seq === 0) return;
  inst.seq = 0;
  inst.handle = undefined;
  inst.snapshot = undefined;
  s.free.push(inst);
}
