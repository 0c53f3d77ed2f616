// Wires the real actors (VmPool, Worker, Dispatcher, PerfManager, NetworkManager)
// around a FakeDriver for unit tests of scheduling logic.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ActorSystem, type ActorRef } from '../../src/core/actor.js';
import { silentLogger } from '../../src/core/logger.js';
import { Dispatcher, type DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import { NetworkManager, type NetworkMsg } from '../../src/network/network-manager.js';
import { PerfManager, type PerfMsg } from '../../src/perf/perf-manager.js';
import { createPolicies } from '../../src/policies/index.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { CallbackSink } from '../../src/sinks/file.js';
import type { InvocationResult } from '../../src/sinks/types.js';
import { VmPool, type PoolConfig, type PoolMsg, type PoolStatus } from '../../src/vmpool/pool.js';
import { FakeDriver, fakeImage, type FakeBehaviour } from './fake-driver.js';

export interface Harness {
  driver: FakeDriver;
  registry: Registry;
  pool: ActorRef<PoolMsg>;
  invoke(fn: string, params?: unknown): Promise<InvocationResult>;
  status(): Promise<PoolStatus>;
  close(): Promise<void>;
}

export async function harness(opts: { behaviour?: FakeBehaviour; pool?: Partial<PoolConfig>; policies?: unknown } = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-h-'));
  const sys = new ActorSystem(silentLogger, () => undefined);
  const db = openMemoryDb();
  const registry = new Registry(db, { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  const driver = new FakeDriver(opts.behaviour);
  const policies = await createPolicies((opts.policies ?? {}), { baseDir: dir });
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 1000));
  const network = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
  const config: PoolConfig = { memoryBudgetMiB: 4096, lowWatermark: 0.8, highWatermark: 0.95, cpus: [0, 1], pinVms: false, maxConcurrentInvocations: 64, maxQueueLength: 100, maxQueueDelayMs: 5000, snapshotsEnabled: false, ...opts.pool };
  const pool = sys.spawn<PoolMsg>('vmpool', new VmPool({ system: sys, workerDeps: { driver, image: fakeImage, accelerator: 'tcg', registry, network, bootTimeoutMs: 5000 }, policies, rng: policies.rng, config }));
  const dispatcher = sys.spawn<DispatcherMsg>('dispatcher', new Dispatcher({ registry, pool, perf, runtime: 'qemu', acquireTimeoutMs: 20_000 }));
  return {
    driver,
    registry,
    pool,
    invoke: (fn, params = {}) =>
      new Promise<InvocationResult>((resolve) => dispatcher.tell({ kind: 'invoke', req: { fn, params, receivedAt: performance.timeOrigin + performance.now(), sink: new CallbackSink(resolve) } })),
    status: () => pool.ask<PoolStatus>((reply) => ({ kind: 'status', reply }), 1000),
    close: async () => {
      await pool.ask<void>((reply) => ({ kind: 'shutdown', reply }), 5000);
      await sys.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function deploy(h: Harness, name: string, extra: Record<string, unknown> = {}): void {
  const def = h.registry.put(name, { code: Buffer.from('function main(p){return p}'), ...extra }).def;
  h.pool.tell({ kind: 'functionChanged', fn: name, def });
}
