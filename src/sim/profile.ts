// Start costs and memory of functions on one machine, as the daemon's
// benchmark measures them (bench/profiles/*.json), per memory size and (issue
// 21) per language runtime: a Python function with heavy imports starts far
// slower cold than a Node.js one of the same size, and restores about as fast.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { TierView } from '../policies/types.js';
import { FUNCTION_RUNTIMES, type FunctionRuntime } from '../runtimes/function-runtime.js';

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
    /** Instance cap of the function (the deployed maxInstances); default: the simulation's option. */
    maxInstances: z.number().int().positive(),
    /** Host CPU time a cold boot / a restore takes (ms); the CPU model stretches this part when cores are shared. Default: the whole start. */
    coldCpuMs: z.number().nonnegative(),
    restoreCpuMs: z.number().nonnegative(),
    /** Fraction of a host core one busy instance takes while it runs (0 for functions that wait). */
    cpuShare: z.number().nonnegative(),
    /** Host CPU one invocation costs the node besides the function's own work (daemon, channel, agent; ms). */
    invokeCpuMs: z.number().nonnegative(),
    /** Of that, what the VM's own process spends (the agent under the accelerator): the daemon sees it as the run's CPU share. */
    invokeVmmCpuMs: z.number().nonnegative(),
    // issue 24: what an instance costs the host (its PSS; memory-model.ts). Default: its size (measured = nominal).
    /** Private pages of an idle cold-booted instance (MiB). */
    coldPrivateMiB: z.number().nonnegative(),
    /** Private pages of a restored clone after its resync and first run (MiB; default coldPrivateMiB). */
    clonePrivateMiB: z.number().nonnegative(),
    /** Resident pages of the snapshot's RAM file a clone maps, shared among the snapshot's clones (MiB; default 0). */
    snapshotSharedMiB: z.number().nonnegative(),
    /** Private pages an instance adds per run it serves (MiB; default 0). */
    runGrowthMiB: z.number().nonnegative(),
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
  /** Costs measured per memory size (MiB): a function without its own entry takes the nearest size's. */
  bySize: z.record(costsSchema.passthrough()).default({}),
  /**
   * issue 21: costs of the functions of a language runtime (python3), over the ones above: its own
   * defaults and its own sizes (the nearest size of the runtime wins over the node-wide sizes).
   * A runtime without an entry (nodejs20, the node-wide figures' own) takes the node-wide costs.
   */
  byRuntime: z
    .record(
      z.enum(FUNCTION_RUNTIMES),
      z.object({ defaults: costsSchema.passthrough().default({}), bySize: z.record(costsSchema.passthrough()).default({}) }).strict(),
    )
    .default({}),
  /** The node the costs were measured on: its cores and what one idle VM takes of a core (for the CPU model). */
  node: z
    .object({
      cores: z.number().positive().default(2),
      idleVmCpu: z.number().nonnegative().default(0),
      /** issue 24: pages every VM maps (QEMU's binary and libraries, the kernel, the root fs image), split among the VMs (MiB). */
      vmSharedMiB: z.number().nonnegative().default(0),
    })
    .strict()
    .default({}),
  /** Snapshot tiers of the node, fastest first by latencyRank; default one in-memory tier. */
  tiers: z
    .array(
      z.object({ name: z.string(), latencyRank: z.number().int().nonnegative(), capacityMiB: z.number().nonnegative().default(0) }),
    )
    .default([{ name: 'shm', latencyRank: 0, capacityMiB: 0 }]),
  notes: z.unknown().optional(),
});

export type Profile = z.output<typeof profileSchema>;

export interface FunctionCosts {
  coldMs: number;
  coldCpuMs: number;
  restoreCpuMs: number;
  cpuShare: number;
  invokeCpuMs: number;
  invokeVmmCpuMs: number;
  restoreMs: number;
  restoreMsByTier: Record<string, number>;
  warmMs: number;
  runMs: number;
  memoryMiB: number;
  snapshotMiB: number;
  maxInstances: number | undefined;
  /** memory-model.ts */
  coldPrivateMiB: number;
  clonePrivateMiB: number;
  snapshotSharedMiB: number;
  runGrowthMiB: number;
}

