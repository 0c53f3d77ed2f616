// Free space on a snapshot tier's file system, checked before a snapshot is
// placed there. A tier's configured capacity is the daemon's own accounting;
// the file system under it may hold less (other users, a small tmpfs, a full
// disk). A snapshot that does not fit fails late and badly: a shared-memory
// cold boot has its guest RAM in a file on the tier, and a tmpfs that runs out
// of pages kills the VMM with SIGBUS in the middle of a boot. Refusing the
// placement up front turns that into a cold boot without a snapshot.

import { statfsSync } from 'node:fs';

const MiB = 1024 * 1024;

/** Room kept for the device state and the working-set file besides the guest's RAM. */
export const SNAPSHOT_STATE_MARGIN_BYTES = 16 * MiB;

/** The tier's file system has less free space than the snapshot may need. */
export class TierSpaceError extends Error {
  override readonly name = 'TierSpaceError';
  constructor(
    readonly tierPath: string,
    readonly freeBytes: number,
    readonly neededBytes: number,
  ) {
    super(`tier ${tierPath}: ${Math.floor(freeBytes / MiB)} MiB free, a snapshot may need ${Math.ceil(neededBytes / MiB)} MiB`);
  }
}

/** Bytes an unprivileged writer may still allocate on the file system holding `dir`. */
export function freeBytes(dir: string, statfs: (p: string) => { bavail: number; bsize: number } = statfsSync): number {
  const s = statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Bytes one snapshot of a `memoryMiB` guest may take at most: its RAM (the
 * shared-memory file grows up to the guest's size; a full dump is at most that)
 * and its device state.
 */
export function snapshotBytesNeeded(memoryMiB: number): number {
  return memoryMiB * MiB + SNAPSHOT_STATE_MARGIN_BYTES;
}

/**
 * Throws TierSpaceError unless the tier's file system can take a snapshot of
 * `memoryMiB` on top of `reservedBytes` (snapshots on it still being written,
 * which may grow to their full size).
 */
export function assertTierSpace(dir: string, memoryMiB: number, reservedBytes = 0, statfs?: (p: string) => { bavail: number; bsize: number }): void {
  const free = freeBytes(dir, statfs);
  const need = snapshotBytesNeeded(memoryMiB) + reservedBytes;
  if (free < need) throw new TierSpaceError(dir, free, need);
}
