// Driver lifecycle against real QEMU without a guest image: a wrapper drops the
// kernel arguments and adds -S, so the VM stays paused in firmware but QMP, the
// channel socket, snapshots and restores are all real.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QemuDriver, shellQuote } from '../../src/runtimes/qemu/driver.js';
import { processAlive } from '../../src/core/process-alive.js';
import type { GuestImage, VmConfig } from '../../src/runtimes/types.js';

const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;

function setup(t: { after: (fn: () => void) => void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qemu-life-it's,odd "));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const wrapper = path.join(dir, 'qemu-nokernel');
  fs.writeFileSync(
    wrapper,
    [
      '#!/bin/bash',
      'args=(); skip=0',
      'for a in "$@"; do',
      '  if [ $skip = 1 ]; then skip=0; continue; fi',
      '  case "$a" in -kernel|-initrd|-append) skip=1; continue;; esac',
      '  args+=("$a")',
      'done',
      'exec qemu-system-x86_64 "${args[@]}" -S',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const rootfs = path.join(dir, 'rootfs.img');
  fs.writeFileSync(rootfs, Buffer.alloc(1 << 20));
  const image: GuestImage = {
    version: 'test',
    dir,
    kernelPath: path.join(dir, 'vmlinux'),
    kernelKind: 'minimal',
    initrdPath: path.join(dir, 'initrd'),
    rootfsPath: rootfs,
    cmdline: 'console=ttyS0',
    sizes: { kernelBytes: 0, initrdBytes: 0, rootfsBytes: 1 << 20 },
  };
  let n = 0;
  const cfg = (over: Partial<VmConfig> = {}): VmConfig => {
    const vmId = `life-${++n}`;
    return { vmId, memoryMiB: 64, vcpus: 1, image, runDir: path.join(dir, 'run', vmId), accelerator: 'tcg', memory: { kind: 'anonymous' }, ...over };
  };
  return { dir, wrapper, image, cfg };
}

void test('driver lifecycle without a kernel', { skip: haveQemu ? false : 'qemu-system-x86_64 not installed' }, async (t) => {
  const { dir, wrapper, cfg } = setup(t);
  const driver = new QemuDriver({ qemuBinary: wrapper });

  await t.test('boot connects QMP and channel; stop kills it and removes runDir; idempotent', async () => {
    const c = cfg({ cpuAffinity: [0] });
    const vm = await driver.boot(c);
    assert.ok(vm.pid > 0);
    for (const k of ['start', 'vmmSpawned', 'qmpConnected', 'channelConnected']) assert.equal(typeof vm.timings[k], 'number', k);
    assert.ok(fs.existsSync(path.join(c.runDir, 'qmp.sock')));
    assert.equal(fs.readFileSync(path.join(c.runDir, 'qemu.pid'), 'utf8').trim(), String(vm.pid));
    const status = fs.readFileSync(`/proc/${vm.pid}/status`, 'utf8');
    assert.match(status, /Cpus_allowed_list:\s+0\n/);
    const mem = await vm.memoryUsage();
    assert.ok(mem.rssKiB > 0 && mem.pssKiB > 0);
    assert.equal(driver.liveCount, 1);
    await Promise.all([vm.stop(), vm.stop()]);
    await vm.stop();
    assert.equal(processAlive(vm.pid), false);
    assert.equal(fs.existsSync(c.runDir), false);
    assert.equal(driver.liveCount, 0);
    const exit = await vm.exited;
    assert.equal(exit.code, 0, 'quit over QMP is a clean exit');
    await vm.channel.closed;
  });

  await t.test('exited resolves when QEMU dies on its own', async () => {
    const c = cfg();
    const vm = await driver.boot(c);
    process.kill(vm.pid, 'SIGKILL');
    const e = await vm.exited;
    assert.equal(e.signal, 'SIGKILL');
    await vm.channel.closed;
    await assert.rejects(vm.memoryUsage(), /qemu exited/);
    await vm.stop();
    assert.equal(fs.existsSync(c.runDir), false);
  });

  await t.test('snapshot (shared memory) and two concurrent restores', async () => {
    const memPath = path.join(dir, 'snap,mem');
    const snap = { kind: 'shared-memory' as const, statePath: path.join(dir, "snap dir/it's.state"), memoryPath: memPath };
    const src = await driver.boot(cfg({ memory: { kind: 'file', path: memPath, share: true } }));
    await src.qmp.execute('cont');
    const r = await src.snapshot(snap);
    assert.ok(r.pauseMs >= 0 && r.saveMs > 0);
    assert.equal((await src.qmp.execute<{ status: string }>('query-status')).status, 'postmigrate');
    await src.stop();
    const size = fs.statSync(snap.statePath).size;
    assert.ok(size > 0 && size < 1 << 20, `state ${size} B`);
    assert.equal(fs.statSync(memPath).size, 64 << 20);
    const [a, b] = await Promise.all([driver.restore(cfg(), snap), driver.restore(cfg(), snap)]);
    for (const vm of [a, b]) {
      assert.equal(typeof vm.timings.stateLoaded, 'number');
      assert.equal(typeof vm.timings.resumed, 'number');
      assert.equal((await vm.qmp.execute<{ status: string }>('query-status')).status, 'running');
      const args = fs.readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8').split('\0');
      assert.ok(args.some((x) => x.includes('share=off')));
    }
    await Promise.all([a.stop(), b.stop()]);

    const full = { kind: 'full-stream' as const, statePath: path.join(dir, 'full.state'), memoryPath: '' };
    const src2 = await driver.boot(cfg());
    await src2.snapshot(full);
    await src2.stop();
    assert.ok(fs.statSync(full.statePath).size > 0);
    const c = await driver.restore(cfg(), full);
    assert.equal((await c.qmp.execute<{ status: string }>('query-status')).status, 'running');
    await c.stop();
    assert.equal(driver.liveCount, 0);
  });

  await t.test('restore of a missing snapshot fails fast', async () => {
    await assert.rejects(driver.restore(cfg(), { kind: 'full-stream', statePath: path.join(dir, 'nope'), memoryPath: '' }), /does not exist/);
  });
});

void test('boot errors are clear and leave nothing behind', { skip: haveQemu ? false : 'qemu-system-x86_64 not installed' }, async (t) => {
  const { dir, cfg } = setup(t);
  const driver = new QemuDriver();
  const c = cfg(); // the real binary with a kernel that does not exist
  await assert.rejects(driver.boot(c), (e: unknown) => {
    assert.match((e as Error).message, /boot life-\d+ failed: .*qemu exited \(code 1\).*(kernel|vmlinux)/s);
    return true;
  });
  assert.equal(fs.existsSync(c.runDir), false);
  assert.equal(driver.liveCount, 0);

  const missing = new QemuDriver({ qemuBinary: path.join(dir, 'no-such-qemu') });
  await assert.rejects(missing.boot(cfg()), /not found \(install it with: apt-get install qemu-system-x86\)/);
  const rep = await missing.report();
  assert.equal(rep.available, false);
  assert.match(rep.problems.join(), /apt-get install qemu-system-x86/);
  await assert.rejects(driver.boot(cfg({ memoryMiB: 1 })), /memoryMiB/);
  assert.equal(shellQuote("a'b"), `'a'\\''b'`);
});

void test('the process exit hook kills live VMMs', { skip: haveQemu ? false : 'qemu-system-x86_64 not installed' }, async (t) => {
  const { dir, wrapper, image } = setup(t);
  const script = path.join(dir, 'child.mts');
  const driverUrl = new URL('../../src/runtimes/qemu/driver.ts', import.meta.url).href;
  fs.writeFileSync(
    script,
    `import { QemuDriver } from ${JSON.stringify(driverUrl)};
const d = new QemuDriver({ qemuBinary: ${JSON.stringify(wrapper)} });
const vm = await d.boot({ vmId: 'orphan', memoryMiB: 64, vcpus: 1, image: ${JSON.stringify(image)}, runDir: ${JSON.stringify(path.join(dir, 'run', 'orphan'))}, accelerator: 'tcg', memory: { kind: 'anonymous' } });
console.log(vm.pid);
process.exit(0);
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 0);
  const pid = Number(out.trim());
  assert.ok(pid > 0, out);
  // SIGKILL is asynchronous; give the kernel a moment to reap
  // (a zombie reparented to init counts as dead; so does a process gone between the two reads)
  const alive = (): boolean => {
    if (!processAlive(pid)) return false;
    try {
      return !/State:\s+Z/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 250 && alive(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(alive(), false, `qemu ${pid} outlived its parent`);
});