/**
 * issue 24: what a 256 MiB hello VM costs the host (memory-model.ts), from `faascell bench memory`
 * (bench/runs/2026-11-29-integ9-memory.txt, tuned image): shared by every VM the root fs, kernel and QEMU's
 * binary (~70 MiB), an idle cold-booted VM ~100 MiB of its own (171 MiB PSS alone, 116 MiB with 5), a
 * restored clone, recalibrated 2026-12-07 (`faascell bench clone-memory`, 20 clones of a 256 MiB hello, the
 * clone's code cache at its default 16 MiB: bench/runs/2026-12-07-clone-memory-breakdown-s5.md): ~40 MiB of its
 * own (was 30, which predicted 441 clones where 233 were measured still admitting at ~53 MiB PSS each) and ~10 MiB
 * of its snapshot's RAM file (the pages it maps, RSS; was 50); then 36.5 (session 6: VMMs with THP off and the
 * clone's code cache at 14 MiB by default: 305 clones at 36.8 MiB PSS each; 38.4 with THP off alone, 280 clones at
 * 38.7; bench/runs/2026-12-07-idle-density-clones-s6.md). Growth per run was not measured (0). Measured accounting
 * is the default (docs/density.md).
 */
const DEFAULT_MEMORY_MODEL = { defaults: { coldPrivateMiB: 100, clonePrivateMiB: 36.5, snapshotSharedMiB: 10, runGrowthMiB: 0 }, vmSharedMiB: 70 };

/** Built-in fallback: the numbers of bench/profiles/tcg-default.json. */
export const DEFAULT_PROFILE: Profile = profileSchema.parse({
  accelerator: 'tcg',
  defaults: { coldMs: 3300, restoreMs: 170, warmMs: 5, runMs: 1000, memoryMiB: 256, restoreMsByTier: { shm: 170, disk: 320 }, ...DEFAULT_MEMORY_MODEL.defaults },
  node: { vmSharedMiB: DEFAULT_MEMORY_MODEL.vmSharedMiB },
  tiers: [
    { name: 'shm', latencyRank: 0, capacityMiB: 4096 },
    { name: 'disk', latencyRank: 1, capacityMiB: 20480 },
  ],
});

export async function loadProfile(file: string | undefined): Promise<Profile> {
  if (!file) return DEFAULT_PROFILE;
  const parsed = profileSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`${file}: bad profile: ${i?.path.join('.')}: ${i?.message}`);
  }
  return withTierDefaults(parsed.data);
}

/**
 * A benchmark profile measures per-tier restores for its own test functions
 * only; trace functions use the defaults, so per-tier defaults missing there
 * are filled with the median over the profiled functions.
 */
export function withTierDefaults(p: Profile): Profile {
  const byTier = new Map<string, number[]>();
  for (const f of Object.values(p.functions)) {
    for (const [t, ms] of Object.entries(f.restoreMsByTier ?? {})) {
      if (!byTier.has(t)) byTier.set(t, []);
      byTier.get(t)!.push(ms);
    }
  }
  const have = p.defaults.restoreMsByTier ?? {};
  const fill: Record<string, number> = {};
  for (const [t, xs] of byTier) {
    if (have[t] !== undefined) continue;
    xs.sort((a, b) => a - b);
    fill[t] = xs[Math.floor(xs.length / 2)]!;
  }
  if (Object.keys(fill).length === 0) return p;
  return { ...p, defaults: { ...p.defaults, restoreMsByTier: { ...fill, ...have } } };
}

/**
 * Costs of one function: the profile's entry for it, else its defaults; the
 * trace's average duration and memory override run time and memory when the
 * trace has them (a profile entry for that very function wins over the trace).
 */
