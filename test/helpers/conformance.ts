// Conformance: one scenario (a trace, policies, node limits, faults, changes of
// the node during the run) through (a) the simulator and (b) the real
// Dispatcher + VmPool + Workers + PerfManager + SnapshotManager with a fake
// runtime driver whose start and run times follow the same cost profile, on a
// virtual clock. Both drive the same decision core through different shells;
// every decision (start, assignment, refusal, stop, snapshot drop and move) must
// be the same, in the same order, from the first arrival until the node is idle
// again (test/unit/conformance*.test.ts).
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/core/clock.js';
import { createPolicies, type PoliciesConfigInput, type ResolvedPolicySet } from '../../src/policies/index.js';
import type { FaultModel } from '../../src/sim/faults.js';
import { profileSchema, type Profile } from '../../src/sim/profile.js';
import { simulate, type Decision, type SimEvent } from '../../src/sim/simulator.js';
import { TraceSource } from '../../src/sources/trace.js';
import { faasrailTrace } from '../../src/traces/faasrail.js';
import type { Trace } from '../../src/traces/types.js';
import { deploy, harness } from './pool-harness.js';

export const SLOT_MS = 10_000;
export const BOOT_MS = 2800;
export const INIT_MS = 200;
export const COLD_MS = BOOT_MS + INIT_MS;
export const RESTORE_MS = 400;
/** what every snapshot measures once taken (the simulator's profile, the daemon's SnapshotManager) */
export const SNAPSHOT_MIB = 100;

export interface TraceFunction {
  name: string;
  avgDurationMs: number;
  memoryMiB: number;
  counts: number[];
}

/** The functions of the default scenario: 12 slots of 10 s, bursts, idle gaps, long and short runs. */
export const FUNCTIONS: TraceFunction[] = [
  { name: 'a', avgDurationMs: 150.25, memoryMiB: 128, counts: [5, 8, 3, 0, 0, 10, 2, 0, 0, 0, 6, 1] },
  { name: 'b', avgDurationMs: 2500.5, memoryMiB: 256, counts: [0, 6, 0, 0, 4, 0, 0, 8, 0, 0, 0, 3] },
  { name: 'c', avgDurationMs: 40.125, memoryMiB: 128, counts: [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1] },
  { name: 'd', avgDurationMs: 9000.75, memoryMiB: 256, counts: [2, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0] },
  { name: 'e', avgDurationMs: 600.5, memoryMiB: 512, counts: [0, 0, 3, 3, 0, 0, 0, 3, 3, 0, 0, 0] },
  { name: 'f', avgDurationMs: 80.375, memoryMiB: 128, counts: [10, 0, 0, 0, 10, 0, 0, 0, 10, 0, 0, 0] },
  // a burst beyond its three instances: admission refuses early, or the queue times out
  { name: 'g', avgDurationMs: 5000.5, memoryMiB: 128, counts: [0, 0, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0] },
];

export interface TierDef {
  name: string;
  latencyRank: number;
  capacityMiB: number;
  restoreMs: number;
}

/** A change of the node during the run, at a time (ms) chosen apart from the trace's arrivals. */
export type NodeEvent =
  /** a new version of the function (new code; same memory and instance cap) */
  | { at: number; kind: 'update'; fn: string }
  | { at: number; kind: 'delete'; fn: string }
  | { at: number; kind: 'shutdown' };

