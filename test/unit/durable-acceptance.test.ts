// Durable acceptance (issue 12): an invocation's record is committed in state
// `accepted` before its work starts (group commit), its final record replaces
// it, readers never see the acceptance, and the next daemon start finishes every
// acceptance a killed daemon left as `interrupted` (daemon_restarted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Actor, ActorSystem, type ActorRef } from '../../src/core/actor.js';
import { realClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Dispatcher, type DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import type { ActivationPage } from '../../src/perf/activation-store.js';
import { PerfManager, type AcceptResult, type PerfMsg } from '../../src/perf/perf-manager.js';
import { finishInterrupted, interruptedRecord } from '../../src/perf/recovery.js';
import { openDb, openMemoryDb, type Db } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import type { InvocationResult, Sink } from '../../src/sinks/types.js';
import { openWhiskStatus } from '../../src/sources/openwhisk/status.js';
import { toOpenWhiskActivation } from '../../src/sources/openwhisk/records.js';
import type { PoolMsg } from '../../src/vmpool/pool.js';

const rec = (id: string, over: Partial<ActivationRecord> = {}): ActivationRecord => ({
  id,
  function: 'f',
  functionVersion: 1,
  runtime: 'qemu',
  status: 'accepted',
  timestamps: { received: 1_700_000_000_000 },
  timings: {},
  totalMs: 0,
  logs: [],
  ...over,
});

/** Counts the transactions PerfManager opens on `db`. */
function countTransactions(db: Db): { n: number } {
  const c = { n: 0 };
  const orig = db.transaction.bind(db);
  db.transaction = ((fn: Parameters<Db['transaction']>[0]) => {
    c.n++;
    return orig(fn);
  }) as Db['transaction'];
  return c;
}

const statusRow = (db: Db, id: string): string | undefined => (db.prepare('SELECT status FROM activations WHERE id = ?').get(id) as { status: string } | undefined)?.status;

const accept = (perf: ActorRef<PerfMsg>, r: ActivationRecord, unique = false): Promise<AcceptResult> =>
  new Promise((resolve) => perf.tell({ kind: 'accepted', record: r, unique, written: resolve }));

test('acceptances of one event-loop turn share one transaction; each is committed before its callback', async () => {
  const db = openMemoryDb();
  const tx = countTransactions(db);
  const sys = new ActorSystem(silentLogger, () => undefined);
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 1000));
  await perf.ask<ActivationPage>((r) => ({ kind: 'list', query: { limit: 1 }, reply: r }), 1000); // started
  const before = tx.n;
  const seen: string[] = [];
  const all = Array.from({ length: 20 }, (_, i) =>
    accept(perf, rec(`a${i}`)).then((r) => {
      assert.deepEqual(r, { ok: true });
      seen.push(statusRow(db, `a${i}`) ?? 'missing'); // committed when the callback runs
    }),
  );
  await Promise.all(all);
  assert.equal(tx.n - before, 1, 'one group commit for the burst');
  assert.deepEqual(seen, Array(20).fill('accepted'));
  await sys.shutdown();
});

test('readers never see an acceptance; the final record replaces it under the same id', async () => {
  const db = openMemoryDb();
  const sys = new ActorSystem(silentLogger, () => undefined);
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 1000));
  await accept(perf, rec('x'));
  assert.equal(await perf.ask<ActivationRecord | undefined>((r) => ({ kind: 'get', id: 'x', reply: r }), 1000), undefined);
  assert.deepEqual((await perf.ask<ActivationPage>((r) => ({ kind: 'list', query: { limit: 10 }, reply: r }), 1000)).records, []);
  assert.deepEqual((await perf.ask<ActivationPage>((r) => ({ kind: 'list', query: { limit: 10, fn: 'f' }, reply: r }), 1000)).records, []);
  await new Promise<void>((resolve) => perf.tell({ kind: 'activation', record: rec('x', { status: 'success', totalMs: 5 }), written: resolve }));
  const got = await perf.ask<ActivationRecord | undefined>((r) => ({ kind: 'get', id: 'x', reply: r }), 1000);
  assert.equal(got?.status, 'success');
  assert.equal((db.prepare('SELECT count(*) AS n FROM activations').get() as { n: number }).n, 1);
  await sys.shutdown();
});

