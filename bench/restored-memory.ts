// faascell bench restored-memory (issue 19): can a restored clone use the memory it
// was given, what does it cost, and what happens to the snapshot's RAM file?
//
// For each way of backing a snapshot's RAM, side by side in one run (rounds
// interleaved): one snapshot of a 256 MiB guest after init, then per round two
// clones restored from it (both alive, so shared pages split in PSS), each
// answering a first run, then each allocating until `fraction` of the guest's
// memory is in use. The VMMs run as the daemon runs them (jail, seccomp, per-VM
// memory cgroup with the default limits), so a clone charged beyond its limit is
// killed exactly as in the daemon.
//
// Backings:
//   tmpfs-sparse        the RAM file on tmpfs as the snapshot left it (before issue 19)
//   tmpfs-sparse+limit  the same, the clone's memory limit raised by the guest's size
//                       (what a limit that counts the shared file pages would need)
//   tmpfs-dense         the RAM file on tmpfs with its holes filled (fallocate) after the snapshot
//   disk                the RAM file on the disk file system (ext4 page cache, warm)
//   disk-cold           the same with the file's pages dropped from the page cache before each restore
//   full-stream         anonymous guest RAM, the RAM streamed into the state file (on tmpfs)
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fillHoles, allocatedBytes } from '../src/runtimes/ram-file.js';
import type { QemuVm } from '../src/runtimes/qemu/driver.js';
import type { SnapshotFiles, VmConfig } from '../src/runtimes/types.js';
import { FIXTURES, machine, ms, summarize, table, type Summary } from './common.js';
import { pickVariants, prepareVariants, releaseVariants, type VariantRig } from './guest.js';

const run = promisify(execFile);
const GUEST_MIB = 256;
const MiB = 1048576;

export const BACKINGS = ['tmpfs-sparse', 'tmpfs-sparse+limit', 'tmpfs-dense', 'disk', 'disk-cold', 'full-stream'] as const;
export type Backing = (typeof BACKINGS)[number];

interface CloneSample {
  restoreMs: number;
  firstReplyMs: number;
  idleRssMiB: number;
  idlePssMiB: number;
  /** the clone's memory cgroup after its first reply */
  idleCgroupMiB?: number;
  allocated: boolean;
  failure?: string;
  allocMs?: number;
  /** guest memory in use after the allocation, as a fraction of its MemTotal */
  guestUsed?: number;
  afterRssMiB?: number;
  afterPssMiB?: number;
  /** the clone's memory cgroup: peak over its life (v1 max_usage_in_bytes / v2 memory.peak) */
  cgroupPeakMiB?: number;
  cgroupLimitMiB?: number;
}

export interface BackingResult {
  backing: Backing;
  /** allocated bytes of the RAM file (shared-memory) or the state file (full-stream), MiB */
  snapshotMiB: { afterSnapshot: number; afterPrepare: number; afterClones: number };
  stateMiB: number;
  prepareMs: number;
  clones: CloneSample[];
  restoreMs: Summary;
  firstReplyMs: Summary;
  idlePssMiB: Summary;
  idleRssMiB: Summary;
  allocatedOk: number;
}

export interface RestoredMemoryResult {
  machine: Record<string, string | number>;
  accelerator: string;
  guestMiB: number;
  fraction: number;
  rounds: number;
  backings: BackingResult[];
}

const ALLOC_JS = fs.readFileSync(path.join(FIXTURES, 'allocate-run.js')).toString('base64');

