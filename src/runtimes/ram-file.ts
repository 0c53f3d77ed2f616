// A shared-memory snapshot's RAM file and the file system under it (issue 19).
//
// Restored clones map the RAM file privately (copy-on-write). On a disk file
// system (ext4, xfs) a clone's fault on a hole of the file reads a clean,
// reclaimable page of zeros into the page cache and allocates no block. On
// tmpfs it does not: shmem allocates the page *in the file* on every fault of a
// hole (read or write, private mapping or not), charges it to the faulting
// clone's memory cgroup, cannot reclaim it without swap, and the clone's write
// then copies it. A clone touching memory its snapshot never touched grows the
// snapshot's file for good and is charged twice: a 256 MiB guest allocating
// 150 MiB was killed by its memory cgroup (docs/snapshots-memory.md).
//
// On tmpfs the RAM file is therefore made dense once, right after the snapshot
// is committed: fallocate(2) fills every hole with a page of zeros. Clones then
// only find pages that exist (charged to whoever allocated them, not to the
// clone); the file keeps its size whatever the clones do, and the tier's
// allocated blocks are what the catalogue records. A restore that comes before
// the fill is done fills the rest itself (ensureDense): no clone ever maps a
// sparse tmpfs file.

import { spawn } from 'node:child_process';
import { existsSync, statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/** statfs(2) f_type of tmpfs/shmem (linux/magic.h TMPFS_MAGIC). */
export const TMPFS_MAGIC = 0x01021994;

/** The file system holding `p` is tmpfs (shmem): its page cache is its storage. */
export function isTmpfs(p: string, statfs: (p: string) => { type: number } = statfsSync): boolean {
  try {
    return statfs(p).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** `p`, or its nearest ancestor that exists (a tier's directory may not be made yet). */
export function existingAncestor(p: string): string {
  let d = p;
  while (!existsSync(d)) {
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return d;
}

/** Page size of tmpfs allocations (x86-64, arm64 with 4 KiB pages). */
const PAGE = 4096;

/** Bytes the file system allocated for `file` (st_blocks: a sparse file's holes count nothing). */
export function allocatedBytes(file: string): number {
  return statSync(file).blocks * 512;
}

/** A regular file's holes: its apparent size minus what is allocated (0 for a dense file, a directory or a missing file). */
export function holeBytes(file: string): number {
  try {
    const st = statSync(file);
    return st.isFile() ? Math.max(0, st.size - st.blocks * 512) : 0;
  } catch {
    return 0;
  }
}

/** Bytes `file` takes on tmpfs once its holes are filled (what fillHoles leaves). */
export function denseBytes(file: string): number {
  const st = statSync(file);
  if (!st.isFile() || st.size <= st.blocks * 512) return st.blocks * 512;
  return Math.ceil(st.size / PAGE) * PAGE;
}

/**
 * Before a clone maps `file` privately: if it is on tmpfs and has holes, fill them (concurrent
 * fills of one file are safe: fallocate skips what is allocated). Returns whether it filled.
 * One stat(2) when the file is dense already, a statfs(2) more when it is sparse (a disk tier).
 */
export async function ensureDense(file: string, onTmpfs: (p: string) => boolean = isTmpfs): Promise<boolean> {
  if (holeBytes(file) === 0 || !onTmpfs(file)) return false;
  await fillHoles(file);
  return true;
}

/**
 * Fills every hole of `file` with allocated zero pages, keeping its size and contents.
 * Node has no fallocate(2): util-linux's `fallocate` does it (mode 0 over [0, size)).
 * Safe while clones map the file: a hole and a fresh page both read as zeros.
 */
export function fillHoles(file: string): Promise<void> {
  const size = statSync(file).size;
  return new Promise((resolve, reject) => {
    const p = spawn('fallocate', ['--offset', '0', '--length', String(size), '--', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-2000)));
    p.once('error', reject);
    p.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`fallocate ${file}: ${signal ?? `exit code ${code}`}${err ? `: ${err.trim()}` : ''}`))));
  });
}
