// What durability costs and what a killed process can lose, for the daemon's
// SQLite database (WAL mode). No VMs.
//
//   npx tsx bench/durability.ts [--dir DIR] [--inserts 5000] [--kills 20]
//
// 1. Cost: the time of one activation-record insert (the PerfManager's
//    statement, one transaction each) with synchronous OFF, NORMAL and FULL,
//    median and p99 over --inserts, in a database under --dir (default: a
//    temporary directory on the file system of the state directory's default).
// 2. Loss on kill -9: a child process inserts records as fast as it can and
//    prints each id once its transaction committed; it is SIGKILLed at a
//    random moment; the database is reopened and every printed id looked up.
//    Repeated --kills times per synchronous level.
//
//   npx tsx bench/durability.ts --acceptance [--calls 2000] [--rounds 5] [--concurrency 16]
//
// 3. Durable acceptance (issue 12): what committing the `accepted` record before
//    the work starts costs per invocation. The daemon's own Dispatcher, VmPool
//    (decision core), Worker and PerfManager on a WAL database (synchronous
//    NORMAL) under --dir, around a fake driver whose runs answer at once; two
//    Dispatchers on the same pool, one with the acceptance record and one
//    without, measured in alternating rounds in one run: the latency of each
//    sequential call (median and p99 over all rounds) and the throughput of
//    --concurrency callers (the group commit shares one transaction between
//    the acceptances of an event-loop turn), with the transactions per call.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { openDb } from '../src/registry/db.js';

type Level = 'OFF' | 'NORMAL' | 'FULL';
const LEVELS: Level[] = ['OFF', 'NORMAL', 'FULL'];

const INSERT = 'INSERT OR REPLACE INTO activations (id, function, start_path, status, received_at, total_ms, record) VALUES (?, ?, ?, ?, ?, ?, ?)';
const record = (id: string) => JSON.stringify({ id, function: 'hello', status: 'success', startPath: 'warm', timestamps: { received: Date.now(), runStarted: Date.now(), runFinished: Date.now() }, totalMs: 12.5, logs: [], result: { greeting: 'Hello, bench!' } });

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function child(dir: string, level: Level): void {
  const db = openDb(dir, 'kill.db', { synchronous: level });
  const st = db.prepare(INSERT);
  for (let i = 0; ; i++) {
    const id = `k-${process.pid}-${i}`;
    st.run(id, 'hello', 'warm', 'success', Date.now(), 12.5, record(id));
    process.stdout.write(id + '\n'); // only after the commit returned
  }
}

async function killOnce(dir: string, level: Level): Promise<{ printed: number; lost: number }> {
  const p = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', level, '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ids: string[] = [];
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    ids.push(...lines);
  });
  while (ids.length < 200) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, Math.random() * 200));
  p.kill('SIGKILL');
  await new Promise((r) => p.once('exit', r));
  const db = new Database(path.join(dir, 'kill.db'));
  const has = db.prepare('SELECT 1 FROM activations WHERE id = ?');
  const lost = ids.filter((id) => !has.get(id)).length;
  if (db.pragma('integrity_check', { simple: true }) !== 'ok') throw new Error('integrity check failed');
  db.close();
  return { printed: ids.length, lost };
}

