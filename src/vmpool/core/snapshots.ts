// Snapshots on storage tiers: placement (whether a cold start leaves a snapshot,
// and on which tier), room on a tier (least recently used snapshots of other
// functions make way, all or nothing), revisiting a placement after restores
// (a move, two-phase: the core changes the tier only when the shell reports the
// files moved), and dropping. One snapshot per function and version.

import type { PlacementStats } from '../../policies/types.js';
import type { CoreState } from './state.js';
import { CoreSnapshot, type CoreFunction, type CoreInstance, type CoreTier, type SnapshotDropCause } from './model.js';
import { snapshotsAllowed } from './start-failures.js';

/** Placement decides whether this cold start leaves a snapshot, and where. */
export function placeSnapshot(s: CoreState, f: CoreFunction, now: number, usable?: (t: CoreTier) => boolean): CoreSnapshot | undefined {
  // `usable`: a second placement for the same start, without the tiers whose device was full (snapshotNoRoom)
  const tiers = usable ? s.tiers.filter(usable) : s.tiers;
  if (tiers.length === 0) return undefined;
  if (!snapshotsAllowed(f, now)) {
    // its last snapshots failed: none for a while (back-off), the start boots without one
    s.counters.snapshotsSkipped++;
    return undefined;
  }
  const d = s.p.placement.place(f.view, tiers, placementStats(s, f));
  if (d.action === 'keep-warm' && !usable) {
    f.keepWarm = true;
    return undefined;
  }
  if (d.action !== 'snapshot') return undefined;
  const tier = tiers.find((t) => t.name === d.tier);
  const bytes = tier ? reservation(f, tier, f.snapshotBytes) : 0;
  if (!tier || !makeTierRoom(s, tier, bytes, f, now)) {
    s.counters.snapshotsSkipped++;
    return undefined;
  }
  const snap = new CoreSnapshot(++s.snapSeq, f, f.version, tier, bytes, now);
  tier.snaps.push(snap);
  tier.usedBytes += snap.bytes;
  f.snapshot = snap;
  return snap;
}

/** Room a snapshot of f needs on `tier`: its guest's whole memory on a dense tier, else what one measured (`bytes`). */
function reservation(f: CoreFunction, tier: CoreTier, bytes: number): number {
  return tier.dense ? Math.max(bytes, f.memoryMiB * 1048576) : bytes;
}

function placementStats(s: CoreState, f: CoreFunction): PlacementStats | undefined {
  const v = f.view;
  if (v.restoreMsByTier === undefined && v.restoreMs === undefined) return undefined;
  const run = v.runMs ?? 0;
  const base = (v.warmStartMs ?? 0) + run || 1;
  const slowdownByTier: Record<string, number | undefined> = {};
  for (const t of s.tiers) {
    const r = v.restoreMsByTier?.[t.name] ?? (v.restoreMsByTier === undefined ? v.restoreMs : undefined);
    slowdownByTier[t.name] = r === undefined ? undefined : (r + run) / base;
  }
  return { slowdownByTier, samples: f.restores };
}

/** Evict least recently used ready snapshots of other functions until `bytes` fit (all or nothing). */
function makeTierRoom(s: CoreState, tier: CoreTier, bytes: number, forFn: CoreFunction, now: number): boolean {
  if (tier.usedBytes + bytes <= tier.capacityBytes) return true;
  // a snapshot moving away still holds its place here until the move is done
  const evictable = (x: CoreSnapshot): boolean => x.ready && x.f !== forFn && !x.moveTo;
  // least recently used first, ties in tier order (a stable sort's order); usually one or two victims, so
  // each is found by a scan instead of sorting the tier at every placement that needs room (the first one
  // in the same scan that sums what could be freed)
  let freeable = 0;
  let victim: CoreSnapshot | undefined;
  for (const x of tier.snaps) {
    if (!evictable(x)) continue;
    freeable += x.bytes;
    if (victim === undefined || x.lastUsed < victim.lastUsed) victim = x;
  }
  if (tier.usedBytes - freeable + bytes > tier.capacityBytes) return false;
  while (tier.usedBytes + bytes > tier.capacityBytes) {
    if (!victim) break;
    dropSnapshot(s, victim, 'tier-full', now);
    victim = undefined;
    if (tier.usedBytes + bytes <= tier.capacityBytes) break;
    for (const x of tier.snaps) if (evictable(x) && (victim === undefined || x.lastUsed < victim.lastUsed)) victim = x;
  }
  return true;
}

