// The per-VMM launch wrapper: layer composition, the jail's mount script (as text; run for real around a
// shell in test/integration/jail.test.ts), uid allocation, and the QEMU sandbox/code-cache arguments.

import fs from 'node:fs';

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupEnterLayer, composeLaunch, describeLaunch, pdeathsigLayer, tasksetLayer, type LaunchSpec } from '../../src/runtimes/jail/launch.js';
import { jailLayer, jailScript, JailSpecError, type JailSpec } from '../../src/runtimes/jail/jail.js';
import { parseSubIds, UidAllocator, JailUserError } from '../../src/runtimes/jail/ids.js';
import { deviceNumbers } from '../../src/runtimes/jail/isolation.js';
import { UnsafePathError } from '../../src/runtimes/jail/shell.js';
import { buildQemuArgs, SANDBOX_ARG, VmConfigError } from '../../src/runtimes/qemu/cmdline.js';
import type { VmConfig } from '../../src/runtimes/types.js';
import { testImage, testVmConfig } from '../helpers/vm-config.js';

const base: LaunchSpec = { cmd: '/usr/bin/qemu', argv: ['-m', '256'] };

void test('layers wrap outermost first and keep the inner command last', () => {
  const l = composeLaunch(base, [tasksetLayer('/usr/bin/taskset', [1, 3]), pdeathsigLayer('/usr/bin/setpriv'), cgroupEnterLayer(['/cg/a/cgroup.procs', '/cg/b/cgroup.procs'])]);
  assert.equal(l.cmd, '/usr/bin/taskset');
  assert.deepEqual(l.argv.slice(0, 3), ['-c', '1,3', '/usr/bin/setpriv']);
  assert.deepEqual(l.argv.slice(3, 7), ['--pdeathsig', 'KILL', '--', '/bin/sh']);
  const script = l.argv[8]!;
  assert.match(script, /echo \$\$ > '\/cg\/a\/cgroup.procs' \|\| exit 125/);
  assert.match(script, /echo \$\$ > '\/cg\/b\/cgroup.procs'/);
  assert.match(script, /exec "\$@"$/);
  assert.deepEqual(l.argv.slice(-3), ['/usr/bin/qemu', '-m', '256']);
  // no cgroups: the layer is a no-op
  assert.deepEqual(composeLaunch(base, [cgroupEnterLayer([])]), base);
  assert.equal(describeLaunch({ cmd: '/bin/echo', argv: ['a b', 'c'] }), "/bin/echo 'a b' c");
});

const spec = (over: Partial<JailSpec> = {}): JailSpec => ({
  mountPoint: '/state/run/.jail',
  uid: 131073,
  gid: 995,
  groups: [],
  systemDirs: ['/usr'],
  symlinks: [{ path: '/lib', target: 'usr/lib' }],
  devices: [{ path: '/dev/null', major: 1, minor: 3, mode: 0o666 }],
  binds: [
    { path: '/state/run/vm1', kind: 'dir', writable: true },
    { path: '/img/vmlinux', kind: 'file', writable: false },
    { path: '/dev/shm/t/snap/mem', kind: 'file', writable: true },
  ],
  ...over,
});

void test('jail script: private root, read-only system and image, writable run dir and RAM file, privileges dropped last', () => {
  const s = jailScript(spec());
  const lines = s.split('\n');
  assert.equal(lines[0], 'set -eu');
  // the daemon runs with umask 077 (issue 19): the jail's directories must stay traversable by the VMM
  assert.equal(lines[1], 'umask 022');
  assert.match(lines[2]!, /^mount -t tmpfs -o size=1024k,mode=0755,nosuid faascell-jail '\/state\/run\/.jail'$/);
  assert.ok(lines.includes("mount --bind -o ro '/usr' '/state/run/.jail/usr'"));
  assert.ok(lines.includes("mount --bind -o ro '/img/vmlinux' '/state/run/.jail/img/vmlinux'"));
  assert.ok(lines.includes("mount --bind '/state/run/vm1' '/state/run/.jail/state/run/vm1'"));
  assert.ok(lines.includes("mount --bind '/dev/shm/t/snap/mem' '/state/run/.jail/dev/shm/t/snap/mem'"));
  assert.ok(lines.includes("mknod -m 0666 '/state/run/.jail/dev/null' c 1 3"));
  // one ln for the links named after their target; /proc leads into the old root only until it is detached
  assert.ok(lines.includes("ln -s 'usr/lib' '.old-root/proc' '/state/run/.jail/'"), s);
  assert.ok(!lines.some((l) => l.startsWith('chown')), 'world-usable device nodes need no owner');
  assert.ok(jailScript(spec({ devices: [{ path: '/dev/kvm', major: 10, minor: 232, mode: 0o600 }] })).includes("chown 131073:995 '/state/run/.jail/dev/kvm'"));
  const order = ['pivot_root . .old-root', 'umount -l /.old-root', 'rm -d /.old-root /proc', 'mount -o remount,ro,nosuid /'].map((l) => lines.indexOf(l));
  assert.ok(order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1]!)), `order ${order}`);
  const last = lines[lines.length - 1]!;
  assert.equal(last, 'exec setpriv --reuid 131073 --regid 995 --groups 995 --bounding-set -all --inh-caps -all --no-new-privs --pdeathsig KILL -- "$@"');
  const l = jailLayer(spec(), { unshare: '/usr/bin/unshare', sh: '/bin/sh' }).wrap(base);
  assert.deepEqual(l.argv.slice(0, 6), ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c']);
  assert.deepEqual(l.argv.slice(7), ['faascell-jail', '/usr/bin/qemu', '-m', '256']);
});

