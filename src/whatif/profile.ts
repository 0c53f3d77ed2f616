// The simulator's profile of a running node, from its live cost statistics
// (PerfManager's CostStats: what cold starts, restores per tier, warm dispatches
// and runs cost each function on this node, measured on its own traffic) rather
// than a benchmark file. Functions never measured on a path take the node-wide
// mean of that path, else the built-in profile's figure.

import type { FunctionStats, PathStats } from '../perf/cost-stats.js';
import { DEFAULT_PROFILE, profileSchema, type Profile } from '../sim/profile.js';

export interface LiveNode {
  cores: number;
  idleVmCpu: number;
  tiers: Array<{ name: string; latencyRank: number; capacityMiB: number }>;
}

export interface LiveFunction {
  name: string;
  memoryMiB: number;
  maxInstances: number;
}

/** Mean over every function's samples of one path (weighted by their counts). */
function pooled(xs: Array<PathStats | undefined>): number | undefined {
  let n = 0;
  let sum = 0;
  for (const x of xs) {
    if (!x || x.count === 0) continue;
    n += x.count;
    sum += x.meanMs * x.count;
  }
  return n > 0 ? sum / n : undefined;
}

export function liveProfile(stats: Record<string, FunctionStats>, fns: LiveFunction[], node: LiveNode): Profile {
  const all = Object.values(stats);
  const d = DEFAULT_PROFILE.defaults;
  const tierDefaults: Record<string, number> = {};
  for (const t of node.tiers) {
    const m = pooled(all.map((s) => s.restoreByTier[t.name]));
    if (m !== undefined) tierDefaults[t.name] = m;
  }
  const restoreMs = pooled(all.map((s) => s.restore)) ?? d.restoreMs;
  const functions: Record<string, Record<string, unknown>> = {};
  for (const f of fns) {
    const s = stats[f.name];
    const e: Record<string, unknown> = { memoryMiB: f.memoryMiB, maxInstances: f.maxInstances };
    if (s?.cold) e.coldMs = s.cold.meanMs;
    if (s?.restore) e.restoreMs = s.restore.meanMs;
    if (s?.warm) e.warmMs = s.warm.meanMs;
    if (s?.cpu) e.cpuShare = s.cpu.meanMs;
    const byTier = Object.fromEntries(Object.entries(s?.restoreByTier ?? {}).map(([t, p]) => [t, p.meanMs]));
    if (Object.keys(byTier).length > 0) e.restoreMsByTier = byTier;
    functions[f.name] = e;
  }
  return profileSchema.parse({
    accelerator: 'live',
    node: { cores: node.cores, idleVmCpu: node.idleVmCpu },
    defaults: {
      coldMs: pooled(all.map((s) => s.cold)) ?? d.coldMs,
      restoreMs,
      warmMs: pooled(all.map((s) => s.warm)) ?? d.warmMs,
      memoryMiB: d.memoryMiB,
      restoreMsByTier: { ...Object.fromEntries(node.tiers.map((t) => [t.name, restoreMs])), ...tierDefaults },
    },
    functions,
    tiers: node.tiers,
    notes: 'measured by the running node (PerfManager cost statistics)',
  });
}
