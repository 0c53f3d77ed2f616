// A state directory's snapshot tiers after its daemon stopped (issue 20 item 6). Snapshots
// outlive a clean stop on purpose: the next start with the same state directory restores
// from them. This module tells what is kept (the stop message) and removes it on request
// (`faascell serve --clean-on-exit`, `faascell gc`): only tier directories whose owner
// marker (tier-owner.ts) names this state directory, or configured tiers nobody else marked.

import fs from 'node:fs';
import path from 'node:path';
import { diskBytes, entriesOf, ownerMarkerPath, OWNER_SUFFIX, readOwner, tierParents, type TierRef } from './tier-owner.js';

export interface OwnedTier {
  /** the tier's name (from its marker or the configuration) */
  name: string;
  path: string;
  /** bytes allocated on its device */
  bytes: number;
  /** its owner marker, when it has one */
  marker?: string;
}

/**
 * The tier directories of `stateDir`: its configured tiers (unless another state directory
 * marked them) and every marked directory beside them or in `extraParents` whose marker
 * names it (a tier dropped from the configuration since).
 */
export function ownedTiers(stateDirIn: string, configured: readonly TierRef[], extraParents: readonly string[] = ['/dev/shm']): OwnedTier[] {
  const stateDir = path.resolve(stateDirIn);
  const found = new Map<string, OwnedTier>();
  const add = (name: string, dir: string, marker: string | undefined): void => {
    if (found.has(dir)) return;
    const exists = fs.existsSync(dir);
    if (!exists && !marker) return;
    found.set(dir, { name, path: dir, bytes: exists ? diskBytes(dir) : 0, ...(marker ? { marker } : {}) });
  };
  for (const t of configured) {
    const dir = path.resolve(t.path);
    const marker = ownerMarkerPath(dir);
    const owner = readOwner(marker);
    if (owner && owner.stateDir !== stateDir) continue; // another state directory's tier
    add(t.name, dir, owner ? marker : undefined);
  }
  for (const parent of tierParents(configured.map((t) => t.path), extraParents)) {
    for (const n of entriesOf(parent)) {
      if (!n.endsWith(OWNER_SUFFIX)) continue;
      const marker = path.join(parent, n);
      const owner = readOwner(marker);
      const dir = marker.slice(0, -OWNER_SUFFIX.length);
      if (owner && owner.stateDir === stateDir && owner.path === dir) add(owner.tier, dir, marker);
    }
  }
  return [...found.values()].sort((a, b) => a.path.localeCompare(b.path));
}

/** Removes the tiers (directories and markers); returns what was removed. */
export function removeTiers(tiers: readonly OwnedTier[]): OwnedTier[] {
  for (const t of tiers) {
    fs.rmSync(t.path, { recursive: true, force: true });
    if (t.marker) fs.rmSync(t.marker, { force: true });
  }
  return [...tiers];
}

export function formatBytes(b: number): string {
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(1)} GiB`;
  if (b >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  return `${Math.round(b / 1024)} KiB`;
}

/** Removes one tier directory and its owner marker (tests and benchmarks clean up their own tiers with it). */
export function removeTierDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(ownerMarkerPath(dir), { force: true });
}