export interface Scenario {
  label: string;
  functions?: TraceFunction[];
  policies: PoliciesConfigInput;
  /** policies the configuration cannot express (test-only placement, …), laid over the configured ones */
  policyOverrides?: (p: ResolvedPolicySet) => void;
  memoryMiB?: number;
  maxInstances?: number;
  maxQueueDelayMs?: number;
  maxQueueLength?: number;
  maxConcurrentStarts?: number;
  tiers?: TierDef[];
  /** failures to inject; a function when the plan keeps state (each shell gets its own) */
  faults?: FaultModel | (() => FaultModel);
  events?: NodeEvent[];
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export const DEFAULT_TIERS: TierDef[] = [{ name: 'shm', latencyRank: 0, capacityMiB: 1 << 20, restoreMs: RESTORE_MS }];

const expand = { spread: 'random' as const, seed: 7 };

function profileOf(sc: Scenario): Profile {
  const tiers = sc.tiers ?? DEFAULT_TIERS;
  return profileSchema.parse({
    accelerator: 'test',
    defaults: { coldMs: COLD_MS, restoreMs: RESTORE_MS, warmMs: 0, memoryMiB: 256, snapshotMiB: SNAPSHOT_MIB, restoreMsByTier: Object.fromEntries(tiers.map((t) => [t.name, t.restoreMs])) },
    tiers: tiers.map((t) => ({ name: t.name, latencyRank: t.latencyRank, capacityMiB: t.capacityMiB })),
    node: { cores: 2, idleVmCpu: 0 },
  });
}

async function policiesOf(sc: Scenario): Promise<ResolvedPolicySet> {
  const p = await createPolicies(sc.policies, { baseDir: '.' });
  sc.policyOverrides?.(p);
  return p;
}

export function traceOf(sc: Scenario): Trace {
  return faasrailTrace(sc.functions ?? FUNCTIONS, SLOT_MS, 'conformance');
}

const NODE = { memoryMiB: 1024, maxInstances: 3, maxQueueDelayMs: 15_000, maxConcurrentStarts: 2, maxQueueLength: 100 };

export async function simulated(sc: Scenario): Promise<Decision[]> {
  const log: Decision[] = [];
  const trace = traceOf(sc);
  const fns = sc.functions ?? FUNCTIONS;
  const events: SimEvent[] = (sc.events ?? []).map((e) => {
    if (e.kind !== 'update') return e;
    const f = fns.find((x) => x.name === e.fn)!;
    return { at: e.at, kind: 'define', fn: e.fn, spec: { memoryMiB: f.memoryMiB, maxInstances: sc.maxInstances ?? NODE.maxInstances, version: `v@${e.at}` } };
  });
  simulate({
    trace,
    policies: await policiesOf(sc),
    profile: profileOf(sc),
    memoryMiB: sc.memoryMiB ?? NODE.memoryMiB,
    maxInstancesPerFunction: sc.maxInstances ?? NODE.maxInstances,
    maxQueueDelayMs: sc.maxQueueDelayMs ?? NODE.maxQueueDelayMs,
    expand,
    node: {
      cpuModel: false,
      maxConcurrentStarts: sc.maxConcurrentStarts ?? NODE.maxConcurrentStarts,
      maxQueueLength: sc.maxQueueLength ?? NODE.maxQueueLength,
      snapshots: true,
      preferWarm: true,
      ...(sc.backoffBaseMs !== undefined ? { backoffBaseMs: sc.backoffBaseMs } : {}),
      ...(sc.backoffMaxMs !== undefined ? { backoffMaxMs: sc.backoffMaxMs } : {}),
    },
    faults: typeof sc.faults === 'function' ? sc.faults() : sc.faults,
    events,
    drain: true,
    onDecision: (d) => log.push(d),
  });
  return log;
}

export async function real(sc: Scenario): Promise<{ log: Decision[]; answered: number; sent: number }> {
  const clock = new VirtualClock(0);
  const log: Decision[] = [];
  const tiers = sc.tiers ?? DEFAULT_TIERS;
  const restore = tiers[0]!.restoreMs;
  if (tiers.some((t) => t.restoreMs !== restore)) throw new Error('the fake driver restores from every tier in the same time');
  const h = await harness({
    clock,
    snapshots: true,
    resolvedPolicies: await policiesOf(sc),
    // the daemon's default: a restored clone's resync rides on its first run
    resyncWithRun: true,
    behaviour: { bootMs: BOOT_MS, initMs: INIT_MS, restoreMs: restore, resyncMs: 0, ownRestoreMs: 0, snapshotMs: 0 },
    pool: {
      memoryBudgetMiB: sc.memoryMiB ?? NODE.memoryMiB,
      maxQueueDelayMs: sc.maxQueueDelayMs ?? NODE.maxQueueDelayMs,
      maxQueueLength: sc.maxQueueLength ?? NODE.maxQueueLength,
      tiers: tiers.map((t) => ({ name: t.name, latencyRank: t.latencyRank, capacityBytes: t.capacityMiB * 1048576 })),
      starts: {
        maxConcurrent: sc.maxConcurrentStarts ?? NODE.maxConcurrentStarts,
        cores: 2,
        idleVmCpu: 0,
        defaultColdMs: COLD_MS,
        defaultRestoreMs: RESTORE_MS,
        preferWarm: true,
        ...(sc.backoffBaseMs !== undefined ? { backoffBaseMs: sc.backoffBaseMs } : {}),
        ...(sc.backoffMaxMs !== undefined ? { backoffMaxMs: sc.backoffMaxMs } : {}),
      },
    },
    faults: typeof sc.faults === 'function' ? sc.faults() : sc.faults,
    snapshotBytes: () => SNAPSHOT_MIB * 1048576,
    onDecision: (d) => log.push(d),
  });
  const fns = sc.functions ?? FUNCTIONS;
  const spec = (f: TraceFunction) => ({ memoryMiB: f.memoryMiB, maxInstances: sc.maxInstances ?? NODE.maxInstances, timeoutMs: 60_000 });
  try {
    for (const f of fns) deploy(h, f.name, spec(f));
    await clock.settle();
    for (const e of sc.events ?? []) {
      clock.setTimer(e.at, () => {
        if (e.kind === 'shutdown') void h.pool.ask<void>((reply) => ({ kind: 'shutdown', reply }), 60_000);
        else if (e.kind === 'update') deploy(h, e.fn, { ...spec(fns.find((x) => x.name === e.fn)!), code: Buffer.from(`function main(p){return p} // v@${e.at}`) });
        else {
          h.registry.delete(e.fn);
          h.pool.tell({ kind: 'functionChanged', fn: e.fn, def: undefined });
        }
      });
    }
    const trace = traceOf(sc);
    const src = new TraceSource({ trace, dispatcher: h.dispatcher, clock, expand, params: (i) => ({ ms: fns[i]!.avgDurationMs }) });
    const done = src.done();
    await src.start();
    // virtual time moves on only when every actor is done with what it was given (the SnapshotManager's
    // file copies and child processes take real time)
    await clock.run(Infinity, { idle: () => h.idle() });
    await done;
    return { log, ...src.progress };
  } finally {
    await h.close();
  }
}

/** Decisions as compared: in the order they were made, times to the µs. */
export function lines(log: Decision[]): string[] {
  return log.map((d) => JSON.stringify({ ...d, t: Number(d.t.toFixed(3)) }));
}

export function compare(sim: string[], daemon: string[]): void {
  const n = Math.min(sim.length, daemon.length);
  for (let i = 0; i < n; i++) {
    if (sim[i] !== daemon[i]) {
      assert.fail(`decision ${i} differs\n  simulator: ${sim[i]}\n  daemon:    ${daemon[i]}\n  before it: ${sim.slice(Math.max(0, i - 4), i).join('\n             ')}`);
    }
  }
  assert.equal(daemon.length, sim.length, `the daemon made ${daemon.length} decisions, the simulator ${sim.length}${daemon.length > sim.length ? `; next daemon: ${daemon[n]}` : `; next simulator: ${sim[n]}`}`);
}

/** Runs the scenario through both shells and requires the same decisions; returns them (the simulator's) for checks of coverage. */
export async function conform(sc: Scenario): Promise<string[]> {
  const s = lines(await simulated(sc));
  const r = await real(sc);
  assert.equal(r.answered, r.sent, 'every request answered');
  compare(s, lines(r.log));
  return s;
}
