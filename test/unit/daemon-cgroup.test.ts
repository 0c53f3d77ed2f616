// The daemon's own cpu cgroup (issue 18, limits.daemonCpuWeight) through setupIsolation on a fake cgroup tree (a
// temporary directory: plain files stand in for the kernel's; no root): a start that fails after the isolation
// set-up leaves no `<group>-daemon` directory on v1, and on v2 what the kernel allows (cgroup-v2.rst). The real
// host here is cgroup v1 (docs/hardening.md says how the v2 path was checked). CgroupManager alone: cgroups.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daemonCgroupName, daemonMovesBack, detectCgroups, weightToShares, type CgroupPreference } from '../../src/runtimes/jail/cgroups.js';
import { cgroupGroupName, setupIsolation, undoIsolationIfFails, type IsolationConfig, type IsolationHost } from '../../src/runtimes/jail/setup.js';

const quiet = { warn: () => undefined, info: () => undefined };

// this development machine: v1 controllers plus a v2 hierarchy holding only hugetlb
const V1_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const V1_SELF = '8:pids:/\n4:memory:/\n1:cpu:/\n0::/\n';
const V2_MOUNTINFO = '25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';

function fakeHost(root: string, mountinfo: string, self: string, v2Controllers = ''): IsolationHost {
  return {
    root: () => true,
    detectCgroups: (prefer: CgroupPreference, parent?: string) => detectCgroups({ mountinfo, procSelfCgroup: self, v2Controllers: () => v2Controllers, prefer, parent }),
    fsRoot: root,
    procSelfCgroup: () => self,
  };
}

function config(stateDir: string, daemonCpuWeight: number | 'off' = 1000): IsolationConfig {
  return {
    stateDir,
    jail: { enabled: false, user: 'faascell-vmm', seccomp: false },
    limits: { cgroup: 'auto', memoryOverheadMiB: 64, cpuWeight: 100, daemonCpuWeight, cpuQuota: null, pidsMax: 256 },
  };
}

/** A fake tree keeps the files the kernel drops at rmdir: empty a cgroup directory as the kernel would. */
function asKernelRmdirWould(dir: string): void {
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
}

const failedStart = (): Promise<never> => Promise.reject(new Error('listen EADDRINUSE'));

