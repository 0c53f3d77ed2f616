// Start costs and memory of functions on one machine, as the daemon's
// benchmark measures them (bench/profiles/*.json).
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { TierView } from '../policies/types.js';

const costsSchema = z
  .object({
    coldMs: z.number().nonnegative(),
    restoreMs: z.number().nonnegative(),
    warmMs: z.number().nonnegative(),
    runMs: z.number().nonnegative(),
    memoryMiB: z.number().positive(),
    /** Restore latency per snapshot tier (overrides restoreMs on that tier). */
    restoreMsByTier: z.record(z.number().nonnegative()),
    /** Snapshot size on its tier (MiB); default the function's memory. */
    snapshotMiB: z.number().nonnegative(),
  })
  .partial();

export const profileSchema = z.object({
  machine: z.record(z.unknown()).default({}),
  accelerator: z.string().default('unknown'),
  defaults: costsSchema
    .extend({
      coldMs: z.number().nonnegative(),
      restoreMs: z.number().nonnegative(),
      warmMs: z.number().nonnegative(),
      memoryMiB: z.number().positive(),
    })
    .passthrough(),
  functions: z.record(costsSchema.passthrough()).default({}),
  /** Snapshot tiers of the node, fastest first by latencyRank; default one in-memory tier. */
  tiers: z
    .array(
      z.object({ name: z.string(), latencyRank: z.number().int().nonnegative(), capacityMiB: z.number().nonnegative().default(0) }),
    )
    .default([{ name: 'mem', latencyRank: 0, capacityMiB: 0 }]),
  notes: z.unknown().optional(),
});

export type Profile = z.output<typeof profileSchema>;

export interface FunctionCosts {
  coldMs: number;
  restoreMs: number;
  restoreMsByTier: Record<string, number>;
  warmMs: number;
  runMs: number;
  memoryMiB: number;
  snapshotMiB: number;
}

/** Built-in fallback: the numbers of bench/profiles/tcg-default.json. */
export const DEFAULT_PROFILE: Profile = profileSchema.parse({
  accelerator: 'tcg',
  defaults: { coldMs: 3300, restoreMs: 170, warmMs: 5, runMs: 1000, memoryMiB: 256 },
});

export async function loadProfile(file: string | undefined): Promise<Profile> {
  if (!file) return DEFAULT_PROFILE;
  const parsed = profileSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`${file}: bad profile: ${i?.path.join('.')}: ${i?.message}`);
  }
  return parsed.data;
}

/**
 * Costs of one function: the profile's entry for it, else its defaults; the
 * trace's average duration and memory override run time and memory when the
 * trace has them (a profile entry for that very function wins over the trace).
 */
export function functionCosts(
  profile: Profile,
  name: string,
  trace: { avgDurationMs?: number | undefined; memoryMiB?: number | undefined } = {},
): FunctionCosts {
  const d = profile.defaults;
  const f = profile.functions[name] ?? {};
  return {
    coldMs: f.coldMs ?? d.coldMs,
    restoreMs: f.restoreMs ?? d.restoreMs,
    restoreMsByTier: { ...(d.restoreMsByTier ?? {}), ...(f.restoreMsByTier ?? {}) },
    warmMs: f.warmMs ?? d.warmMs,
    runMs: f.runMs ?? trace.avgDurationMs ?? d.runMs ?? 1000,
    memoryMiB: f.memoryMiB ?? trace.memoryMiB ?? d.memoryMiB,
    snapshotMiB: f.snapshotMiB ?? d.snapshotMiB ?? f.memoryMiB ?? trace.memoryMiB ?? d.memoryMiB,
  };
}

export function profileTiers(profile: Profile): TierView[] {
  return profile.tiers.map((t) => ({ name: t.name, latencyRank: t.latencyRank, capacityBytes: t.capacityMiB * 1048576, usedBytes: 0 }));
}