async function acceptance(base: string, calls: number, rounds: number, concurrency: number): Promise<void> {
  const { ActorSystem } = await import('../src/core/actor.js');
  const { realClock } = await import('../src/core/clock.js');
  const { silentLogger } = await import('../src/core/logger.js');
  const { Dispatcher } = await import('../src/dispatcher/dispatcher.js');
  const { NetworkManager } = await import('../src/network/network-manager.js');
  const { PerfManager } = await import('../src/perf/perf-manager.js');
  const { createPolicies } = await import('../src/policies/index.js');
  const { Registry } = await import('../src/registry/registry.js');
  const { CallbackSink } = await import('../src/sinks/callback.js');
  const { VmPool } = await import('../src/vmpool/pool.js');
  const { FakeDriver, fakeImage } = await import('../test/helpers/fake-driver.js');
  const { defaultPoolConfig } = await import('../test/helpers/pool-harness.js');
  type DispatcherMsg = import('../src/dispatcher/dispatcher.js').DispatcherMsg;
  type PoolMsg = import('../src/vmpool/pool.js').PoolMsg;
  type PerfMsg = import('../src/perf/perf-manager.js').PerfMsg;
  type NetworkMsg = import('../src/network/network-manager.js').NetworkMsg;
  type ActorRef<M> = import('../src/core/actor.js').ActorRef<M>;

  const dir = path.join(base, 'acceptance');
  fs.rmSync(dir, { recursive: true, force: true });
  const db = openDb(dir); // WAL, synchronous NORMAL: as the daemon
  let transactions = 0;
  const tx = db.transaction.bind(db);
  db.transaction = ((fn: Parameters<typeof db.transaction>[0]) => {
    transactions++;
    return tx(fn);
  }) as typeof db.transaction;
  const clock = realClock;
  const sys = new ActorSystem(silentLogger, () => undefined);
  const registry = new Registry(db, { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60_000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 1_000_000));
  const network = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
  const config = defaultPoolConfig({ starts: { maxConcurrent: 2 } }, false);
  const pool: ActorRef<PoolMsg> = sys.spawn<PoolMsg>(
    'vmpool',
    new VmPool({
      system: sys,
      clock,
      functions: () => registry.list(),
      workerDeps: { driver: new FakeDriver({ runMs: 0 }, clock), image: fakeImage, accelerator: 'tcg', registry, network, clock, bootTimeoutMs: 60_000, limits: { maxResultBytes: 1 << 20, maxLogBytes: 1 << 20 } },
      policies: await createPolicies({}, { baseDir: dir }),
      config,
    }),
  );
  perf.tell({ kind: 'subscribe', to: pool, tiers: [] });
  const def = registry.put('f', { code: Buffer.from('function main(p){return p}'), maxInstances: 4 }).def;
  pool.tell({ kind: 'functionChanged', fn: 'f', def });
  const modes = {
    with: sys.spawn<DispatcherMsg>('dispatcher-with', new Dispatcher({ registry, pool, perf, runtime: 'qemu', clock, acquireTimeoutMs: 60_000, recordAcceptance: true })),
    without: sys.spawn<DispatcherMsg>('dispatcher-without', new Dispatcher({ registry, pool, perf, runtime: 'qemu', clock, acquireTimeoutMs: 60_000, recordAcceptance: false })),
  };
  const invoke = (d: ActorRef<DispatcherMsg>): Promise<void> =>
    new Promise((resolve, reject) =>
      d.tell({ kind: 'invoke', req: { fn: 'f', params: { ms: 0 }, receivedAt: clock.now(), sink: new CallbackSink((r) => (r.error ? reject(r.error) : resolve())) } }),
    );
  // warm-up: instances up, statements prepared
  await Promise.all(Array.from({ length: 8 }, () => invoke(modes.with)));
  await Promise.all(Array.from({ length: 8 }, () => invoke(modes.without)));
  const lat: Record<keyof typeof modes, number[]> = { with: [], without: [] };
  const tput: Record<keyof typeof modes, number[]> = { with: [], without: [] };
  const txPerCall: Record<keyof typeof modes, number[]> = { with: [], without: [] };
  for (let r = 0; r < rounds; r++) {
    const order: Array<keyof typeof modes> = r % 2 === 0 ? ['with', 'without'] : ['without', 'with'];
    for (const m of order) {
      for (let i = 0; i < calls; i++) {
        const a = performance.now();
        await invoke(modes[m]);
        lat[m].push((performance.now() - a) * 1000);
      }
      const tx0 = transactions;
      const t0 = performance.now();
      let left = calls;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (left-- > 0) await invoke(modes[m]);
        }),
      );
      tput[m].push(calls / ((performance.now() - t0) / 1000));
      txPerCall[m].push((transactions - tx0) / calls);
    }
  }
  const med = (xs: number[]): number => pct(xs, 50);
  console.log(`# durable acceptance: ${calls} calls × ${rounds} rounds per mode, alternating; ${os.cpus().length} CPUs ${os.cpus()[0]?.model ?? ''}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, kernel ${os.release()}, db ${dir}`);
  console.log('| acceptance record | sequential call median | p99 | mean | throughput, ' + concurrency + ' callers (median of rounds) | transactions per call (concurrent) |');
  console.log('|---|---|---|---|---|---|');
  for (const m of ['without', 'with'] as const) {
    const mean = lat[m].reduce((a, b) => a + b, 0) / lat[m].length;
    console.log(`| ${m} | ${med(lat[m]).toFixed(1)} µs | ${pct(lat[m], 99).toFixed(1)} µs | ${mean.toFixed(1)} µs | ${Math.round(med(tput[m]))} calls/s | ${med(txPerCall[m]).toFixed(2)} |`);
  }
  await pool.ask<void>((reply) => ({ kind: 'shutdown', reply }), 10_000);
  await sys.shutdown();
  db.close();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      inserts: { type: 'string', default: '5000' },
      kills: { type: 'string', default: '20' },
      child: { type: 'string' },
      acceptance: { type: 'boolean', default: false },
      calls: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '16' },
    },
  });
  if (values.child) return child(values.dir!, values.child as Level);
  if (values.acceptance) {
    const parent = path.join(os.homedir(), '.local', 'state');
    fs.mkdirSync(parent, { recursive: true });
    const base = values.dir ?? fs.mkdtempSync(path.join(parent, 'faascell-durability-'));
    await acceptance(base, Number(values.calls), Number(values.rounds), Number(values.concurrency));
    if (!values.dir) fs.rmSync(base, { recursive: true, force: true });
    return;
  }
  const parent = path.join(os.homedir(), '.local', 'state');
  fs.mkdirSync(parent, { recursive: true });
  const base = values.dir ?? fs.mkdtempSync(path.join(parent, 'faascell-durability-'));
  fs.mkdirSync(base, { recursive: true });
  const n = Number(values.inserts);
  console.log(`# SQLite durability, ${os.cpus().length} CPUs ${os.cpus()[0]?.model ?? ''}, kernel ${os.release()}, dir ${base}`);
  console.log('| synchronous | insert median | p99 | inserts/s | kills | ids printed (committed) | lost |');
  console.log('|---|---|---|---|---|---|---|');
  for (const level of LEVELS) {
    const dir = path.join(base, level.toLowerCase());
    fs.rmSync(dir, { recursive: true, force: true });
    const db = openDb(dir, 'cost.db', { synchronous: level });
    const st = db.prepare(INSERT);
    const times: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      st.run(`c-${i}`, 'hello', 'warm', 'success', Date.now(), 12.5, record(`c-${i}`));
      times.push((performance.now() - a) * 1000);
    }
    const total = performance.now() - t0;
    db.close();
    let printed = 0;
    let lost = 0;
    for (let k = 0; k < Number(values.kills); k++) {
      const r = await killOnce(dir, level);
      printed += r.printed;
      lost += r.lost;
    }
    console.log(`| ${level} | ${pct(times, 50).toFixed(0)} µs | ${pct(times, 99).toFixed(0)} µs | ${Math.round((n / total) * 1000)} | ${values.kills} | ${printed} | ${lost} |`);
  }
  if (!values.dir) fs.rmSync(base, { recursive: true, force: true });
}

await main();
