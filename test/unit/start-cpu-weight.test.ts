// Issue 18, session 7, "starts first": a VM's cgroup carries limits.startCpuWeight while the VM boots or restores
// (made with it), then the VM's own weight from the moment its Worker is ready for the first run, so busy VMs do
// not starve the starts. The cgroup files on a fake tree; the Worker's switching with a fake driver (the real
// node's figures: bench/start-weight.ts, bench/runs/2026-12-07-start-weight-s7.md).
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
import { CgroupManager, cpuWeightFile, limitFiles, VmCgroup, weightToShares, type CgroupLayout } from '../../src/runtimes/jail/cgroups.js';
import type { RuntimeDriver, SnapshotFiles, VmConfig, VmHandle } from '../../src/runtimes/types.js';
import { parseConfig } from '../../src/config/schema.js';
import { Worker, type InvokeOutcome, type WorkerEvent, type WorkerMsg } from '../../src/worker/worker.js';
import { FakeDriver, fakeImage } from '../helpers/fake-driver.js';
import { Spy } from '../helpers/spy.js';

const read = (dir: string, f: string): string => fs.readFileSync(path.join(dir, f), 'utf8');
const settings = { memoryOverheadMiB: 64, cpuWeight: 100, cpuQuotaPerVcpu: null, pidsMax: 256 };

void test('limits.startCpuWeight: off by default, a weight turns it on, out of range names the key', () => {
  assert.equal(parseConfig({}).limits.startCpuWeight, 'off');
  assert.equal(parseConfig({ limits: { startCpuWeight: 'off' } }).limits.startCpuWeight, 'off');
  assert.equal(parseConfig({ limits: { startCpuWeight: 1000 } }).limits.startCpuWeight, 1000);
  assert.throws(() => parseConfig({ limits: { startCpuWeight: 0 } }), /limits\.startCpuWeight/);
  assert.throws(() => parseConfig({ limits: { startCpuWeight: 10_001 } }), /limits\.startCpuWeight/);
});

