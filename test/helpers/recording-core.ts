// A decision core driven directly by a unit test (no shell): its effects recorded — the instances it starts,
// the requests it assigns, the requests it refuses (with when) — max-min fairness and deadline admission, the
// test's own config on top (test/helpers/core-config.ts). Times are passed in: the virtual clock.
import { createPolicies } from '../../src/policies/index.js';
import { PoolCore } from '../../src/vmpool/core/core.js';
import type { CoreConfig, CoreEffects, CoreInstance } from '../../src/vmpool/core/model.js';
import { coreConfig } from './core-config.js';

export interface Refusal {
  req: number;
  reason: string;
  arrival: number;
  now: number;
}

export async function recordingCore(over: Partial<CoreConfig> = {}, starts: Partial<CoreConfig['starts']> = {}): Promise<{ c: PoolCore; starts: CoreInstance[]; assigned: number[]; refused: Refusal[] }> {
  const launched: CoreInstance[] = [];
  const assigned: number[] = [];
  const refused: Refusal[] = [];
  const fx: CoreEffects = {
    start: (inst) => void launched.push(inst),
    assign: (req) => void assigned.push(req),
    reject: (req, _f, reason, _d, arrival, now) => void refused.push({ req, reason, arrival, now }),
    stop: () => undefined,
    wake: () => undefined,
    dropSnapshot: () => undefined,
    moveSnapshot: () => undefined,
  };
  const p = await createPolicies({ keepAlive: { policy: 'fixed', ttlSeconds: 3600 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' }, { baseDir: '.' });
  const cfg = coreConfig({ memoryBudgetMiB: 100_000, fairness: 'max-min', ...over }, starts);
  return { c: new PoolCore(cfg, p, fx), starts: launched, assigned, refused };
}