export function functionCosts(
  profile: Profile,
  name: string,
  trace: { avgDurationMs?: number | undefined; memoryMiB?: number | undefined; runtime?: FunctionRuntime | undefined } = {},
): FunctionCosts {
  const memoryMiB = profile.functions[name]?.memoryMiB ?? trace.memoryMiB ?? profile.defaults.memoryMiB;
  // node-wide defaults < node-wide size < the runtime's defaults < the runtime's size (issue 21)
  const rt = trace.runtime !== undefined ? profile.byRuntime[trace.runtime] : undefined;
  const d = { ...profile.defaults, ...nearestSize(profile.bySize, memoryMiB), ...(rt ? { ...rt.defaults, ...nearestSize(rt.bySize, memoryMiB) } : {}) };
  const f = profile.functions[name] ?? {};
  const coldMs = f.coldMs ?? d.coldMs;
  const restoreMs = f.restoreMs ?? d.restoreMs;
  return {
    coldMs,
    coldCpuMs: f.coldCpuMs ?? d.coldCpuMs ?? coldMs,
    restoreCpuMs: f.restoreCpuMs ?? d.restoreCpuMs ?? restoreMs,
    cpuShare: f.cpuShare ?? d.cpuShare ?? 0,
    invokeCpuMs: f.invokeCpuMs ?? d.invokeCpuMs ?? 0,
    invokeVmmCpuMs: f.invokeVmmCpuMs ?? d.invokeVmmCpuMs ?? 0,
    restoreMs,
    restoreMsByTier: { ...(d.restoreMsByTier ?? {}), ...(f.restoreMsByTier ?? {}) },
    warmMs: f.warmMs ?? d.warmMs,
    runMs: f.runMs ?? trace.avgDurationMs ?? d.runMs ?? 1000,
    memoryMiB: f.memoryMiB ?? trace.memoryMiB ?? d.memoryMiB,
    snapshotMiB: f.snapshotMiB ?? d.snapshotMiB ?? f.memoryMiB ?? trace.memoryMiB ?? d.memoryMiB,
    maxInstances: f.maxInstances ?? d.maxInstances,
    ...memoryCosts(f, d, f.memoryMiB ?? trace.memoryMiB ?? d.memoryMiB),
  };
}

type Costs = Partial<z.output<typeof costsSchema>>;

/** The memory model's parameters (memory-model.ts): the function's, else the defaults' (its size's, bySize); without any, its size. */
function memoryCosts(f: Costs, d: Costs, memoryMiB: number): Pick<FunctionCosts, 'coldPrivateMiB' | 'clonePrivateMiB' | 'snapshotSharedMiB' | 'runGrowthMiB'> {
  const coldPrivateMiB = f.coldPrivateMiB ?? d.coldPrivateMiB ?? memoryMiB;
  return {
    coldPrivateMiB,
    clonePrivateMiB: f.clonePrivateMiB ?? d.clonePrivateMiB ?? coldPrivateMiB,
    snapshotSharedMiB: f.snapshotSharedMiB ?? d.snapshotSharedMiB ?? 0,
    runGrowthMiB: f.runGrowthMiB ?? d.runGrowthMiB ?? 0,
  };
}

/** The costs measured for the memory size nearest to `memoryMiB` (none: {}). */
function nearestSize(bySize: Profile['bySize'], memoryMiB: number): Partial<z.output<typeof costsSchema>> {
  let best: string | undefined;
  for (const k of Object.keys(bySize)) if (best === undefined || Math.abs(Number(k) - memoryMiB) < Math.abs(Number(best) - memoryMiB)) best = k;
  if (best === undefined) return {};
  const { memoryMiB: _m, ...costs } = bySize[best]!;
  return costs;
}

/** The profile says what instances cost the host (memory-model.ts): somewhere a private size is given. */
export function hasMemoryModel(p: Profile): boolean {
  const has = (c: { coldPrivateMiB?: number; clonePrivateMiB?: number } | undefined): boolean => c?.coldPrivateMiB !== undefined || c?.clonePrivateMiB !== undefined;
  return has(p.defaults) || Object.values(p.functions).some(has) || Object.values(p.bySize).some(has);
}

export function profileTiers(profile: Profile): TierView[] {
  return profile.tiers.map((t) => ({ name: t.name, latencyRank: t.latencyRank, capacityBytes: t.capacityMiB * 1048576, usedBytes: 0 }));
}
