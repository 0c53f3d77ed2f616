// The per-VMM launch wrapper: layer composition, the jail's mount script (as
// text, and run for real around a shell when the test runs as root: no VM is
// started), uid allocation, and the QEMU sandbox/code-cache arguments.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupEnterLayer, composeLaunch, describeLaunch, pdeathsigLayer, tasksetLayer, type LaunchSpec } from '../../src/runtimes/jail/launch.js';
import { jailLayer, jailScript, JailSpecError, type JailSpec } from '../../src/runtimes/jail/jail.js';
import { parseSubIds, UidAllocator, JailUserError } from '../../src/runtimes/jail/ids.js';
import { BASE_DEVICES, deviceNumbers, VmmIsolation } from '../../src/runtimes/jail/isolation.js';
import { UnsafePathError } from '../../src/runtimes/jail/shell.js';
import { buildQemuArgs, SANDBOX_ARG, VmConfigError } from '../../src/runtimes/qemu/cmdline.js';
import type { VmConfig } from '../../src/runtimes/types.js';

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

const image = {
  version: 'v1',
  dir: '/img',
  kernelPath: '/img/vmlinux',
  kernelKind: 'minimal' as const,
  initrdPath: '/img/initrd.cpio.gz',
  rootfsPath: '/img/rootfs.sqfs',
  cmdline: 'console=ttyS0',
  sizes: { kernelBytes: 1, initrdBytes: 1, rootfsBytes: 1 },
};
const vmCfg = (over: Partial<VmConfig> = {}): VmConfig => ({ vmId: 'vm1', memoryMiB: 256, vcpus: 1, image, runDir: '/run/vm1', accelerator: 'tcg', memory: { kind: 'anonymous' }, ...over });

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

const isRoot = process.getuid?.() === 0;
const hasTools = ['/usr/bin/unshare', '/usr/bin/setpriv', '/usr/sbin/pivot_root'].every((p) => fs.existsSync(p));

