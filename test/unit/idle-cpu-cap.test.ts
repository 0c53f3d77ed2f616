// Issue 19, "work after the result": an idle VM's VMM is held to limits.idleCpuQuota host CPUs (a
// cgroup CPU quota switched on when the instance becomes idle and off before each run), so what a
// function leaves spinning after its result cannot take the node's CPU while the node counts the
// VM as idle. The cgroup files on a fake tree; the Worker's switching with a fake driver (the
// end-to-end test holds a real spinning guest to the bound: test/e2e/guest-host-use.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ActorSystem } from '../../src/core/actor.js';
import { realClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { NetworkManager, type NetworkMsg } from '../../src/network/network-manager.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { CgroupManager, cpuCapFile, VmCgroup, type CgroupLayout } from '../../src/runtimes/jail/cgroups.js';
import type { RuntimeDriver, SnapshotFiles, VmConfig, VmHandle } from '../../src/runtimes/types.js';
import { parseConfig } from '../../src/config/schema.js';
import { Worker, type InvokeOutcome, type WorkerEvent, type WorkerMsg } from '../../src/worker/worker.js';
import { FakeDriver, fakeImage } from '../helpers/fake-driver.js';
import { Spy } from '../helpers/spy.js';

const read = (dir: string, f: string): string => fs.readFileSync(path.join(dir, f), 'utf8');

void test('the cap file of each cgroup version; a cap never loosens the VM\'s own quota', () => {
  assert.deepEqual(cpuCapFile('v2', 10_000), { file: 'cpu.max', value: '10000 100000' });
  assert.deepEqual(cpuCapFile('v2', null), { file: 'cpu.max', value: 'max 100000' });
  assert.deepEqual(cpuCapFile('v1', 10_000), { file: 'cpu.cfs_quota_us', value: '10000' });
  assert.deepEqual(cpuCapFile('v1', null), { file: 'cpu.cfs_quota_us', value: '-1' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-idlecap-'));
  try {
    for (const version of ['v1', 'v2'] as const) {
      const file = cpuCapFile(version, null).file;
      // no quota of its own: capped at 0.1 CPU when idle, none when running
      const free = new VmCgroup('vm', { cpu: dir }, { version, busyQuotaUs: null });
      assert.equal(free.setCpuCap(0.1), true);
      assert.equal(read(dir, file), cpuCapFile(version, 10_000).value);
      free.setCpuCap(null);
      assert.equal(read(dir, file), cpuCapFile(version, null).value);
      // its own quota (limits.cpuQuota 0.05) is tighter than the idle cap: it stays
      const tight = new VmCgroup('vm', { cpu: dir }, { version, busyQuotaUs: 5000 });
      tight.setCpuCap(0.1);
      assert.equal(read(dir, file), cpuCapFile(version, 5000).value);
      tight.setCpuCap(null);
      assert.equal(read(dir, file), cpuCapFile(version, 5000).value);
    }
    // no cpu controller: nothing to cap, said by the answer
    assert.equal(new VmCgroup('vm', { memory: dir }).setCpuCap(0.1), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

void test('a VM cgroup made by the manager knows its cpu controller and its own quota', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-idlecap-tree-'));
  try {
    const layout: CgroupLayout = { mode: 'v1', controllers: { cpu: { version: 'v1', mount: '/sys/fs/cgroup/cpu', parent: '/' } }, notes: [] };
    fs.mkdirSync(path.join(root, 'sys/fs/cgroup/cpu'), { recursive: true });
    const m = new CgroupManager(layout, 'g', { memoryOverheadMiB: 64, cpuWeight: 100, cpuQuotaPerVcpu: 0.5, pidsMax: 256 }, root);
    const cg = m.create('vm1', { memoryMiB: 256, vcpus: 2 });
    assert.deepEqual(cg.cpu, { version: 'v1', busyQuotaUs: 100_000 });
    cg.setCpuCap(0.1);
    assert.equal(read(cg.dirs.cpu!, 'cpu.cfs_quota_us'), '10000');
    cg.setCpuCap(null);
    assert.equal(read(cg.dirs.cpu!, 'cpu.cfs_quota_us'), '100000');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

void test('limits.idleCpuQuota: 0.1 host CPU by default, null turns it off, out of range names the key', () => {
  assert.equal(parseConfig({}).limits.idleCpuQuota, 0.1);
  assert.equal(parseConfig({ limits: { idleCpuQuota: null } }).limits.idleCpuQuota, null);
  assert.throws(() => parseConfig({ limits: { idleCpuQuota: 0 } }), /limits\.idleCpuQuota/);
});

/** The fake driver's VMs, with the cap recorded (FakeVm has no cgroup). */
class CappingDriver implements RuntimeDriver {
  readonly name = 'qemu' as const;
  readonly caps: Array<number | null> = [];
  constructor(private readonly inner: FakeDriver) {}
  private wrap(vm: VmHandle): VmHandle {
    const caps = this.caps;
    return Object.assign(vm, { setCpuCap: (c: number | null) => (caps.push(c), true) });
  }
  async boot(cfg: VmConfig): Promise<VmHandle> {
    return this.wrap(await this.inner.boot(cfg));
  }
  async restore(cfg: VmConfig, s: SnapshotFiles): Promise<VmHandle> {
    return this.wrap(await this.inner.restore(cfg, s));
  }
  report(): ReturnType<RuntimeDriver['report']> {
    return this.inner.report();
  }
}

void test('the Worker caps its VM when it becomes idle and lifts the cap before each run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-idlecap-w-'));
  const sys = new ActorSystem(silentLogger, () => undefined);
  try {
    const registry = new Registry(openMemoryDb(), { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
    const fn = registry.put('f', { code: Buffer.from('function main(p){return p}') }).def;
    const driver = new CappingDriver(new FakeDriver({}));
    const events = new Spy<WorkerEvent>();
    const network = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
    const pool = sys.spawn<WorkerEvent>('vmpool', events);
    const deps = { driver, image: fakeImage, accelerator: 'tcg' as const, registry, network, clock: realClock, bootTimeoutMs: 5000, limits: { maxResultBytes: 1000, maxLogBytes: 100 }, idleCpuCap: 0.1 };
    const ref = sys.spawn<WorkerMsg>('worker-vm-1', new Worker('vm-1', 1, { path: 'cold', fn }, deps, pool));
    await events.next((e) => e.kind === 'ready');
    assert.deepEqual(driver.caps, [0.1], 'capped once it is idle after its start');
    const run = (req: number): Promise<InvokeOutcome> =>
      new Promise((resolve, reject) => {
        const rec: ActivationRecord = { id: `a${req}`, function: 'f', functionVersion: 1, runtime: 'qemu', status: 'success', timestamps: {}, timings: {}, totalMs: 0, logs: [] };
        ref.tell({ kind: 'run', run: { req, rec, params: { result: { ok: req } }, fresh: req === 1, reply: { resolve, reject } } });
      });
    assert.equal((await run(1)).ok, true);
    assert.equal((await run(2)).ok, true);
    assert.deepEqual(driver.caps, [0.1, null, 0.1, null, 0.1], 'off before each run, on after it');
    // without the knob nothing is written
    const plain = new CappingDriver(new FakeDriver({}));
    const events2 = new Spy<WorkerEvent>();
    sys.spawn<WorkerMsg>('worker-vm-2', new Worker('vm-2', 2, { path: 'cold', fn }, { ...deps, driver: plain, idleCpuCap: null }, sys.spawn<WorkerEvent>('vmpool-2', events2)));
    await events2.next((e) => e.kind === 'ready');
    assert.deepEqual(plain.caps, []);
  } finally {
    await sys.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
