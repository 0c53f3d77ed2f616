// Builds (or finds) the guest image and boots it with a plain QEMU command
// line under TCG: boot-to-ready, init + run of a hello function, probe mode,
// and power-off when the agent dies.
//
//   FAASCELL_E2E_KERNEL=minimal|debian|auto  kernel for the image (default auto)
//   FAASCELL_E2E_BOOTS=N                     boots for the boot-to-ready median (default 1)

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildImage, defaultCacheDir } from '../../src/image/builder.js';
import type { GuestImage } from '../../src/runtimes/types.js';
import { within } from '../support/bounded.js';
import { assertGuestClockWithin } from '../support/guest-clock.js';

const QEMU = 'qemu-system-x86_64';
const hasQemu = spawnSync(QEMU, ['--version']).status === 0;
const kernel = (process.env.FAASCELL_E2E_KERNEL ?? 'auto') as 'auto' | 'minimal' | 'debian';
const boots = Math.max(1, Number(process.env.FAASCELL_E2E_BOOTS ?? '1'));

let image: GuestImage | undefined;
const running = new Set<ChildProcess>();
const dirs = new Set<string>();

before(async () => {
  if (!hasQemu) return;
  const img = await buildImage({ cacheDir: defaultCacheDir(), kernel, log: (l) => console.log(`# ${l}`) });
  console.log(`# image ${img.version} (${img.kernelKind}) ${img.cached ? 'cached' : `built in ${img.buildMs} ms`}: ${JSON.stringify(img.sizes)}`);
  image = img;
});