function run(cmd: string, argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, argv, { env, timeout: 20_000 }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

// The real thing around a shell instead of QEMU: what the jailed process can and cannot see and do.
void test('jail, for real: own uid, no capabilities, only its own files', { skip: !isRoot ? 'needs root (mount namespaces, uid change)' : !hasTools ? 'util-linux unshare/setpriv/pivot_root missing' : false }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-unit-'));
  try {
    const runRoot = path.join(tmp, 'run');
    const runDir = path.join(runRoot, 'vm1');
    const other = path.join(runRoot, 'vm2');
    fs.mkdirSync(other, { recursive: true });
    fs.writeFileSync(path.join(other, 'secret'), 'other VM');
    const kernel = path.join(tmp, 'img', 'vmlinux');
    fs.mkdirSync(path.dirname(kernel));
    fs.writeFileSync(kernel, 'KERNEL');
    const mem = path.join(tmp, 'shm', 'snap', 'mem');
    const iso = new VmmIsolation({ jail: { identity: { user: 'test', uid: 65000, gid: 65001 }, uids: new UidAllocator({ first: 170000, count: 10 }), mountPoint: path.join(tmp, 'jail-root'), tools: { unshare: '/usr/bin/unshare', sh: '/bin/sh' } } });
    const p = iso.prepare({ vmId: 'vm1', runDir, memoryMiB: 128, vcpus: 1, binary: '/bin/sh', readOnly: [kernel], readWrite: [mem], devices: [] });
    assert.ok(p.uid! >= 170000 && p.uid! < 170010);
    assert.equal(fs.statSync(runDir).uid, p.uid);
    assert.equal(fs.statSync(mem).mode & 0o777, 0o660);
    assert.equal(fs.statSync(mem).gid, 65001);
    const probe = [
      'id -u; id -g',
      'grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status 2>/dev/null || echo no-proc',
      'ls -A / | tr "\\n" " "; echo',
      `cat ${kernel}; echo`,
      `echo x > ${kernel} 2>/dev/null && echo kernel-writable || echo kernel-readonly`,
      `echo run > ${runDir}/f && echo rundir-writable`,
      `echo m > ${mem} && echo mem-writable`,
      `ls ${other} 2>/dev/null && echo other-visible || echo other-hidden`,
      'ls /root 2>/dev/null && echo root-visible || echo root-hidden',
      'ls /dev | tr "\\n" " "; echo',
      'touch /newfile 2>/dev/null && echo root-writable || echo root-readonly',
      'exec setpriv -d', // exec: a forked child would not inherit the parent-death signal
    ].join('\n');
    const l = composeLaunch({ cmd: '/bin/sh', argv: ['-c', probe] }, [p.jailLayer!]);
    const r = await run(l.cmd, l.argv, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' });
    assert.equal(r.code, 0, r.err);
    const out = r.out.split('\n');
    assert.equal(out[0], String(p.uid));
    assert.equal(out[1], '65001');
    assert.equal(out[2], 'no-proc'); // no /proc inside the jail
    const top = out[3]!.trim().split(' ').sort();
    assert.deepEqual(top.filter((e) => !['bin', 'lib', 'lib32', 'lib64', 'libx32', 'sbin'].includes(e)), ['dev', path.resolve(tmp).split('/')[1]!, 'usr'].sort());
    assert.equal(out[4], 'KERNEL');
    assert.equal(out[5], 'kernel-readonly');
    assert.equal(out[6], 'rundir-writable');
    assert.equal(out[7], 'mem-writable');
    assert.equal(out[8], 'other-hidden');
    assert.equal(out[9], 'root-hidden');
    assert.deepEqual(out[10]!.trim().split(' ').sort(), BASE_DEVICES.map((d) => path.basename(d)).sort());
    assert.equal(out[11], 'root-readonly');
    const dump = out.slice(12).join('\n');
    assert.match(dump, /^no_new_privs: 1$/m);
    assert.match(dump, /^Capability bounding set: \[none\]$/m);
    assert.match(dump, /^Ambient capabilities: \[none\]$/m);
    // the uid change cleared the parent-death signal; the jail set it again
    assert.match(dump, /^Parent death signal: KILL$/m);
    assert.equal(fs.readFileSync(path.join(runDir, 'f'), 'utf8'), 'run\n');
    // nothing of the jail is left in the host's mount table
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes('faascell-jail'));
    await p.release();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// The daemon's start-up reaper finds a VMM by its run directory in /proc/PID/cmdline:
// a jailed VMM (other uid, other mount namespace) keeps its host paths there.
void test('a jailed process left by a killed daemon is reaped by its run directory', { skip: !isRoot ? 'needs root' : !hasTools ? 'util-linux tools missing' : false }, async () => {
  const { reapStaleRunDirs } = await import('../../src/network/network-manager.js');
  const { spawn } = await import('node:child_process');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jail-reap-'));
  try {
    const runRoot = path.join(tmp, 'run');
    const runDir = path.join(runRoot, 'vm-left');
    const iso = new VmmIsolation({ jail: { identity: { user: 'test', uid: 65000, gid: 65001 }, mountPoint: path.join(tmp, 'jail-root'), tools: { unshare: '/usr/bin/unshare', sh: '/bin/sh' } } });
    const p = iso.prepare({ vmId: 'vm-left', runDir, memoryMiB: 128, vcpus: 1, binary: '/bin/sh', readOnly: [], readWrite: [], devices: [] });
    // stands in for QEMU: a long-lived process whose command line names its run dir and which writes its pid file
    const l = composeLaunch({ cmd: '/bin/sh', argv: ['-c', `echo $$ > ${runDir}/qemu.pid; exec tail -f ${runDir}/qemu.pid`] }, [p.jailLayer!]);
    const child = spawn(l.cmd, l.argv, { stdio: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    const pidFile = path.join(runDir, 'qemu.pid');
    for (let i = 0; i < 200 && !fs.existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 20));
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.equal(pid, child.pid);
    assert.notEqual(fs.statSync(`/proc/${pid}`).uid, 0, 'runs as another uid');
    const exited = new Promise((r) => child.once('exit', r));
    const r = reapStaleRunDirs(runRoot);
    assert.deepEqual(r, { dirs: 1, killed: 1 });
    await exited;
    assert.ok(!fs.existsSync(runDir));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
