// The per-VMM jail for real, around a shell instead of QEMU (no VM is started): mount and user
// namespaces, a uid change and dropped capabilities need root and util-linux's unshare, setpriv and
// pivot_root (scripts/setup.sh). The launch layers and the mount script as text are in test/unit/jail.test.ts.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeLaunch } from '../../src/runtimes/jail/launch.js';
import { UidAllocator } from '../../src/runtimes/jail/ids.js';
import { BASE_DEVICES, VmmIsolation } from '../../src/runtimes/jail/isolation.js';

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