void test('jail spec: no root ids, no relative or multi-line paths, devices only under /dev', () => {
  assert.throws(() => jailScript(spec({ uid: 0 })), JailSpecError);
  assert.throws(() => jailScript(spec({ gid: 0 })), JailSpecError);
  assert.throws(() => jailScript(spec({ groups: [0] })), JailSpecError);
  assert.throws(() => jailScript(spec({ binds: [{ path: 'rel/path', kind: 'file', writable: false }] })), UnsafePathError);
  assert.throws(() => jailScript(spec({ binds: [{ path: '/a/../etc/shadow', kind: 'file', writable: false }] })), UnsafePathError);
  assert.throws(() => jailScript(spec({ binds: [{ path: '/a\nrm -rf /', kind: 'file', writable: false }] })), UnsafePathError);
  assert.throws(() => jailScript(spec({ devices: [{ path: '/etc/x', major: 1, minor: 3, mode: 0o666 }] })), JailSpecError);
  // quotes in paths stay inside their word
  assert.match(jailScript(spec({ binds: [{ path: "/it's", kind: 'file', writable: false }] })), /'\/it'\\''s'/);
});

void test('device numbers decode like glibc', () => {
  assert.deepEqual(deviceNumbers(fs.statSync('/dev/null').rdev), { major: 1, minor: 3 });
  assert.deepEqual(deviceNumbers((10 << 8) | 232), { major: 10, minor: 232 });
  assert.deepEqual(deviceNumbers(0x12_3456_789a), { major: 0x678, minor: 0x123459a });
});

void test('subordinate uid blocks and per-VM uids', () => {
  const text = '# comment\nalice:100000:65536\nfaascell-vmm:131072:65536\n999:200000:10\n';
  assert.deepEqual(parseSubIds(text, 'faascell-vmm'), { first: 131072, count: 65536 });
  assert.deepEqual(parseSubIds('x:1:1\n', 'nobody', 999), undefined);
  assert.deepEqual(parseSubIds(text, 'bob', 999), { first: 200000, count: 10 });
  let r = 0.5;
  const a = new UidAllocator({ first: 1000, count: 3 }, () => r);
  const got = [a.allocate(), a.allocate(), a.allocate()];
  assert.equal(new Set(got).size, 3);
  for (const u of got) assert.ok(u >= 1000 && u < 1003);
  assert.throws(() => a.allocate(), JailUserError);
  a.release(got[1]!);
  r = 0;
  assert.equal(a.allocate(), got[1]);
  assert.throws(() => new UidAllocator({ first: 0, count: 5 }), JailUserError);
});

const image = testImage('console=ttyS0');
const vmCfg = (over: Partial<VmConfig> = {}): VmConfig => testVmConfig(image, over);

void test('QEMU: seccomp sandbox and a bounded TCG code cache', () => {
  const a = buildQemuArgs(vmCfg(), { sandbox: true, tcgCodeCacheMiB: 256 });
  assert.equal(a[a.indexOf('-sandbox') + 1], SANDBOX_ARG);
  assert.equal(SANDBOX_ARG, 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  assert.equal(a[a.indexOf('-accel') + 1], 'tcg,tb-size=256');
  const k = buildQemuArgs(vmCfg({ accelerator: 'kvm' }), { tcgCodeCacheMiB: 256 });
  assert.equal(k[k.indexOf('-accel') + 1], 'kvm');
  assert.ok(!k.includes('-sandbox'));
  assert.throws(() => buildQemuArgs(vmCfg(), { tcgCodeCacheMiB: 0 }), VmConfigError);
});
