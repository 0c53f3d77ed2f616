// Host resources of each VMM process, read from /proc. The VMM pids come from
// the run directories (stateDir/run/VMID/qemu.pid, written by the VMM itself),
// so this needs nothing from VmPool. A pid counts only while its command line
// still names its run directory: a reused pid is never measured.

import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface VmSample {
  vmId: string;
  pid: number;
  rssBytes: number;
  pssBytes: number;
  /** user + system CPU time of the VMM process since it started */
  cpuSeconds: number;
}

const PID_FILES = ['qemu.pid', 'vmm.pid', 'firecracker.pid'];

/** Rss and Pss (bytes) from /proc/PID/smaps_rollup text. */
export function parseSmapsRollup(text: string): { rssBytes: number; pssBytes: number } {
  const kib = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rssBytes: kib('Rss'), pssBytes: kib('Pss') };
}

/** utime + stime (clock ticks) from /proc/PID/stat text; the command name may contain spaces and parentheses. */
export function parseStatCpuTicks(text: string): number {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields after the command: state(3) … utime(14) stime(15), so index 11 and 12 here
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : 0;
}

/** USER_HZ: the unit of /proc/PID/stat CPU times (a constant of the running kernel). */
const TICKS_PER_SECOND = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100; // Linux's USER_HZ on every common architecture
  }
})();

/** One sample of every VMM with a live pid file under `runRoot`. */
export async function sampleVms(runRoot: string): Promise<VmSample[]> {
  let dirs: string[];
  try {
    dirs = await fs.readdir(runRoot);
  } catch {
    return [];
  }
  const samples = await Promise.all(dirs.map((d) => sampleOne(path.join(runRoot, d))));
  return samples.filter((s): s is VmSample => s !== undefined);
}

async function sampleOne(dir: string): Promise<VmSample | undefined> {
  for (const f of PID_FILES) {
    let pid: number;
    try {
      pid = parseInt(await fs.readFile(path.join(dir, f), 'utf8'), 10);
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmdline.includes(dir)) return undefined;
      const [smaps, stat] = await Promise.all([fs.readFile(`/proc/${pid}/smaps_rollup`, 'utf8'), fs.readFile(`/proc/${pid}/stat`, 'utf8')]);
      return { vmId: path.basename(dir), pid, ...parseSmapsRollup(smaps), cpuSeconds: parseStatCpuTicks(stat) / TICKS_PER_SECOND };
    } catch {
      return undefined; // exited between the reads
    }
  }
  return undefined;
}
