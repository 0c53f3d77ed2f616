// Wires the real actors (Dispatcher, VmPool with its decision core, Workers,
// PerfManager, NetworkManager, SnapshotManager) around a FakeDriver, for unit
// tests of scheduling and for the conformance test (on a virtual clock).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ActorSystem, type Actor, type ActorRef } from '../../src/core/actor.js';
import { realClock, type Clock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Dispatcher, type DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import { NetworkManager, type NetworkMsg } from '../../src/network/network-manager.js';
import { PerfManager, type PerfMsg } from '../../src/perf/perf-manager.js';
import { createPolicies, type ResolvedPolicySet } from '../../src/policies/index.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { CallbackSink } from '../../src/sinks/callback.js';
import type { InvocationResult } from '../../src/sinks/types.js';
import { SnapshotManager } from '../../src/snapshots/manager.js';
import type { SnapshotMsg } from '../../src/snapshots/types.js';
import type { Decision } from '../../src/vmpool/core/model.js';
import { StartCounter, type FaultModel, type StartFault } from '../../src/sim/faults.js';
import { VmPool, type PoolConfig, type PoolMsg, type PoolStatus } from '../../src/vmpool/pool.js';
import { FakeDriver, fakeImage, type FakeBehaviour } from './fake-driver.js';

export interface Harness {
  driver: FakeDriver;
  registry: Registry;
  pool: ActorRef<PoolMsg>;
  dispatcher: ActorRef<DispatcherMsg>;
  perf: ActorRef<PerfMsg>;
  policies: ResolvedPolicySet;
  clock: Clock;
  invoke(fn: string, params?: unknown): Promise<InvocationResult>;
  status(): Promise<PoolStatus>;
  /** no actor has a message waiting or a handler running (VirtualClock.run's `idle`) */
  idle(): boolean;
  close(): Promise<void>;
}

export interface HarnessOptions {
  behaviour?: FakeBehaviour;
  pool?: Omit<Partial<PoolConfig>, 'starts'> & { starts?: Partial<PoolConfig['starts']> };
  policies?: unknown;
  /** a SnapshotManager with a temporary tier (default off) */
  snapshots?: boolean;
  clock?: Clock;
  limits?: { maxResultBytes?: number; maxLogBytes?: number };
  onDecision?: (d: Decision) => void;
  /** failures to inject, the same model the simulator takes (src/sim/faults.ts) */
  faults?: FaultModel;
  /** a restored clone's resync rides on its first run (snapshots.resync with-run, the daemon's default) */
  resyncWithRun?: boolean;
  /** policies as objects (instead of `policies`, a configuration) */
  resolvedPolicies?: ResolvedPolicySet;
  /** a stand-in for the NetworkManager (e.g. one that has no slot to give) */
  network?: Actor<NetworkMsg>;
  /** the size the SnapshotManager records for a new snapshot of a function (the fake VMs write no RAM file) */
  snapshotBytes?: (fn: string) => number;
}

export const defaultPoolConfig = (over: HarnessOptions['pool'] = {}, snapshots = false): PoolConfig => ({
  memoryBudgetMiB: 4096,
  lowWatermark: 0.8,
  highWatermark: 0.95,
  maxConcurrentInvocations: 64,
  maxQueueLength: 100,
  maxQueueDelayMs: 5000,
  snapshots,
  tiers: [{ name: 'shm', latencyRank: 0, capacityBytes: 2 ** 40 }],
  cpus: [0, 1],
  pinVms: false,
  ...over,
  starts: { maxConcurrent: 8, cores: 2, idleVmCpu: 0, defaultColdMs: 50, defaultRestoreMs: 10, preferWarm: true, backoffBaseMs: 1000, backoffMaxMs: 60_000, ...over.starts },
});

export async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-h-'));
  const clock = opts.clock ?? realClock;
  const sys = new ActorSystem(silentLogger, () => undefined);
  const db = openMemoryDb();
  const registry = new Registry(db, { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 3_600_000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  const driver = new FakeDriver(opts.behaviour, clock);
  const policies = opts.resolvedPolicies ?? (await createPolicies(opts.policies ?? {}, { baseDir: dir }));
  // fault injection: each start's fault is chosen when the core decides the start (same numbering as the
  // simulator's), and the fake driver fails that start's VM accordingly (its vmId ends with the instance number)
  const faults = opts.faults;
  const startFaults = new Map<number, StartFault>();
  const counter = new StartCounter();
  let onDecision = opts.onDecision;
  if (faults?.start) {
    const plan = faults.start;
    const user = opts.onDecision;
    onDecision = (d) => {
      if (d.kind === 'start') {
        const f = plan({ fn: d.fn, nth: counter.next(d.fn), path: d.path, seq: d.inst, snapshot: d.snapshot, t: d.t });
        if (f) startFaults.set(d.inst, f);
      }
      user?.(d);
    };
    driver.faultFor = (vmId) => startFaults.get(Number(/-(\d+)$/.exec(vmId)?.[1]));
  }
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 100_000));
  const network = sys.spawn<NetworkMsg>('network', opts.network ?? new NetworkManager(path.join(dir, 'run')));
  const config = defaultPoolConfig(opts.pool, opts.snapshots ?? false);
  let snapshots: ActorRef<SnapshotMsg> | undefined;
  if (opts.snapshots) {
    const tiers = config.tiers.map((t) => ({ name: t.name, path: path.join(dir, 'tier-' + t.name), latencyRank: t.latencyRank, capacityMiB: Math.floor(t.capacityBytes / 1048576) }));
    const tierFull = faults?.tierFull;
    const tierOf = new Map(tiers.map((t) => [t.path, t.name]));
    // the tier's device is full when the fault model says so (the SnapshotManager's free-space check)
    const statfs = tierFull ? (p: string) => (tierFull(tierOf.get(p) ?? '', clock.now()) ? { bavail: 0, bsize: 4096 } : { bavail: 2 ** 40 / 4096, bsize: 4096 }) : undefined;
    snapshots = sys.spawn<SnapshotMsg>('snapshots', new SnapshotManager({ db, tiers, imageVersion: fakeImage.version, kind: 'shared-memory', uncache: false, clock, statfs, measure: opts.snapshotBytes && ((fn) => opts.snapshotBytes!(fn)) }));
  }
  const limits = { maxResultBytes: 1 << 20, maxLogBytes: 10 << 20, ...opts.limits };
  const pool = sys.spawn<PoolMsg>(
    'vmpool',
    new VmPool({
      system: sys,
      clock,
      functions: () => registry.list(),
      workerDeps: { driver, image: fakeImage, accelerator: 'tcg', registry, network, snapshots, clock, bootTimeoutMs: 60_000, limits, resyncWithRun: opts.resyncWithRun },
      policies,
      snapshots,
      config,
      onDecision,
    }),
  );
  perf.tell({ kind: 'subscribe', to: pool, tiers: config.tiers.map((t) => t.name) });
  const dispatcher = sys.spawn<DispatcherMsg>('dispatcher', new Dispatcher({ registry, pool, perf, runtime: 'qemu', clock, acquireTimeoutMs: 3_600_000 }));
  return {
    driver,
    registry,
    pool,
    dispatcher,
    perf,
    policies,
    clock,
    invoke: (fn, params = {}) => new Promise<InvocationResult>((resolve) => dispatcher.tell({ kind: 'invoke', req: { fn, params, receivedAt: clock.now(), sink: new CallbackSink(resolve) } })),
    status: () => pool.ask<PoolStatus>((reply) => ({ kind: 'status', reply }), 10_000),
    idle: () => !sys.busy,
    close: async () => {
      await pool.ask<void>((reply) => ({ kind: 'shutdown', reply }), 10_000);
      await sys.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function deploy(h: Harness, name: string, extra: Record<string, unknown> = {}): void {
  const def = h.registry.put(name, { code: Buffer.from('function main(p){return p}'), ...extra }).def;
  h.pool.tell({ kind: 'functionChanged', fn: name, def });
}