test('an id chosen by the client is refused when a record has it; that record is left as it is', async () => {
  const db = openMemoryDb();
  const sys = new ActorSystem(silentLogger, () => undefined);
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 1000));
  await new Promise<void>((resolve) => perf.tell({ kind: 'activation', record: rec('mine', { status: 'success', totalMs: 7 }), written: resolve }));
  assert.deepEqual(await accept(perf, rec('mine'), true), { ok: false, reason: 'duplicate_id' });
  assert.equal(statusRow(db, 'mine'), 'success');
  // two in one turn: the first wins
  const [a, b] = await Promise.all([accept(perf, rec('twice'), true), accept(perf, rec('twice'), true)]);
  assert.deepEqual([a, b], [{ ok: true }, { ok: false, reason: 'duplicate_id' }]);
  // a Source's own id (a broker redelivery) replaces
  assert.deepEqual(await accept(perf, rec('mine'), false), { ok: true });
  await sys.shutdown();
});

test('interruptedRecord: a typed error with the acceptance stamps kept', () => {
  const r = interruptedRecord(rec('i', { timestamps: { received: 1000 }, traceId: 't' }), 5000);
  assert.equal(r.status, 'interrupted');
  assert.equal(r.error?.code, 'daemon_restarted');
  assert.match(r.error.message, /in flight/);
  assert.deepEqual(r.interrupted, { reason: 'daemon_restarted', detectedAt: 5000 });
  assert.deepEqual(r.timestamps, { received: 1000 });
  assert.equal(r.traceId, 't');
  assert.deepEqual(openWhiskStatus(r), { status: 'whisk internal error', statusCode: 3 });
  // OpenWhisk's activation API: a whisk internal error whose result names what happened
  const ow = toOpenWhiskActivation(r, { namespace: '_', subject: 's', kind: 'nodejs:20' });
  assert.deepEqual(ow.response.status, 'whisk internal error');
  assert.equal(ow.response.success, false);
  assert.match((ow.response.result as { error: string }).error, /daemon ended .* in flight/);
  assert.ok(ow.annotations.some((a) => a.key === 'faascellStatus' && a.value === 'interrupted'));
});

