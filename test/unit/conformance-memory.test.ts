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
import { VirtualClock } from '../../src/core/clock.js';
import { createPolicies, type ResolvedPolicySet } from '../../src/policies/index.js';
import { modelPss, type MemoryModelCosts } from '../../src/sim/memory-model.js';
import { profileSchema, type Profile } from '../../src/sim/profile.js';
import { simulate, type Decision, type SimEvent } from '../../src/sim/simulator.js';
import { TraceSource } from '../../src/sources/trace.js';
import type { SnapshotFiles, VmConfig, VmHandle } from '../../src/runtimes/types.js';
import { BOOT_MS, COLD_MS, compare, FUNCTIONS, INIT_MS, lines, RESTORE_MS, SLOT_MS, SNAPSHOT_MIB, traceOf, type Scenario } from '../helpers/conformance.js';
import { deploy, harness } from '../helpers/pool-harness.js';

/** What the modelled VMs cost (the profile's memory model; the fake VMs answer the same). */
const MODEL = { coldPrivateMiB: 70, clonePrivateMiB: 18, snapshotSharedMiB: 40, runGrowthMiB: 3 };
const VM_SHARED_MIB = 30;
const SAMPLE_MS = 1000;
const RESERVE = 0.1;
const BUDGET_MIB = 900;
const MAX_INSTANCES = 5;
const QUEUE_DELAY_MS = 15_000;
const END = FUNCTIONS[0]!.counts.length * SLOT_MS;
const EVENTS: SimEvent[] = [
  // a new version of a forgets what its instances cost
  { at: 57_000.625, kind: 'define', fn: 'a', spec: { memoryMiB: 128, maxInstances: MAX_INSTANCES, version: 'v@57000' } },
  { at: END + 8_000.5, kind: 'shutdown' },
];
const SCENARIO: Scenario = { label: 'memory', policies: { keepAlive: { policy: 'fixed', ttlSeconds: 30 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' } };
const expand = { spread: 'random' as const, seed: 7 };

function profile(): Profile {
  return profileSchema.parse({
    accelerator: 'test',
    defaults: { coldMs: COLD_MS, restoreMs: RESTORE_MS, warmMs: 0, memoryMiB: 256, snapshotMiB: SNAPSHOT_MIB, restoreMsByTier: { shm: RESTORE_MS }, ...MODEL },
    tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 1 << 20 }],
    node: { cores: 2, idleVmCpu: 0, vmSharedMiB: VM_SHARED_MIB },
  });
}

function policies(): Promise<ResolvedPolicySet> {
  return createPolicies(SCENARIO.policies, { baseDir: '.' });
}

async function simulated(accounting: 'nominal' | 'measured'): Promise<Decision[]> {
  const log: Decision[] = [];
  simulate({
    trace: traceOf(SCENARIO),
    policies: await policies(),
    profile: profile(),
    memoryMiB: BUDGET_MIB,
    maxInstancesPerFunction: MAX_INSTANCES,
    maxQueueDelayMs: QUEUE_DELAY_MS,
    expand,
    node: { cpuModel: false, maxConcurrentStarts: 2, maxQueueLength: 100, snapshots: true, preferWarm: true, memoryAccounting: accounting, memoryReserve: RESERVE, memorySampleMs: SAMPLE_MS },
    events: EVENTS,
    drain: true,
    onDecision: (d) => log.push(d),
  });
  return log;
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

/** `extraCloneMiB`: the daemon's clones measure that much more than the simulator's model says (the teeth case). */
async function real(extraCloneMiB = 0): Promise<{ log: Decision[]; answered: number; sent: number }> {
  const clock = new VirtualClock(0);
  const log: Decision[] = [];
  const h = await harness({
    clock,
    snapshots: true,
    resolvedPolicies: await policies(),
    resyncWithRun: true,
    behaviour: { bootMs: BOOT_MS, initMs: INIT_MS, restoreMs: RESTORE_MS, resyncMs: 0, ownRestoreMs: 0, snapshotMs: 0 },
    pool: {
      memoryBudgetMiB: BUDGET_MIB,
      maxQueueDelayMs: QUEUE_DELAY_MS,
      maxQueueLength: 100,
      tiers: [{ name: 'shm', latencyRank: 0, capacityBytes: (1 << 20) * 1048576 }],
      starts: { maxConcurrent: 2, cores: 2, idleVmCpu: 0, defaultColdMs: COLD_MS, defaultRestoreMs: RESTORE_MS, preferWarm: true },
      memory: { accounting: 'measured', reserve: RESERVE, sampleIntervalMs: SAMPLE_MS },
    },
    snapshotBytes: () => SNAPSHOT_MIB * 1048576,
    onDecision: (d) => log.push(d),
  });
  modelMemory(h.driver, extraCloneMiB);
  try {
    for (const f of FUNCTIONS) deploy(h, f.name, { memoryMiB: f.memoryMiB, maxInstances: MAX_INSTANCES, timeoutMs: 60_000 });
    await clock.settle();
    for (const e of EVENTS) {
      clock.setTimer(e.at, () => {
        if (e.kind === 'shutdown') void h.pool.ask<void>((reply) => ({ kind: 'shutdown', reply }), 60_000);
        else if (e.kind === 'define') deploy(h, e.fn, { memoryMiB: 128, maxInstances: MAX_INSTANCES, timeoutMs: 60_000, code: Buffer.from(`function main(p){return p} // ${e.spec.version}`) });
      });
    }
    const src = new TraceSource({ trace: traceOf(SCENARIO), dispatcher: h.dispatcher, clock, expand, params: (i) => ({ ms: FUNCTIONS[i]!.avgDurationMs }) });
    const done = src.done();
    await src.start();
    await clock.run(Infinity, { idle: () => h.idle() });
    await done;
    return { log, ...src.progress };
  } finally {
    await h.close();
  }
}

const count = (log: string[], s: string): number => log.filter((x) => x.includes(s)).length;

void test('conformance: measured memory accounting (modelled PSS, shared pages split) — simulator and daemon decide the same', { timeout: 300_000 }, async () => {
  const sim = lines(await simulated('measured'));
  const r = await real();
  assert.equal(r.answered, r.sent, 'every request answered');
  compare(sim, lines(r.log));
  // the scenario exercises restores (clones sharing a snapshot), evictions and the function update
  for (const k of ['"path":"restore"', '"cause":"evicted"', '"cause":"stale"', '"cause":"shutdown"']) assert.ok(sim.some((x) => x.includes(k)), `the scenario exercises ${k}`);
  // and its budget binds: nominal accounting (same trace, same budget) decides otherwise, with more evictions
  const nominal = lines(await simulated('nominal'));
  assert.notDeepEqual(nominal, sim, 'the accounting changes decisions in this scenario');
  assert.ok(count(nominal, '"cause":"evicted"') > count(sim, '"cause":"evicted"'), `measured accounting evicts less (${count(sim, '"cause":"evicted"')} vs ${count(nominal, '"cause":"evicted"')} nominal)`);
});

void test('conformance-memory fails when the daemon measures differently (the check has teeth)', { timeout: 300_000 }, async () => {
  const sim = lines(await simulated('measured'));
  const r = lines((await real(40)).log);
  assert.throws(() => compare(sim, r), /decision \d+ differs|decisions, the simulator/);
});
