// Durability of the registry and of activation records when the daemon is
// killed with SIGKILL in the middle of a load (SQLite in WAL mode, synchronous
// NORMAL: a committed transaction is in the WAL file, which a killed process
// cannot lose; only an OS crash or power loss can). Every invocation the client
// got an answer for must have its record after a restart, and the database
// must pass SQLite's integrity check, and the function's snapshot must survive too
// (the first start after the restart restores it).
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

const ROUNDS = 2;

void test('kill -9 under load: the registry, every answered activation and the snapshot survive', { timeout: 15 * 60_000 }, async (t) => {
  let d: TestDaemon | undefined = await startDaemon({});
  let answered = 0;
  let cut = 0;
  try {
    await d.deploy('hello', 'hello.js', { maxInstances: 2 });
    for (let round = 1; round <= ROUNDS; round++) {
      // two VMs up before the load (cold boots are not what this is about)
      const up = await Promise.all([d.client.invoke('hello', { name: 'w1' }), d.client.invoke('hello', { name: 'w2' })]);
      // after a restart, the snapshot made before the kill is restored, not rebuilt by a cold boot
      if (round > 1) assert.ok(up.some((r) => r.body.activation?.startPath === 'restore') && up.every((r) => r.body.activation?.startPath !== 'cold'), `starts after the restart: ${up.map((r) => r.body.activation?.startPath).join(', ')}`);
      const snaps: { snapshots: Array<{ id: string; function: string }> } = await d.client.call('GET', '/v1/status');
      const snapIds: string[] = snaps.snapshots.filter((x) => x.function === 'hello').map((x) => x.id);
      assert.equal(snapIds.length, 1, 'one snapshot of the function before the kill');
      const ids: string[] = [];
      let killed = false;
      const client = d.client;
      const worker = async (w: number) => {
        for (let i = 0; i < 10_000 && !killed; i++) {
          try {
            const r = await client.invoke('hello', { name: `r${round}-${w}-${i}` });
            if (r.status === 200 && r.body.activation?.id) ids.push(r.body.activation.id);
          } catch {
            cut++; // the connection died with the daemon: no answer, nothing promised
            return;
          }
        }
      };
      const load = Promise.all([worker(1), worker(2)]);
      // kill at a point that has nothing to do with the requests' rhythm
      await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1500));
      killed = true;
      d.proc.kill('SIGKILL');
      await load;
      await d.stop();
      assert.ok(ids.length > 10, `only ${ids.length} invocations answered before the kill`);
      answered += ids.length;

      const db: Database.Database = new Database(path.join(d.stateDir, 'faascell.db'), { fileMustExist: true });
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      } finally {
        db.close();
      }
      d = await startDaemon({}, d.dir);
      const fn = await d.client.raw('GET', '/v1/functions/hello');
      assert.equal(fn.status, 200, 'the registry lost the function');
      const after = await d.client.call<{ snapshots: Array<{ id: string }> }>('GET', '/v1/status');
      assert.deepEqual(after.snapshots.map((x) => x.id).filter((id) => snapIds.includes(id)), snapIds, 'the snapshot was lost in the kill');
      const missing: string[] = [];
      for (const id of ids) {
        const a = await d.client.raw('GET', `/v1/activations/${id}`);
        if (a.status !== 200) missing.push(id);
      }
      assert.deepEqual(missing, [], `${missing.length} of ${ids.length} answered activations lost in round ${round}`);
    }
    t.diagnostic(`${ROUNDS} kills: ${answered} answered invocations, 0 records lost; ${cut} requests cut by the kill`);
  } finally {
    await stopAndCheck(d);
  }
});
