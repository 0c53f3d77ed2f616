// faascell bench clone-memory (issue 24): where a restored clone's host memory goes, by mapping kind, and
// what the knobs that cut it cost. Variants side by side in one run (each a daemon of its own, same image,
// same function): N clones of one snapshot through the real daemon, every clone holding one request that
// sleeps in the guest (as bench idle-density does). Per clone, from /proc/PID/smaps:
//   guest RAM: CoW copies   pages of the snapshot's RAM file the clone wrote (private copies: Private_Dirty)
//   guest RAM: file pages   the RAM file's page-cache pages the clone maps (shared by every clone: PSS)
//   RAM blocks (anon)       QEMU's other anonymous RAM blocks (the guest's small tail RAM, firmware)
//   TCG code cache          the anonymous rwx mapping QEMU translates guest code into (tb-size)
//   malloc: main heap       [heap]
//   malloc: thread arenas   glibc's per-thread arenas (64 MiB reservations, the touched part)
//   stacks                  thread and coroutine stacks (below a guard page), [stack]
//   image files             the guest kernel and initrd QEMU maps, the DAX root fs (page cache, shared)
//   QEMU + libraries        the binary's and libraries' mappings (their relocated data is private)
//   anon other              the rest: blocks malloc placed in mappings of their own (softmmu TLBs, buffers)
// plus, from /proc/PID/pagemap, which guest-physical pages the clone copied (the guest's side: what the idle
// guest writes), split into the guest kernel's static image and the rest, at two times after the clones
// started (the growth in between is what an idle guest dirties). Then the clones are released and warm runs
// timed on the same daemon (the knobs must not slow them).
import fs from 'node:fs';
import os from 'node:os';
import type { PoolStatus } from '../src/vmpool/pool.js';
import { benchDaemon, machine, summarize, table, type Summary } from './common.js';
import { HOLD, SIZE_MIB, vmmPids } from './idle-density.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4096;
/** glibc's arena reservation on 64-bit hosts (HEAP_MAX_SIZE) */
const ARENA_BYTES = 64 * MiB;

export const KINDS = [
  'guest RAM: CoW copies',
  'guest RAM: file pages',
  'RAM blocks (anon)',
  'TCG code cache',
  'malloc: main heap',
  'malloc: thread arenas',
  'stacks',
  'image files',
  'QEMU + libraries',
  'anon other',
] as const;
export type Kind = (typeof KINDS)[number];

export interface KindMemory {
  rssKiB: number;
  pssKiB: number;
  privateDirtyKiB: number;
  /** of which transparent huge pages */
  thpKiB: number;
}

export interface SmapsHints {
  /** the snapshot's RAM file (the clone maps it privately) */
  ramFile: (name: string) => boolean;
  /** files of the guest image (kernel, initrd, root fs) */
  imageFile: (name: string) => boolean;
}

interface Mapping {
  start: number;
  end: number;
  perms: string;
  name: string;
  rss: number;
  pss: number;
  privateDirty: number;
  anonymous: number;
  thp: number;
}

function parseSmaps(text: string): Mapping[] {
  const maps: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, name: head[4] ?? '', rss: 0, pss: 0, privateDirty: 0, anonymous: 0, thp: 0 };
      maps.push(cur);
      continue;
    }
    const m = /^(Rss|Pss|Private_Dirty|Anonymous|AnonHugePages):\s+(\d+) kB/.exec(line);
    if (!m || !cur) continue;
    const v = Number(m[2]);
    if (m[1] === 'Rss') cur.rss = v;
    else if (m[1] === 'Pss') cur.pss = v;
    else if (m[1] === 'Private_Dirty') cur.privateDirty = v;
    else if (m[1] === 'Anonymous') cur.anonymous = v;
    else cur.thp = v;
  }
  return maps;
}

