// A decision core's configuration for unit tests that drive PoolCore directly (no shell): a node of 2 cores,
// no snapshots, limits far away; each test overrides what it is about.
import type { CoreConfig } from '../../src/vmpool/core/model.js';

export function coreConfig(over: Partial<CoreConfig> = {}, starts: Partial<CoreConfig['starts']> = {}): CoreConfig {
  return {
    memoryBudgetMiB: 1000,
    lowWatermark: 0.8,
    highWatermark: 1,
    maxConcurrentInvocations: 100,
    maxQueueLength: 100,
    maxQueueDelayMs: 60_000,
    snapshots: false,
    tiers: [],
    starts: { maxConcurrent: 100, cores: 2, idleVmCpu: 0, defaultColdMs: 100, defaultRestoreMs: 10, preferWarm: false, backoffBaseMs: 1000, backoffMaxMs: 60_000, ...starts },
    cpuSlots: 0,
    ...over,
  };
}
