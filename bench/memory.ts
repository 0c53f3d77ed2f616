// faascell bench memory: host memory per VM, by what holds it. For each variant:
//   - one idle cold-booted hello VM alone (what one instance costs on an empty node),
//   - N of them at once (shared pages — QEMU, the kernel file, the pmem root fs — split),
//   - restored clones of one snapshot (RAM file, private copy-on-write mapping),
// read from /proc/PID/smaps after a settle time (free page reporting needs ~2 s), and
// the warm-instance capacity of this node's RAM at the measured PSS.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SnapshotFiles } from '../src/runtimes/types.js';
import { machine, summarize, table, type Summary } from './common.js';
import { benchTmp, bootHello, memoryBreakdown, pickVariants, pool, prepareVariants, releaseVariants, sleep, type HelloVm, type MemoryBreakdown, type VariantRig } from './guest.js';
import { ensureDense } from '../src/runtimes/ram-file.js';

export interface MemoryResult {
  machine: Record<string, string | number>;
  hostMiB: number;
  settleSeconds: number;
  variants: Array<{
    variant: string;
    single: MemoryBreakdown;
    many: { vms: number; pssMiB: Summary; rssMiB: Summary };
    clones: { vms: number; pssMiB: Summary; rssMiB: Summary };
    capacity: { idleColdBooted: number; restoredClones: number };
  }>;
}

export interface MemoryOptions {
  vms: number;
  clones: number;
  settleSeconds?: number;
  variants?: string[];
  log?: (s: string) => void;
}

const GUEST_MIB = 256;

async function settleAndRead(vms: HelloVm[], rig: VariantRig, settle: number): Promise<MemoryBreakdown[]> {
  await sleep(settle * 1000);
  return vms.map((v) => memoryBreakdown(v.vm.pid, GUEST_MIB, rig.image));
}

