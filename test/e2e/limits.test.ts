// Per-VM cgroup limits enforced on real VMMs (driver level, real QEMU):
// - memory: a VMM whose guest touches more than its limit is killed by the
//   kernel and its usage never passes the limit (the limit is set below the
//   guest's size here, on purpose, so the outcome does not depend on margins);
// - CPU: a quota caps a busy guest's host CPU time;
// - pids: every VMM thread is counted in the VM's pids cgroup.
// Needs root and a memory/cpu/pids controller (v1 or v2); fails loudly otherwise.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QemuDriver } from '../../src/runtimes/qemu/driver.js';
import { findImage, defaultCacheDir } from '../../src/image/builder.js';
import { VmmIsolation } from '../../src/runtimes/jail/isolation.js';
import { CgroupManager, detectHostCgroups, type LimitSettings } from '../../src/runtimes/jail/cgroups.js';
import type { VmHandle } from '../../src/runtimes/types.js';

const MiB = 1024 * 1024;
const image = await findImage(defaultCacheDir());
const layout = detectHostCgroups('auto');
const why = process.getuid?.() !== 0 ? 'needs root (cgroups)' : !image ? `no guest image in ${defaultCacheDir()}` : layout.mode === 'none' ? `no cgroup controller: ${layout.notes.join('; ')}` : undefined;

const b64 = (s: string) => Buffer.from(s).toString('base64');
const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8').trim();

function cpuTicks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime
}

async function withVm(settings: LimitSettings, group: string, body: (vm: VmHandle, cg: CgroupManager) => Promise<void>): Promise<void> {
  const cg = new CgroupManager(layout, group, settings);
  const driver = new QemuDriver({ isolation: new VmmIsolation({ cgroups: cg }), tcgCodeCacheMiB: 64 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'limits-e2e-'));
  let vm: VmHandle | undefined;
  try {
    vm = await driver.boot({ vmId: `lim-${process.pid}`, memoryMiB: 256, vcpus: 1, image: image!, runDir: path.join(tmp, 'run'), accelerator: 'tcg', memory: { kind: 'anonymous' } });
    await vm.channel.ready(120_000);
    await body(vm, cg);
  } finally {
    await vm?.stop();
    await cg.removeGroup();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (why) void test('cgroup limit prerequisites', () => assert.fail(why));

void test('memory: a VMM past its limit is killed by the kernel; usage never passes the limit', { skip: why !== undefined, timeout: 10 * 60_000 }, async (t) => {
  // limit = 256 - 96 + 64 (code cache) = 224 MiB: enough to boot (about 180 MiB), less than the guest will touch
  await withVm({ memoryOverheadMiB: -96, cpuWeight: 100, cpuQuotaPerVcpu: null, pidsMax: 256 }, `faascell-e2e-mem-${process.pid}`, async (vm, cg) => {
    const dir = cg.groupDir('memory')! + `/lim-${process.pid}`;
    const v1 = layout.controllers.memory!.version === 'v1';
    const limit = Number(read(dir, v1 ? 'memory.limit_in_bytes' : 'memory.max'));
    assert.equal(limit, 224 * MiB);
    const init = await vm.channel.request({ op: 'init', files: { 'index.js': b64('const keep = []; exports.main = (p) => { for (let i = 0; i < p.mib; i++) keep.push(Buffer.alloc(1 << 20, i & 255)); return { held: keep.length }; }') }, main: 'index.js', entry: 'main', env: {} }, 60_000);
    assert.equal(init.ok, true);
    let maxSeen = 0;
    let failcnt = 0;
    const poll = setInterval(() => {
      try {
        maxSeen = Math.max(maxSeen, Number(read(dir, v1 ? 'memory.max_usage_in_bytes' : 'memory.peak')));
        failcnt = v1 ? Number(read(dir, 'memory.failcnt')) : Number(/^max (\d+)/m.exec(read(dir, 'memory.events'))?.[1] ?? 0);
      } catch {
        // gone with the VM
      }
    }, 20);
    const run = vm.channel.request({ op: 'run', activationId: 'hog', params: { mib: 150 }, deadlineMs: 120_000 }, 180_000).then(
      (r) => ({ r }),
      (e: unknown) => ({ e }),
    );
    const exit = await vm.exited;
    clearInterval(poll);
    const outcome = await run;
    assert.equal(exit.signal, 'SIGKILL', `the VMM should be OOM-killed, it exited with ${JSON.stringify(exit)} (run: ${JSON.stringify(outcome).slice(0, 200)})`);
    assert.ok('e' in outcome, 'the run cannot have succeeded');
    assert.ok(maxSeen <= limit, `usage ${maxSeen} passed the limit ${limit}`);
    assert.ok(maxSeen > limit * 0.9, `usage peaked at ${maxSeen} of ${limit}: the limit was not what stopped it`);
    // (memory.failcnt is read every 50 ms and the kill may come in between: not asserted)
    t.diagnostic(`limit ${limit / MiB} MiB, peak usage ${(maxSeen / MiB).toFixed(0)} MiB, failcnt seen ${failcnt}, exit ${JSON.stringify(exit)}`);
  });
});

void test('cpu: a quota caps a busy guest; pids: every VMM thread is counted', { skip: why !== undefined, timeout: 10 * 60_000 }, async (t) => {
  await withVm({ memoryOverheadMiB: 64, cpuWeight: 100, cpuQuotaPerVcpu: 0.25, pidsMax: 256 }, `faascell-e2e-cpu-${process.pid}`, async (vm, cg) => {
    const init = await vm.channel.request({ op: 'init', files: { 'index.js': b64('exports.main = (p) => { const end = Date.now() + p.ms; let n = 0; while (Date.now() < end) n++; return { n }; }') }, main: 'index.js', entry: 'main', env: {} }, 120_000);
    assert.equal(init.ok, true);
    const hz = 100; // USER_HZ on Linux
    const c0 = cpuTicks(vm.pid);
    const t0 = performance.now();
    const r = await vm.channel.request({ op: 'run', activationId: 'busy', params: { ms: 4000 }, deadlineMs: 60_000 }, 120_000);
    const wallS = (performance.now() - t0) / 1000;
    const cpuS = (cpuTicks(vm.pid) - c0) / hz;
    assert.equal(r.ok, true);
    t.diagnostic(`busy guest with a 0.25 CPU quota: ${cpuS.toFixed(2)} s CPU in ${wallS.toFixed(2)} s (${((100 * cpuS) / wallS).toFixed(0)} %)`);
    assert.ok(cpuS / wallS < 0.4, `the VMM used ${cpuS.toFixed(2)} s CPU in ${wallS.toFixed(2)} s despite a 0.25 quota`);
    const cpuDir = cg.groupDir('cpu')! + `/lim-${process.pid}`;
    const stat = read(cpuDir, 'cpu.stat');
    assert.ok(Number(/^nr_throttled (\d+)/m.exec(stat)?.[1] ?? 0) > 0, `not throttled: ${stat}`);

    const pidsDir = cg.groupDir('pids')! + `/lim-${process.pid}`;
    const threads = fs.readdirSync(`/proc/${vm.pid}/task`).length;
    const counted = Number(read(pidsDir, 'pids.current'));
    assert.ok(counted >= threads, `pids.current ${counted} < ${threads} VMM threads`);
    assert.equal(read(pidsDir, 'pids.max'), '256');
  });
});
