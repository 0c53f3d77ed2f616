// zod schemas of the `policies` section of the daemon config (also used by the
// simulator's --config). Every family accepts a shorthand string
// (`keepAlive: greedy-dual`) or an object `{ policy: NAME, ...options }`;
// `{ policy: 'module', module, options }` loads a user policy (see index.ts).
import { z } from 'zod';

const shorthand = (v: unknown): unknown => (typeof v === 'string' ? { policy: v } : v);

const moduleSchema = z
  .object({
    policy: z.literal('module'),
    /** Path (relative to the config file's directory) or package name. */
    module: z.string().min(1),
    options: z.record(z.unknown()).default({}),
  })
  .strict();

export const keepAliveConfigSchema = z.preprocess(
  shorthand,
  z.discriminatedUnion('policy', [
    z.object({ policy: z.literal('none') }).strict(),
    z.object({ policy: z.literal('fixed'), ttlSeconds: z.number().nonnegative().default(600) }).strict(),
    z
      .object({
        policy: z.literal('greedy-dual'),
        /** Start cost assumed when neither instance nor function knows one (ms). */
        defaultCostMs: z.number().positive().default(1000),
      })
      .strict(),
    z
      .object({
        policy: z.literal('hybrid-histogram'),
        binMinutes: z.number().positive().default(1),
        rangeMinutes: z.number().positive().default(240),
        headPercentile: z.number().min(0).max(100).default(5),
        tailPercentile: z.number().min(0).max(100).default(99),
        marginPercent: z.number().min(0).max(100).default(10),
        minSamples: z.number().int().nonnegative().default(10),
        maxOutOfBoundsPercent: z.number().min(0).max(100).default(10),
        fallbackTtlSeconds: z.number().nonnegative().default(14_400),
      })
      .strict(),
    moduleSchema,
  ]),
);

export const evictionConfigSchema = z.preprocess(
  shorthand,
  z.discriminatedUnion('policy', [
    z.object({ policy: z.literal('lru') }).strict(),
    z.object({ policy: z.literal('random') }).strict(),
    z.object({ policy: z.literal('none') }).strict(),
    z.object({ policy: z.literal('priority') }).strict(),
    moduleSchema,
  ]),
);

export const selectionConfigSchema = z.preprocess(
  shorthand,
  z.discriminatedUnion('policy', [
    z.object({ policy: z.literal('mru') }).strict(),
    z.object({ policy: z.literal('lru') }).strict(),
    z.object({ policy: z.literal('random') }).strict(),
    moduleSchema,
  ]),
);

const staticEntrySchema = z
  .object({
    coldSlowdown: z.number().positive().optional(),
    tiers: z.record(z.number().positive()),
  })
  .strict();

export const placementConfigSchema = z.preprocess(
  shorthand,
  z.discriminatedUnion('policy', [
    z
      .object({
        policy: z.literal('fixed'),
        /** Tier for every snapshot; default the fastest tier. */
        tier: z.string().min(1).optional(),
        action: z.enum(['snapshot', 'cold', 'keep-warm']).default('snapshot'),
      })
      .strict(),
    z
      .object({
        policy: z.literal('slowdown-static'),
        threshold: z.number().positive().default(2),
        functions: z.record(staticEntrySchema).default({}),
        unknown: z.enum(['fastest', 'cold', 'keep-warm']).default('fastest'),
      })
      .strict(),
    z
      .object({
        policy: z.literal('adaptive'),
        threshold: z.number().positive().default(2),
        minSamples: z.number().int().nonnegative().default(5),
      })
      .strict(),
    moduleSchema,
  ]),
);

export const admissionConfigSchema = z.preprocess(
  shorthand,
  z.discriminatedUnion('policy', [
    z
      .object({
        policy: z.literal('deadline'),
        /** Refuse when the estimated wait exceeds slack × admission.maxQueueDelayMs. */
        slack: z.number().positive().default(1),
      })
      .strict(),
    z.object({ policy: z.literal('queue-length') }).strict(),
    z.object({ policy: z.literal('always') }).strict(),
    moduleSchema,
  ]),
);

export const policiesConfigSchema = z
  .object({
    keepAlive: keepAliveConfigSchema.default({ policy: 'fixed' }),
    /** `priority` = lowest keep-alive priority first, i.e. plain LRU for keep-alive policies without priority(). */
    eviction: evictionConfigSchema.default({ policy: 'priority' }),
    selection: selectionConfigSchema.default({ policy: 'mru' }),
    placement: placementConfigSchema.default({ policy: 'fixed' }),
    /** Who is admitted when no idle instance can serve a request at once (docs/policies.md). */
    admission: admissionConfigSchema.default({ policy: 'deadline' }),
    /** Keep-alive overrides by function name. */
    perFunction: z.record(keepAliveConfigSchema).default({}),
    /** Seed of the Rng handed to random policies and user modules. */
    seed: z.number().int().default(1),
  })
  .strict();

export type KeepAliveConfig = z.output<typeof keepAliveConfigSchema>;
export type EvictionConfig = z.output<typeof evictionConfigSchema>;
export type SelectionConfig = z.output<typeof selectionConfigSchema>;
export type PlacementConfig = z.output<typeof placementConfigSchema>;
export type AdmissionConfig = z.output<typeof admissionConfigSchema>;
export type ModulePolicyConfig = z.output<typeof moduleSchema>;
/** The parsed `policies` section, defaults filled in. */
export type PoliciesConfig = z.output<typeof policiesConfigSchema>;
/** What a user may write (every key optional). */
export type PoliciesConfigInput = z.input<typeof policiesConfigSchema>;

/** Keep-alive policy names the CLI accepts for --policy. */
export const KEEP_ALIVE_NAMES = ['none', 'fixed', 'greedy-dual', 'hybrid-histogram'] as const;
