// Keep-alive and pre-warming: how long an instance that became idle stays (the
// function's keep-alive policy; placement keep-warm: until evicted), its expiry
// timer, the unload-now-and-pre-warm-later decision, and the pre-warm start
// itself (speculative: never takes a start slot someone waits for, never evicts).

import type { CoreState } from './state.js';
import { TIMER_EXPIRE, TIMER_PREWARM, type CoreFunction, type CoreInstance } from './model.js';
import { stopInst, launch } from './instances.js';
import { firstWaiting } from './node-wait.js';
import { startSlots } from './estimates.js';
import { admitMemory } from './memory.js';
import { mayStart } from './start-failures.js';

export function goIdle(s: CoreState, inst: CoreInstance, now: number): void {
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
      s.counters.prewarmUnloads++;
      stopInst(s, inst, 'prewarm-unload', now);
      f.prewarmKeepMs = keep;
      f.prewarmToken++;
      s.fx.wake(now + d.prewarmAfterMs, TIMER_PREWARM, f.index, f.prewarmToken);
      return;
    }
  }
  if (f.keepWarm) keep = Infinity;
  if (!(keep > 0)) {
    s.counters.keepAliveStops++;
    stopInst(s, inst, 'keepalive-none', now);
    return;
  }
  enterIdle(s, inst, keep, now);
}

function enterIdle(s: CoreState, inst: CoreInstance, keepMs: number, now: number): void {
  const f = inst.f;
  inst.fnIdlePos = f.idle.length;
  f.idle.push(inst);
  inst.globalIdlePos = s.globalIdle.length;
  s.globalIdle.push(inst);
  s.idleMiB += inst.memoryMiB;
  if (s.fastEviction) {
    s.evCtx.now = now;
    inst.evKey = s.p.eviction.orderKey!(inst, s.evCtx);
    s.idleIndex.push(inst);
  }
  inst.expireAt = now + keepMs;
  if (Number.isFinite(inst.expireAt) && inst.armedAt > inst.expireAt) armExpiry(s, inst, inst.expireAt);
  // an idle instance can be evicted for a start that waits for memory
  if (s.waitHead < s.waitList.length) s.needDrain = true;
}

export function leaveIdle(s: CoreState, inst: CoreInstance, now: number): void {
  const f = inst.f;
  const a = f.idle;
  const lastF = a.pop()!;
  if (lastF !== inst) {
    a[inst.fnIdlePos] = lastF;
    lastF.fnIdlePos = inst.fnIdlePos;
  }
  const g = s.globalIdle;
  const lastG = g.pop()!;
  if (lastG !== inst) {
    g[inst.globalIdlePos] = lastG;
    lastG.globalIdlePos = inst.globalIdlePos;
  }
  inst.fnIdlePos = -1;
  inst.globalIdlePos = -1;
  s.idleMiB -= inst.memoryMiB;
  // lastUsedAt is when it became idle
  s.idleMemTime += inst.memoryMiB * (now - inst.lastUsedAt);
  if (s.fastEviction) s.idleIndex.remove(inst);
}

function armExpiry(s: CoreState, inst: CoreInstance, at: number): void {
  inst.armedAt = at;
  inst.armToken++;
  s.fx.wake(at, TIMER_EXPIRE, inst.idx, inst.armToken);
}

/** The expiry timer of an idle instance fired (one armed at a time, re-armed lazily). */
export function expiryTimer(s: CoreState, inst: CoreInstance | undefined, token: number, now: number): void {
  if (!inst || inst.armToken !== token || inst.armedAt === Infinity) return;
  inst.armedAt = Infinity;
  if (inst.state !== 'idle') return; // re-armed when it is idle again
  if (now >= inst.expireAt) {
    s.counters.expirations++;
    stopInst(s, inst, 'expired', now);
  } else if (Number.isFinite(inst.expireAt)) armExpiry(s, inst, inst.expireAt);
}

/** The pre-warm timer of a function fired: start a fresh instance if nothing else needs one. */
export function prewarmTimer(s: CoreState, f: CoreFunction | undefined, token: number, now: number): void {
  if (!f || f.prewarmToken !== token) return;
  if (f.deleted || s.closed || f.idle.length > 0 || f.starting > 0 || f.queued > 0 || f.live >= f.maxInstances) return;
  // speculative: never takes a start slot someone waits for, never evicts, never probes a failing function
  if (firstWaiting(s) !== undefined || s.startingN >= startSlots(s)) return;
  if (mayStart(f, now) !== 'ok') return;
  if (!admitMemory(s, f.memoryMiB, now, false)) return;
  s.counters.prewarms++;
  launch(s, f, f.prewarmKeepMs, now);
}
