// The host's memory, as the shell's guard reads it (MemAvailable, PSI memory
// pressure, the memory cgroup the VMs live in), in levels of severity. The core
// answers each report, in this order:
//   1 evict   idle instances are evicted (eviction policy order) to free what the host lacks
//   2 refuse  and no start is admitted (memory.ts) until the level drops again
//   3 stop    and, once nothing idle is left to evict, the newest growing instance is
//             stopped (a starting one, or a busy one whose memory grew between its last
//             two measurements; else the newest busy one): its request fails with a typed
//             memory_pressure failure instead of the kernel's OOM killer choosing a victim
// One step per report: the shell reports again after its next reading, so the node
// stops at most one instance per guard interval and never retries in a loop.

import type { CoreState } from './state.js';
import type { CoreInstance } from './model.js';
import { stopInst } from './instances.js';
import { evict } from './memory.js';
import { pump } from './serve.js';

export const PRESSURE_OK = 0;
export const PRESSURE_EVICT = 1;
export const PRESSURE_REFUSE = 2;
export const PRESSURE_STOP = 3;
export type PressureLevel = typeof PRESSURE_OK | typeof PRESSURE_EVICT | typeof PRESSURE_REFUSE | typeof PRESSURE_STOP;

export interface PressureOutcome {
  /** idle instances evicted */
  evicted: number;
  /** the instance stopped (level stop, nothing idle left) */
  stopped: CoreInstance | undefined;
}

/** The guard's report: `level`, and `shortMiB` the host lacks to be back above its evict threshold. */
export function hostPressure(s: CoreState, level: PressureLevel, shortMiB: number, now: number): PressureOutcome {
  const was = s.hostLevel;
  s.hostLevel = level;
  // starts are admitted again: functions waiting for memory get their turn
  if (was >= PRESSURE_REFUSE && level < PRESSURE_REFUSE) s.needDrain = true;
  let evicted = 0;
  if (level >= PRESSURE_EVICT && s.globalIdle.length > 0) evicted = evictIdle(s, Math.max(1, shortMiB), now);
  let stopped: CoreInstance | undefined;
  if (level >= PRESSURE_STOP && evicted === 0) {
    stopped = newestGrowing(s);
    if (stopped) {
      s.counters.pressureStops++;
      const f = stopped.f;
      stopInst(s, stopped, 'memory-pressure', now);
      // its waiting requests (a stopped start served them) wait for memory like any start
      pump(s, f, now);
    }
  }
  return { evicted, stopped };
}

/** Evict idle instances worth `needMiB` (not all or nothing: every MiB helps the host). */
function evictIdle(s: CoreState, needMiB: number, now: number): number {
  let freed = 0;
  let n = 0;
  const take = (v: CoreInstance): void => {
    freed += v.chargedMiB;
    n++;
    s.counters.pressureEvictions++;
    evict(s, v, now);
  };
  if (s.fastEviction) {
    while (freed < needMiB && s.idleIndex.size > 0) take(s.idleIndex.peek()!);
    return n;
  }
  s.evCtx.now = now;
  const victims = s.p.eviction.selectVictims(s.globalIdle, needMiB, s.evCtx) as CoreInstance[];
  for (const v of victims === s.globalIdle ? victims.slice() : victims) if (v.state === 'idle') take(v);
  if (n === 0) {
    // a policy that never evicts (none) still must not leave the host to the OOM killer: least recently used first
    const lru = s.globalIdle.slice().sort((a, b) => a.lastUsedAt - b.lastUsedAt || a.seq - b.seq);
    for (const v of lru) {
      if (freed >= needMiB) break;
      take(v);
    }
  }
  return n;
}

/** The newest instance that grows: starting, or busy and measured larger than the time before; else the newest busy one. */
function newestGrowing(s: CoreState): CoreInstance | undefined {
  let growing: CoreInstance | undefined;
  let busy: CoreInstance | undefined;
  for (const inst of s.slots) {
    if (inst.seq === 0) continue;
    if (inst.state === 'busy' && (!busy || inst.seq > busy.seq)) busy = inst;
    const grows = inst.state === 'starting' || (inst.state === 'busy' && inst.measuredMiB > inst.prevMeasuredMiB);
    if (grows && (!growing || inst.seq > growing.seq)) growing = inst;
  }
  return growing ?? busy;
}
