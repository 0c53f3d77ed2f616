// Durability of the registry and of activation records when the daemon is
// killed with SIGKILL in the middle of a load (SQLite in WAL mode, synchronous
// NORMAL: a committed transaction is in the WAL file, which a killed process
// cannot lose; only an OS crash or power loss can). Every invocation the client
// got an answer for must have its record after a restart, and the database
// must pass SQLite's integrity check, and the function's snapshot must survive too
// (the first start after the restart restores it).
//
// Requests in flight (issue 12): every invocation names its activation (header
// X-Activation-Id), so the client can look up what became of one whose answer
// the kill cut off. Each round kills the daemon while one request is certainly
// in flight (its `accepted` record is committed and it sleeps 1.5 s in the
// guest) and another client keeps sending. After the restart: every request
// sent has a record — finished, or `interrupted` (daemon_restarted) — except at
// most the very last one of the client that kept sending (the kill may have come
// before the daemon read it: nothing was accepted, nothing promised); an
// answered request is never `interrupted`; no record stays `accepted`.
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

const ROUNDS = 2;
const SLOW_MS = 1500;
/** no request, poll or wait of this test lasts longer */
const BOUND_MS = 120_000;

const CODE = Buffer.from(`
exports.main = async (p) => {
  if (p.ms) await new Promise((r) => setTimeout(r, p.ms));
  return { greeting: 'Hello, ' + (p.name || 'world') + '!' };
};
`);

interface Activation {
  id: string;
  status: string;
  startPath?: string;
  error?: { code: string; message: string };
  interrupted?: { reason: string; detectedAt: number };
}

