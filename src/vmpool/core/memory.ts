// Node memory: a start within highWatermark × budget is admitted; past it, idle
// instances are evicted (eviction policy order) down to lowWatermark × budget,
// all or nothing: nobody is evicted unless that admits the start within the budget.

import type { CoreState } from './state.js';
import type { CoreInstance } from './model.js';
import { stopInst } from './instances.js';

/** Room for `need` MiB more: evict idle instances past the high watermark, all or nothing. */
export function admitMemory(s: CoreState, need: number, now: number, allowEvict: boolean): boolean {
  const B = s.cfg.memoryBudgetMiB;
  if (s.usedMiB + need <= s.cfg.highWatermark * B) return true;
  if (!allowEvict) return false;
  if (s.usedMiB + need - B > s.idleMiB) return false; // even every idle instance would not do
  const low = s.cfg.lowWatermark * B;
  if (s.fastEviction) {
    // the same victims as selectVictims: lowest orderKey first until down to the low watermark
    while (s.usedMiB + need > low && s.idleIndex.size > 0) evict(s, s.idleIndex.peek()!, now);
    return s.usedMiB + need <= B;
  }
  s.evCtx.now = now;
  const victims = s.p.eviction.selectVictims(s.globalIdle, s.usedMiB + need - low, s.evCtx) as CoreInstance[];
  let freeable = 0;
  for (const v of victims) if (v.state === 'idle') freeable += v.memoryMiB;
  if (s.usedMiB + need - freeable > B) return false;
  for (const v of victims === s.globalIdle ? victims.slice() : victims) if (v.state === 'idle') evict(s, v, now);
  return true;
}

function evict(s: CoreState, inst: CoreInstance, now: number): void {
  s.counters.evictions++;
  stopInst(s, inst, 'evicted', now);
}
