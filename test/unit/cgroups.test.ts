// Per-VM cgroup limits: hierarchy detection (v2, v1, hybrid), the values
// written per controller, and the manager's create/remove/reap on a fake
// cgroup tree (a temporary directory: plain files stand in for the kernel's).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CgroupManager,
  daemonCgroupName,
  daemonWeightFile,
  detectCgroups,
  limitFiles,
  memoryLimitBytes,
  parseMountinfo,
  parseProcCgroup,
  weightToShares,
  type LimitSettings,
} from '../../src/runtimes/jail/cgroups.js';
import { cgroupGroupName } from '../../src/runtimes/jail/setup.js';

// this development machine: v1 controllers plus a v2 hierarchy holding only hugetlb
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_SELF = `8:pids:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
`;
const V2_MOUNTINFO = `25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n`;
const V2_SELF = '0::/system.slice/faascell.service\n';

void test('mountinfo and /proc/self/cgroup parsing', () => {
  const m = parseMountinfo(HYBRID_MOUNTINFO);
  assert.equal(m.length, 6);
  assert.deepEqual(m[1], { mountPoint: '/sys/fs/cgroup/cpu', fsType: 'cgroup', superOptions: ['rw', 'cpu'] });
  assert.equal(m[5]!.fsType, 'cgroup2');
  const s = parseProcCgroup(HYBRID_SELF + '3:cpu,cpuacct:/x\n');
  assert.equal(s.v2, '/');
  assert.equal(s.v1.get('memory'), '/process_api/abc');
  assert.equal(s.v1.get('cpuacct'), '/x');
});

void test('hybrid host whose v2 hierarchy has no controllers: all three from v1', () => {
  const l = detectCgroups({ mountinfo: HYBRID_MOUNTINFO, procSelfCgroup: HYBRID_SELF, v2Controllers: () => 'hugetlb', prefer: 'auto' });
  assert.equal(l.mode, 'v1');
  assert.deepEqual(l.controllers.memory, { version: 'v1', mount: '/sys/fs/cgroup/memory', parent: '/process_api/abc' });
  assert.deepEqual(l.controllers.cpu, { version: 'v1', mount: '/sys/fs/cgroup/cpu', parent: '/' });
  assert.equal(l.controllers.pids?.version, 'v1');
  // forcing v2 there finds nothing
  const v2 = detectCgroups({ mountinfo: HYBRID_MOUNTINFO, procSelfCgroup: HYBRID_SELF, v2Controllers: () => 'hugetlb', prefer: 'v2' });
  assert.equal(v2.mode, 'none');
  assert.equal(v2.notes.length, 3);
});

void test('hybrid host with some controllers on v2', () => {
  const l = detectCgroups({ mountinfo: HYBRID_MOUNTINFO, procSelfCgroup: HYBRID_SELF, v2Controllers: (d) => (d === '/sys/fs/cgroup/unified' ? 'pids hugetlb' : undefined), prefer: 'auto' });
  assert.equal(l.mode, 'hybrid');
  assert.equal(l.controllers.pids?.version, 'v2');
  assert.equal(l.controllers.memory?.version, 'v1');
});

void test('pure v2 host: the daemon cgroup or a configured parent', () => {
  const seen: string[] = [];
  const l = detectCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: V2_SELF, v2Controllers: (d) => (seen.push(d), 'cpuset cpu io memory pids'), prefer: 'auto' });
  assert.equal(l.mode, 'v2');
  assert.deepEqual(l.controllers.memory, { version: 'v2', mount: '/sys/fs/cgroup', parent: '/system.slice/faascell.service' });
  assert.deepEqual(seen, ['/sys/fs/cgroup/system.slice/faascell.service']);
  const p = detectCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: V2_SELF, v2Controllers: () => 'cpu memory pids', prefer: 'auto', parent: '/faascell.slice' });
  assert.equal(p.controllers.cpu?.parent, '/faascell.slice');
  assert.equal(detectCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: V2_SELF, v2Controllers: () => 'cpu memory pids', prefer: 'v1' }).mode, 'none');
  assert.equal(detectCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: V2_SELF, v2Controllers: () => 'memory', prefer: 'off' }).mode, 'none');
});

const S: LimitSettings = { memoryOverheadMiB: 64, cpuWeight: 100, cpuQuotaPerVcpu: null, pidsMax: 256 };