test('at start, what a killed daemon left accepted is finished as interrupted; finished records are untouched', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-acc-'));
  try {
    // the "killed" incarnation: two acceptances, one of them finished
    const db1 = openDb(dir);
    const sys1 = new ActorSystem(silentLogger, () => undefined);
    const perf1 = sys1.spawn<PerfMsg>('perf', new PerfManager(db1, 1000));
    await Promise.all([accept(perf1, rec('done')), accept(perf1, rec('cut1')), accept(perf1, rec('cut2', { function: 'g' }))]);
    await new Promise<void>((resolve) => perf1.tell({ kind: 'activation', record: rec('done', { status: 'success', totalMs: 3 }), written: resolve }));
    db1.close(); // nothing flushed at stop: as a kill -9 leaves it (every acceptance was committed already)

    const db2 = openDb(dir);
    const sys2 = new ActorSystem(silentLogger, () => undefined);
    const pm = new PerfManager(db2, 1000, () => 42_000);
    const perf2 = sys2.spawn<PerfMsg>('perf', pm);
    const cut1 = await perf2.ask<ActivationRecord | undefined>((r) => ({ kind: 'get', id: 'cut1', reply: r }), 1000);
    assert.deepEqual(pm.interruptedAtStart.sort(), ['cut1', 'cut2']);
    assert.equal(cut1?.status, 'interrupted');
    assert.equal(cut1?.error?.code, 'daemon_restarted');
    assert.equal(cut1?.interrupted?.detectedAt, 42_000);
    assert.equal((await perf2.ask<ActivationRecord | undefined>((r) => ({ kind: 'get', id: 'done', reply: r }), 1000))?.status, 'success');
    const listed = (await perf2.ask<ActivationPage>((r) => ({ kind: 'list', query: { limit: 10, fn: 'g' }, reply: r }), 1000)).records;
    assert.deepEqual(listed.map((r) => [r.id, r.status]), [['cut2', 'interrupted']]);
    assert.equal((db2.prepare("SELECT count(*) AS n FROM activations WHERE status = 'accepted'").get() as { n: number }).n, 0);
    assert.deepEqual(finishInterrupted(db2, 43_000), [], 'nothing left to finish');
    await sys2.shutdown();
    db2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A VmPool stand-in: answers every invocation, after noting what the store held for it at that moment. */
class FakePool extends Actor<PoolMsg> {
  readonly atInvoke: Array<string | undefined> = [];
  constructor(private readonly db: Db) {
    super();
  }
  protected receive(msg: PoolMsg): void {
    if (msg.kind !== 'invoke') return;
    this.atInvoke.push(statusRow(this.db, msg.rec.id));
    msg.reply.resolve({ ok: true, result: { ok: 1 }, logs: [] });
  }
}

function collector(): { sink: Sink; events: string[]; result: Promise<InvocationResult> } {
  const events: string[] = [];
  let done!: (r: InvocationResult) => void;
  const result = new Promise<InvocationResult>((r) => (done = r));
  const sink: Sink = {
    name: 'test',
    accepted: (id) => events.push('accepted ' + id),
    deliver: (r) => {
      events.push('deliver ' + r.activation.status);
      done(r);
    },
  };
  return { sink, events, result };
}

test('Dispatcher: the acceptance is committed before VmPool gets the request; a duplicate client id is refused with 409', async () => {
  const db = openMemoryDb();
  const registry = new Registry(db, { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60_000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  registry.put('f', { code: Buffer.from('function main() { return {} }') });
  const sys = new ActorSystem(silentLogger, () => undefined);
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 1000));
  const fake = new FakePool(db);
  const pool = sys.spawn<PoolMsg>('vmpool', fake);
  const dispatcher = sys.spawn<DispatcherMsg>('dispatcher', new Dispatcher({ registry, pool, perf, runtime: 'qemu', clock: realClock, acquireTimeoutMs: 10_000 }));

  const a = collector();
  dispatcher.tell({ kind: 'invoke', req: { fn: 'f', params: {}, receivedAt: Date.now(), sink: a.sink, activationId: 'client-1', idFromClient: true } });
  const ra = await a.result;
  assert.equal(ra.activation.status, 'success');
  assert.deepEqual(a.events, ['accepted client-1', 'deliver success']);
  assert.deepEqual(fake.atInvoke, ['accepted']);
  assert.equal(statusRow(db, 'client-1'), 'success');

  const b = collector();
  dispatcher.tell({ kind: 'invoke', req: { fn: 'f', params: {}, receivedAt: Date.now(), sink: b.sink, activationId: 'client-1', idFromClient: true } });
  const rb = await b.result;
  assert.equal(rb.error?.code, 'conflict');
  assert.equal(rb.error?.status, 409);
  assert.equal(rb.error?.field, 'x-activation-id');
  assert.deepEqual(b.events, ['deliver rejected']);
  assert.equal(fake.atInvoke.length, 1, 'the duplicate never reached VmPool');
  assert.equal(statusRow(db, 'client-1'), 'success', 'the first activation kept its record');

  // an unknown function: refused before any acceptance
  const c = collector();
  dispatcher.tell({ kind: 'invoke', req: { fn: 'nope', params: {}, receivedAt: Date.now(), sink: c.sink } });
  assert.equal((await c.result).error?.code, 'not_found');
  assert.deepEqual(c.events, ['deliver rejected']);
  await sys.shutdown();
});
