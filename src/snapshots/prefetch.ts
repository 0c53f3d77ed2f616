// Working-set prefetch for snapshot restores (after REAP, ASPLOS'21).
//
// Record: after a restored VM's first invocation, the pages of the snapshot's
// RAM file that the guest touched are the ones mapped in the VMM's private
// mapping of that file. /proc/PID/pagemap tells which are present (bit 63) or
// swapped (bit 62); the page-frame number is not needed, so this works without
// CAP_SYS_ADMIN. The set is stored next to the snapshot as coalesced ranges.
//
// Prefetch: before the next restore, read those ranges of the RAM file in one
// sequential pass (large reads, file order), so the guest's page faults hit the
// page cache instead of issuing small random reads to a cold storage tier. On a
// tmpfs tier the file already is in memory and prefetch cannot help.

import { open, readFile, writeFile } from 'node:fs/promises';

const PAGE = 4096;

export interface WorkingSet {
  pageSize: number;
  /** [firstPage, pageCount] in file pages, sorted, coalesced */
  ranges: Array<[number, number]>;
  pages: number;
}

/** Find the VMM's mapping of `file` and list the pages of it that are resident (asynchronous: the Worker's mailbox never waits for it). */
export async function recordWorkingSet(pid: number, file: string): Promise<WorkingSet> {
  const maps = (await readFile(`/proc/${pid}/maps`, 'utf8')).split('\n');
  const ranges: Array<[number, number]> = [];
  let pages = 0;
  const fh = await open(`/proc/${pid}/pagemap`, 'r');
  try {
    for (const line of maps) {
      // 7f..-7f.. rw-p 00000000 00:1f 1234   /dev/shm/.../mem
      const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
      if (!m || m[4]!.replace(/ \(deleted\)$/, '') !== file) continue;
      const start = BigInt('0x' + m[1]!);
      const end = BigInt('0x' + m[2]!);
      const fileOffPage = Number(BigInt('0x' + m[3]!) / BigInt(PAGE));
      const n = Number((end - start) / BigInt(PAGE));
      const chunk = 16384; // pages per pagemap read (128 KiB of entries)
      const buf = Buffer.alloc(chunk * 8);
      for (let i = 0; i < n; i += chunk) {
        const count = Math.min(chunk, n - i);
        const pos = Number(((start / BigInt(PAGE)) + BigInt(i)) * 8n);
        const { bytesRead: got } = await fh.read(buf, 0, count * 8, pos);
        for (let j = 0; j < got / 8; j++) {
          const hi = buf.readUInt32LE(j * 8 + 4);
          const present = (hi & 0x80000000) !== 0 || (hi & 0x40000000) !== 0;
          if (!present) continue;
          pages++;
          const page = fileOffPage + i + j;
          const last = ranges[ranges.length - 1];
          if (last && last[0] + last[1] === page) last[1]++;
          else ranges.push([page, 1]);
        }
      }
    }
  } finally {
    await fh.close();
  }
  return { pageSize: PAGE, ranges, pages };
}

export async function saveWorkingSet(ws: WorkingSet, path: string): Promise<void> {
  await writeFile(path, JSON.stringify(ws));
}

export async function loadWorkingSet(path: string): Promise<WorkingSet | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as WorkingSet;
  } catch {
    return undefined;
  }
}

/**
 * Read the working set of `file` into the page cache in one pass. Ranges closer
 * than `gapPages` are merged so the storage sees few, large, sequential reads.
 * Returns the bytes read.
 */
export async function prefetchWorkingSet(file: string, ws: WorkingSet, gapPages = 16): Promise<number> {
  const merged: Array<[number, number]> = [];
  for (const [p, n] of ws.ranges) {
    const last = merged[merged.length - 1];
    if (last && p - (last[0] + last[1]) <= gapPages) last[1] = p + n - last[0];
    else merged.push([p, n]);
  }
  // asynchronous reads: the daemon's event loop keeps serving other requests meanwhile
  const fh = await open(file, 'r');
  const buf = Buffer.alloc(2 * 1024 * 1024);
  let total = 0;
  try {
    for (const [p, n] of merged) {
      let off = p * ws.pageSize;
      let left = n * ws.pageSize;
      while (left > 0) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, left), off);
        if (bytesRead <= 0) break;
        total += bytesRead;
        off += bytesRead;
        left -= bytesRead;
      }
    }
  } finally {
    await fh.close();
  }
  return total;
}
