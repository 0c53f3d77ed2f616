// Firecracker's jailer, to its documented interface: the command line and the chroot layout (moving
// files into and out of the jail, on real file systems: test/integration/firecracker-jailer-files.test.ts).
// Never run against a real jailer here (no binary, no usable KVM).


import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jailerCommand, jailLayout, JailerConfigError, type JailerConfig } from '../../src/runtimes/firecracker/jailer.js';

const cfg = (over: Partial<JailerConfig> = {}): JailerConfig => ({
  binary: '/usr/bin/jailer',
  chrootBase: '/srv/jailer',
  uid: 131073,
  gid: 995,
  cgroupVersion: 1,
  parentCgroup: 'faascell-abc',
  cgroups: ['memory.limit_in_bytes=335544320', 'cpu.shares=1024', 'pids.max=256'],
  ...over,
});

void test('jailer command line: ids, chroot base, cgroups, and Firecracker arguments after --', () => {
  const l = jailerCommand('vm-1', '/usr/local/bin/firecracker', cfg({ netns: '/var/run/netns/vm-1' }), ['--api-sock', '/run/firecracker.socket', '--id', 'vm-1', '--level', 'Warning']);
  assert.equal(l.cmd, '/usr/bin/jailer');
  assert.deepEqual(l.argv, [
    '--id', 'vm-1',
    '--exec-file', '/usr/local/bin/firecracker',
    '--uid', '131073',
    '--gid', '995',
    '--chroot-base-dir', '/srv/jailer',
    '--cgroup-version', '1',
    '--parent-cgroup', 'faascell-abc',
    '--cgroup', 'memory.limit_in_bytes=335544320',
    '--cgroup', 'cpu.shares=1024',
    '--cgroup', 'pids.max=256',
    '--netns', '/var/run/netns/vm-1',
    // the jailer passes --id to Firecracker itself
    '--', '--api-sock', '/run/firecracker.socket', '--level', 'Warning',
  ]);
  const v2 = jailerCommand('vm-1', '/usr/bin/firecracker', cfg({ cgroupVersion: 2, parentCgroup: '/faascell-abc', cgroups: ['memory.max=1'] }), []);
  assert.deepEqual(v2.argv.slice(10, 16), ['--cgroup-version', '2', '--parent-cgroup', 'faascell-abc', '--cgroup', 'memory.max=1']);
});

void test('jailer: refuses root, bad ids, other exec files, malformed cgroup settings', () => {
  assert.throws(() => jailerCommand('vm-1', '/usr/bin/firecracker', cfg({ uid: 0 }), []), JailerConfigError);
  assert.throws(() => jailerCommand('vm_1', '/usr/bin/firecracker', cfg(), []), JailerConfigError);
  assert.throws(() => jailerCommand('x'.repeat(65), '/usr/bin/firecracker', cfg(), []), JailerConfigError);
  assert.throws(() => jailerCommand('vm-1', '/usr/bin/qemu', cfg(), []), JailerConfigError);
  assert.throws(() => jailerCommand('vm-1', '/usr/bin/firecracker', cfg({ cgroups: ['memory.max 5'] }), []), JailerConfigError);
});

void test('jail layout: BASE/<exec name>/<id>/root; jail paths cannot leave it', () => {
  const l = jailLayout('/srv/jailer', '/opt/fc/firecracker-v1.7', 'vm-9');
  assert.equal(l.jailDir, '/srv/jailer/firecracker-v1.7/vm-9');
  assert.equal(l.chrootDir, '/srv/jailer/firecracker-v1.7/vm-9/root');
  assert.equal(l.onHost('/run/firecracker.socket'), '/srv/jailer/firecracker-v1.7/vm-9/root/run/firecracker.socket');
  assert.equal(l.onHost('../../etc/passwd'), '/srv/jailer/firecracker-v1.7/vm-9/root/etc/passwd');
});
