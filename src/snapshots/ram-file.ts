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
// On tmpfs the RAM file is therefore made dense once, when the snapshot is
// committed: fallocate(2) fills every hole with a page of zeros. Clones then
// only find pages that exist (charged to whoever allocated them, not to the
// clone); the file keeps its size whatever the clones do, and the tier's
// allocated blocks are what the catalogue records.

import { spawn } from 'node:child_process';
import { statSync, statfsSync } from 'node:fs';

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