/** After a restore, placements that revisit their choice may move or drop the snapshot. */
export function revisitPlacement(s: CoreState, f: CoreFunction, snap: CoreSnapshot, now: number): void {
  if (!s.p.placement.revisit || snap.moveTo) return;
  const d = s.p.placement.place(f.view, s.tiers, placementStats(s, f));
  if (d.action === 'snapshot' && d.tier === snap.tier.name) return;
  if (d.action !== 'snapshot') {
    dropSnapshot(s, snap, 'replaced', now);
    if (d.action === 'keep-warm') f.keepWarm = true;
    return;
  }
  const to = s.tiers.find((t) => t.name === d.tier);
  const bytes = to ? reservation(f, to, snap.bytes) : 0;
  if (!to || !makeTierRoom(s, to, bytes, f, now)) return;
  // two-phase: room is reserved on `to`; the snapshot stays on its tier (restores read it there) until moveDone
  snap.moveTo = to;
  snap.moveBytes = bytes;
  to.usedBytes += bytes;
  s.fx.moveSnapshot(snap, snap.tier.name, to.name, now);
}

/** The shell moved the snapshot's files (they take `bytes` there, when it measured them): it is on its new tier from now on. */
export function moveDone(s: CoreState, snap: CoreSnapshot, bytes?: number): void {
  const to = snap.moveTo;
  if (!to) return;
  snap.moveTo = undefined;
  const from = snap.tier;
  from.usedBytes -= snap.bytes;
  from.snaps.splice(from.snaps.indexOf(snap), 1);
  const size = bytes ?? snap.moveBytes;
  to.usedBytes += size - snap.moveBytes;
  snap.bytes = size;
  snap.f.snapshotBytes = size;
  snap.tier = to;
  to.snaps.push(snap);
  s.counters.snapshotsMoved++;
}

/** The move failed: the snapshot stays where it was, the room reserved on the other tier is freed. */
export function moveFailed(s: CoreState, snap: CoreSnapshot): void {
  const to = snap.moveTo;
  if (!to) return;
  snap.moveTo = undefined;
  to.usedBytes -= snap.moveBytes;
  s.counters.snapshotMovesFailed++;
}

export function dropSnapshot(s: CoreState, snap: CoreSnapshot, cause: SnapshotDropCause, now: number): void {
  const f = snap.f;
  if (f.snapshot === snap) f.snapshot = undefined;
  const t = snap.tier;
  const i = t.snaps.indexOf(snap);
  if (i < 0) return;
  t.snaps.splice(i, 1);
  t.usedBytes -= snap.bytes;
  if (snap.moveTo) {
    snap.moveTo.usedBytes -= snap.moveBytes;
    snap.moveTo = undefined;
  }
  s.counters.snapshotsDropped++;
  s.fx.dropSnapshot(snap, cause, now);
}

/** A cold start took its snapshot (after init): restores can use it from now on. Returns false if it is no longer wanted. */
export function snapshotReady(s: CoreState, snap: CoreSnapshot, bytes: number, ref: unknown, now: number): boolean {
  const f = snap.f;
  if (f.snapshot !== snap || snap.ready) return false;
  snap.tier.usedBytes += bytes - snap.bytes;
  snap.bytes = bytes;
  f.snapshotBytes = bytes;
  snap.ready = true;
  snap.ref = ref;
  snap.lastUsed = now;
  s.counters.snapshotsCreated++;
  return true;
}

/**
 * The tier placement chose for this cold start's snapshot has no room on its
 * device: placement decides again without the tiers already found full for this
 * start. Returns the new snapshot to prepare, or undefined.
 */
export function snapshotNoRoom(s: CoreState, inst: CoreInstance, full: ReadonlySet<string>, now: number): CoreSnapshot | undefined {
  const snap = inst.snapshot;
  const f = inst.f;
  if (!snap || f.snapshot !== snap || snap.ready) return undefined;
  dropSnapshot(s, snap, 'failed', now);
  const next = placeSnapshot(s, f, now, (t) => !full.has(t.name));
  // the start now leaves the new snapshot (its snapshotReady / snapshotFailed name this one)
  inst.snapshot = next;
  if (!next) s.counters.snapshotsSkipped++;
  return next;
}

/** A snapshot that exists on the node already (the daemon's catalogue at start). */
export function addSnapshot(s: CoreState, f: CoreFunction, version: string, tierName: string, bytes: number, lastUsed: number, ref: unknown): CoreSnapshot | undefined {
  const tier = s.tiers.find((t) => t.name === tierName);
  if (!tier || version !== f.version || !s.cfg.snapshots) return undefined;
  if (f.snapshot) return undefined; // one per function: the caller offers newest first
  const snap = new CoreSnapshot(++s.snapSeq, f, version, tier, bytes, lastUsed);
  snap.ready = true;
  snap.ref = ref;
  f.snapshot = snap;
  f.snapshotBytes = bytes;
  tier.snaps.push(snap);
  tier.usedBytes += bytes;
  return snap;
}
