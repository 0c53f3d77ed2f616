// The host's memory as VmPool's guard reads it: MemAvailable (/proc/meminfo), PSI
// memory pressure (/proc/pressure/memory) and the memory cgroup the VMs live in with
// each of its ancestors (cgroup v1 or v2). The reading and the level it means are
// pure functions; readHostMemory does the file reads. The decision core answers a
// level (src/vmpool/core/pressure.ts): evict idle, refuse starts, stop the newest
// growing instance — before the kernel's OOM killer would pick a victim itself.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PRESSURE_EVICT, PRESSURE_OK, PRESSURE_REFUSE, PRESSURE_STOP, type PressureLevel } from './core/core.js';

const MiB = 1024 * 1024;

export interface MemorySource {
  /** host: the machine (MemAvailable of MemTotal); else the cgroup directory */
  name: string;
  availableMiB: number;
  limitMiB: number;
}

export interface HostMemoryReading {
  /** every source read; the tightest (least available for its limit) decides */
  sources: MemorySource[];
  /** PSI memory: share of the last 10 s in which some / all tasks stalled on memory (percent); undefined without PSI */
  psiSome10?: number;
  psiFull10?: number;
}

export interface GuardThresholds {
  /** fractions of a source's limit still available below which the node evicts idle VMs / refuses starts / stops the newest growing VM */
  evictBelow: number;
  refuseBelow: number;
  stopBelow: number;
  /** PSI memory (avg10, percent) at or above which the node evicts idle VMs (some) / also refuses starts (full); 0: ignored */
  psiSomeEvict: number;
  psiFullRefuse: number;
  /**
   * PSI `some` counts only while the tightest source has less than this fraction of its limit available (1: at
   * any availability). Reclaiming page cache on a host whose cores are busy stalls tasks with gigabytes still
   * available (bench/runs/2026-12-07-psi-reclaim-s7.txt); `full` (every task stalled) counts at any availability.
   */
  psiAvailableBelow: number;
}

export interface GuardVerdict {
  level: PressureLevel;
  /** what the tightest source lacks to be back above its evict threshold (MiB) */
  shortMiB: number;
  /** the tightest source */
  source: MemorySource | undefined;
}

/** The level a reading means (pure). */
export function guardVerdict(r: HostMemoryReading, t: GuardThresholds): GuardVerdict {
  let tight: MemorySource | undefined;
  for (const s of r.sources) if (s.limitMiB > 0 && (!tight || s.availableMiB / s.limitMiB < tight.availableMiB / tight.limitMiB)) tight = s;
  let level: PressureLevel = PRESSURE_OK;
  let shortMiB = 0;
  // no source read: PSI alone speaks
  const frac = tight ? tight.availableMiB / tight.limitMiB : 0;
  if (tight) {
    level = frac < t.stopBelow ? PRESSURE_STOP : frac < t.refuseBelow ? PRESSURE_REFUSE : frac < t.evictBelow ? PRESSURE_EVICT : PRESSURE_OK;
    shortMiB = Math.max(0, Math.ceil(t.evictBelow * tight.limitMiB - tight.availableMiB));
  }
  // stalls on memory without a source near its limit (thrashing, a neighbour): evict, refuse; never stop a run for
  // it. `some` alone, with memory plentiful, is page-cache reclaim on busy cores: not counted (psiAvailableBelow)
  if (t.psiFullRefuse > 0 && (r.psiFull10 ?? 0) >= t.psiFullRefuse && level < PRESSURE_REFUSE) level = PRESSURE_REFUSE;
  else if (t.psiSomeEvict > 0 && (r.psiSome10 ?? 0) >= t.psiSomeEvict && frac < t.psiAvailableBelow && level < PRESSURE_EVICT) level = PRESSURE_EVICT;
  return { level, shortMiB, source: tight };
}

/** MemTotal and MemAvailable (MiB) from /proc/meminfo text. */
export function parseMeminfo(text: string): { totalMiB: number; availableMiB: number } | undefined {
  const kib = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const total = kib('MemTotal');
  const avail = kib('MemAvailable');
  if (total === undefined || avail === undefined) return undefined;
  return { totalMiB: total / 1024, availableMiB: avail / 1024 };
}

/** avg10 of the `some` and `full` lines of /proc/pressure/memory. */
export function parsePsi(text: string): { some10?: number; full10?: number } {
  const avg = (kind: string): number | undefined => {
    const m = new RegExp(`^${kind} avg10=([0-9.]+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  return { some10: avg('some'), full10: avg('full') };
}

/** A key of memory.stat (bytes), 0 when absent. */
export function statValue(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * One memory cgroup: its limit and what is available below it (MiB), counting its
 * inactive file pages as reclaimable (the kernel drops those before it OOM-kills);
 * undefined when it has no limit. `files`: the contents of its limit, usage and
 * memory.stat files (v1: memory.limit_in_bytes, memory.usage_in_bytes; v2:
 * memory.max, memory.current).
 */
export function cgroupAvailable(version: 'v1' | 'v2', limit: string, usage: string, stat: string): { limitMiB: number; availableMiB: number } | undefined {
  const l = limit.trim();
  if (l === 'max' || l === '') return undefined;
  const limitBytes = Number(l);
  // v1 writes "no limit" as a page-rounded 2^63
  if (!Number.isFinite(limitBytes) || limitBytes >= 2 ** 62) return undefined;
  const inactive = statValue(stat, version === 'v1' ? 'total_inactive_file' : 'inactive_file');
  const used = Math.max(0, Number(usage.trim()) - inactive);
  return { limitMiB: limitBytes / MiB, availableMiB: Math.max(0, limitBytes - used) / MiB };
}

export interface HostMemoryPlaces {
  /** the VMs' memory cgroup (e.g. the daemon's cgroup group directory) and its version; its ancestors are read too */
  cgroup?: { version: 'v1' | 'v2'; dir: string };
  procRoot?: string;
}

async function readText(f: string): Promise<string | undefined> {
  try {
    return await fs.readFile(f, 'utf8');
  } catch {
    return undefined;
  }
}

/** Reads every source once. */
export async function readHostMemory(p: HostMemoryPlaces): Promise<HostMemoryReading> {
  const proc = p.procRoot ?? '/proc';
  const [meminfo, psi] = await Promise.all([readText(path.join(proc, 'meminfo')), readText(path.join(proc, 'pressure', 'memory'))]);
  const sources: MemorySource[] = [];
  const host = meminfo ? parseMeminfo(meminfo) : undefined;
  if (host) sources.push({ name: 'host', availableMiB: host.availableMiB, limitMiB: host.totalMiB });
  if (p.cgroup) {
    const { version } = p.cgroup;
    const [limitFile, usageFile] = version === 'v1' ? ['memory.limit_in_bytes', 'memory.usage_in_bytes'] : ['memory.max', 'memory.current'];
    // the VMs' cgroup and its ancestors: a limit anywhere above them counts
    for (let dir = p.cgroup.dir; ; dir = path.dirname(dir)) {
      const [limit, usage, stat] = await Promise.all([readText(path.join(dir, limitFile)), readText(path.join(dir, usageFile)), readText(path.join(dir, 'memory.stat'))]);
      if (limit === undefined || usage === undefined) break;
      const a = cgroupAvailable(version, limit, usage, stat ?? '');
      if (a) sources.push({ name: dir, ...a });
      if (path.dirname(dir) === dir) break;
    }
  }
  const ps = psi ? parsePsi(psi) : {};
  return { sources, psiSome10: ps.some10, psiFull10: ps.full10 };
}
