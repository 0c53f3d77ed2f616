import type { EvictionContext, EvictionPolicy, InstanceView } from '../types.js';

/** Uniformly random idle instances (ctx.rng), until enough memory is covered. */
export class RandomEviction implements EvictionPolicy {
  readonly name = 'random';
  selectVictims(idle: readonly InstanceView[], needMiB: number, ctx: EvictionContext): InstanceView[] {
    const n = idle.length;
    if (needMiB <= 0 || n === 0) return [];
    // Usually a victim or two out of many: draw indices without copying the
    // list, redrawing duplicates; a partial shuffle once many are needed.
    const out: InstanceView[] = [];
    const chosen = new Set<number>();
    let freed = 0;
    while (freed < needMiB && chosen.size < n) {
      if (chosen.size * 4 > n) return this.shuffleRest(idle, chosen, out, freed, needMiB, ctx);
      const j = Math.floor(ctx.rng.next() * n);
      if (chosen.has(j)) continue;
      chosen.add(j);
      out.push(idle[j]!);
      freed += idle[j]!.chargedMiB ?? idle[j]!.memoryMiB;
    }
    return out;
  }

  private shuffleRest(
    idle: readonly InstanceView[],
    chosen: Set<number>,
    out: InstanceView[],
    freed: number,
    needMiB: number,
    ctx: EvictionContext,
  ): InstanceView[] {
    const pool = idle.filter((_, i) => !chosen.has(i));
    for (let k = 0; k < pool.length && freed < needMiB; k++) {
      const j = k + Math.floor(ctx.rng.next() * (pool.length - k));
      const v = pool[j]!;
      pool[j] = pool[k]!;
      pool[k] = v;
      out.push(v);
      freed += v.chargedMiB ?? v.memoryMiB;
    }
    return out;
  }
}
