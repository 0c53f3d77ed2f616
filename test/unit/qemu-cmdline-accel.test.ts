// Accelerator detection: forced modes, the probe's success/failure/timeout paths
// (with stand-in QEMU binaries) and the cache.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectAccelerator, kvmDeviceState, probeAccelerator } from '../../src/runtimes/qemu/accel.js';
import type { GuestImage } from '../../src/runtimes/types.js';
import { impossibleHere } from '../runner/skips.js';

function fakeImage(dir: string, version = 'img-v1'): GuestImage {
  return {
    version,
    dir,
    kernelPath: path.join(dir, 'no-such-vmlinux'),
    kernelKind: 'minimal',
    initrdPath: path.join(dir, 'no-such-initrd'),
    rootfsPath: path.join(dir, 'no-such-rootfs'),
    cmdline: 'console=ttyS0',
    sizes: { kernelBytes: 0, initrdBytes: 0, rootfsBytes: 0 },
  };
}

function fakeQemu(dir: string, name: string, body: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, `#!/bin/sh\nif [ "$1" = --version ]; then echo "QEMU emulator version 9.9.9"; exit 0; fi\n${body}\n`, { mode: 0o755 });
  return p;
}

function tmpdir(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'accel-test-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

void test('forced modes skip the probe', async (t) => {
  const d = tmpdir(t);
  const tcg = await detectAccelerator({ image: fakeImage(d), cacheDir: d, mode: 'tcg' });
  assert.deepEqual(tcg, { accelerator: 'tcg', reason: 'tcg forced by configuration', cached: false });
  if (kvmDeviceState() === 'missing') {
    await assert.rejects(detectAccelerator({ image: fakeImage(d), cacheDir: d, mode: 'kvm' }), /\/dev\/kvm does not exist/);
  } else if (kvmDeviceState() === 'ok') {
    assert.equal((await detectAccelerator({ image: fakeImage(d), cacheDir: d, mode: 'kvm' })).accelerator, 'kvm');
  }
  assert.equal(fs.existsSync(path.join(d, 'accel.json')), false);
});

void test('probe: marker -> ok, exit without marker -> failure with stderr, hang -> killed at the deadline', async (t) => {
  const d = tmpdir(t);
  const img = fakeImage(d);
  const good = fakeQemu(d, 'good-qemu', 'echo "[    0.1] booting"; echo FAASCELL_PROBE_OK; exit 0');
  const r1 = await probeAccelerator(img, 'kvm', { qemuBinary: good, timeoutMs: 5000 });
  assert.equal(r1.ok, true, r1.detail);

  const bad = fakeQemu(d, 'bad-qemu', 'echo "KVM internal error. Suberror: 1" >&2; exit 1');
  const r2 = await probeAccelerator(img, 'kvm', { qemuBinary: bad, timeoutMs: 5000 });
  assert.equal(r2.ok, false);
  assert.match(r2.detail, /code 1.*KVM internal error/);

  const pidFile = path.join(d, 'hang.pid');
  const hang = fakeQemu(d, 'hang-qemu', `echo $$ > ${pidFile}; exec sleep 30`);
  // the stand-in sleeps 30 s: a failure that names the 300 ms deadline, with the process gone, is the deadline's doing
  const r3 = await probeAccelerator(img, 'kvm', { qemuBinary: hang, timeoutMs: 300 });
  assert.equal(r3.ok, false);
  assert.match(r3.detail, /within 300 ms/);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  assert.throws(() => process.kill(pid, 0), 'the hung probe must have been killed');
});

void test('auto mode: probe once, cache by image/qemu/kernel/kvm, refresh', { skip: kvmDeviceState() !== 'ok' ? impossibleHere('no-usable-kvm', `/dev/kvm is ${kvmDeviceState()}: auto mode never reaches the probe`) : false }, async (t) => {
  const d = tmpdir(t);
  const bad = fakeQemu(d, 'bad-qemu', 'echo "KVM internal error. Suberror: 1" >&2; exit 1');
  const logs: string[] = [];
  const first = await detectAccelerator({ image: fakeImage(d), cacheDir: d, mode: 'auto', qemuBinary: bad, log: (m) => logs.push(m) });
  assert.equal(first.accelerator, 'tcg');
  assert.equal(first.cached, false);
  assert.match(first.reason, /^kvm probe failed: .*KVM internal error.*; using tcg$/);
  assert.ok(logs.some((l) => l.includes('probing')));
  const second = await detectAccelerator({ image: fakeImage(d), cacheDir: d, mode: 'auto', qemuBinary: bad });
  assert.deepEqual(second, { ...first, cached: true });
  const cache = JSON.parse(fs.readFileSync(path.join(d, 'accel.json'), 'utf8')) as Record<string, unknown>;
  const key = Object.keys(cache)[0]!;
  assert.match(key, /image=img-v1;qemu=9\.9\.9;kernel=.+;kvm=ok/);

  // another image version -> new probe, and this one succeeds
  const good = fakeQemu(d, 'good-qemu', 'echo FAASCELL_PROBE_OK; exit 0');
  const other = await detectAccelerator({ image: fakeImage(d, 'img-v2'), cacheDir: d, mode: 'auto', qemuBinary: good });
  assert.equal(other.accelerator, 'kvm');
  assert.equal(other.cached, false);
  assert.match(other.reason, /kvm probe succeeded/);
  assert.equal(Object.keys(JSON.parse(fs.readFileSync(path.join(d, 'accel.json'), 'utf8')) as object).length, 2);
  // refresh ignores the cache
  const again = await detectAccelerator({ image: fakeImage(d), cacheDir: d, mode: 'auto', qemuBinary: good, refresh: true });
  assert.equal(again.accelerator, 'kvm');
  assert.equal(again.cached, false);
});
