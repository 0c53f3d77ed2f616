import type { InstanceView } from '../types.js';

/**
 * Victims in ascending `key` order (ties: least recently used first) until
 * `needMiB` is covered. Usually one or two victims are needed, so repeated
 * linear minimum scans (O(n·k)) beat sorting the whole idle list; past a few
 * victims it sorts once.
 */
export function pickLowest(
  idle: readonly InstanceView[],
  needMiB: number,
  key: (inst: InstanceView) => number,
): InstanceView[] {
  const n = idle.length;
  if (needMiB <= 0 || n === 0) return [];
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = key(idle[i]!);
  const taken = new Uint8Array(n);
  const out: InstanceView[] = [];
  let freed = 0;
  while (freed < needMiB && out.length < n) {
    if (out.length >= 8) return finishSorted(idle, keys, taken, out, freed, needMiB);
    let best = -1;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      if (best < 0 || less(idle, keys, i, best)) best = i;
    }
    taken[best] = 1;
    const v = idle[best]!;
    out.push(v);
    freed += v.chargedMiB ?? v.memoryMiB;
  }
  return out;
}

function less(idle: readonly InstanceView[], keys: Float64Array, i: number, j: number): boolean {
  const a = keys[i]!;
  const b = keys[j]!;
  if (a !== b) return a < b;
  return idle[i]!.lastUsedAt < idle[j]!.lastUsedAt;
}

function finishSorted(
  idle: readonly InstanceView[],
  keys: Float64Array,
  taken: Uint8Array,
  out: InstanceView[],
  freed: number,
  needMiB: number,
): InstanceView[] {
  const rest: number[] = [];
  for (let i = 0; i < idle.length; i++) if (!taken[i]) rest.push(i);
  rest.sort((i, j) => (less(idle, keys, i, j) ? -1 : less(idle, keys, j, i) ? 1 : 0));
  for (const i of rest) {
    if (freed >= needMiB) break;
    const v = idle[i]!;
    out.push(v);
    freed += v.chargedMiB ?? v.memoryMiB;
  }
  return out;
}
