// Issue 19, "guest-driven use of the host: logs". A function can make every activation carry up to
// functionLimits.maxLogBytes of logs; the node must not hand them all out in one list, nor keep them
// without bound. Through the real router, the real PerfManager and a real SQLite database.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApi } from '../../src/api/server.js';
import { ActorSystem, type ActorRef, type Reply } from '../../src/core/actor.js';
import { silentLogger } from '../../src/core/logger.js';
import type { DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import { finishTimings, type ActivationRecord } from '../../src/perf/activation.js';
import { DROPPED_LOGS_NOTE, LIST_LOG_BUDGET_BYTES, type StoreLimits } from '../../src/perf/activation-store.js';
import { PerfManager, type PerfMsg } from '../../src/perf/perf-manager.js';
import { openDb, stmt, type Db } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import type { PoolMsg } from '../../src/vmpool/pool.js';

const MiB = 1024 * 1024;
const limits = { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 };

function stub<M>(name: string): ActorRef<M> {
  return {
    name,
    stopped: false,
    tell: () => undefined,
    ask<T>(build: (r: Reply<T>) => M): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const m = build({ resolve, reject }) as { reply?: Reply<T> };
        m.reply?.resolve(undefined as T);
      });
    },
  };
}

/** A record whose logs are `mib` MiB in 64 KiB lines (what a guest logging its maximum leaves). */
function record(id: string, fn: string, at: number, mib: number): ActivationRecord {
  const line = `${id} `.padEnd(64 * 1024, 'x');
  const rec: ActivationRecord = { id, function: fn, functionVersion: 1, runtime: 'qemu', startPath: 'warm', status: 'success', timestamps: { received: at, runStarted: at + 1, runFinished: at + 2 }, timings: {}, totalMs: 0, logs: Array.from({ length: mib * 16 }, () => line) };
  finishTimings(rec);
  return rec;
}

