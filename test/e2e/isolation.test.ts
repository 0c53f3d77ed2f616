// Least privilege of each VMM, read from the real QEMU processes of a real
// daemon: uid/gid, capabilities, no_new_privs and seccomp from /proc/PID/status,
// the files the VMM can see (/proc/PID/root, /proc/PID/mountinfo), its cgroups
// and their limits; snapshots still work jailed; a daemon killed with SIGKILL
// takes its jailed VMMs with it and the next start removes what is left.
// Needs root and the set-up's faascell-vmm user (scripts/setup.sh); fails loudly otherwise.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { qemuProcessesUnder, requireImage, ROOT, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { lookupUser, readSubUids } from '../../src/runtimes/jail/ids.js';
import { daemonCgroupName } from '../../src/runtimes/jail/cgroups.js';
import { cgroupGroupName } from '../../src/runtimes/jail/setup.js';

const identity = lookupUser('faascell-vmm');
const isRoot = process.getuid?.() === 0;
const MiB = 1024 * 1024;

interface ProcFacts {
  uid: number[];
  gid: number[];
  capEff: string;
  capBnd: string;
  noNewPrivs: string;
  seccomp: string;
}

function procStatus(pid: number): ProcFacts {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const f = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(s)?.[1]?.trim() ?? '';
  return { uid: f('Uid').split(/\s+/).map(Number), gid: f('Gid').split(/\s+/).map(Number), capEff: f('CapEff'), capBnd: f('CapBnd'), noNewPrivs: f('NoNewPrivs'), seccomp: f('Seccomp') };
}

/** vmId → pid of every live VMM of a daemon, from the pid files in its run directories. */
function vmms(d: TestDaemon): Map<string, number> {
  const out = new Map<string, number>();
  const run = path.join(d.stateDir, 'run');
  for (const vmId of fs.existsSync(run) ? fs.readdirSync(run) : []) {
    try {
      const pid = Number(fs.readFileSync(path.join(run, vmId, 'qemu.pid'), 'utf8').trim());
      if (pid > 0 && fs.existsSync(`/proc/${pid}`)) out.set(vmId, pid);
    } catch {
      // no VMM (yet) in this directory
    }
  }
  return out;
}

function mountPoints(pid: number): string[] {
  return fs
    .readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!);
}

function cgroupOf(pid: number, controller: string): string | undefined {
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, ctrls, p] = line.split(':');
    if (ctrls !== undefined && ctrls.split(',').includes(controller)) return p;
  }
  return undefined;
}

function mountOf(controller: string): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [fsType, , opts] = right.split(' ');
    if (fsType === 'cgroup' && opts!.split(',').includes(controller)) return left.split(' ')[4];
  }
  return undefined;
}

const why = !isRoot ? 'needs root (the daemon jails VMMs only as root)' : !identity ? 'the faascell-vmm user is missing: run scripts/setup.sh' : undefined;
if (why) {
  // fail loudly: a skipped isolation test would hide that nothing is isolated
  void test('VMM isolation prerequisites', () => assert.fail(why));
}

