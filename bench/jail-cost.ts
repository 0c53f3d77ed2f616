// What least privilege costs per VM: cold boot to the agent's ready message,
// snapshot save, and restore to the first reply, with the VMM bare (no
// sandbox, no jail, no cgroups) and fully isolated (seccomp sandbox, own uid,
// private mount namespace, cgroups), interleaved run by run on the same image.
//
//   flock /tmp/faascell-vm.lock npx tsx bench/jail-cost.ts [--runs 5]
//
// Needs root and the faascell-vmm user (scripts/setup.sh).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findImage, defaultCacheDir } from '../src/image/builder.js';
import { QemuDriver } from '../src/runtimes/qemu/driver.js';
import { VmmIsolation } from '../src/runtimes/jail/isolation.js';
import { lookupUser, readSubUids, UidAllocator } from '../src/runtimes/jail/ids.js';
import { CgroupManager, detectHostCgroups } from '../src/runtimes/jail/cgroups.js';
import type { SnapshotFiles } from '../src/runtimes/types.js';
import { ensureDense } from '../src/runtimes/ram-file.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(values.runs);
const image = await findImage(defaultCacheDir());
if (!image) throw new Error('no guest image: run scripts/setup.sh');
const id = lookupUser('faascell-vmm');
if (!id || process.getuid?.() !== 0) throw new Error('needs root and the faascell-vmm user');
const cg = new CgroupManager(detectHostCgroups('auto'), `faascell-bench-${process.pid}`, { memoryOverheadMiB: 64, cpuWeight: 100, cpuQuotaPerVcpu: null, pidsMax: 256 });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-cost-'));
const shm = fs.mkdtempSync('/dev/shm/jail-cost-');
const variants = {
  bare: new QemuDriver({ sandbox: false, tcgCodeCacheMiB: 256 }),
  isolated: new QemuDriver({
    sandbox: true,
    tcgCodeCacheMiB: 256,
    isolation: new VmmIsolation({
      jail: { identity: id, uids: new UidAllocator(readSubUids(id.user, id.uid) ?? { first: id.uid, count: 1 }), mountPoint: path.join(tmp, 'jail-root'), tools: { unshare: '/usr/bin/unshare', sh: '/bin/sh' } },
      cgroups: cg.enabled ? cg : undefined,
    }),
  }),
};
type V = keyof typeof variants;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const res: Record<V, { boot: number[]; save: number[]; restore: number[]; spawnToChannel: number[] }> = {
  bare: { boot: [], save: [], restore: [], spawnToChannel: [] },
  isolated: { boot: [], save: [], restore: [], spawnToChannel: [] },
};
let seq = 0;
const cfg = (mem: { kind: 'anonymous' } | { kind: 'file'; path: string; share: boolean }) => {
  const vmId = `jc-${++seq}`;
  return { vmId, memoryMiB: 256, vcpus: 1, image, runDir: path.join(tmp, 'run', vmId), accelerator: 'tcg' as const, memory: mem };
};
try {
  for (let r = 0; r < RUNS; r++) {
    const order: V[] = r % 2 ? ['isolated', 'bare'] : ['bare', 'isolated'];
    for (const v of order) {
      const d = variants[v];
      const dir = path.join(shm, `${v}-${r}`);
      fs.mkdirSync(dir);
      const snap: SnapshotFiles = { kind: 'shared-memory', statePath: path.join(dir, 'state'), memoryPath: path.join(dir, 'mem') };
      const t0 = performance.now();
      const vm = await d.boot(cfg({ kind: 'file', path: snap.memoryPath, share: true }));
      await vm.channel.ready(120_000);
      res[v].boot.push(performance.now() - t0);
      await vm.channel.request({ op: 'init', files: { 'index.js': b64('exports.main = (p) => ({ hello: p.name })') }, main: 'index.js', entry: 'main', env: {} }, 60_000);
      const s = await vm.snapshot(snap);
      res[v].save.push(s.saveMs);
      await vm.stop();
      await ensureDense(snap.memoryPath); // as the SnapshotManager does after a commit (issue 19)
      for (let k = 0; k < 3; k++) {
        const t1 = performance.now();
        const c = await d.restore(cfg({ kind: 'file', path: snap.memoryPath, share: false }), snap);
        await c.channel.request({ op: 'ping' }, 60_000);
        res[v].restore.push(performance.now() - t1);
        res[v].spawnToChannel.push((c.timings.channelConnected ?? 0) - (c.timings.start ?? 0));
        await c.stop();
      }
    }
  }
} finally {
  await cg.removeGroup();
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(shm, { recursive: true, force: true });
}
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const f = (xs: number[]) => `${q(xs, 50).toFixed(0)} / ${q(xs, 99).toFixed(0)} ms`;
console.log(`# ${RUNS} runs each, interleaved; ${os.cpus().length} CPUs ${os.cpus()[0]?.model ?? ''}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('| per VM (median / p99) | bare VMM | isolated VMM |');
console.log('|---|---|---|');
console.log(`| cold boot → agent ready | ${f(res.bare.boot)} | ${f(res.isolated.boot)} |`);
console.log(`| snapshot save (device state) | ${f(res.bare.save)} | ${f(res.isolated.save)} |`);
console.log(`| restore → first reply | ${f(res.bare.restore)} | ${f(res.isolated.restore)} |`);
console.log(`| restore: launch → channel connected | ${f(res.bare.spawnToChannel)} | ${f(res.isolated.spawnToChannel)} |`);