/** One invocation with a chosen activation id; undefined when the connection died (no answer). */
async function invoke(d: TestDaemon, id: string, params: Record<string, unknown>): Promise<{ status: number; activation?: Activation } | undefined> {
  try {
    const res = await fetch(`${d.url}/v1/functions/hello/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-activation-id': id },
      body: JSON.stringify(params),
      signal: AbortSignal.timeout(BOUND_MS),
    });
    const body = (await res.json()) as { activation?: Activation };
    return { status: res.status, activation: body.activation };
  } catch {
    return undefined; // the connection died with the daemon
  }
}

const dbStatus = (db: Database.Database, id: string): string | undefined => (db.prepare('SELECT status FROM activations WHERE id = ?').get(id) as { status: string } | undefined)?.status;
const acceptedLeft = (db: Database.Database): number => (db.prepare("SELECT count(*) AS n FROM activations WHERE status = 'accepted'").get() as { n: number }).n;

void test('kill -9 under load: the registry, every answered activation, every request in flight and the snapshot survive', { timeout: 15 * 60_000 }, async (t) => {
  let d: TestDaemon | undefined = await startDaemon({});
  let answered = 0;
  let interrupted = 0;
  let unaccepted = 0;
  let finishedUnanswered = 0;
  try {
    await d.client.deploy('hello', CODE, { codeKind: 'js', maxInstances: 2, timeoutMs: 10_000 });
    for (let round = 1; round <= ROUNDS; round++) {
      // two VMs up before the load (cold boots are not what this is about)
      const up = await Promise.all([d.client.invoke('hello', { name: 'w1' }), d.client.invoke('hello', { name: 'w2' })]);
      // after a restart, the snapshot made before the kill is restored, not rebuilt by a cold boot
      if (round > 1) assert.ok(up.some((r) => r.body.activation?.startPath === 'restore') && up.every((r) => r.body.activation?.startPath !== 'cold'), `starts after the restart: ${up.map((r) => r.body.activation?.startPath).join(', ')}`);
      const snaps: { snapshots: Array<{ id: string; function: string }> } = await d.client.call('GET', '/v1/status');
      const snapIds: string[] = snaps.snapshots.filter((x) => x.function === 'hello').map((x) => x.id);
      assert.equal(snapIds.length, 1, 'one snapshot of the function before the kill');

      const sent: string[] = [];
      const answers = new Map<string, number>();
      let phase: 'load' | 'slow' | 'killed' = 'load';
      const lastSent: Record<number, string> = {};
      const daemon = d;
      const send = async (w: number, i: number, params: Record<string, unknown>): Promise<boolean> => {
        const id = `r${round}-w${w}-${i}-${process.pid}`;
        sent.push(id);
        lastSent[w] = id;
        const r = await invoke(daemon, id, params);
        if (!r) return false;
        answers.set(id, r.status);
        return true;
      };
      // client 1: fast requests, then one slow request that the kill cuts; client 2: fast requests until the kill
      let slowId: string | undefined;
      const client1 = async () => {
        for (let i = 0; i < 10_000 && phase === 'load'; i++) if (!(await send(1, i, { name: `r${round}-1-${i}` }))) return;
        if (phase !== 'slow') return;
        slowId = `r${round}-w1-slow-${process.pid}`;
        sent.push(slowId);
        lastSent[1] = slowId;
        const r = await invoke(daemon, slowId, { name: 'slow', ms: SLOW_MS });
        if (r) answers.set(slowId, r.status);
      };
      const client2 = async () => {
        for (let i = 0; i < 10_000 && phase !== 'killed'; i++) if (!(await send(2, i, { name: `r${round}-2-${i}` }))) return;
      };
      const load = Promise.all([client1(), client2()]);
      // the load runs for a while that has nothing to do with the requests' rhythm
      await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1500));
      phase = 'slow';
      // kill once the slow request is durably accepted (read from the daemon's own database, bounded)
      const ro = new Database(path.join(d.stateDir, 'faascell.db'), { readonly: true, fileMustExist: true });
      try {
        const end = Date.now() + BOUND_MS;
        while (!(slowId && dbStatus(ro, slowId) === 'accepted')) {
          assert.ok(Date.now() < end, `the slow request ${slowId ?? '(not sent)'} was not accepted within ${BOUND_MS} ms`);
          if (slowId && answers.has(slowId)) assert.fail(`the slow request was answered (${answers.get(slowId)}) before the kill`);
          await new Promise((r) => setTimeout(r, 5));
        }
      } finally {
        ro.close();
      }
      phase = 'killed';
      d.proc.kill('SIGKILL');
      await load;
      await d.stop();
      const ok = [...answers].filter(([, s]) => s === 200).map(([id]) => id);
      assert.ok(ok.length > 10, `only ${ok.length} invocations answered before the kill`);
      answered += ok.length;

      const db: Database.Database = new Database(path.join(d.stateDir, 'faascell.db'), { fileMustExist: true });
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        assert.ok(dbStatus(db, slowId) !== undefined, 'the request in flight left its record');
      } finally {
        db.close();
      }
      d = await startDaemon({}, d.dir);
      const fn = await d.client.raw('GET', '/v1/functions/hello');
      assert.equal(fn.status, 200, 'the registry lost the function');
      const after = await d.client.call<{ snapshots: Array<{ id: string }> }>('GET', '/v1/status');
      assert.deepEqual(after.snapshots.map((x) => x.id).filter((id) => snapIds.includes(id)), snapIds, 'the snapshot was lost in the kill');

      const problems: string[] = [];
      const interruptedBefore = interrupted;
      for (const id of sent) {
        const a = await d.client.raw('GET', `/v1/activations/${id}`);
        const rec = a.status === 200 ? (a.body as Activation) : undefined;
        const answer = answers.get(id);
        if (!rec) {
          // only the last request of the client that kept sending may never have reached the daemon
          if (id === lastSent[2] && answer === undefined) unaccepted++;
          else problems.push(`${id}: no record (answer ${answer ?? 'none'})`);
          continue;
        }
        if (rec.status === 'accepted') problems.push(`${id}: still accepted`);
        if (rec.status === 'interrupted') {
          if (answer !== undefined) problems.push(`${id}: answered ${answer} but recorded as interrupted`);
          else if (rec.error?.code !== 'daemon_restarted' || rec.interrupted?.reason !== 'daemon_restarted' || !(rec.interrupted.detectedAt > 0)) problems.push(`${id}: interrupted without its typed error: ${JSON.stringify(rec)}`);
          else interrupted++;
        } else if (answer === undefined) finishedUnanswered++; // it finished; the answer was lost in the kill
      }
      assert.deepEqual(problems, [], `round ${round}: ${problems.length} of ${sent.length} requests unaccounted for`);
      const check = new Database(path.join(d.stateDir, 'faascell.db'), { readonly: true, fileMustExist: true });
      try {
        assert.equal(acceptedLeft(check), 0, 'records left accepted after the restart');
      } finally {
        check.close();
      }
      if (interrupted > interruptedBefore) assert.match(d.logs(), /recorded as interrupted \(daemon_restarted\)/);
    }
    assert.ok(interrupted >= 1, 'no request was in flight at any kill: the test did not exercise the restart');
    t.diagnostic(`${ROUNDS} kills: ${answered} answered invocations, 0 records lost; in flight at the kills: ${interrupted} recorded interrupted, ${finishedUnanswered} finished (answer lost), ${unaccepted} never accepted`);
  } finally {
    await stopAndCheck(d);
  }
});