async function node(storeLimits: StoreLimits): Promise<{ app: Awaited<ReturnType<typeof buildApi>>; perf: ActorRef<PerfMsg>; pm: PerfManager; db: Db; close: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faascell-logs-'));
  const db = openDb(dir);
  const sys = new ActorSystem(silentLogger, (f) => assert.fail(`actor ${f.actor} failed`));
  const pm = new PerfManager(db, storeLimits);
  const perf = sys.spawn<PerfMsg>('perf', pm);
  const app = await buildApi({ registry: new Registry(db, limits), dispatcher: stub<DispatcherMsg>('dispatcher'), pool: stub<PoolMsg>('pool'), perf, bodyLimitBytes: MiB, maxCodeBytes: MiB, info: () => ({}) });
  return {
    app,
    perf,
    pm,
    db,
    close: async () => {
      await app.close();
      await sys.shutdown();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Store records the way the Dispatcher does, and wait until they are committed. */
async function store(perf: ActorRef<PerfMsg>, recs: ActivationRecord[]): Promise<void> {
  await Promise.all(recs.map((record) => new Promise<void>((written) => perf.tell({ kind: 'activation', record, written }))));
}

type Listed = { activations: Array<Partial<ActivationRecord> & { id: string }>; next?: string };

void test('a list carries no logs unless asked; with logs=true a page stops at its log budget and `next` continues', async () => {
  const n = await node({ retain: 1000 });
  try {
    // eleven records with 2 MiB of logs each (the issue's attack used 10 MiB each: 115 MB in one answer)
    const t0 = 1_700_000_000_000;
    await store(n.perf, Array.from({ length: 11 }, (_, i) => record(`a${String(i).padStart(2, '0')}`, 'chatty', t0 + i, 2)));
    const plain = await n.app.inject({ method: 'GET', url: '/v1/activations?limit=1000' });
    assert.equal(plain.statusCode, 200);
    assert.ok(plain.body.length < 64 * 1024, `a list without logs is ${plain.body.length} bytes`);
    const body = plain.json<Listed>();
    assert.equal(body.activations.length, 11);
    assert.ok(body.activations.every((a) => a.logs === undefined));
    assert.equal(body.next, undefined);
    // the single record has them all
    const one = await n.app.inject({ method: 'GET', url: '/v1/activations/a03' });
    assert.equal(one.json<ActivationRecord>().logs.length, 32);

    // with logs: pages of at most the budget (one record always fits), followed to the end, each record once
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await n.app.inject({ method: 'GET', url: `/v1/activations?limit=1000&logs=true${cursor ? `&cursor=${cursor}` : ''}` });
      assert.equal(r.statusCode, 200);
      assert.ok(r.body.length <= LIST_LOG_BUDGET_BYTES + 64 * 1024, `a page with logs is ${r.body.length} bytes`);
      const p = r.json<Listed>();
      for (const a of p.activations) {
        assert.equal(a.logs?.length, 32, `${a.id} has its logs`);
        seen.push(a.id);
      }
      cursor = p.next;
      pages++;
    } while (cursor && pages < 20);
    assert.deepEqual(seen, Array.from({ length: 11 }, (_, i) => `a${String(10 - i).padStart(2, '0')}`));
    assert.ok(pages >= 3, `${pages} pages`);

    // paging without logs: limit and cursor, newest first, and the time filters
    const first = (await n.app.inject({ method: 'GET', url: '/v1/activations?limit=4' })).json<Listed>();
    assert.deepEqual(first.activations.map((a) => a.id), ['a10', 'a09', 'a08', 'a07']);
    const second = (await n.app.inject({ method: 'GET', url: `/v1/activations?limit=4&cursor=${first.next}` })).json<Listed>();
    assert.deepEqual(second.activations.map((a) => a.id), ['a06', 'a05', 'a04', 'a03']);
    const window = (await n.app.inject({ method: 'GET', url: `/v1/activations?since=${t0 + 2}&upto=${t0 + 4}` })).json<Listed>();
    assert.deepEqual(window.activations.map((a) => a.id), ['a04', 'a03', 'a02']);

    // bounds: the page size is capped, a forged cursor is refused; both name the field
    const big = await n.app.inject({ method: 'GET', url: '/v1/activations?limit=10000' });
    assert.equal(big.statusCode, 400);
    assert.equal(big.json<{ error: { field: string } }>().error.field, 'limit');
    const forged = await n.app.inject({ method: 'GET', url: '/v1/activations?cursor=not-a-cursor' });
    assert.equal(forged.statusCode, 400);
    assert.equal(forged.json<{ error: { field: string } }>().error.field, 'cursor');
  } finally {
    await n.close();
  }
});

void test('stored logs are capped per function and in total: the oldest are dropped, their records stay with a note', async () => {
  const n = await node({ retain: 1000, maxLogBytesPerFunction: 5 * MiB, maxLogBytesTotal: 8 * MiB });
  try {
    const t0 = 1_700_000_000_000;
    // one function over its own cap
    await store(n.perf, Array.from({ length: 6 }, (_, i) => record(`f${i}`, 'f', t0 + i, 1)));
    let bytes = n.pm.records.logBytes();
    assert.ok(bytes.perFunction.f! <= 5 * MiB, `f keeps ${bytes.perFunction.f} bytes`);
    const f0 = (await n.app.inject({ method: 'GET', url: '/v1/activations/f0' })).json<ActivationRecord>();
    assert.deepEqual(f0.logs, [DROPPED_LOGS_NOTE], 'the oldest record lost its logs, not its record');
    assert.equal((await n.app.inject({ method: 'GET', url: '/v1/activations/f5' })).json<ActivationRecord>().logs.length, 16, 'the newest keeps them');
    // two more functions: the total cap drops the node's oldest, whoever they belong to
    await store(n.perf, Array.from({ length: 4 }, (_, i) => record(`g${i}`, 'g', t0 + 100 + i, 1)));
    await store(n.perf, Array.from({ length: 4 }, (_, i) => record(`h${i}`, 'h', t0 + 200 + i, 1)));
    bytes = n.pm.records.logBytes();
    assert.ok(bytes.total <= 8 * MiB, `${bytes.total} bytes kept in all`);
    // the counters agree with the database
    const inDb = (stmt(n.db, 'SELECT sum(log_bytes) AS n FROM activations').get() as { n: number }).n;
    assert.equal(bytes.total, inDb);
    assert.equal((await n.app.inject({ method: 'GET', url: '/v1/activations/h3' })).json<ActivationRecord>().logs.length, 16);
    // every record is still there (retain decides that, not the log caps)
    assert.equal((await n.app.inject({ method: 'GET', url: '/v1/activations?limit=100' })).json<Listed>().activations.length, 14);
  } finally {
    await n.close();
  }
});

void test('a record written before the logs moved out of it (logs inside its JSON) reads as before', async () => {
  const n = await node({ retain: 1000 });
  try {
    const rec = record('old', 'f', 1_700_000_000_000, 1);
    stmt(n.db, 'INSERT INTO activations (id, function, start_path, status, received_at, total_ms, record) VALUES (?, ?, ?, ?, ?, ?, ?)').run(rec.id, rec.function, rec.startPath, rec.status, rec.timestamps.received, rec.totalMs, JSON.stringify(rec));
    assert.equal((await n.app.inject({ method: 'GET', url: '/v1/activations/old' })).json<ActivationRecord>().logs.length, 16);
    const listed = (await n.app.inject({ method: 'GET', url: '/v1/activations' })).json<Listed>();
    assert.equal(listed.activations[0]!.logs, undefined);
  } finally {
    await n.close();
  }
});