export async function benchMemory(opts: MemoryOptions): Promise<MemoryResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const settle = opts.settleSeconds ?? 8;
  const rigs = await prepareVariants(pickVariants(opts.variants, ['baseline', 'tuned']), log);
  const tmp = benchTmp('fc-mem-');
  const out: MemoryResult['variants'] = [];
  const hostMiB = Math.round(os.totalmem() / 1048576);
  try {
    for (const rig of rigs) {
      const name = rig.variant.name;
      // 1. alone
      const one = await bootHello(rig, tmp);
      let single: MemoryBreakdown;
      try {
        [single] = (await settleAndRead([one], rig, settle)) as [MemoryBreakdown];
      } finally {
        await one.vm.stop();
      }
      log(`  ${name}: one idle VM PSS ${(single.pssKiB / 1024).toFixed(1)} MiB`);

      // 2. N at once
      const many: HelloVm[] = [];
      let manyRead: MemoryBreakdown[];
      try {
        await pool(Array.from({ length: opts.vms }, (_, i) => i), 2, async () => void many.push(await bootHello(rig, tmp)));
        manyRead = await settleAndRead(many, rig, settle);
      } finally {
        await Promise.allSettled(many.map((v) => v.vm.stop()));
      }
      log(`  ${name}: ${opts.vms} idle VMs, median PSS ${(summarize(manyRead.map((m) => m.pssKiB)).median / 1024).toFixed(1)} MiB`);

      // 3. restored clones of a snapshot taken after init (the daemon's shared-memory recipe)
      const snapDir = path.join(tmp, `snap-${name}`);
      fs.mkdirSync(snapDir, { recursive: true });
      const snap: SnapshotFiles = { kind: 'shared-memory', statePath: path.join(snapDir, 'state'), memoryPath: path.join(snapDir, 'mem') };
      const src = await bootHello(rig, tmp, { memory: { kind: 'file', path: snap.memoryPath, share: true } });
      try {
        await src.vm.snapshot(snap);
      } finally {
        await src.vm.stop();
      }
      await ensureDense(snap.memoryPath); // as the SnapshotManager does after a commit (issue 19)
      const clones: Array<{ vm: HelloVm['vm'] }> = [];
      let cloneRead: MemoryBreakdown[];
      try {
        await pool(Array.from({ length: opts.clones }, (_, i) => i), 2, async (_x, i) => {
          const vmId = `gb-clone-${process.pid}-${name.replace(/[^A-Za-z0-9._-]/g, "_")}-${i}`;
          const vm = await rig.driver.restore(
            { vmId, memoryMiB: GUEST_MIB, vcpus: 1, image: rig.image, runDir: path.join(tmp, vmId), accelerator: rig.accelerator, memory: { kind: 'file', path: snap.memoryPath, share: false } },
            snap,
          );
          clones.push({ vm });
          const rs = await vm.channel.request({ op: 'resync', epochMs: Date.now(), seed: randomBytes(32).toString('base64') }, 120_000);
          if (!rs.ok) throw new Error(`resync: ${rs.error.message}`);
          const r = await vm.channel.request({ op: 'run', activationId: 'clone', params: { name: 'clone' }, deadlineMs: 60_000 }, 120_000);
          if (!r.ok) throw new Error(`run: ${r.error.message}`);
        });
        await sleep(settle * 1000);
        cloneRead = clones.map((c) => memoryBreakdown(c.vm.pid, GUEST_MIB, rig.image));
      } finally {
        await Promise.allSettled(clones.map((c) => c.vm.stop()));
        fs.rmSync(snapDir, { recursive: true, force: true });
      }
      const m = (xs: number[]): Summary => summarize(xs.map((k) => k / 1024));
      const manyPss = m(manyRead.map((x) => x.pssKiB));
      const clonePss = m(cloneRead.map((x) => x.pssKiB));
      out.push({
        variant: name,
        single,
        many: { vms: opts.vms, pssMiB: manyPss, rssMiB: m(manyRead.map((x) => x.rssKiB)) },
        clones: { vms: opts.clones, pssMiB: clonePss, rssMiB: m(cloneRead.map((x) => x.rssKiB)) },
        capacity: { idleColdBooted: Math.floor(hostMiB / manyPss.median), restoredClones: Math.floor(hostMiB / clonePss.median) },
      });
      log(`  ${name}: ${opts.clones} restored clones, median PSS ${clonePss.median.toFixed(1)} MiB`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    await releaseVariants(rigs);
  }
  return { machine: machine(), hostMiB, settleSeconds: settle, variants: out };
}

export function formatMemory(r: MemoryResult): string {
  const f = (kib: number | undefined): string => (kib === undefined ? '-' : (kib / 1024).toFixed(1));
  const cats = ['guest RAM', 'root fs (pmem)', 'TCG translation cache', 'kernel + initrd files', 'QEMU binary + libs', 'QEMU heap + other'];
  const names = r.variants.map((v) => v.variant);
  const lines = [
    `machine: ${JSON.stringify(r.machine)}`,
    `hello, ${GUEST_MIB} MiB guest, settled ${r.settleSeconds} s; MiB`,
    '',
    'one idle cold-booted VM alone (RSS / PSS by mapping):',
    table(
      ['', ...names],
      [
        ...cats.map((c) => [c, ...r.variants.map((v) => `${f(v.single.parts[c]?.rssKiB ?? 0)} / ${f(v.single.parts[c]?.pssKiB ?? 0)}`)]),
        ['total', ...r.variants.map((v) => `${f(v.single.rssKiB)} / ${f(v.single.pssKiB)}`)],
      ],
    ),
    '',
    table(
      ['per VM (median / p99)', ...names],
      [
        [`PSS, ${r.variants[0]?.many.vms ?? 0} idle cold-booted VMs at once`, ...r.variants.map((v) => `${v.many.pssMiB.median.toFixed(1)} / ${v.many.pssMiB.p99.toFixed(1)}`)],
        [`RSS, same`, ...r.variants.map((v) => `${v.many.rssMiB.median.toFixed(1)} / ${v.many.rssMiB.p99.toFixed(1)}`)],
        [`PSS, ${r.variants[0]?.clones.vms ?? 0} restored clones (resync + one run)`, ...r.variants.map((v) => `${v.clones.pssMiB.median.toFixed(1)} / ${v.clones.pssMiB.p99.toFixed(1)}`)],
        [`RSS, same`, ...r.variants.map((v) => `${v.clones.rssMiB.median.toFixed(1)} / ${v.clones.rssMiB.p99.toFixed(1)}`)],
        [`warm instances in ${(r.hostMiB / 1024).toFixed(0)} GiB (cold-booted / clones)`, ...r.variants.map((v) => `${v.capacity.idleColdBooted} / ${v.capacity.restoredClones}`)],
      ],
    ),
  ];
  return lines.join('\n');
}