/** The kind of each mapping of a QEMU process (its neighbours tell guard pages, arenas and stacks apart). */
function kindOf(maps: Mapping[], i: number, hints: SmapsHints): Kind {
  const m = maps[i]!;
  const prev = maps[i - 1];
  const next = maps[i + 1];
  const guard = (g: Mapping | undefined): boolean => g !== undefined && g.perms.startsWith('---') && g.name === '';
  if (hints.ramFile(m.name)) return 'guest RAM: file pages';
  if (m.name !== '' && hints.imageFile(m.name)) return 'image files';
  if (m.name === '[heap]') return 'malloc: main heap';
  if (m.name === '[stack]') return 'stacks';
  if (m.name.startsWith('/')) return 'QEMU + libraries';
  if (m.name !== '') return 'anon other';
  if (m.perms.includes('x')) return 'TCG code cache';
  if (!m.perms.startsWith('rw')) return 'anon other';
  // an arena: a 64 MiB-aligned reservation, its touched front read-write, the rest PROT_NONE
  if (m.start % ARENA_BYTES === 0 && ((guard(next) && next!.start === m.end && next!.end - m.start === ARENA_BYTES) || m.end - m.start === ARENA_BYTES)) return 'malloc: thread arenas';
  // a stack grows down towards its guard page (glibc's pthread stacks, QEMU's coroutine stacks)
  if (guard(prev) && prev!.end === m.start && prev!.end - prev!.start <= 64 * KiB) return 'stacks';
  // QEMU's RAM blocks: 2 MiB-aligned, a guard page right after (qemu_ram_mmap)
  if (m.start % (2 * MiB) === 0 && guard(next) && next!.start === m.end) return 'RAM blocks (anon)';
  return 'anon other';
}

export interface SmapsBreakdown {
  kinds: Record<Kind, KindMemory>;
  rssKiB: number;
  pssKiB: number;
  /** the largest mappings left in 'anon other' (size, RSS), to tell what they are */
  otherLargest: Array<{ sizeKiB: number; rssKiB: number }>;
}

export function smapsBreakdown(text: string, hints: SmapsHints): SmapsBreakdown {
  const maps = parseSmaps(text);
  const kinds = Object.fromEntries(KINDS.map((k) => [k, { rssKiB: 0, pssKiB: 0, privateDirtyKiB: 0, thpKiB: 0 }])) as Record<Kind, KindMemory>;
  const other: SmapsBreakdown['otherLargest'] = [];
  let rss = 0;
  let pss = 0;
  maps.forEach((m, i) => {
    let kind = kindOf(maps, i, hints);
    rss += m.rss;
    pss += m.pss;
    if (kind === 'guest RAM: file pages' && m.anonymous > 0) {
      // the private mapping's copied pages are anonymous: split them out (each counted whole in PSS)
      const cow = kinds['guest RAM: CoW copies'];
      cow.rssKiB += m.anonymous;
      cow.pssKiB += m.anonymous;
      cow.privateDirtyKiB += m.anonymous;
      const k = kinds[kind];
      k.rssKiB += m.rss - m.anonymous;
      k.pssKiB += m.pss - m.anonymous;
      k.privateDirtyKiB += m.privateDirty - m.anonymous;
      return;
    }
    if (kind === 'anon other' && m.rss > 0) other.push({ sizeKiB: (m.end - m.start) / KiB, rssKiB: m.rss });
    const k = kinds[kind];
    k.rssKiB += m.rss;
    k.pssKiB += m.pss;
    k.privateDirtyKiB += m.privateDirty;
    k.thpKiB += m.thp;
    kind = kind satisfies Kind;
  });
  other.sort((a, b) => b.rssKiB - a.rssKiB);
  return { kinds, rssKiB: rss, pssKiB: pss, otherLargest: other.slice(0, 5) };
}

/** The guest kernel's static image (text, data, bss) in guest-physical memory: the ELF's loadable segments. */
export function kernelImageRanges(elf: Buffer): Array<{ start: number; end: number }> {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return [];
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  const out: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (elf.readUInt32LE(o) !== 1) continue; // PT_LOAD
    const paddr = Number(elf.readBigUInt64LE(o + 24));
    const memsz = Number(elf.readBigUInt64LE(o + 40));
    out.push({ start: paddr, end: paddr + memsz });
  }
  return out;
}

