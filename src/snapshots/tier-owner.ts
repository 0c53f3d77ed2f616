// Who owns a snapshot tier directory. Snapshots on a tmpfs tier (/dev/shm)
// outlive the state directory that made them: delete a state directory and its
// RAM files stay in memory until reboot. Each daemon therefore writes an owner
// marker next to each of its tier directories (`<tier>.faascell-owner.json`,
// beside the directory so the SnapshotManager's own clean-up inside it never
// touches it) and, at start, removes every marked tier directory whose owner is
// gone: its state directory no longer holds a database, or it is this state
// directory and the tier is no longer configured.
//
// Directories without a marker (made before markers existed, or by something
// else) are never removed: they are only reported.

import fs from 'node:fs';
import path from 'node:path';

export const OWNER_SUFFIX = '.faascell-owner.json';
/** The file whose presence makes a state directory "living". */
export const STATE_DB_FILE = 'faascell.db';

export interface TierOwner {
  version: 1;
  stateDir: string;
  tier: string;
  path: string;
  claimedAt: number;
}

export interface TierRef {
  name: string;
  path: string;
}

export interface ReclaimedTier {
  path: string;
  owner: string;
  bytes: number;
  why: 'owner-gone' | 'tier-dropped';
}

export interface ReclaimReport {
  claimed: string[];
  reclaimed: ReclaimedTier[];
  /** directories that look like tiers (faascell-*) but carry no marker: left alone */
  unowned: string[];
  /** tiers not claimed because their path is a mount point or too close to / */
  refused: string[];
}

export function ownerMarkerPath(tierPath: string): string {
  return path.resolve(tierPath) + OWNER_SUFFIX;
}

/** A tier path safe to own (and one day delete): at least two levels deep and not a mount point itself. */
export function isOwnableTierPath(tierPath: string): boolean {
  const p = path.resolve(tierPath);
  if (p.split('/').filter(Boolean).length < 2) return false;
  try {
    const st = fs.statSync(p);
    const parent = fs.statSync(path.dirname(p));
    if (st.dev !== parent.dev) return false; // a mount point: the whole file system is not ours
  } catch {
    // does not exist yet: the SnapshotManager creates it inside its parent
  }
  return true;
}

export function readOwner(markerFile: string): TierOwner | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(markerFile, 'utf8')) as Partial<TierOwner>;
    if (v.version !== 1 || typeof v.stateDir !== 'string' || typeof v.path !== 'string' || typeof v.tier !== 'string') return undefined;
    return v as TierOwner;
  } catch {
    return undefined;
  }
}

export function isLivingStateDir(stateDir: string): boolean {
  return fs.existsSync(path.join(stateDir, STATE_DB_FILE));
}

/** Writes (atomically) the owner marker of each tier; returns the claimed paths. */
export function claimTiers(stateDir: string, tiers: readonly TierRef[], now = Date.now()): { claimed: string[]; refused: string[] } {
  const claimed: string[] = [];
  const refused: string[] = [];
  for (const t of tiers) {
    const p = path.resolve(t.path);
    if (!isOwnableTierPath(p)) {
      refused.push(p);
      continue;
    }
    const marker = ownerMarkerPath(p);
    const cur = readOwner(marker);
    if (cur && cur.stateDir === stateDir && cur.tier === t.name && cur.path === p) {
      claimed.push(p);
      continue;
    }
    fs.mkdirSync(path.dirname(p), { recursive: true });
    const owner: TierOwner = { version: 1, stateDir, tier: t.name, path: p, claimedAt: now };
    const tmp = `${marker}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(owner) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, marker);
    claimed.push(p);
  }
  return { claimed, refused };
}

export function diskBytes(p: string): number {
  let total = 0;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return 0;
  }
  if (st.isDirectory()) {
    for (const e of fs.readdirSync(p)) total += diskBytes(path.join(p, e));
  } else {
    total += st.blocks * 512;
  }
  return total;
}

/** Where owner markers may be: beside each tier, and in `extra` (/dev/shm). */
export function tierParents(tierPaths: readonly string[], extra: readonly string[]): string[] {
  return [...new Set([...extra, ...tierPaths.map((p) => path.dirname(path.resolve(p)))].map((p) => path.resolve(p)))];
}

/** The names in a directory; none when it cannot be read. */
export function entriesOf(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Claims this daemon's tiers and removes tier directories nobody living owns,
 * looking beside each of its tiers and in `extraParents` (default /dev/shm).
 */
export function reclaimTiers(opts: {
  stateDir: string;
  tiers: readonly TierRef[];
  extraParents?: string[];
  living?: (stateDir: string) => boolean;
  now?: number;
}): ReclaimReport {
  const stateDir = path.resolve(opts.stateDir);
  const living = opts.living ?? isLivingStateDir;
  const mine = new Set(opts.tiers.map((t) => path.resolve(t.path)));
  const reclaimed: ReclaimedTier[] = [];
  const unowned: string[] = [];
  for (const parent of tierParents([...mine], opts.extraParents ?? ['/dev/shm'])) {
    for (const name of entriesOf(parent)) {
      const full = path.join(parent, name);
      if (name.endsWith(OWNER_SUFFIX)) {
        const owner = readOwner(full);
        const dir = full.slice(0, -OWNER_SUFFIX.length);
        if (!owner || owner.path !== dir) continue; // not ours to judge: never delete on a marker we cannot read
        let why: ReclaimedTier['why'] | undefined;
        if (owner.stateDir === stateDir) why = mine.has(dir) ? undefined : 'tier-dropped';
        else if (!living(owner.stateDir)) why = 'owner-gone';
        if (!why || !isOwnableTierPath(dir)) continue;
        const bytes = diskBytes(dir);
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(full, { force: true });
        reclaimed.push({ path: dir, owner: owner.stateDir, bytes, why });
      } else if (/^faascell-/.test(name) && !mine.has(full) && !fs.existsSync(full + OWNER_SUFFIX)) {
        try {
          if (fs.statSync(full).isDirectory()) unowned.push(full);
        } catch {
          // vanished meanwhile
        }
      }
    }
  }
  const { claimed, refused } = claimTiers(stateDir, opts.tiers, opts.now);
  return { claimed, reclaimed, unowned, refused };
}
