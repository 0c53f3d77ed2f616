// Firecracker's jailer: moving files into and out of the jail for real (a hard link on one file system,
// a copy from tmpfs; owned by the VMM's uid when run as root). Never run against a real jailer (no
// binary, no usable KVM here); the command line and layout are in test/unit/firecracker-jailer.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jailLayout, placeInJail, prepareJail, takeFromJail } from '../../src/runtimes/firecracker/jailer.js';
import { runShmDir } from '../support/test-run.js';

void test('files into and out of the jail: a link on one file system, a copy across', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-jail-'));
  const shm = runShmDir('jail');
  try {
    const l = jailLayout(base, '/usr/bin/firecracker', 'vm-1');
    if (process.getuid?.() === 0) {
      await prepareJail(l, 65000, 65001);
      assert.equal(fs.statSync(l.onHost('/run')).uid, 65000);
      assert.equal(fs.statSync(l.onHost('/firecracker.log')).uid, 65000);
    } else {
      fs.mkdirSync(l.chrootDir, { recursive: true });
    }
    const kernel = path.join(base, 'vmlinux');
    fs.writeFileSync(kernel, 'KERNEL');
    assert.equal(await placeInJail(l, kernel, 'vmlinux'), '/vmlinux');
    assert.equal(fs.statSync(l.onHost('/vmlinux')).ino, fs.statSync(kernel).ino, 'hard link on one file system');
    const mem = path.join(shm, 'mem');
    fs.writeFileSync(mem, 'RAM');
    assert.equal(await placeInJail(l, mem, 'snapshot/mem'), '/snapshot/mem');
    assert.equal(fs.readFileSync(l.onHost('/snapshot/mem'), 'utf8'), 'RAM');
    fs.writeFileSync(l.onHost('/snapshot/state'), 'STATE');
    const out = path.join(shm, 'out', 'state');
    await takeFromJail(l, '/snapshot/state', out);
    assert.equal(fs.readFileSync(out, 'utf8'), 'STATE');
    assert.ok(!fs.existsSync(l.onHost('/snapshot/state')));
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
    fs.rmSync(shm, { recursive: true, force: true });
  }
});