void test('v1: a start that fails after the isolation set-up moves the daemon back and removes its <group>-daemon directory', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-daemon-'));
  try {
    const stateDir = '/state/a';
    const setup = await setupIsolation(config(stateDir), quiet, fakeHost(root, V1_MOUNTINFO, V1_SELF));
    const dir = path.join(root, '/sys/fs/cgroup/cpu', daemonCgroupName(cgroupGroupName(stateDir)));
    assert.deepEqual(setup.limits().daemonCgroup, { path: dir, weight: 1000 });
    assert.equal(fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8'), String(process.pid));
    assert.equal(fs.readFileSync(path.join(dir, 'cpu.shares'), 'utf8'), String(weightToShares(1000)));
    // an unrelated cgroup beside it (another state directory's) is not touched
    const other = path.join(root, '/sys/fs/cgroup/cpu', daemonCgroupName(cgroupGroupName('/state/b')));
    fs.mkdirSync(other);
    asKernelRmdirWould(dir);
    await assert.rejects(undoIsolationIfFails(setup, failedStart, quiet), /EADDRINUSE/, 'the start error goes up unchanged');
    assert.ok(!fs.existsSync(dir), 'no <group>-daemon directory left');
    assert.equal(fs.readFileSync(path.join(root, '/sys/fs/cgroup/cpu/cgroup.procs'), 'utf8'), String(process.pid), 'back where it came from');
    assert.ok(fs.existsSync(other), "another daemon's directory stays");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

void test('a start that succeeds keeps its set-up; daemonCpuWeight off places nothing, and a failed start then removes nothing of it', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-daemon-'));
  try {
    const setup = await setupIsolation(config('/state/ok'), quiet, fakeHost(root, V1_MOUNTINFO, V1_SELF));
    assert.equal(await undoIsolationIfFails(setup, () => Promise.resolve(42), quiet), 42);
    assert.ok(fs.existsSync(setup.limits().daemonCgroup!.path), 'still placed');
    const off = await setupIsolation(config('/state/off', 'off'), quiet, fakeHost(root, V1_MOUNTINFO, V1_SELF));
    assert.equal(off.limits().daemonCgroup, null);
    await assert.rejects(undoIsolationIfFails(off, failedStart, quiet), /EADDRINUSE/);
    assert.ok(!fs.existsSync(path.join(root, '/sys/fs/cgroup/cpu', daemonCgroupName(cgroupGroupName('/state/off')))));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

void test('v2: the daemon cgroup gets cpu.weight (1..10000) after its parent enables cpu for its children; it goes back only to the root cgroup', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-daemon-'));
  try {
    // a systemd service's cgroup as the parent (cgroup.controllers of it lists cpu memory pids)
    const self = '0::/system.slice/faascell.service\n';
    const parent = path.join(root, '/sys/fs/cgroup/system.slice/faascell.service');
    for (const weight of [1, 1000, 10_000]) {
      const stateDir = `/state/v2-${weight}`;
      const setup = await setupIsolation(config(stateDir, weight), quiet, fakeHost(root, V2_MOUNTINFO, self, 'cpu memory pids'));
      const dir = path.join(parent, daemonCgroupName(cgroupGroupName(stateDir)));
      assert.equal(setup.limits().cgroup.mode, 'v2');
      assert.deepEqual(setup.limits().daemonCgroup, { path: dir, weight });
      // the kernel's cgroup-v2.rst: cpu.weight, range [1, 10000], default 100 (the VMs' group keeps the default)
      assert.equal(fs.readFileSync(path.join(dir, 'cpu.weight'), 'utf8'), String(weight));
      assert.ok(!fs.existsSync(path.join(dir, 'cpu.shares')), 'no v1 file on v2');
      assert.equal(fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8'), String(process.pid), 'moved out of the parent first');
      assert.equal(fs.readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8'), '+cpu', 'then cpu enabled for the children');
      // a failed start: the parent now distributes cpu and may not take a process back (no internal process
      // constraint, EBUSY): the daemon stays in its cgroup until it exits, the next start reuses the directory
      fs.writeFileSync(path.join(parent, 'cgroup.procs'), '');
      await assert.rejects(undoIsolationIfFails(setup, failedStart, quiet), /EADDRINUSE/);
      assert.equal(fs.readFileSync(path.join(parent, 'cgroup.procs'), 'utf8'), '', 'no move back the kernel would refuse');
      assert.ok(fs.existsSync(dir));
    }
    // from the root cgroup (exempt from the constraint) it goes back and removes its directory
    const fromRoot = await setupIsolation(config('/state/v2-root'), quiet, fakeHost(root, V2_MOUNTINFO, '0::/\n', 'cpu memory pids'));
    const dir = fromRoot.limits().daemonCgroup!.path;
    assert.equal(path.dirname(dir), path.join(root, '/sys/fs/cgroup'));
    asKernelRmdirWould(dir);
    await assert.rejects(undoIsolationIfFails(fromRoot, failedStart, quiet), /EADDRINUSE/);
    assert.ok(!fs.existsSync(dir));
    assert.equal(fs.readFileSync(path.join(root, '/sys/fs/cgroup/cgroup.procs'), 'utf8'), String(process.pid));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

void test('daemonMovesBack: v1 always; v2 only to the root cgroup', () => {
  assert.equal(daemonMovesBack('v1', '/'), true);
  assert.equal(daemonMovesBack('v1', '/user.slice/x'), true);
  assert.equal(daemonMovesBack('v2', '/'), true);
  assert.equal(daemonMovesBack('v2', '/system.slice/faascell.service'), false);
  // the weight's v1 spelling stays within cpu.shares' range at both ends of v2's
  assert.equal(weightToShares(1), 10);
  assert.equal(weightToShares(10_000), 102_400);
});
