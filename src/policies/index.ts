// Policy factory: turns the `policies` config section into the objects that
// drive both the daemon's VmPool and the simulator.
import {
  policiesConfigSchema,
  type AdmissionConfig,
  type EvictionConfig,
  type KeepAliveConfig,
  type PlacementConfig,
  type PoliciesConfig,
  type PoliciesConfigInput,
  type SelectionConfig,
} from './config.js';
import { AlwaysAdmission } from './admission/always.js';
import { DeadlineAdmission } from './admission/deadline.js';
import { QueueLengthAdmission } from './admission/queue-length.js';
import { LruEviction } from './eviction/lru.js';
import { NoEviction } from './eviction/none.js';
import { PriorityEviction } from './eviction/priority.js';
import { RandomEviction } from './eviction/random.js';
import { FixedKeepAlive } from './keepalive/fixed.js';
import { GreedyDualKeepAlive } from './keepalive/greedy-dual.js';
import { HybridHistogramKeepAlive } from './keepalive/hybrid-histogram.js';
import { NoKeepAlive } from './keepalive/none.js';
import { KeepAliveRouter } from './keepalive/router.js';
import { loadPolicyModule } from './module-loader.js';
import { AdaptivePlacement } from './placement/adaptive.js';
import { FixedPlacement } from './placement/fixed.js';
import { StaticSlowdownPlacement } from './placement/slowdown-static.js';
import { createRng } from './rng.js';
import { LruSelection } from './selection/lru.js';
import { MruSelection } from './selection/mru.js';
import { RandomSelection } from './selection/random.js';
import type { AdmissionPolicy, EvictionPolicy, KeepAlivePolicy, PlacementPolicy, PolicySet, Rng, SelectionPolicy } from './types.js';

export * from './types.js';
export * from './config.js';
export { createRng, SeededRng } from './rng.js';
export { PolicyModuleError, loadPolicyModule, type PolicyModuleContext } from './module-loader.js';
export { NoKeepAlive, FixedKeepAlive, GreedyDualKeepAlive, HybridHistogramKeepAlive, KeepAliveRouter };
export { LruEviction, RandomEviction, NoEviction, PriorityEviction };
export { MruSelection, LruSelection, RandomSelection };
export { FixedPlacement, StaticSlowdownPlacement, AdaptivePlacement };
export { DeadlineAdmission, QueueLengthAdmission, AlwaysAdmission };
export type { HistogramWindows } from './keepalive/hybrid-histogram.js';

export interface CreatePoliciesOptions {
  /** Directory user policy modules are resolved from (the config file's directory). */
  baseDir: string;
  /** Rng for random policies and user modules (default: createRng(cfg.seed)). */
  rng?: Rng;
}

export interface ResolvedPolicySet extends PolicySet {
  /** The keep-alive policy that governs `fn` (its per-function override, else the default). */
  keepAliveFor(fn: string): KeepAlivePolicy;
  /** The parsed config, defaults filled in. */
  config: PoliciesConfig;
  rng: Rng;
}

/**
 * Build the policy objects from a `policies` config (raw or parsed: it is
 * parsed again, which is idempotent). PolicySet.keepAlive already dispatches
 * to per-function overrides; keepAliveFor(fn) exposes the one for a function.
 * Each call builds fresh objects (policies are stateful).
 */
export async function createPolicies(
  cfg: PoliciesConfigInput | PoliciesConfig | undefined,
  opts: CreatePoliciesOptions,
): Promise<ResolvedPolicySet> {
  const config = policiesConfigSchema.parse(cfg ?? {});
  const rng = opts.rng ?? createRng(config.seed);
  const ctx = { rng, baseDir: opts.baseDir };

  const defaultKeepAlive = await createKeepAlive(config.keepAlive, ctx, 'policies.keepAlive');
  const overrides = new Map<string, KeepAlivePolicy>();
  for (const [fn, kc] of Object.entries(config.perFunction)) {
    overrides.set(fn, await createKeepAlive(kc, ctx, `policies.perFunction.${fn}`));
  }
  const keepAlive = overrides.size > 0 ? new KeepAliveRouter(defaultKeepAlive, overrides) : defaultKeepAlive;

  return {
    keepAlive,
    eviction: await createEviction(config.eviction, ctx, 'policies.eviction'),
    selection: await createSelection(config.selection, ctx, 'policies.selection'),
    placement: await createPlacement(config.placement, ctx, 'policies.placement'),
    admission: await createAdmission(config.admission, ctx, 'policies.admission'),
    keepAliveFor: (fn: string) => overrides.get(fn) ?? defaultKeepAlive,
    config,
    rng,
  };
}

interface Ctx {
  rng: Rng;
  baseDir: string;
}

export async function createKeepAlive(c: KeepAliveConfig, ctx: Ctx, key = 'policies.keepAlive'): Promise<KeepAlivePolicy> {
  switch (c.policy) {
    case 'none':
      return new NoKeepAlive();
    case 'fixed':
      return new FixedKeepAlive({ ttlSeconds: c.ttlSeconds });
    case 'greedy-dual':
      return new GreedyDualKeepAlive({ defaultCostMs: c.defaultCostMs });
    case 'hybrid-histogram': {
      const { policy: _p, ...o } = c;
      return new HybridHistogramKeepAlive(o);
    }
    case 'module':
      return loadPolicyModule<KeepAlivePolicy>('keepAlive', key, c.module, c.options, ctx);
  }
}

export async function createEviction(c: EvictionConfig, ctx: Ctx, key = 'policies.eviction'): Promise<EvictionPolicy> {
  switch (c.policy) {
    case 'lru':
      return new LruEviction();
    case 'random':
      return new RandomEviction();
    case 'none':
      return new NoEviction();
    case 'priority':
      return new PriorityEviction();
    case 'module':
      return loadPolicyModule<EvictionPolicy>('eviction', key, c.module, c.options, ctx);
  }
}

export async function createSelection(c: SelectionConfig, ctx: Ctx, key = 'policies.selection'): Promise<SelectionPolicy> {
  switch (c.policy) {
    case 'mru':
      return new MruSelection();
    case 'lru':
      return new LruSelection();
    case 'random':
      return new RandomSelection(ctx.rng);
    case 'module':
      return loadPolicyModule<SelectionPolicy>('selection', key, c.module, c.options, ctx);
  }
}

export async function createPlacement(c: PlacementConfig, ctx: Ctx, key = 'policies.placement'): Promise<PlacementPolicy> {
  switch (c.policy) {
    case 'fixed':
      return new FixedPlacement({ tier: c.tier, action: c.action });
    case 'slowdown-static':
      return new StaticSlowdownPlacement({ threshold: c.threshold, functions: c.functions, unknown: c.unknown });
    case 'adaptive':
      return new AdaptivePlacement({ threshold: c.threshold, minSamples: c.minSamples });
    case 'module':
      return loadPolicyModule<PlacementPolicy>('placement', key, c.module, c.options, ctx);
  }
}

export async function createAdmission(c: AdmissionConfig, ctx: Ctx, key = 'policies.admission'): Promise<AdmissionPolicy> {
  switch (c.policy) {
    case 'deadline':
      return new DeadlineAdmission({ slack: c.slack });
    case 'queue-length':
      return new QueueLengthAdmission();
    case 'always':
      return new AlwaysAdmission();
    case 'module':
      return loadPolicyModule<AdmissionPolicy>('admission', key, c.module, c.options, ctx);
  }
}