after(() => {
  for (const p of running) p.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Vm {
  proc: ChildProcess;
  t0: number;
  sock: string;
  serial: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill: () => Promise<void>;
}

function bootVm(img: GuestImage, extraCmdline = ''): Vm {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-e2e-'));
  dirs.add(dir);
  const sock = path.join(dir, 'c0.sock');
  let serial = '';
  const t0 = Date.now();
  const proc = spawn(
    QEMU,
    [
      '-M', 'microvm,pit=on,pic=on,rtc=on', '-accel', 'tcg', '-cpu', 'max', '-m', '256', '-smp', '1',
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-serial', 'stdio',
      '-kernel', img.kernelPath, '-initrd', img.initrdPath, '-append', `${img.cmdline} ${extraCmdline}`.trim(),
      '-device', 'virtio-serial-device', '-chardev', `socket,id=c0,path=${sock},server=on,wait=off`, '-device', 'virtserialport,chardev=c0,name=faascell.agent',
      '-drive', `file=${img.rootfsPath},if=none,id=d0,format=raw,readonly=on`, '-device', 'virtio-blk-device,drive=d0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(proc);
  proc.stdout?.on('data', (d: Buffer) => (serial += d.toString('utf8')));
  proc.stderr?.on('data', (d: Buffer) => (serial += d.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal });
    }),
  );
  return {
    proc,
    t0,
    sock,
    serial: () => serial,
    exited,
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

async function connect(sock: string, deadline: number): Promise<net.Socket> {
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const c = net.connect(sock);
        c.once('connect', () => resolve(c));
        c.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A line-based client on the channel socket. */
function lines(c: net.Socket): (timeoutMs: number) => Promise<Record<string, unknown>> {
  let buf = '';
  const queue: Record<string, unknown>[] = [];
  const waiters: ((m: Record<string, unknown>) => void)[] = [];
  c.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        continue; // the host ignores non-JSON lines (tty noise)
      }
      if (typeof msg !== 'object' || msg === null) continue;
      const w = waiters.shift();
      if (w) w(msg as Record<string, unknown>);
      else queue.push(msg as Record<string, unknown>);
    }
  });
  return (timeoutMs) => {
    const m = queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
      waiters.push((msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
  };
}

const HELLO = "exports.main = (p) => { console.log('hello from the guest'); return { greeting: `Hello, ${p.name}!`, now: Date.now() }; };";

async function bootToReady(img: GuestImage): Promise<{ vm: Vm; next: ReturnType<typeof lines>; send: (o: object) => void; readyMs: number; ready: Record<string, unknown> }> {
  const vm = bootVm(img);
  const c = await connect(vm.sock, Date.now() + 10_000);
  const next = lines(c);
  const ready = await next(90_000);
  const readyMs = Date.now() - vm.t0;
  assert.equal(ready.type, 'ready', JSON.stringify(ready));
  return { vm, next, send: (o) => c.write(`${JSON.stringify(o)}\n`), readyMs, ready };
}

// Each test boots its own VM: two at a time (a TCG boot keeps one core busy; the machine has two), which
// halves the file's time. Nothing here measures against a bound that a neighbouring boot could break:
// boot-to-ready is reported, not asserted.
void describe('the guest image under plain QEMU', { concurrency: 2 }, () => {
  test('boot to ready, init + run hello', { timeout: 600_000 }, async (t) => {
    if (!image) return t.skip(`${QEMU} not installed`);
    const times: number[] = [];
    for (let i = 0; i < boots; i++) {
      const { vm, next, send, readyMs, ready } = await bootToReady(image);
      try {
        times.push(readyMs);
        const t1 = Date.now();
        send({ id: 1, op: 'init', files: { 'index.js': Buffer.from(HELLO).toString('base64') }, main: 'index.js', entry: 'main', env: {} });
        const init = await next(30_000);
        assert.equal(init.ok, true, JSON.stringify(init));
        const t2 = Date.now();
        send({ id: 2, op: 'run', activationId: 'e2e', params: { name: 'microVM' }, deadlineMs: 10_000 });
        const r = await next(30_000);
        const t3 = Date.now();
        assert.equal(r.ok, true, JSON.stringify(r));
        const result = r.result as { greeting: string; now: number };
        assert.equal(result.greeting, 'Hello, microVM!');
        assert.deepEqual(r.logs, ['hello from the guest']);
        // The guest clock comes from the emulated RTC (whole seconds, read at boot): within a few seconds of
        // the host's around that run, either way
        assertGuestClockWithin(result.now, t2, t3, 'guest clock after boot', 5000, 5000);
        send({ id: 3, op: 'ping' });
        const t4 = Date.now();
        assert.equal((await next(10_000)).ok, true);
        const ping = Date.now() - t4;
        console.log(
          `# boot ${i + 1}/${boots} (${image.kernelKind}): ready after ${readyMs} ms (guest uptime ${JSON.stringify(ready.uptimeMs)}), init ${t2 - t1} ms, first run ${t3 - t2} ms, ping ${ping} ms`,
        );
      } finally {
        await vm.kill();
      }
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`# boot-to-ready (${image.kernelKind}, ${boots} boots): median ${sorted[Math.floor(sorted.length / 2)]} ms, all ${times.join(', ')}`);
  });

  test('resync sets the clock and answers quickly', { timeout: 300_000 }, async (t) => {
    if (!image) return t.skip(`${QEMU} not installed`);
    const { vm, next, send } = await bootToReady(image);
    try {
      send({ id: 1, op: 'init', files: { 'index.js': Buffer.from('exports.main = () => ({ now: Date.now(), r: Math.random() })').toString('base64') }, main: 'index.js', entry: 'main', env: {} });
      assert.equal((await next(30_000)).ok, true);
      // Pretend the host is two hours ahead: the guest clock must follow.
      const skew = 2 * 3600_000;
      const t0 = Date.now();
      send({ id: 2, op: 'resync', epochMs: Date.now() + skew, seed: Buffer.alloc(32, 9).toString('base64') });
      const rs = await next(30_000);
      const resyncMs = Date.now() - t0;
      assert.equal(rs.ok, true, JSON.stringify(rs));
      const t1 = Date.now();
      send({ id: 3, op: 'run', activationId: 'x', params: {}, deadlineMs: 10_000 });
      const r = await next(30_000);
      const t2 = Date.now();
      const guestNow = (r.result as { now: number }).now;
      console.log(`# resync round trip ${resyncMs} ms (guest ${Math.round(rs.durationMs as number)} ms), clock off by ${guestNow - (t2 + skew)} ms afterwards`);
      // two hours ahead, like the host said, within the run's bracket (less the resync message's transit)
      assertGuestClockWithin(guestNow - skew, t1, t2, 'clock after resync');
    } finally {
      await vm.kill();
    }
  });

  test('probe mode prints FAASCELL_PROBE_OK and powers off', { timeout: 120_000 }, async (t) => {
    if (!image) return t.skip(`${QEMU} not installed`);
    const vm = bootVm(image, 'faascell.probe=1');
    try {
      const exit = await within(vm.exited, 60_000, () => 'timeout' as const);
      assert.notEqual(exit, 'timeout', `QEMU did not exit; serial: ${vm.serial()}`);
      assert.match(vm.serial(), /^FAASCELL_PROBE_OK\r?$/m);
      console.log(`# probe: QEMU exited after ${Date.now() - vm.t0} ms`);
    } finally {
      await vm.kill();
    }
  });

  test('the VM powers off when the agent dies (process.exit in user code)', { timeout: 300_000 }, async (t) => {
    if (!image) return t.skip(`${QEMU} not installed`);
    const { vm, next, send } = await bootToReady(image);
    try {
      send({ id: 1, op: 'init', files: { 'index.js': Buffer.from('exports.main = () => process.exit(7)').toString('base64') }, main: 'index.js', entry: 'main', env: {} });
      assert.equal((await next(30_000)).ok, true);
      const t0 = Date.now();
      send({ id: 2, op: 'run', activationId: 'x', params: {}, deadlineMs: 10_000 });
      const exit = await within(vm.exited, 60_000, () => 'timeout' as const);
      assert.notEqual(exit, 'timeout', `QEMU still running; serial: ${vm.serial()}`);
      assert.match(vm.serial(), /faascell-agent: exiting with status 7/);
      console.log(`# agent exit -> QEMU exit in ${Date.now() - t0} ms (${JSON.stringify(exit)})`);
    } finally {
      await vm.kill();
    }
  });
});
