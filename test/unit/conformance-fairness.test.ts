// Conformance under overload with fairness (issue 18): CPU-bound functions far
// beyond two cores, through (a) the simulator and (b) the real Dispatcher +
// VmPool + Workers + PerfManager + SnapshotManager with a fake runtime driver on a
// virtual clock. The fake VMs report the CPU their runs ask for (three quarters
// of a core for the CPU-bound functions, a twentieth for the one that mostly
// waits), as the real drivers do from /proc; the simulator is given the same. Both shells drive
// one decision core, so every start, assignment, refusal and stop must be
// identical: the fair pass, the CPU gate, the charges and admission's fair
// estimate included; decisions compared in the order they were made until the
// node is idle (test/helpers/conformance.ts: its constants, lines and compare).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../src/core/clock.js';
import { createPolicies, type PoliciesConfigInput } from '../../src/policies/index.js';
import type { VmConfig, VmHandle } from '../../src/runtimes/types.js';
import { profileSchema } from '../../src/sim/profile.js';
import { simulate, type Decision } from '../../src/sim/simulator.js';
import { TraceSource } from '../../src/sources/trace.js';
import { slotsTrace } from '../../src/traces/slots.js';
import type { Trace } from '../../src/traces/types.js';
import type { FairnessMode } from '../../src/vmpool/core/model.js';
import { BOOT_MS, COLD_MS, compare, INIT_MS, lines, RESTORE_MS, SLOT_MS, SNAPSHOT_MIB, type TraceFunction } from '../helpers/conformance.js';
import { deploy, harness, type Harness } from '../helpers/pool-harness.js';

/** memory sizes tell the fake VMs which function they run: 256 MiB ones are CPU-bound, 128 MiB ones wait */
const CPU_BOUND_MIB = 256;
/** the CPU a run asks for (cores), by the function's memory size */
const DEMAND: Record<number, number> = { [CPU_BOUND_MIB]: 0.75, 128: 0.05 };

// six CPU-bound functions (a core each while they run) offered several times what two cores compute, and one
// that waits; shares 1 except one function of share 2
const FUNCTIONS: Array<TraceFunction & { share: number }> = [
  { name: 'p', avgDurationMs: 300.25, memoryMiB: CPU_BOUND_MIB, share: 1, counts: [20, 30, 30, 30, 30, 10] },
  { name: 'q', avgDurationMs: 900.5, memoryMiB: CPU_BOUND_MIB, share: 1, counts: [10, 15, 15, 15, 15, 5] },
  { name: 'r', avgDurationMs: 2000.75, memoryMiB: CPU_BOUND_MIB, share: 2, counts: [5, 10, 10, 10, 10, 5] },
  { name: 's', avgDurationMs: 4000.125, memoryMiB: CPU_BOUND_MIB, share: 1, counts: [4, 6, 6, 6, 6, 2] },
  { name: 't', avgDurationMs: 6000.5, memoryMiB: CPU_BOUND_MIB, share: 1, counts: [2, 4, 4, 4, 4, 2] },
  { name: 'u', avgDurationMs: 1200.375, memoryMiB: CPU_BOUND_MIB, share: 1, counts: [0, 0, 12, 12, 12, 0] },
  { name: 'w', avgDurationMs: 1500.5, memoryMiB: 128, share: 1, counts: [3, 3, 3, 3, 3, 3] },
];

const NODE = { memoryMiB: 4096, maxInstances: 3, maxQueueDelayMs: 15_000, cores: 2 };

const profile = profileSchema.parse({
  accelerator: 'test',
  defaults: { coldMs: COLD_MS, restoreMs: RESTORE_MS, warmMs: 0, memoryMiB: 256, snapshotMiB: SNAPSHOT_MIB, restoreMsByTier: { shm: RESTORE_MS } },
  // a start's CPU time, as the fake VMs report it (below): what fairness charges for it, less than its time
  functions: Object.fromEntries(FUNCTIONS.map((f) => [f.name, { cpuShare: DEMAND[f.memoryMiB], coldCpuMs: DEMAND[f.memoryMiB]! * COLD_MS, restoreCpuMs: DEMAND[f.memoryMiB]! * RESTORE_MS }])),
  tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 1 << 20 }],
  node: { cores: NODE.cores, idleVmCpu: 0 },
});

const expand = { spread: 'random' as const, seed: 11 };
const shares = Object.fromEntries(FUNCTIONS.map((f) => [f.name, f.share]));