function smapsRollup(pid: number): { rss: number; pss: number } {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const f = (n: string) => Number(new RegExp(`^${n}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) / 1024;
  return { rss: f('Rss'), pss: f('Pss') };
}

/** The memory cgroup directory of a process (v1 memory hierarchy or v2), or undefined. */
function memcgDir(pid: number): string | undefined {
  try {
    const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
    const v1 = lines.find((l) => /^\d+:[^:]*\bmemory\b[^:]*:/.test(l));
    if (v1) return path.join('/sys/fs/cgroup/memory', v1.split(':')[2]!);
    const v2 = lines.find((l) => l.startsWith('0::'));
    if (v2) return path.join('/sys/fs/cgroup', v2.slice(3));
  } catch {
    // gone
  }
  return undefined;
}

function readMiB(dir: string | undefined, files: string[]): number | undefined {
  if (!dir) return undefined;
  for (const f of files) {
    try {
      const v = fs.readFileSync(path.join(dir, f), 'utf8').trim();
      if (v !== 'max') return Number(v) / MiB;
    } catch {
      // not this hierarchy's name
    }
  }
  return undefined;
}

function writeLimit(dir: string, bytes: number): void {
  for (const f of ['memory.limit_in_bytes', 'memory.max']) {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) continue;
    // v1: memsw first when raising (it must stay >= limit_in_bytes)
    const sw = path.join(dir, 'memory.memsw.limit_in_bytes');
    if (f === 'memory.limit_in_bytes' && fs.existsSync(sw)) fs.writeFileSync(sw, String(bytes));
    fs.writeFileSync(p, String(bytes));
    return;
  }
}

interface Prepared {
  backing: Backing;
  dir: string;
  snap: SnapshotFiles;
  memoryFile: string;
  result: BackingResult;
}

export async function benchRestoredMemory(opts: { rounds: number; fraction?: number; backings?: string[]; log?: (s: string) => void }): Promise<RestoredMemoryResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const fraction = opts.fraction ?? 0.9;
  const backings = (opts.backings && opts.backings.length > 0 ? opts.backings : [...BACKINGS]) as Backing[];
  for (const b of backings) if (!(BACKINGS as readonly string[]).includes(b)) throw new Error(`unknown backing ${b}: ${BACKINGS.join(', ')}`);
  const [first] = await prepareVariants(pickVariants(undefined, ['tuned']), log);
  if (!first) throw new Error('no image variant');
  const rig: VariantRig = first;
  const shm = fs.mkdtempSync(path.join('/dev/shm', 'fc-rmem-'));
  const disk = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-rmem-'));
  const live = new Set<QemuVm>();
  let seq = 0;
  const cfg = (memory: VmConfig['memory']): VmConfig => {
    const vmId = `rmem-${process.pid}-${++seq}`;
    return { vmId, memoryMiB: GUEST_MIB, vcpus: 1, image: rig.image, runDir: path.join(shm, 'run', vmId), accelerator: rig.accelerator, memory };
  };
  const prepared: Prepared[] = [];
  try {
    for (const b of backings) prepared.push(await prepare(b));
    for (let r = 0; r < opts.rounds; r++) {
      for (const p of prepared) await round(p);
      log(`  round ${r + 1}/${opts.rounds} done`);
    }
    for (const p of prepared) {
      p.result.snapshotMiB.afterClones = allocatedBytes(p.memoryFile) / MiB;
      const c = p.result.clones;
      Object.assign(p.result, {
        restoreMs: summarize(c.map((x) => x.restoreMs)),
        firstReplyMs: summarize(c.map((x) => x.firstReplyMs)),
        idlePssMiB: summarize(c.map((x) => x.idlePssMiB)),
        idleRssMiB: summarize(c.map((x) => x.idleRssMiB)),
        allocatedOk: c.filter((x) => x.allocated).length,
      });
    }
  } finally {
    await Promise.allSettled([...live].map((v) => v.stop()));
    fs.rmSync(shm, { recursive: true, force: true });
    fs.rmSync(disk, { recursive: true, force: true });
    await releaseVariants([rig]);
  }
  return { machine: machine(), accelerator: rig.accelerator, guestMiB: GUEST_MIB, fraction, rounds: opts.rounds, backings: prepared.map((p) => p.result) };

  async function prepare(b: Backing): Promise<Prepared> {
    const dir = path.join(b.startsWith('disk') ? disk : shm, b.replace(/[^a-z0-9-]/g, '_'));
    fs.mkdirSync(dir, { recursive: true });
    const kind: SnapshotFiles['kind'] = b === 'full-stream' ? 'full-stream' : 'shared-memory';
    const snap: SnapshotFiles = { kind, statePath: path.join(dir, 'state'), memoryPath: path.join(dir, 'mem') };
    const vm = (await rig.driver.boot(cfg(kind === 'shared-memory' ? { kind: 'file', path: snap.memoryPath, share: true } : { kind: 'anonymous' })));
    live.add(vm);
    try {
      await vm.channel.ready(300_000);
      const init = await vm.channel.request({ op: 'init', files: { 'index.js': ALLOC_JS }, main: 'index.js', entry: 'main', env: {} }, 120_000);
      if (!init.ok) throw new Error(`init: ${init.error.message}`);
      await vm.snapshot(snap);
    } finally {
      await vm.stop();
      live.delete(vm);
    }
    const memoryFile = kind === 'shared-memory' ? snap.memoryPath : snap.statePath;
    const afterSnapshot = allocatedBytes(memoryFile) / MiB;
    const t0 = performance.now();
    if (b === 'tmpfs-dense') await fillHoles(snap.memoryPath);
    const prepareMs = performance.now() - t0;
    const result = {
      backing: b,
      snapshotMiB: { afterSnapshot, afterPrepare: allocatedBytes(memoryFile) / MiB, afterClones: NaN },
      stateMiB: allocatedBytes(snap.statePath) / MiB,
      prepareMs,
      clones: [],
    } as unknown as BackingResult;
    log(`  ${b}: snapshot ${afterSnapshot.toFixed(1)} MiB allocated${b === 'tmpfs-dense' ? `, ${result.snapshotMiB.afterPrepare.toFixed(1)} MiB after filling its holes in ${ms(prepareMs)}` : ''}`);
    return { backing: b, dir, snap, memoryFile, result };
  }

  async function round(p: Prepared): Promise<void> {
    const { backing: b, snap } = p;
    if (b === 'disk-cold') await run('dd', [`if=${snap.memoryPath}`, 'iflag=nocache', 'count=0', 'status=none']);
    const clones: Array<{ vm: QemuVm; s: CloneSample }> = [];
    try {
      for (let i = 0; i < 2; i++) {
        const t0 = performance.now();
        const vm = (await rig.driver.restore(cfg(snap.kind === 'shared-memory' ? { kind: 'file', path: snap.memoryPath, share: false } : { kind: 'anonymous' }), snap));
        live.add(vm);
        const restoreMs = performance.now() - t0;
        const first = await vm.channel.request({ op: 'run', activationId: 'first', params: { mib: 0 }, deadlineMs: 60_000 }, 60_000);
        const firstReplyMs = performance.now() - t0;
        if (!first.ok) throw new Error(`${b}: first run: ${first.error.message}`);
        const cg = memcgDir(vm.pid);
        if (b === 'tmpfs-sparse+limit' && cg) {
          const cur = readMiB(cg, ['memory.limit_in_bytes', 'memory.max']);
          if (cur !== undefined) writeLimit(cg, Math.round((cur + GUEST_MIB) * MiB));
        }
        clones.push({ vm, s: { restoreMs, firstReplyMs, idleRssMiB: 0, idlePssMiB: 0, allocated: false } });
      }
      // both alive: shared pages split between them
      for (const c of clones) {
        const m = smapsRollup(c.vm.pid);
        c.s.idleRssMiB = m.rss;
        c.s.idlePssMiB = m.pss;
        c.s.idleCgroupMiB = readMiB(memcgDir(c.vm.pid), ['memory.usage_in_bytes', 'memory.current']);
      }
      for (const c of clones) {
        const cg = memcgDir(c.vm.pid);
        c.s.cgroupLimitMiB = readMiB(cg, ['memory.limit_in_bytes', 'memory.max']);
        const t0 = performance.now();
        try {
          const r = await c.vm.channel.request({ op: 'run', activationId: 'alloc', params: { fraction }, deadlineMs: 120_000 }, 120_000);
          if (!r.ok) throw new Error(r.error.message);
          const res = r.result as { totalKiB: number; usedKiB: number };
          c.s.allocated = true;
          c.s.allocMs = performance.now() - t0;
          c.s.guestUsed = res.usedKiB / res.totalKiB;
          const m = smapsRollup(c.vm.pid);
          c.s.afterRssMiB = m.rss;
          c.s.afterPssMiB = m.pss;
          c.s.cgroupPeakMiB = readMiB(cg, ['memory.max_usage_in_bytes', 'memory.peak']);
        } catch (err) {
          await Promise.race([c.vm.exited, new Promise((r) => setTimeout(r, 2000))]);
          c.s.failure = c.vm.exitInfo ? `VMM exited (${c.vm.exitInfo.signal ?? `code ${c.vm.exitInfo.code}`})` : (err as Error).message.slice(0, 120);
        }
      }
    } finally {
      for (const c of clones) {
        await c.vm.stop();
        live.delete(c.vm);
        p.result.clones.push(c.s);
      }
    }
  }
}

export function formatRestoredMemory(r: RestoredMemoryResult): string {
  const f1 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1));
  const med = (xs: Array<number | undefined>) => {
    const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
    return v.length ? summarize(v) : undefined;
  };
  const lines = [
    `machine: ${JSON.stringify(r.machine)}`,
    `accelerator ${r.accelerator}; ${r.guestMiB} MiB guest; ${r.rounds} rounds x 2 clones per backing, backings interleaved in each round; each clone answers a first run, then allocates until ${Math.round(r.fraction * 100)} % of its guest's memory is in use. The machine was shared with other work (loaded).`,
    '',
    table(
      ['backing', 'snapshot file MiB: after snapshot / after prepare / after all clones', 'prepare', 'restore median / p99', 'restore -> first reply median / p99', 'idle clone RSS / PSS median (2 alive)', `clones reaching ${Math.round(r.fraction * 100)} %`, 'cgroup peak / limit MiB (median)', 'RSS / PSS after allocating (median)'],
      r.backings.map((b) => {
        const peak = med(b.clones.map((c) => c.cgroupPeakMiB));
        const lim = med(b.clones.map((c) => c.cgroupLimitMiB));
        const aR = med(b.clones.map((c) => c.afterRssMiB));
        const aP = med(b.clones.map((c) => c.afterPssMiB));
        const fails = [...new Set(b.clones.filter((c) => !c.allocated).map((c) => c.failure))].join('; ');
        return [
          b.backing,
          `${f1(b.snapshotMiB.afterSnapshot)} / ${f1(b.snapshotMiB.afterPrepare)} / ${f1(b.snapshotMiB.afterClones)}`,
          b.prepareMs > 0.05 ? ms(b.prepareMs) : '-',
          `${ms(b.restoreMs.median)} / ${ms(b.restoreMs.p99)}`,
          `${ms(b.firstReplyMs.median)} / ${ms(b.firstReplyMs.p99)}`,
          `${f1(b.idleRssMiB.median)} / ${f1(b.idlePssMiB.median)}`,
          `${b.allocatedOk}/${b.clones.length}${fails ? ` (${fails})` : ''}`,
          `${f1(peak?.median)} / ${f1(lim?.median)}`,
          `${f1(aR?.median)} / ${f1(aP?.median)}`,
        ];
      }),
    ),
  ];
  const base = r.backings.find((b) => b.backing === 'tmpfs-sparse');
  if (base) {
    lines.push('', 'restore -> first reply, median relative to tmpfs-sparse (the path before issue 19):');
    lines.push(table(['backing', 'ratio'], r.backings.map((b) => [b.backing, (b.firstReplyMs.median / base.firstReplyMs.median).toFixed(2)])));
  }
  return lines.join('\n');
}
