import type { FunctionView, PlacementDecision, TierView } from '../types.js';

/** Tiers fastest first (latencyRank ascending). */
export function byRank(tiers: readonly TierView[]): TierView[] {
  return tiers.slice().sort((a, b) => a.latencyRank - b.latencyRank);
}

export function isFull(t: TierView): boolean {
  return t.capacityBytes > 0 && t.usedBytes >= t.capacityBytes;
}

/** Slowdown of a cold start, (cold + run) / (warm + run), from what the node knows of the function. */
export function coldSlowdownOf(fn: FunctionView): number | undefined {
  if (fn.coldStartMs === undefined) return undefined;
  const run = fn.runMs ?? 0;
  const base = (fn.warmStartMs ?? 0) + run;
  if (!(base > 0)) return undefined;
  return (fn.coldStartMs + run) / base;
}

/**
 * The slowdown rule shared by `slowdown-static` and `adaptive`:
 * 1. the cold start's slowdown is within the threshold → cold (no snapshot kept);
 * 2. even the fastest tier (with a known slowdown) is over the threshold → keep-warm;
 * 3. else the SLOWEST tier whose slowdown is within the threshold (cheapest
 *    storage that is still good enough), skipping full tiers.
 * Returns undefined when no tier has a known slowdown (callers pick a fallback).
 */
export function slowdownRule(
  coldSlowdown: number | undefined,
  slowdownByTier: Record<string, number | undefined>,
  tiers: readonly TierView[],
  threshold: number,
): PlacementDecision | undefined {
  if (coldSlowdown !== undefined && coldSlowdown <= threshold) {
    return { action: 'cold', reason: `cold-start slowdown ${fmt(coldSlowdown)} <= threshold ${threshold}` };
  }
  const known = byRank(tiers).filter((t) => slowdownByTier[t.name] !== undefined);
  const fastest = known[0];
  if (!fastest) return undefined;
  const fastestSlowdown = slowdownByTier[fastest.name]!;
  if (fastestSlowdown > threshold) {
    return {
      action: 'keep-warm',
      reason: `fastest tier ${fastest.name} slowdown ${fmt(fastestSlowdown)} > threshold ${threshold}`,
    };
  }
  for (let i = known.length - 1; i >= 0; i--) {
    const t = known[i]!;
    const s = slowdownByTier[t.name]!;
    if (s <= threshold && !isFull(t)) {
      return { action: 'snapshot', tier: t.name, reason: `slowest tier within threshold ${threshold}: slowdown ${fmt(s)}` };
    }
  }
  return { action: 'keep-warm', reason: `every tier within threshold ${threshold} is full` };
}

function fmt(x: number): string {
  return x.toFixed(2);
}