/**
 * Guest-physical pages a clone copied, from pagemap entries of its RAM-file mapping (offset 0 = guest
 * address 0): present and no longer the file's page (bit 61 clear) means a private copy the guest wrote.
 */
export function copiedPages(pagemap: Buffer): number[] {
  const pages: number[] = [];
  for (let i = 0; i + 8 <= pagemap.length; i += 8) {
    const hi = pagemap.readUInt32LE(i + 4);
    const present = (hi & 0x80000000) !== 0;
    const file = (hi & 0x20000000) !== 0;
    if (present && !file) pages.push(i / 8);
  }
  return pages;
}

function readPagemap(pid: number, start: number, end: number): Buffer {
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const n = ((end - start) / PAGE) * 8;
    const buf = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const r = fs.readSync(fd, buf, got, n - got, (start / PAGE) * 8 + got);
      if (r <= 0) break;
      got += r;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

export interface GuestSide {
  /** guest pages the clone copied (MiB), in the kernel's static image and elsewhere */
  kernelImageMiB: number;
  restMiB: number;
  /** the same split by 16 MiB of guest-physical memory (the busiest regions), MiB */
  byRegion: Record<string, number>;
}

function guestSide(pid: number, hints: SmapsHints, kernel: Array<{ start: number; end: number }>): { pages: Set<number>; side: GuestSide } | undefined {
  const line = fs
    .readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .find((l) => hints.ramFile(l.split(/\s+/).slice(5).join(' ')));
  if (!line) return undefined;
  const [a, b] = line.split(' ')[0]!.split('-').map((x) => parseInt(x, 16)) as [number, number];
  const pages = copiedPages(readPagemap(pid, a, b));
  let inKernel = 0;
  const byRegion: Record<string, number> = {};
  for (const p of pages) {
    const addr = p * PAGE;
    if (kernel.some((r) => addr >= r.start && addr < r.end)) inKernel++;
    const region = `${Math.floor(addr / (16 * MiB)) * 16}-${Math.floor(addr / (16 * MiB)) * 16 + 16} MiB`;
    byRegion[region] = (byRegion[region] ?? 0) + PAGE / MiB;
  }
  return { pages: new Set(pages), side: { kernelImageMiB: (inKernel * PAGE) / MiB, restMiB: ((pages.length - inKernel) * PAGE) / MiB, byRegion } };
}

export interface CloneMemoryVariant {
  name: string;
  /** limits.* of the variant's daemon */
  limits: { tcgCodeCacheMiB?: number; tcgCodeCacheRestoreMiB?: number | null; vmmMallocArenaMax?: number | null; vmmMallocMmapThresholdKiB?: number | null; vmmThp?: 'off' | 'inherit' };
}

export interface CloneMemoryRead {
  atSeconds: number;
  pssMiB: Summary;
  /** per kind: median over the clones (MiB) of PSS and of private dirty */
  kinds: Record<Kind, { pssMiB: number; rssMiB: number; privateDirtyMiB: number; thpMiB: number }>;
  guest: { kernelImageMiB: number; restMiB: number; byRegion: Record<string, number> };
  /** pages copied by every clone read (the same guest pages in all of them), MiB */
  commonCopiedMiB: number;
  otherLargest: SmapsBreakdown['otherLargest'];
  threads: Summary;
  pageTablesKiB: Summary;
  memAvailableMiB: number;
}

export interface CloneMemoryVariantResult {
  variant: CloneMemoryVariant;
  clones: number;
  reads: CloneMemoryRead[];
  /** a restore: the worker's start (restore to ready), the client's whole first request, the first run's runMs */
  restoreStartMs: Summary;
  restoreClientMs: Summary;
  firstRunMs: Summary;
  /** host memory per clone: MemAvailable before the clones minus after them, over their count */
  hostPerCloneMiB: number;
  warmMs: Summary;
  /** how long each warm run's guest part took (the activation's runMs) */
  warmRunMs: Summary;
  failures: number;
}

export interface CloneMemoryResult {
  machine: Record<string, string | number>;
  clones: number;
  readsAt: number[];
  warmRuns: number;
  rounds: number;
  variants: CloneMemoryVariantResult[];
}

function median(xs: number[]): number {
  return summarize(xs).median;
}

function statusField(pid: number, key: string): number {
  try {
    return Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

function memAvailableMiB(): number {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface VariantDaemon {
  v: CloneMemoryVariant;
  b: Awaited<ReturnType<typeof benchDaemon>>;
  status: () => Promise<PoolStatus>;
  hints: SmapsHints;
  kernel: Array<{ start: number; end: number }>;
}

/** A daemon with the variant's limits, the hold function deployed, its snapshot taken and its first VM evicted. */
async function variantDaemon(v: CloneMemoryVariant, maxVms: number): Promise<VariantDaemon> {
  const b = await benchDaemon({
    log: { level: 'error' },
    node: { memory: { accounting: 'nominal' } },
    limits: v.limits,
    functionLimits: { maxInstances: maxVms, maxTimeoutMs: 30 * 60_000 },
    admission: { maxConcurrentInvocations: maxVms + 16, maxQueueLength: maxVms + 16, maxQueueDelayMs: 120_000, preferWarm: true },
    policies: { placement: { policy: 'fixed', tier: 'shm' }, keepAlive: { policy: 'fixed', ttlSeconds: 3600 } },
  });
  try {
    const status = async (): Promise<PoolStatus> => (await b.client.call<{ pool: PoolStatus }>('GET', '/v1/status')).pool;
    const shmTier = `/dev/shm/fc-bench-${b.dir.split('/').pop()}`;
    const image = b.d.image;
    const hints: SmapsHints = {
      ramFile: (name) => name.startsWith(shmTier + '/') && name.endsWith('/mem'),
      imageFile: (name) => name === image.kernelPath || name === image.initrdPath || name === image.rootfsPath,
    };
    await b.client.deploy('hold', HOLD, { codeKind: 'js', memoryMiB: SIZE_MIB, maxInstances: maxVms, timeoutMs: 30 * 60_000 });
    const first = await b.client.invoke('hold', {});
    if (first.status !== 200) throw new Error(`first invoke: HTTP ${first.status} ${JSON.stringify(first.body.error)}`);
    for (let i = 0; i < 600 && (await status()).tiers.every((t) => t.snapshots === 0); i++) await sleep(100);
    await evictAll(b);
    return { v, b, status, hints, kernel: kernelImageRanges(fs.readFileSync(image.kernelPath)) };
  } catch (e) {
    await b.close();
    throw e;
  }
}

async function evictAll(b: VariantDaemon['b']): Promise<void> {
  await b.client.call('POST', '/v1/functions/hold/evict');
  for (let i = 0; i < 600 && (await b.client.call<{ pool: PoolStatus }>('GET', '/v1/status')).pool.instances.length > 0; i++) await sleep(100);
}

/** N clones each holding a sleeping request, read at `readsAt` seconds after the last one started. */
async function memoryPhase(vd: VariantDaemon, opts: { clones: number; readsAt: number[]; log: (s: string) => void }): Promise<Pick<CloneMemoryVariantResult, 'reads' | 'hostPerCloneMiB' | 'failures'>> {
  const { b, status, hints, kernel, v } = vd;
  let failures = 0;
  const abort = new AbortController();
  const avail0 = memAvailableMiB();
  try {
    // one clone at a time: each new request needs a new VM; the requests hold until the daemon stops
    for (let i = 0; i < opts.clones; i++) {
      void fetch(`${b.d.url}/v1/functions/hold/invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ holdMs: 1_200_000 }), signal: abort.signal }).then(
        (r) => void (r.status !== 200 && !abort.signal.aborted && failures++),
        () => undefined,
      );
      for (let w = 0; w < 1200; w++) {
        if ((await status()).instances.filter((x) => x.state === 'busy').length > i) break;
        await sleep(100);
      }
    }
    const t0 = Date.now();
    const reads: CloneMemoryRead[] = [];
    for (const at of opts.readsAt) {
      await sleep(Math.max(0, t0 + at * 1000 - Date.now()));
      const st = await status();
      const pids = vmmPids(st.instances.filter((x) => x.state === 'busy').map((x) => x.id));
      const bds: SmapsBreakdown[] = [];
      const sides: Array<{ pages: Set<number>; side: GuestSide }> = [];
      for (const pid of pids) {
        try {
          bds.push(smapsBreakdown(fs.readFileSync(`/proc/${pid}/smaps`, 'utf8'), hints));
          const g = guestSide(pid, hints, kernel);
          if (g) sides.push(g);
        } catch {
          // exited meanwhile
        }
      }
      const kinds = Object.fromEntries(
        KINDS.map((k) => [k, { pssMiB: median(bds.map((x) => x.kinds[k].pssKiB)) / 1024, rssMiB: median(bds.map((x) => x.kinds[k].rssKiB)) / 1024, privateDirtyMiB: median(bds.map((x) => x.kinds[k].privateDirtyKiB)) / 1024, thpMiB: median(bds.map((x) => x.kinds[k].thpKiB)) / 1024 }]),
      ) as CloneMemoryRead['kinds'];
      const regions = new Set(sides.flatMap((s) => Object.keys(s.side.byRegion)));
      const byRegion = Object.fromEntries([...regions].map((r) => [r, median(sides.map((s) => s.side.byRegion[r] ?? 0))]).filter(([, x]) => (x as number) >= 0.5));
      let common = sides[0] ? [...sides[0].pages] : [];
      for (const s of sides.slice(1)) common = common.filter((p) => s.pages.has(p));
      reads.push({
        atSeconds: at,
        pssMiB: summarize(bds.map((x) => x.pssKiB / 1024)),
        kinds,
        guest: { kernelImageMiB: median(sides.map((s) => s.side.kernelImageMiB)), restMiB: median(sides.map((s) => s.side.restMiB)), byRegion },
        commonCopiedMiB: (common.length * PAGE) / MiB,
        otherLargest: bds[0]?.otherLargest ?? [],
        threads: summarize(pids.map((p) => statusField(p, 'Threads'))),
        pageTablesKiB: summarize(pids.map((p) => statusField(p, 'VmPTE'))),
        memAvailableMiB: Math.round(memAvailableMiB()),
      });
      opts.log(`    ${v.name}: ${pids.length} clones at ${at} s: PSS median ${reads.at(-1)!.pssMiB.median.toFixed(1)} MiB`);
    }
    return { reads, hostPerCloneMiB: (avail0 - memAvailableMiB()) / opts.clones, failures };
  } finally {
    abort.abort();
  }
}

interface Timing {
  restoreStartMs: number[];
  restoreClientMs: number[];
  firstRunMs: number[];
  warmMs: number[];
  warmRunMs: number[];
  failures: number;
}

/** One restore (every VM evicted first), its first run, then `warm` warm runs on the clone. */
async function timingRound(vd: VariantDaemon, warm: number, t: Timing): Promise<void> {
  await evictAll(vd.b);
  const t0 = performance.now();
  const r = await vd.b.client.invoke('hold', {});
  const a = r.body.activation;
  if (r.status !== 200 || a?.startPath !== 'restore') t.failures++;
  else {
    t.restoreClientMs.push(performance.now() - t0);
    if (typeof a.startDetails?.startMs === 'number') t.restoreStartMs.push(a.startDetails.startMs);
    if (a.runMs !== undefined) t.firstRunMs.push(a.runMs);
  }
  for (let i = 0; i < warm; i++) {
    const w0 = performance.now();
    const x = await vd.b.client.invoke('hold', {});
    if (x.status !== 200 || x.body.activation?.startPath !== 'warm') t.failures++;
    else {
      t.warmMs.push(performance.now() - w0);
      if (x.body.activation.runMs !== undefined) t.warmRunMs.push(x.body.activation.runMs);
    }
  }
}

export async function benchCloneMemory(opts: { clones: number; readsAt: number[]; warmRuns: number; variants: CloneMemoryVariant[]; rounds: number; log?: (s: string) => void }): Promise<CloneMemoryResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const out: CloneMemoryVariantResult[] = [];
  // 1. memory: one variant at a time (N clones each)
  const mem = new Map<string, Pick<CloneMemoryVariantResult, 'reads' | 'hostPerCloneMiB' | 'failures'>>();
  for (const v of opts.variants) {
    log(`  memory: ${v.name}`);
    const vd = await variantDaemon(v, opts.clones + 4);
    try {
      mem.set(v.name, await memoryPhase(vd, { clones: opts.clones, readsAt: opts.readsAt, log }));
    } finally {
      await vd.b.close();
    }
  }
  // 2. restore and warm-run times: every variant's daemon up at once, rounds interleaved (a restore, its
  // first run, then warm runs on that clone), so the machine's load falls on all variants alike
  log(`  times: ${opts.rounds} rounds of a restore and ${opts.warmRuns} warm runs per variant, interleaved`);
  const vds: VariantDaemon[] = [];
  const times = new Map<string, Timing>();
  try {
    for (const v of opts.variants) {
      vds.push(await variantDaemon(v, 4));
      times.set(v.name, { restoreStartMs: [], restoreClientMs: [], firstRunMs: [], warmMs: [], warmRunMs: [], failures: 0 });
    }
    for (let r = 0; r < opts.rounds; r++) for (const vd of vds) await timingRound(vd, opts.warmRuns, times.get(vd.v.name)!);
  } finally {
    await Promise.all(vds.map((vd) => vd.b.close()));
  }
  for (const v of opts.variants) {
    const m = mem.get(v.name)!;
    const t = times.get(v.name)!;
    out.push({ variant: v, clones: opts.clones, reads: m.reads, hostPerCloneMiB: m.hostPerCloneMiB, restoreStartMs: summarize(t.restoreStartMs), restoreClientMs: summarize(t.restoreClientMs), firstRunMs: summarize(t.firstRunMs), warmMs: summarize(t.warmMs), warmRunMs: summarize(t.warmRunMs), failures: m.failures + t.failures });
  }
  return { machine: machine(), clones: opts.clones, readsAt: opts.readsAt, warmRuns: opts.warmRuns, rounds: opts.rounds, variants: out };
}

/** Variants by name: default, tb16 / tb8 (code cache of restored clones), arena1 / arena2 (MALLOC_ARENA_MAX), mmap128 (MALLOC_MMAP_THRESHOLD_ in KiB), thpoff / thpinherit (limits.vmmThp), and joins with '+'. */
export function cloneMemoryVariant(name: string): CloneMemoryVariant {
  const limits: CloneMemoryVariant['limits'] = {};
  for (const part of name.split('+')) {
    let m: RegExpExecArray | null;
    if (part === 'default') continue;
    else if ((m = /^tb(\d+)$/.exec(part))) limits.tcgCodeCacheRestoreMiB = Number(m[1]);
    else if ((m = /^arena(\d+)$/.exec(part))) limits.vmmMallocArenaMax = Number(m[1]);
    else if ((m = /^mmap(\d+)$/.exec(part))) limits.vmmMallocMmapThresholdKiB = Number(m[1]);
    else if ((m = /^thp(off|inherit)$/.exec(part))) limits.vmmThp = m[1] as 'off' | 'inherit';
    else throw new Error(`clone-memory variant ${part}: default, tbN (restored clones' code cache, MiB), arenaN (MALLOC_ARENA_MAX), mmapN (MALLOC_MMAP_THRESHOLD_, KiB) or thpoff / thpinherit (limits.vmmThp), joined by +`);
  }
  return { name, limits };
}

export function formatCloneMemory(r: CloneMemoryResult): string {
  const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
  const lines = [
    `machine: ${JSON.stringify(r.machine)}`,
    `${r.clones} clones of one snapshot per variant (256 MiB hello function, each holding one sleeping request), read at ${r.readsAt.join(' and ')} s after the last clone started; then ${r.rounds} rounds, variants interleaved, of one restore and ${r.warmRuns} warm runs on that clone; MemAvailable now ${Math.round(memAvailableMiB())} MiB, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    '',
    '### Host memory per clone, by mapping kind (median over the clones; MiB: PSS, RSS, private dirty, THP)',
    '',
  ];
  for (const v of r.variants) {
    for (const rd of v.reads) {
      lines.push(`**${v.variant.name}** at ${rd.atSeconds} s: PSS median ${f(rd.pssMiB.median)} (p99 ${f(rd.pssMiB.p99)}) MiB over ${rd.pssMiB.n} clones; host memory per clone (ΔMemAvailable / clones, at the last read) ${f(v.hostPerCloneMiB)} MiB; threads ${rd.threads.median}; page tables ${rd.pageTablesKiB.median} KiB; MemAvailable ${rd.memAvailableMiB} MiB`);
      lines.push('');
      lines.push(table(['kind', 'PSS MiB', 'RSS MiB', 'private dirty MiB', 'of which THP MiB'], KINDS.map((k) => [k, f(rd.kinds[k].pssMiB), f(rd.kinds[k].rssMiB ?? NaN), f(rd.kinds[k].privateDirtyMiB), f(rd.kinds[k].thpMiB)])));
      lines.push('');
      lines.push(`guest side (pagemap of the RAM file mapping): copied pages ${f(rd.guest.kernelImageMiB + rd.guest.restMiB)} MiB: ${f(rd.guest.kernelImageMiB)} in the kernel's static image, ${f(rd.guest.restMiB)} elsewhere; the same pages in every clone read: ${f(rd.commonCopiedMiB)} MiB; by guest-physical region (MiB): ${Object.entries(rd.guest.byRegion).sort((a, b) => parseInt(a[0]) - parseInt(b[0])).map(([k, x]) => `${k}: ${f(x)}`).join(', ')}`);
      lines.push(`largest 'anon other' mappings of one clone (size / RSS KiB): ${rd.otherLargest.map((o) => `${o.sizeKiB}/${o.rssKiB}`).join(', ')}`);
      lines.push('');
    }
  }
  lines.push('### Side by side: the knobs\' cost');
  lines.push('');
  lines.push(
    table(
      ['variant', 'limits', 'clones', 'PSS/clone median (p99) MiB, last read', 'host MiB per clone (ΔMemAvailable, shared machine)', 'restore to ready median (p99) ms', 'restore request, client median (p99) ms', 'first run after restore runMs median (p99)', 'warm request, client median (p99) ms', 'warm runMs median (p99)', 'failures'],
      r.variants.map((v) => {
        const last = v.reads.at(-1)!;
        return [v.variant.name, JSON.stringify(v.variant.limits), v.clones, `${f(last.pssMiB.median)} (${f(last.pssMiB.p99)})`, f(v.hostPerCloneMiB), `${f(v.restoreStartMs.median)} (${f(v.restoreStartMs.p99)})`, `${f(v.restoreClientMs.median)} (${f(v.restoreClientMs.p99)})`, `${f(v.firstRunMs.median)} (${f(v.firstRunMs.p99)})`, `${f(v.warmMs.median)} (${f(v.warmMs.p99)})`, `${f(v.warmRunMs.median)} (${f(v.warmRunMs.p99)})`, v.failures];
      }),
    ),
  );
  return lines.join('\n');
}
