// The installed QEMU binary itself (no VM is started): what the accelerator probe and the driver read
// from it. The probe logic with stand-in binaries is in test/unit/qemu-cmdline-accel.test.ts.
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qemuVersion } from '../../src/runtimes/qemu/accel.js';

void test('qemuVersion of the real binary', { skip: spawnSync('qemu-system-x86_64', ['--version']).status === 0 ? false : 'qemu not installed' }, async () => {
  assert.match(await qemuVersion(), /^\d+\.\d+/);
});
