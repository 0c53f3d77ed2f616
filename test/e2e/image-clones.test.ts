// Snapshot clones and randomness: boot the guest image with its RAM in a
// shared file, initialise a function, snapshot (x-ignore-shared), restore two
// clones from the same snapshot and check that
//   - without resync the clones return identical "random" values (the problem),
//   - after resync with different seeds they differ and the clock is right.
// Plain QEMU + QMP, as in vm-notes.md; the real driver lives in src/runtimes/qemu.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildImage, defaultCacheDir } from '../../src/image/builder.js';
import type { GuestImage } from '../../src/runtimes/types.js';
import { runShmDir } from '../support/test-run.js';
import { assertGuestClockWithin } from '../support/guest-clock.js';

const QEMU = 'qemu-system-x86_64';
const hasQemu = spawnSync(QEMU, ['--version']).status === 0;
let image: GuestImage | undefined;
let work: string;
const running = new Set<ChildProcess>();

before(async () => {
  work = runShmDir('clones');
  if (!hasQemu) return;
  image = await buildImage({ cacheDir: defaultCacheDir(), kernel: (process.env.FAASCELL_E2E_KERNEL ?? 'auto') as 'auto', log: (l) => console.log(`# ${l}`) });
});

after(() => {
  for (const p of running) p.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

type Msg = Record<string, unknown>;

/** Line-delimited JSON over a unix socket (agent channel or QMP). */
class JsonLines {
  private buf = '';
  private queue: Msg[] = [];
  private waiters: ((m: Msg) => void)[] = [];
  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) !== -1) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        let m: unknown;
        try {
          m = JSON.parse(line);
        } catch {
          continue;
        }
        if (typeof m !== 'object' || m === null) continue;
        const w = this.waiters.shift();
        if (w) w(m as Msg);
        else this.queue.push(m as Msg);
      }
    });
  }
  static async connect(p: string, deadlineMs = 10_000): Promise<JsonLines> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      try {
        const s = await new Promise<net.Socket>((resolve, reject) => {
          const c = net.connect(p);
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        });
        return new JsonLines(s);
      } catch (err) {
        if (Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  next(timeoutMs: number, filter: (m: Msg) => boolean = () => true): Promise<Msg> {
    for (;;) {
      const m = this.queue.shift();
      if (!m) break;
      if (filter(m)) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
      const w = (m: Msg): void => {
        if (!filter(m)) {
          this.waiters.unshift(w);
          return;
        }
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push(w);
    });
  }
  send(o: object): void {
    this.sock.write(`${JSON.stringify(o)}\n`);
  }
  close(): void {
    this.sock.destroy();
  }
}

async function qmp(sockPath: string): Promise<{ cmd: (execute: string, args?: object) => Promise<Msg>; close: () => void }> {
  const q = await JsonLines.connect(sockPath);
  await q.next(10_000, (m) => 'QMP' in m);
  const cmd = async (execute: string, args?: object): Promise<Msg> => {
    q.send(args ? { execute, arguments: args } : { execute });
    const r = await q.next(30_000, (m) => 'return' in m || 'error' in m);
    if ('error' in r) throw new Error(`${execute}: ${JSON.stringify(r.error)}`);
    return r;
  };
  await cmd('qmp_capabilities');
  return { cmd, close: () => q.close() };
}

function qemu(img: GuestImage, dir: string, mem: string, share: boolean, incoming: boolean): { proc: ChildProcess; exited: Promise<void> } {
  const args = [
    '-M', 'microvm,pit=on,pic=on,rtc=on,memory-backend=mem', '-accel', 'tcg', '-cpu', 'max', '-m', '256', '-smp', '1',
    '-object', `memory-backend-file,id=mem,size=256M,mem-path=${mem},share=${share ? 'on' : 'off'}`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-serial', `file:${path.join(dir, 'console.log')}`,
    '-kernel', img.kernelPath, '-initrd', img.initrdPath, '-append', `${img.cmdline}${process.env.FAASCELL_E2E_DEBUG ? ' faascell.debug=1' : ''}`,
    '-qmp', `unix:${path.join(dir, 'qmp.sock')},server=on,wait=off`,
    '-device', 'virtio-serial-device', '-chardev', `socket,id=c0,path=${path.join(dir, 'c0.sock')},server=on,wait=off`, '-device', 'virtserialport,chardev=c0,name=faascell.agent',
    '-drive', `file=${img.rootfsPath},if=none,id=d0,format=raw,readonly=on`, '-device', 'virtio-blk-device,drive=d0',
    ...(incoming ? ['-incoming', 'defer'] : []),
  ];
  const proc = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(proc);
  const exited = new Promise<void>((r) => proc.on('exit', () => (running.delete(proc), r())));
  return { proc, exited };
}

const FN = `const c = require('crypto');
const fs = require('fs');
function urandom() { const fd = fs.openSync('/dev/urandom', 'r'); const b = Buffer.alloc(16); fs.readSync(fd, b); fs.closeSync(fd); return b.toString('hex'); }
exports.main = () => ({ math: Math.random(), uuid: c.randomUUID(), bytes: c.randomBytes(16).toString('hex'),
  web: Array.from(crypto.getRandomValues(new Uint32Array(2))), now: Date.now(), urandom: urandom() });`;

void test('clones of one snapshot: identical randomness without resync, distinct after', { timeout: 600_000 }, async (t) => {
  if (!image) return t.skip(`${QEMU} not installed`);
  const img = image;
  const mem = path.join(work, 'mem');
  const state = path.join(work, 'state');

  // 1. Source VM: boot, init, snapshot.
  const srcDir = fs.mkdtempSync(path.join(work, 'src-'));
  const src = qemu(img, srcDir, mem, true, false);
  try {
    const ch = await JsonLines.connect(path.join(srcDir, 'c0.sock'));
    const ready = await ch.next(90_000);
    assert.equal(ready.type, 'ready');
    ch.send({ id: 1, op: 'init', files: { 'index.js': Buffer.from(FN).toString('base64') }, main: 'index.js', entry: 'main', env: {} });
    assert.equal((await ch.next(30_000)).ok, true);
    const q = await qmp(path.join(srcDir, 'qmp.sock'));
    await q.cmd('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    await q.cmd('stop');
    const t0 = Date.now();
    await q.cmd('migrate', { uri: `exec:cat > ${state}` });
    for (;;) {
      const s = ((await q.cmd('query-migrate')).return as { status?: string }).status;
      if (s === 'completed') break;
      if (s === 'failed') throw new Error('migration failed');
      await new Promise((r) => setTimeout(r, 5));
    }
    console.log(`# snapshot saved in ${Date.now() - t0} ms, state ${fs.statSync(state).size} bytes`);
    q.close();
    ch.close();
  } finally {
    src.proc.kill('SIGKILL');
    await src.exited;
  }

  // 2. Clones.
  const restore = async (name: string, resyncSeed?: Buffer): Promise<Msg> => {
    const dir = fs.mkdtempSync(path.join(work, `${name}-`));
    const vm = qemu(img, dir, mem, false, true);
    try {
      const t0 = Date.now();
      const q = await qmp(path.join(dir, 'qmp.sock'));
      await q.cmd('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
      await q.cmd('migrate-incoming', { uri: `exec:cat ${state}` });
      for (;;) {
        const s = ((await q.cmd('query-migrate')).return as { status?: string }).status;
        if (s === 'completed') break;
        if (s === 'failed') throw new Error('incoming migration failed');
        await new Promise((r) => setTimeout(r, 5));
      }
      // connect the channel before the guest runs (as the driver does): a guest whose blocking read
      // finds the host side unconnected reads EOF, and its agent ends
      const ch = await JsonLines.connect(path.join(dir, 'c0.sock'));
      await q.cmd('cont');
      if (resyncSeed) {
        // A ping first separates TCG's cold translation cache (every restored
        // clone pays it on its first exchange) from the cost of resync itself.
        const tp = Date.now();
        ch.send({ id: 9, op: 'ping' });
        assert.equal((await ch.next(30_000)).ok, true);
        const pingMs = Date.now() - tp;
        const t1 = Date.now();
        ch.send({ id: 10, op: 'resync', epochMs: Date.now(), seed: resyncSeed.toString('base64') });
        const r = await ch.next(30_000);
        assert.equal(r.ok, true, JSON.stringify(r));
        const t2 = Date.now();
        ch.send({ id: 12, op: 'resync', epochMs: Date.now(), seed: resyncSeed.toString('base64') });
        const again = await ch.next(30_000);
        console.log(`# ${name}: a second resync takes ${Date.now() - t2} ms (guest ${Math.round(again.durationMs as number)} ms): the first pays TCG's cold translation cache`);
        console.log(`# ${name}: restored in ${tp - t0} ms, first ping ${pingMs} ms, then resync ${Date.now() - t1} ms (guest ${Math.round(r.durationMs as number)} ms, steps ${JSON.stringify(r.result)})`);
      }
      ch.send({ id: 11, op: 'run', activationId: name, params: {}, deadlineMs: 10_000 });
      const r = await ch.next(30_000);
      assert.equal(r.ok, true, JSON.stringify(r));
      q.close();
      ch.close();
      return r.result as Msg;
    } catch (err) {
      console.log(`# ${name} serial console:\n${fs.readFileSync(path.join(dir, 'console.log'), 'utf8').replace(/^/gm, '#   ')}`);
      throw err;
    } finally {
      vm.proc.kill('SIGKILL');
      await vm.exited;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  const plainA = await restore('plain-a');
  const plainB = await restore('plain-b');
  assert.equal(plainA.math, plainB.math, 'without resync, clones share Math.random state');
  assert.equal(plainA.bytes, plainB.bytes, 'without resync, clones share the OpenSSL DRBG state');

  const beforeA = Date.now();
  const seededA = await restore('seeded-a', Buffer.alloc(32, 1));
  const afterA = Date.now();
  const seededB = await restore('seeded-b', Buffer.alloc(32, 2));
  for (const k of ['math', 'uuid', 'bytes', 'web', 'urandom'] as const) {
    assert.notDeepEqual(seededA[k], seededB[k], `${k} must differ between resynced clones`);
  }
  assertGuestClockWithin(seededA.now as number, beforeA, afterA, 'a resynced clone');
  console.log(`# without resync: math ${String(plainA.math)} == ${String(plainB.math)}; /dev/urandom ${String(plainA.urandom === plainB.urandom ? 'identical' : 'different')}`);
});