async function simulated(trace: Trace, cfg: PoliciesConfigInput, fairness: FairnessMode): Promise<Decision[]> {
  const log: Decision[] = [];
  simulate({
    trace,
    policies: await createPolicies(cfg, { baseDir: '.' }),
    profile,
    memoryMiB: NODE.memoryMiB,
    maxInstancesPerFunction: NODE.maxInstances,
    maxQueueDelayMs: NODE.maxQueueDelayMs,
    expand,
    shares,
    node: { cpuModel: false, maxConcurrentStarts: 'auto', snapshots: true, preferWarm: true, fairness },
    drain: true,
    onDecision: (d) => log.push(d),
  });
  return log;
}

/**
 * The fake driver's VMs report the CPU they ask for and take (DEMAND of a core, in virtual time since the VMM
 * was spawned): the share PerfManager learns, and the CPU time of each start and run that fairness charges
 * (a start takes DEMAND × its time here, not its time: a start is charged its CPU, issue 18).
 */
function withCpuDemand(h: Harness, clock: VirtualClock): void {
  const d = h.driver;
  const demand = (cfg: VmConfig, t0: number, vm: VmHandle): VmHandle => {
    const cpu = (): number => DEMAND[cfg.memoryMiB]! * (clock.now() - t0);
    return Object.assign(vm, { cpuDemandMs: cpu, cpuMs: cpu });
  };
  const boot = d.boot.bind(d);
  const restore = d.restore.bind(d);
  d.boot = async (cfg) => {
    const t0 = clock.now();
    return demand(cfg, t0, await boot(cfg));
  };
  d.restore = async (cfg, files) => {
    const t0 = clock.now();
    return demand(cfg, t0, await restore(cfg, files));
  };
}

async function real(trace: Trace, cfg: PoliciesConfigInput, fairness: FairnessMode): Promise<{ log: Decision[]; answered: number; sent: number }> {
  const clock = new VirtualClock(0);
  const log: Decision[] = [];
  const h = await harness({
    clock,
    snapshots: true,
    policies: cfg,
    resyncWithRun: true,
    behaviour: { bootMs: BOOT_MS, initMs: INIT_MS, restoreMs: RESTORE_MS, resyncMs: 0, ownRestoreMs: 0, snapshotMs: 0 },
    pool: {
      memoryBudgetMiB: NODE.memoryMiB,
      maxQueueDelayMs: NODE.maxQueueDelayMs,
      tiers: [{ name: 'shm', latencyRank: 0, capacityBytes: (1 << 20) * 1048576 }],
      starts: { maxConcurrent: 'auto', cores: NODE.cores, idleVmCpu: 0, defaultColdMs: COLD_MS, defaultRestoreMs: RESTORE_MS, preferWarm: true },
      fairness,
    },
    snapshotBytes: () => SNAPSHOT_MIB * 1048576,
    onDecision: (d) => log.push(d),
  });
  withCpuDemand(h, clock);
  try {
    for (const f of FUNCTIONS) deploy(h, f.name, { memoryMiB: f.memoryMiB, maxInstances: NODE.maxInstances, timeoutMs: 60_000, share: f.share });
    await clock.settle();
    const src = new TraceSource({ trace, dispatcher: h.dispatcher, clock, expand, params: (i) => ({ ms: FUNCTIONS[i]!.avgDurationMs }) });
    const done = src.done();
    await src.start();
    await clock.run(Infinity, { idle: () => h.idle() });
    await done;
    return { log, ...src.progress };
  } finally {
    await h.close();
  }
}

const CFG: PoliciesConfigInput = { keepAlive: { policy: 'fixed', ttlSeconds: 30 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' };

void test('under CPU-bound overload with fairness, the daemon and the simulator make the same decisions', { timeout: 120_000 }, async () => {
  const trace = slotsTrace(FUNCTIONS, SLOT_MS, 'conformance-fairness');
  const sim = lines(await simulated(trace, CFG, 'max-min'));
  const r = await real(trace, CFG, 'max-min');
  assert.equal(r.answered, r.sent, 'every request answered');
  // the trace is an overload: admission refuses early, and every function with offered load is served
  assert.ok(sim.some((x) => x.includes('"reason":"overloaded"')), 'the simulator refuses early');
  for (const f of FUNCTIONS) assert.ok(sim.some((x) => x.includes('"kind":"assign"') && x.includes(`"fn":"${f.name}"`)), `function ${f.name} is served`);
  compare(sim, lines(r.log));
  // and the rule decides something here: without it the decisions differ
  const off = lines(await simulated(trace, CFG, 'off'));
  assert.notDeepEqual(off, sim, 'fairness changes the decisions of this trace');
});
