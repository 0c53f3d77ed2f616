// Conformance of measured memory accounting (issue 24): one scenario through the
// simulator and through the daemon's real actors (Dispatcher, VmPool, Workers,
// PerfManager, SnapshotManager) on a virtual clock with a fake driver, with
// measured accounting on. The simulator measures its instances with the memory
// model of src/sim/memory-model.ts; the daemon's VmPool measures its VMs through
// their Workers, whose fake VMs answer with the same model (their own pages by
// start path and runs, the common pages split among the VMs measured together, a
// snapshot's pages among its clones). Both sample at the same times
// (node.memory.sampleIntervalMs), and every decision must be the same, in order.
// The scenario's budget binds: nominal accounting decides differently.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/schema.js';
import { modelPss, type MemoryModelCosts } from '../../src/sim/memory-model.js';
import type { SnapshotFiles, VmConfig, VmHandle } from '../../src/runtimes/types.js';
import { compare, FUNCTIONS, lines, real, simulated, SLOT_MS, type Scenario } from '../helpers/conformance.js';

/** What the modelled VMs cost (the profile's memory model; the fake VMs answer the same). */
const MODEL = { coldPrivateMiB: 70, clonePrivateMiB: 18, snapshotSharedMiB: 40, runGrowthMiB: 3 };
const VM_SHARED_MIB = 30;
const END = FUNCTIONS[0]!.counts.length * SLOT_MS;

function scenario(accounting: 'nominal' | 'measured', extraCloneMiB = 0): Scenario {
  return {
    label: 'memory',
    policies: { keepAlive: { policy: 'fixed', ttlSeconds: 30 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' },
    // the budget binds: nominal accounting decides differently
    memoryMiB: 900,
    maxInstances: 5,
    // the Node.js functions (the Python one of the main scenario came later and changes which instances the
    // budget squeezes; this scenario is about accounting, not runtimes)
    functions: FUNCTIONS.filter((f) => f.runtime === undefined || f.runtime === 'nodejs20'),
    // a new version of a forgets what its instances cost
    events: [
      { at: 57_000.625, kind: 'update', fn: 'a' },
      { at: END + 8_000.5, kind: 'shutdown' },
    ],
    memory: { accounting, reserve: 0.1, sampleIntervalMs: 1000 },
    memoryModel: { ...MODEL, vmSharedMiB: VM_SHARED_MIB },
    prepare: (h) => modelMemory(h.driver, extraCloneMiB),
  };
}

/** The fake driver's VMs answer memoryUsage with the model: calls made together (one sampling) share the common pages. */
function modelMemory(driver: { boot(c: VmConfig): Promise<VmHandle>; restore(c: VmConfig, s: SnapshotFiles): Promise<VmHandle> }, extraCloneMiB = 0): void {
  const costs: MemoryModelCosts = { memoryMiB: 0, ...MODEL, clonePrivateMiB: MODEL.clonePrivateMiB + extraCloneMiB };
  const cloneOf = new Map<VmHandle, string>();
  let batch: Array<{ vm: VmHandle; resolve: (r: { rssKiB: number; pssKiB: number }) => void }> | undefined;
  const settle = (b: NonNullable<typeof batch>): void => {
    const clones = new Map<string, number>();
    for (const { vm } of b) {
      const snap = cloneOf.get(vm);
      if (snap !== undefined) clones.set(snap, (clones.get(snap) ?? 0) + 1);
    }
    for (const { vm, resolve } of b) {
      const snap = cloneOf.get(vm);
      // a run the Worker sent counts as served (the simulator counts an instance's assignments)
      const runs = (vm as unknown as { ops: string[] }).ops.filter((o) => o.startsWith('run')).length;
      const mib = modelPss(costs, snap !== undefined, runs, snap !== undefined ? clones.get(snap)! : 0, b.length, VM_SHARED_MIB);
      resolve({ rssKiB: mib * 1024, pssKiB: mib * 1024 });
    }
  };
  const measured = (vm: VmHandle): void => {
    vm.memoryUsage = () =>
      new Promise((resolve) => {
        if (!batch) {
          batch = [];
          // the sampler reads every VM in one synchronous pass: the batch is complete a microtask later
          queueMicrotask(() => {
            const b = batch!;
            batch = undefined;
            settle(b);
          });
        }
        batch.push({ vm, resolve });
      });
  };
  const boot = driver.boot.bind(driver);
  const restore = driver.restore.bind(driver);
  const booted = new Set<string>();
  driver.boot = async (c) => {
    booted.add(c.vmId);
    const vm = await boot(c);
    measured(vm);
    return vm;
  };
  driver.restore = async (c, s) => {
    const vm = await restore(c, s);
    // a cold start going on from its own snapshot (the fake driver's VMs cannot run on after one) stays a cold-booted VM
    if (s.kind === 'shared-memory' && !booted.has(c.vmId)) cloneOf.set(vm, s.memoryPath);
    measured(vm);
    return vm;
  };
}

const count = (log: string[], s: string): number => log.filter((x) => x.includes(s)).length;

void test('conformance: measured memory accounting (modelled PSS, shared pages split) — simulator and daemon decide the same', { timeout: 300_000 }, async () => {
  const sim = lines(await simulated(scenario('measured')));
  const r = await real(scenario('measured'));
  assert.equal(r.answered, r.sent, 'every request answered');
  compare(sim, lines(r.log));
  // the scenario exercises restores (clones sharing a snapshot), evictions and the function update
  for (const k of ['"path":"restore"', '"cause":"evicted"', '"cause":"stale"', '"cause":"shutdown"']) assert.ok(sim.some((x) => x.includes(k)), `the scenario exercises ${k}`);
  // and its budget binds: nominal accounting (same trace, same budget) decides otherwise, with more evictions
  const nominal = lines(await simulated(scenario('nominal')));
  assert.notDeepEqual(nominal, sim, 'the accounting changes decisions in this scenario');
  assert.ok(count(nominal, '"cause":"evicted"') > count(sim, '"cause":"evicted"'), `measured accounting evicts less (${count(sim, '"cause":"evicted"')} vs ${count(nominal, '"cause":"evicted"')} nominal)`);
});

void test('conformance-memory fails when the daemon measures differently (the check has teeth)', { timeout: 300_000 }, async () => {
  const sim = lines(await simulated(scenario('measured')));
  const r = lines((await real(scenario('measured', 40))).log);
  assert.throws(() => compare(sim, r), /decision \d+ differs|decisions, the simulator/);
});

void test('conformance-memory: the defaults — the daemon configured with nothing and the simulator told nothing both account measured, and decide the same', { timeout: 300_000 }, async () => {
  // what a daemon with no node.memory in its configuration runs with (measured, its reserve, its sampling)
  const { accounting, reserve, sampleIntervalMs } = parseConfig({}).node.memory;
  assert.equal(accounting, 'measured');
  const daemon = { ...scenario('measured'), memory: { accounting, reserve, sampleIntervalMs } };
  // the simulator with none of the memory options: its own defaults
  const sim = lines(await simulated({ ...daemon, memory: undefined }));
  const r = await real(daemon);
  assert.equal(r.answered, r.sent, 'every request answered');
  compare(sim, lines(r.log));
  const nominal = lines(await simulated({ ...daemon, memory: { accounting: 'nominal', reserve, sampleIntervalMs } }));
  assert.ok(count(nominal, '"cause":"evicted"') > count(sim, '"cause":"evicted"'), 'the default packs more than nominal accounting on the same trace');
});