void test('limit values: memory = guest + overhead, weight ↔ shares, quota per vCPU, no swap', () => {
  assert.equal(memoryLimitBytes(256, S), 320 * 1024 * 1024);
  assert.equal(weightToShares(100), 1024);
  assert.equal(weightToShares(1), 10);
  assert.equal(weightToShares(10_000), 102_400);
  const vm = { memoryMiB: 256, vcpus: 2 };
  assert.deepEqual(limitFiles('memory', 'v2', vm, S), [
    { file: 'memory.max', value: String(320 * 1024 * 1024) },
    { file: 'memory.swap.max', value: '0', optional: true },
  ]);
  assert.deepEqual(limitFiles('cpu', 'v2', vm, S), [
    { file: 'cpu.weight', value: '100' },
    { file: 'cpu.max', value: 'max 100000' },
  ]);
  assert.deepEqual(limitFiles('cpu', 'v2', vm, { ...S, cpuQuotaPerVcpu: 0.5 }), [
    { file: 'cpu.weight', value: '100' },
    { file: 'cpu.max', value: '100000 100000' },
  ]);
  assert.deepEqual(limitFiles('cpu', 'v1', vm, { ...S, cpuWeight: 50, cpuQuotaPerVcpu: 0.25 }), [
    { file: 'cpu.shares', value: '512' },
    { file: 'cpu.cfs_period_us', value: '100000' },
    { file: 'cpu.cfs_quota_us', value: '50000' },
  ]);
  assert.equal(limitFiles('cpu', 'v1', vm, S)[2]!.value, '-1');
  const m1 = limitFiles('memory', 'v1', vm, S);
  assert.deepEqual(m1.map((f) => f.file), ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
  assert.deepEqual(limitFiles('pids', 'v1', vm, S), [{ file: 'pids.max', value: '256' }]);
});

void test('manager on a fake v1 tree: create writes the limits, reap and removeGroup clean up', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-unit-'));
  try {
    const layout = detectCgroups({ mountinfo: HYBRID_MOUNTINFO, procSelfCgroup: HYBRID_SELF, v2Controllers: () => '', prefer: 'auto' });
    const m = new CgroupManager(layout, cgroupGroupName('/state'), { ...S, cpuQuotaPerVcpu: 1 }, root);
    assert.match(m.group, /^faascell-[0-9a-f]{12}$/);
    const cg = m.create('vm-1', { memoryMiB: 128, vcpus: 1 });
    const memDir = path.join(root, '/sys/fs/cgroup/memory/process_api/abc', m.group, 'vm-1');
    assert.equal(cg.dirs.memory, memDir);
    assert.equal(fs.readFileSync(path.join(memDir, 'memory.limit_in_bytes'), 'utf8'), String(192 * 1024 * 1024));
    assert.ok(!fs.existsSync(path.join(memDir, 'memory.memsw.limit_in_bytes')), 'optional file written although absent');
    assert.equal(fs.readFileSync(path.join(cg.dirs.cpu!, 'cpu.cfs_quota_us'), 'utf8'), '100000');
    assert.equal(fs.readFileSync(path.join(cg.dirs.pids!, 'pids.max'), 'utf8'), '256');
    assert.deepEqual(cg.procsFiles().sort(), [memDir, cg.dirs.cpu!, cg.dirs.pids!].map((d) => path.join(d, 'cgroup.procs')).sort());
    assert.deepEqual(m.status().controllers.memory, { version: 'v1', path: path.dirname(memDir) });
    // a fake tree has real files in the directories: empty them as the kernel would on rmdir
    const emptyDirs = (dirs: string[]) => {
      for (const d of dirs) for (const f of fs.readdirSync(d)) fs.rmSync(path.join(d, f));
    };
    m.create('vm-2', { memoryMiB: 128, vcpus: 1 });
    m.create('vm-3', { memoryMiB: 128, vcpus: 1 });
    emptyDirs(cg.directories);
    await cg.remove();
    assert.ok(!fs.existsSync(memDir));
    const left = (['memory', 'cpu', 'pids'] as const).flatMap((c) => ['vm-2', 'vm-3'].map((v) => path.join(m.groupDir(c)!, v)));
    emptyDirs(left);
    const r = await m.reap(new Set(['vm-3']));
    assert.equal(r.cgroups, 3); // vm-2 in each of the three hierarchies
    assert.ok(left.filter((d) => d.endsWith('vm-3')).every((d) => fs.existsSync(d)));
    assert.ok(left.filter((d) => d.endsWith('vm-2')).every((d) => !fs.existsSync(d)));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

void test('manager on a fake v2 tree enables the controllers for its children', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-unit-'));
  try {
    const layout = detectCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: '0::/\n', v2Controllers: () => 'cpu memory pids', prefer: 'auto' });
    const m = new CgroupManager(layout, 'faascell-x', S, root);
    const cg = m.create('vm-1', { memoryMiB: 256, vcpus: 1 });
    assert.deepEqual(cg.directories, [path.join(root, '/sys/fs/cgroup/faascell-x/vm-1')]);
    // the fake file keeps the last write; the kernel would accumulate "+memory +cpu +pids"
    assert.equal(fs.readFileSync(path.join(root, '/sys/fs/cgroup/faascell-x/cgroup.subtree_control'), 'utf8'), '+pids');
    assert.equal(fs.readFileSync(path.join(cg.directories[0]!, 'memory.max'), 'utf8'), String(320 * 1024 * 1024));
    assert.equal(fs.readFileSync(path.join(cg.directories[0]!, 'cpu.max'), 'utf8'), 'max 100000');
    assert.throws(() => m.create('../escape', { memoryMiB: 1, vcpus: 1 }));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

void test('the daemon beside its VMs (issue 18): its own cpu cgroup with a larger weight, back where it came from at stop', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-unit-'));
  try {
    assert.deepEqual(daemonWeightFile('v2', 1000), { file: 'cpu.weight', value: '1000' });
    assert.deepEqual(daemonWeightFile('v1', 1000), { file: 'cpu.shares', value: String(weightToShares(1000)) });
    // v1 (this machine): the cpu hierarchy only; the VMs' group keeps the default shares (all VMs weigh one share)
    const v1 = new CgroupManager(detectCgroups({ mountinfo: HYBRID_MOUNTINFO, procSelfCgroup: HYBRID_SELF, v2Controllers: () => '', prefer: 'auto' }), 'faascell-x', S, root);
    v1.create('vm-1', { memoryMiB: 128, vcpus: 1 });
    const d1 = v1.placeDaemon(1000, HYBRID_SELF, 4242)!;
    assert.equal(d1.dir, path.join(root, '/sys/fs/cgroup/cpu', daemonCgroupName('faascell-x')));
    assert.equal(path.dirname(d1.dir), path.dirname(v1.groupDir('cpu')!), 'a sibling of the VMs group');
    assert.equal(fs.readFileSync(path.join(d1.dir, 'cgroup.procs'), 'utf8'), '4242');
    assert.equal(fs.readFileSync(path.join(d1.dir, 'cpu.shares'), 'utf8'), '10240');
    assert.equal(d1.origin, path.join(root, '/sys/fs/cgroup/cpu/'));
    assert.ok(!fs.existsSync(path.join(v1.groupDir('cpu')!, 'cpu.shares')), 'the VMs group is not touched');
    assert.ok(!fs.existsSync(path.join(root, '/sys/fs/cgroup/memory/process_api/abc', daemonCgroupName('faascell-x'))), 'only the cpu hierarchy');
    fs.mkdirSync(d1.origin, { recursive: true });
    // a fake tree keeps the files the kernel would drop at rmdir
    for (const f of fs.readdirSync(d1.dir)) fs.rmSync(path.join(d1.dir, f));
    await v1.releaseDaemon(d1, 4242);
    assert.equal(fs.readFileSync(path.join(d1.origin, 'cgroup.procs'), 'utf8'), '4242');
    assert.ok(!fs.existsSync(d1.dir), 'removed at stop');

    // v2 with the daemon's own cgroup as the parent: it moves out first, then the parent enables cpu for its children
    const v2 = new CgroupManager(detectCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: V2_SELF, v2Controllers: () => 'cpu memory pids', prefer: 'auto' }), 'faascell-y', S, root);
    const d2 = v2.placeDaemon(500, V2_SELF, 77)!;
    const parent = path.join(root, '/sys/fs/cgroup/system.slice/faascell.service');
    assert.equal(d2.dir, path.join(parent, 'faascell-y-daemon'));
    assert.equal(fs.readFileSync(path.join(d2.dir, 'cpu.weight'), 'utf8'), '500');
    assert.equal(fs.readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8'), '+cpu');
    assert.equal(d2.origin, parent);
    // the parent cannot enable cpu for its children (v2: it still holds processes): back where it came from (on the
    // kernel's tree the then empty directory is removed too; a fake tree keeps its files, so it stays here)
    const v2b = new CgroupManager(detectCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: '0::/busy\n', v2Controllers: () => 'cpu memory pids', prefer: 'auto' }), 'faascell-b', S, root);
    const busy = path.join(root, '/sys/fs/cgroup/busy');
    fs.mkdirSync(path.join(busy, 'cgroup.subtree_control'), { recursive: true }); // a write to it fails
    assert.throws(() => v2b.placeDaemon(1000, '0::/busy\n', 88), /cannot enable the cpu controller/);
    assert.equal(fs.readFileSync(path.join(busy, 'cgroup.procs'), 'utf8'), '88');
    // no cpu controller: nothing to place
    const none = new CgroupManager(detectCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: V2_SELF, v2Controllers: () => 'memory', prefer: 'v2' }), 'faascell-z', S, root);
    assert.equal(none.placeDaemon(1000, V2_SELF, 1), undefined);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