describe('each VMM jailed and limited', { skip: why !== undefined, timeout: 15 * 60_000 }, () => {
  let d: TestDaemon;
  let groupDirs: string[] = [];
  before(async () => {
    d = await startDaemon({ limits: { cpuWeight: 50, daemonCpuWeight: 800 } });
    const st = await d.client.call<{ limits: { cgroup: { controllers: Record<string, { path: string }> }; daemonCgroup: { path: string } | null } }>('GET', '/v1/status');
    groupDirs = [...new Set(Object.values(st.limits.cgroup.controllers).map((c) => c.path))];
    // issue 18: the daemon's own cpu cgroup, beside its VMs' group
    if (st.limits.daemonCgroup) groupDirs.push(st.limits.daemonCgroup.path);
  });
  after(async () => {
    await stopAndCheck(d);
    // a daemon that stopped removes its cgroup group too (and its own cgroup: it moved back)
    for (const g of groupDirs) assert.ok(!fs.existsSync(g), `cgroup ${g} left after the daemon stopped`);
  });

  test('status reports the jail and the cgroup mode in force', async () => {
    const st = await d.client.call<{ limits: { cgroup: { mode: string; controllers: Record<string, { version: string; path: string }> }; memoryOverheadMiB: number; tcgCodeCacheMiB: number; cpuWeight: number; pidsMax: number; vmmThp: string; vmm: { jailed: boolean; uids: string; seccomp: boolean; user: string } } }>('GET', '/v1/status');
    assert.equal(st.limits.vmm.jailed, true, JSON.stringify(st.limits.vmm));
    assert.equal(st.limits.vmm.user, 'faascell-vmm');
    assert.equal(st.limits.vmm.seccomp, true);
    assert.equal(st.limits.vmm.uids, readSubUids('faascell-vmm', identity!.uid) ? 'per-vm' : 'shared');
    assert.notEqual(st.limits.cgroup.mode, 'none', 'no cgroup controller found: limits are not enforced');
    assert.equal(st.limits.cpuWeight, 50);
    assert.equal(st.limits.vmmThp, 'off', 'limits.vmmThp off by default, and its launcher built');
    for (const c of ['memory', 'cpu', 'pids']) assert.ok(st.limits.cgroup.controllers[c], `controller ${c} in use`);
  });

  test('the daemon runs in its own cpu cgroup beside its VMs, with limits.daemonCpuWeight (issue 18)', async () => {
    const group = cgroupGroupName(d.stateDir);
    const own = cgroupOf(d.proc.pid!, 'cpu');
    assert.ok(own?.endsWith(`/${group}-daemon`), `the daemon's cpu cgroup: ${own}`);
    assert.equal(fs.readFileSync(path.join(mountOf('cpu')!, own!, 'cpu.shares'), 'utf8').trim(), '8192');
    const st = await d.client.call<{ limits: { cgroup: { controllers: { cpu: { path: string } } }; daemonCgroup: { path: string; weight: number } } }>('GET', '/v1/status');
    assert.equal(st.limits.daemonCgroup.weight, 800);
    assert.equal(path.dirname(st.limits.daemonCgroup.path), path.dirname(st.limits.cgroup.controllers.cpu.path), 'a sibling of the VMs group');
  });

  test('two VMMs: own uid each, no capabilities, seccomp, only their own files, their own cgroups', async () => {
    await d.deploy('one', 'hello.js');
    await d.deploy('two', 'json-heavy.js', { memoryMiB: 320 });
    const [a, b] = await Promise.all([d.client.invoke('one', { name: 'a' }), d.client.invoke('two', { q: 1 })]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 200, JSON.stringify(b.body));
    const live = vmms(d);
    const vmA = a.body.activation!.vmId!;
    const vmB = b.body.activation!.vmId!;
    const pidA = live.get(vmA);
    const pidB = live.get(vmB);
    assert.ok(pidA && pidB, `VMMs of ${vmA}, ${vmB} in ${JSON.stringify([...live])}`);
    const range = readSubUids('faascell-vmm', identity!.uid);
    const facts = [procStatus(pidA), procStatus(pidB)];
    for (const f of facts) {
      assert.equal(new Set(f.uid).size, 1, `real, effective, saved and fs uid agree: ${f.uid}`);
      assert.notEqual(f.uid[0], 0);
      if (range) assert.ok(f.uid[0]! >= range.first && f.uid[0]! < range.first + range.count, `uid ${f.uid[0]} from the faascell-vmm block`);
      assert.deepEqual(new Set(f.gid), new Set([identity!.gid]));
      assert.equal(f.capEff, '0000000000000000');
      assert.equal(f.capBnd, '0000000000000000');
      assert.equal(f.noNewPrivs, '1');
      assert.equal(f.seccomp, '2', 'seccomp filter mode');
    }
    if (range) assert.notEqual(facts[0]!.uid[0], facts[1]!.uid[0], 'each VMM has a uid of its own');

    const runA = path.join(d.stateDir, 'run', vmA);
    const runB = path.join(d.stateDir, 'run', vmB);
    for (const [pid, own, other] of [
      [pidA, runA, runB],
      [pidB, runB, runA],
    ] as const) {
      const root = `/proc/${pid}/root`;
      assert.ok(fs.existsSync(path.join(root, own, 'qmp.sock')), 'its own run directory is there');
      assert.ok(!fs.existsSync(path.join(root, other)), 'the other VM’s run directory is not');
      assert.ok(!fs.existsSync(path.join(root, d.stateDir, 'faascell.db')), 'the database is not');
      for (const hidden of ['etc', 'home', 'proc', 'sys', 'var', 'run']) assert.ok(!fs.existsSync(path.join(root, hidden)), `/${hidden} is not visible`);
      assert.ok(fs.existsSync(path.join(root, 'usr/bin/qemu-system-x86_64')));
      // the device nodes, and /dev/shm only as the path to its own RAM file on a tmpfs tier
      assert.deepEqual(fs.readdirSync(path.join(root, 'dev')).filter((e) => e !== 'shm').sort(), ['null', 'random', 'urandom', 'zero']);
      if (fs.existsSync(path.join(root, 'dev/shm'))) assert.deepEqual(fs.readdirSync(path.join(root, 'dev/shm')), [path.basename(d.shmTier)]);
      const mounts = mountPoints(pid);
      assert.equal(mounts[0], '/');
      const cache = process.env.FAASCELL_CACHE_DIR ?? path.join(process.env.HOME ?? '/root', '.cache', 'faascell');
      for (const m of mounts.slice(1)) {
        // the system, its own run dir, the guest image files, its own RAM file (on a snapshot tier)
        const ok = m === '/usr' || m === own || m.startsWith(cache + '/') || (m.endsWith('/mem') && (m.startsWith(d.shmTier + '/') || m.startsWith(path.join(d.dir, 'disk-tier') + '/')));
        assert.ok(ok, `unexpected mount ${m} in the jail of pid ${pid}`);
      }
      assert.ok(!mounts.includes(other), 'the other VM’s run directory is mounted');
      // issue 9: an EROFS root fs is mapped into guest memory (pmem): the image file is bound into the
      // jail read-only, and QEMU maps it shared and read-only
      const rootfsMap = /^\S+ (\S+) \S+ \S+ \S+ +(\/\S+\/rootfs\.erofs)$/m.exec(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('id=rootfs,size=')) assert.ok(rootfsMap, 'a pmem root fs is mapped');
      if (rootfsMap) {
        assert.equal(rootfsMap[1], 'r--s', `root fs mapping ${rootfsMap[0]}`);
        assert.ok(rootfsMap[2]!.startsWith(cache + '/') && mounts.includes(rootfsMap[2]!), `the root fs image ${rootfsMap[2]} is bound into the jail`);
        assert.throws(() => fs.accessSync(path.join(root, rootfsMap[2]!), fs.constants.W_OK), 'the root fs image is read-only in the jail');
      }
      assert.ok(mounts.filter((m) => m.endsWith('/mem')).length <= 1, 'at most its own RAM file');
      // issue 24: limits.vmmThp off (the default): the flag set by the launcher survived the jail's execs and uid change
      assert.match(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), /^THP_enabled:\s+0$/m, `VMM ${pid} runs with transparent huge pages off`);
    }

    // cgroups: one per VM under the daemon's group, with the VM's limits
    const { limits } = await d.client.call<{ limits: { tcgCodeCacheMiB: number } }>('GET', '/v1/status');
    const group = cgroupGroupName(d.stateDir);
    for (const [vmId, pid, memMiB] of [
      [vmA, pidA, 256],
      [vmB, pidB, 320],
    ] as const) {
      for (const c of ['memory', 'cpu', 'pids']) assert.ok(cgroupOf(pid, c)?.endsWith(`/${group}/${vmId}`), `${c} cgroup of ${vmId}: ${cgroupOf(pid, c)}`);
      const mem = mountOf('memory');
      if (mem) {
        const dir = path.join(mem, cgroupOf(pid, 'memory')!);
        assert.equal(Number(fs.readFileSync(path.join(dir, 'memory.limit_in_bytes'), 'utf8')), (memMiB + 64 + limits.tcgCodeCacheMiB) * MiB);
        assert.ok(Number(fs.readFileSync(path.join(dir, 'memory.usage_in_bytes'), 'utf8')) > 32 * MiB, 'the VM is charged to its cgroup');
        assert.equal(fs.readFileSync(path.join(mountOf('cpu')!, cgroupOf(pid, 'cpu')!, 'cpu.shares'), 'utf8').trim(), '512');
        assert.equal(fs.readFileSync(path.join(mountOf('pids')!, cgroupOf(pid, 'pids')!, 'pids.max'), 'utf8').trim(), '256');
      }
    }
  });

  test('snapshots work jailed: evict, then restore', async () => {
    const ev = await d.client.call<{ stopped: number }>('POST', '/v1/functions/one/evict');
    assert.ok(ev.stopped >= 1);
    const r = await d.client.invoke('one', { name: 'restored' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.activation!.startPath, 'restore');
    const pid = vmms(d).get(r.body.activation!.vmId!)!;
    assert.equal(procStatus(pid).seccomp, '2');
    // the RAM file is shared by every clone: mapped from the jail, group-readable, never world-readable
    const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
    const mem = /\s(\/\S+\/mem)$/m.exec(maps)?.[1];
    assert.ok(mem && mem.startsWith(d.shmTier), `RAM file mapped from the tier: ${mem}`);
    assert.equal(fs.statSync(mem).mode & 0o007, 0);
  });

  test('a VMM that ends leaves no cgroup behind', async () => {
    await d.client.call('POST', '/v1/functions/one/evict');
    await d.client.call('POST', '/v1/functions/two/evict');
    const deadline = Date.now() + 60_000;
    let left: string[] = [];
    while (Date.now() < deadline) {
      left = groupDirs.flatMap((g) => (fs.existsSync(g) ? fs.readdirSync(g, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(g, e.name)) : []));
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(left, [], 'VM cgroups left after their VMs stopped');
  });
});

describe('a killed daemon and its jailed VMMs', { skip: why !== undefined, timeout: 10 * 60_000 }, () => {
  test('kill -9: the jailed VMMs die with the daemon; the next start reaps run dirs and cgroups', async () => {
    let d: TestDaemon | undefined = await startDaemon({ snapshots: { enabled: false } });
    try {
      await d.deploy('hello', 'hello.js');
      const r = await d.client.invoke('hello', { name: 'x' });
      assert.equal(r.status, 200);
      const vmId = r.body.activation!.vmId!;
      const pid = vmms(d).get(vmId)!;
      const cg = cgroupOf(pid, 'pids');
      d.proc.kill('SIGKILL');
      await d.stop();
      const deadline = Date.now() + 60_000;
      while (fs.existsSync(`/proc/${pid}`) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.ok(!fs.existsSync(`/proc/${pid}`), 'the jailed VMM outlived its daemon (parent-death signal lost?)');
      const pidsMount = mountOf('pids');
      const cgDir = pidsMount && cg ? path.join(pidsMount, cg) : undefined;
      // restart on the same state: leftovers of the killed daemon are removed
      d = await startDaemon({ snapshots: { enabled: false } }, d.dir);
      assert.deepEqual(fs.readdirSync(path.join(d.stateDir, 'run')).filter((n) => !n.startsWith('.')), []);
      if (cgDir) assert.ok(!fs.existsSync(cgDir), `cgroup ${cgDir} of the killed daemon's VM is still there`);
      const again = await d.client.invoke('hello', { name: 'y' });
      assert.equal(again.status, 200);
      assert.equal(qemuProcessesUnder(d.dir).length, 1);
    } finally {
      if (d) await stopAndCheck(d);
    }
  });
});

describe('a daemon whose start fails after its isolation set-up (issue 18)', { skip: why !== undefined, timeout: 2 * 60_000 }, () => {
  test('leaves no <group>-daemon cpu cgroup: it moved back and removed it before exiting', async () => {
    await requireImage();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-e2e-failstart-'));
    // its API port is taken: the start fails at listen, after the isolation set-up placed the daemon
    const held = net.createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
    try {
      const port = (held.address() as net.AddressInfo).port;
      const stateDir = path.join(dir, 'state');
      const cfg = { stateDir, api: { port }, log: { level: 'debug' }, snapshots: { enabled: false, tiers: [{ name: 'disk', path: path.join(dir, 'disk-tier'), latencyRank: 0, capacityMiB: 1024 }] } };
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
      const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'faascell.js'), 'serve', '--config', path.join(dir, 'config.json')], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FAASCELL_URL: '' } });
      let logs = '';
      proc.stderr.on('data', (b: Buffer) => (logs += b.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), 90_000);
        proc.on('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      assert.notEqual(code, 0, logs.slice(-2000));
      assert.match(logs, /EADDRINUSE/);
      // it had been placed (the isolation's log line names its cgroup), and that directory is gone
      const placed = /"daemonCgroup":"([^"]+)"/.exec(logs)?.[1];
      const cpuMount = mountOf('cpu');
      const expected = cpuMount ? path.join(cpuMount, cgroupOf(process.pid, 'cpu') ?? '/', daemonCgroupName(cgroupGroupName(stateDir))) : undefined;
      assert.ok(placed, `the daemon was not placed in its own cgroup: ${logs.slice(-2000)}`);
      assert.equal(placed, expected);
      assert.ok(!fs.existsSync(placed), `${placed} left after the failed start`);
    } finally {
      held.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