void test('a VM cgroup is made with the start weight and switched to its own weight (v1 shares, v2 weight)', () => {
  // the files a new VM's cpu cgroup gets: the start weight first
  assert.deepEqual(limitFiles('cpu', 'v2', { memoryMiB: 256, vcpus: 1 }, { ...settings, startCpuWeight: 400 })[0], { file: 'cpu.weight', value: '400' });
  assert.deepEqual(limitFiles('cpu', 'v1', { memoryMiB: 256, vcpus: 1 }, { ...settings, startCpuWeight: 400 })[0], { file: 'cpu.shares', value: String(weightToShares(400)) });
  assert.deepEqual(limitFiles('cpu', 'v1', { memoryMiB: 256, vcpus: 1 }, { ...settings, startCpuWeight: null })[0], { file: 'cpu.shares', value: String(weightToShares(100)) });
  for (const version of ['v1', 'v2'] as const) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-startw-'));
    try {
      const mount = version === 'v1' ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
      const layout: CgroupLayout = { mode: version, controllers: { cpu: { version, mount, parent: '/' } }, notes: [] };
      fs.mkdirSync(path.join(root, mount), { recursive: true });
      const file = cpuWeightFile(version, 100).file;
      const m = new CgroupManager(layout, 'g', { ...settings, startCpuWeight: 400 }, root);
      const cg = m.create('vm1', { memoryMiB: 256, vcpus: 1 });
      assert.equal(read(cg.dirs.cpu!, file), cpuWeightFile(version, 400).value, 'made with the start weight');
      assert.equal(cg.setStartCpuWeight(false), true);
      assert.equal(read(cg.dirs.cpu!, file), cpuWeightFile(version, 100).value, 'its own weight once started');
      cg.setStartCpuWeight(true);
      assert.equal(read(cg.dirs.cpu!, file), cpuWeightFile(version, 400).value);
      // issue 18 scope first: a start the core did not weight (a scale-out) gets a cgroup made with its own weight
      const unweighted = m.create('vm3', { memoryMiB: 256, vcpus: 1 }, false);
      assert.equal(read(unweighted.dirs.cpu!, file), cpuWeightFile(version, 100).value, 'made with its own weight');
      // off: made with its own weight, nothing to switch
      const plain = new CgroupManager(layout, 'h', settings, root).create('vm2', { memoryMiB: 256, vcpus: 1 });
      assert.equal(read(plain.dirs.cpu!, file), cpuWeightFile(version, 100).value);
      assert.equal(plain.setStartCpuWeight(false), false);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  // no cpu controller: nothing to switch, said by the answer
  assert.equal(new VmCgroup('vm', { memory: os.tmpdir() }, undefined, { start: 400, normal: 100 }).setStartCpuWeight(true), false);
});

/** The fake driver's VMs, with the weight switches recorded (FakeVm has no cgroup). */
class WeighingDriver implements RuntimeDriver {
  readonly name = 'qemu' as const;
  readonly calls: string[] = [];
  /** what each boot asked of its cgroup (VmConfig.startCpuWeight) */
  readonly asked: (boolean | undefined)[] = [];
  constructor(private readonly inner: FakeDriver) {}
  private wrap(vm: VmHandle): VmHandle {
    const calls = this.calls;
    return Object.assign(vm, {
      setStartCpuWeight: (starting: boolean) => (calls.push(starting ? 'start' : 'own'), true),
      setCpuCap: (c: number | null) => (calls.push(`cap ${c}`), true),
    });
  }
  async boot(cfg: VmConfig): Promise<VmHandle> {
    this.calls.push('boot');
    this.asked.push(cfg.startCpuWeight);
    return this.wrap(await this.inner.boot(cfg));
  }
  async restore(cfg: VmConfig, s: SnapshotFiles): Promise<VmHandle> {
    this.calls.push('restore');
    return this.wrap(await this.inner.restore(cfg, s));
  }
  report(): ReturnType<RuntimeDriver['report']> {
    return this.inner.report();
  }
}

void test('the Worker: start weight from the spawn until ready, its own weight before the first run; off: no switch', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-startw-w-'));
  const sys = new ActorSystem(silentLogger, () => undefined);
  try {
    const registry = new Registry(openMemoryDb(), { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
    const fn = registry.put('f', { code: Buffer.from('function main(p){return p}') }).def;
    const driver = new WeighingDriver(new FakeDriver({}));
    const events = new Spy<WorkerEvent>();
    const network = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
    const pool = sys.spawn<WorkerEvent>('vmpool', events);
    const deps = { driver, image: fakeImage, accelerator: 'tcg' as const, registry, network, clock: realClock, bootTimeoutMs: 5000, limits: { maxResultBytes: 1000, maxLogBytes: 100 }, idleCpuCap: 0.1, startCpuWeight: true };
    const ref = sys.spawn<WorkerMsg>('worker-vm-1', new Worker('vm-1', 1, { path: 'cold', fn }, deps, pool));
    await events.next((e) => e.kind === 'ready');
    // the weight goes back before the idle cap (and before the pool hears it is ready: no run is sent before)
    assert.deepEqual(driver.calls, ['boot', 'start', 'own', 'cap 0.1']);
    const rec: ActivationRecord = { id: 'a1', function: 'f', functionVersion: 1, runtime: 'qemu', status: 'success', timestamps: {}, timings: {}, totalMs: 0, logs: [] };
    const out = await new Promise<InvokeOutcome>((resolve, reject) => ref.tell({ kind: 'run', run: { req: 1, rec, params: { result: 1 }, fresh: true, reply: { resolve, reject } } }));
    assert.equal(out.ok, true);
    assert.equal(driver.calls.filter((c) => c === 'start' || c === 'own').length, 2, 'runs do not switch the weight');
    // without the knob (or without a cpu controller: the daemon passes false) nothing is written
    const plain = new WeighingDriver(new FakeDriver({}));
    const events2 = new Spy<WorkerEvent>();
    sys.spawn<WorkerMsg>('worker-vm-2', new Worker('vm-2', 2, { path: 'cold', fn }, { ...deps, driver: plain, idleCpuCap: null, startCpuWeight: false }, sys.spawn<WorkerEvent>('vmpool-2', events2)));
    await events2.next((e) => e.kind === 'ready');
    assert.deepEqual(plain.calls, ['boot']);
    assert.deepEqual(driver.asked, [true]);
    assert.deepEqual(plain.asked, [undefined]);
    // issue 18 scope first: a start the core did not weight (plan.startWeighted false) writes no weight and asks
    // for a cgroup with the VM's own weight
    const scaled = new WeighingDriver(new FakeDriver({}));
    const events3 = new Spy<WorkerEvent>();
    sys.spawn<WorkerMsg>('worker-vm-3', new Worker('vm-3', 3, { path: 'cold', fn, startWeighted: false }, { ...deps, driver: scaled }, sys.spawn<WorkerEvent>('vmpool-3', events3)));
    await events3.next((e) => e.kind === 'ready');
    assert.deepEqual(scaled.calls, ['boot', 'cap 0.1']);
    assert.deepEqual(scaled.asked, [false]);
  } finally {
    await sys.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
