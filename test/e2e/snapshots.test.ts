// Snapshots as execution units, end to end: restore path, isolation between
// clones, concurrency, invalidation, tier eviction, corrupt files, cleanup.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cleanup, leftovers, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { removeTierDir } from '../../src/snapshots/tier-gc.js';
import { until as untilBounded } from '../support/observability.js';
import { assertGuestClockWithin } from '../support/guest-clock.js';
import { runShmPath } from '../support/test-run.js';

interface Snap { id: string; function: string; tier: string; dir: string; status: string; restoreCount: number }

async function snapshots(d: TestDaemon): Promise<Snap[]> {
  return (await d.client.call<{ snapshots: Snap[] }>('GET', '/v1/status')).snapshots;
}
/** The guest's Date.now() read in a run lies within that run as the host stamped it (test/support/guest-clock.ts). */
function assertClockInRun(now: number, ts: { runStarted?: number; runFinished?: number }, what: string): void {
  assertGuestClockWithin(now, ts.runStarted!, ts.runFinished!, what);
}

async function until<T>(what: string, f: () => Promise<T | undefined>): Promise<T> {
  return untilBounded(what, f, 60_000, 100);
}

async function evict(d: TestDaemon, fn: string): Promise<void> {
  await d.client.call('POST', `/v1/functions/${fn}/evict`);
  // wait until the function has no instance left
  for (let i = 0; i < 600; i++) {
    const st = await d.client.call<{ pool: { instances: Array<{ fn: string }> } }>('GET', '/v1/status');
    if (!st.pool.instances.some((x) => x.fn === fn)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`instances of ${fn} did not stop`);
}

describe('snapshots', { timeout: 20 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    // the new cold path (issue 9): the VM that takes the snapshot serves on (selectable until proven)
    d = await startDaemon({ policies: { placement: { policy: 'fixed', tier: 'shm' } }, snapshots: { coldSnapshot: 'copy' } });
  });
  after(() => stopAndCheck(d));

  test('restore gives the same result as cold and warm, for several functions', async () => {
    for (const [name, fixture, params] of [
      ['hello', 'hello.js', { name: 'snap' }],
      ['json', 'json-heavy.js', { q: 'é' }],
    ] as const) {
      await d.deploy(name, fixture);
      const cold = await d.client.invoke(name, params);
      assert.equal(cold.status, 200, JSON.stringify(cold.body));
      assert.equal(cold.body.activation!.startPath, 'cold');
      const warm = await d.client.invoke(name, params);
      assert.equal(warm.body.activation!.startPath, 'warm');
      await evict(d, name);
      const restored = await d.client.invoke(name, params);
      assert.equal(restored.status, 200);
      assert.equal(restored.body.activation!.startPath, 'restore');
      assert.deepEqual(restored.body.result, cold.body.result);
      assert.deepEqual(warm.body.result, cold.body.result);
      assert.ok(restored.body.activation!.timings.snapshotLoaded !== undefined);
      // the restore skipped the boot, the agent's start and the function's init (no timing ratio: the host may be loaded)
      for (const s of ['vmBooted', 'agentReady', 'initDone']) assert.equal(restored.body.activation!.timings[s], undefined, `restore has no stage ${s}`);
      await evict(d, name);
    }
  });

  test('every restored clone starts from the snapshot state, with its own clock and randomness', async () => {
    await d.deploy('stateful', 'stateful.js', { maxInstances: 8 });
    const first = await d.client.invoke('stateful', {});
    assert.equal((first.body.result as { count: number }).count, 1);
    // snapshots.coldSnapshot copy: the VM that took the snapshot serves on, with no restore of it;
    // its writes (count, heap, random state) after the snapshot must never reach the snapshot
    assert.equal(first.body.activation!.startDetails?.coldSnapshot, 'copy');
    assert.equal(first.body.activation!.timestamps.snapshotLoaded, undefined, 'no self-restore on the cold path');
    for (const n of [2, 3]) {
      const w = await d.client.invoke('stateful', {});
      assert.equal(w.body.activation!.startPath, 'warm');
      assert.equal((w.body.result as { count: number }).count, n, 'the source ran on from its own state');
    }
    await evict(d, 'stateful');
    // two clones at once: each sees count 1 (the snapshot was taken right after init, at count 0). Each
    // call holds its clone, or the first clone to answer may serve the other call too (a warm reuse)
    const [a, b] = await Promise.all([d.client.invoke('stateful', { holdMs: 1500 }), d.client.invoke('stateful', { holdMs: 1500 })]);
    const ra = a.body.result as { count: number; random: number; uuid: string; now: number };
    const rb = b.body.result as typeof ra;
    assert.equal(a.body.activation!.startPath, 'restore');
    assert.equal(b.body.activation!.startPath, 'restore');
    assert.equal(ra.count, 1);
    assert.equal(rb.count, 1);
    assert.notEqual(ra.random, rb.random, 'Math.random differs between clones');
    assert.notEqual(ra.uuid, rb.uuid, 'crypto randomness differs between clones');
    assertClockInRun(ra.now, a.body.activation!.timestamps, 'guest clock corrected after restore');
    // the same clone again: its own state moved on, the other clone's did not leak into it
    const a2 = await d.client.invoke('stateful', {});
    assert.equal((a2.body.result as { count: number }).count, 2);
    await evict(d, 'stateful');
  });

  test('eight concurrent requests scale out from the snapshot, never by cold boots', async () => {
    // Starts run a few at a time (start slots = cores), so which request gets a new clone and which one
    // a clone that already answered depends on timing; what is guaranteed: every request answered,
    // the function scales out by restores only, and each clone's state is its own.
    const cold0 = (await d.client.call<{ pool: { counters: { coldStarts: number; restoreStarts: number } } }>('GET', '/v1/status')).pool.counters;
    const rs = await Promise.all(Array.from({ length: 8 }, () => d.client.invoke('stateful', { holdMs: 4000 })));
    assert.ok(rs.every((r) => r.status === 200), JSON.stringify(rs.map((r) => r.body.error)));
    const paths = rs.map((r) => `${r.body.activation!.startPath}:${(r.body.result as { count: number }).count}`);
    // a restored clone starts from the snapshot (count 1); a reused one continues its own state
    for (const r of rs) {
      const count = (r.body.result as { count: number }).count;
      if (r.body.activation!.startPath === 'restore') assert.equal(count, 1, paths.join(' '));
      else assert.ok(count >= 2, paths.join(' '));
    }
    const after = (await d.client.call<{ pool: { counters: { coldStarts: number; restoreStarts: number } } }>('GET', '/v1/status')).pool.counters;
    assert.equal(after.coldStarts, cold0.coldStarts, `no cold boot: ${paths.join(' ')}`);
    assert.ok(after.restoreStarts - cold0.restoreStarts >= 2, `scaled out by restores: ${paths.join(' ')}`);
    await evict(d, 'stateful');
  });

  test('a code update invalidates the snapshot', async () => {
    const before = (await snapshots(d)).filter((s) => s.function === 'hello');
    assert.equal(before.length, 1);
    await d.deploy('hello', 'big.js');
    await until('the old snapshot to be dropped', async () => ((await snapshots(d)).some((s) => s.function === 'hello') ? undefined : true));
    assert.ok(!existsSync(before[0]!.dir), 'old snapshot files removed');
    const r = await d.client.invoke('hello', { text: 'v2' });
    assert.equal(r.body.activation!.startPath, 'cold');
    await evict(d, 'hello');
  });

  test('a corrupt snapshot falls back to a cold boot, never a failed invocation', async () => {
    const snap = (await snapshots(d)).find((s) => s.function === 'json')!;
    writeFileSync(path.join(snap.dir, 'state'), 'not a migration stream');
    const r = await d.client.invoke('json', { q: 'x' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.activation!.startPath, 'cold');
    assert.ok(r.body.activation!.startDetails?.restoreError, 'the record says why the restore failed');
    assert.match(d.logs(), /snapshot unusable: dropped, the next start boots cold/);
    await evict(d, 'json');
  });

  test('a missing snapshot file also falls back to cold', async () => {
    // the corrupt snapshot was dropped; the cold start that followed left a new one
    await evict(d, 'json');
    const snap = (await snapshots(d)).find((s) => s.function === 'json')!;
    assert.ok(snap, 'a new snapshot after the fallback');
    assert.equal((await d.client.invoke('json', { q: 'z' })).body.activation!.startPath, 'restore');
    await evict(d, 'json');
    for (const f of readdirSync(snap.dir)) writeFileSync(path.join(snap.dir, f), '');
    const r = await d.client.invoke('json', { q: 'y' });
    assert.equal(r.status, 200);
    assert.equal(r.body.activation!.startPath, 'cold');
    await evict(d, 'json');
  });

  test('deleting a function removes its snapshots and files', async () => {
    const snaps = (await snapshots(d)).filter((s) => s.function === 'stateful');
    assert.ok(snaps.length >= 1);
    assert.equal((await d.client.raw('DELETE', '/v1/functions/stateful')).status, 204);
    assert.equal((await snapshots(d)).filter((s) => s.function === 'stateful').length, 0);
    for (const s of snaps) assert.ok(!existsSync(s.dir));
  });
});

describe('snapshot tiers', { timeout: 10 * 60_000 }, () => {
  test('a full tier evicts its least recently used snapshot', async () => {
    // a new function's snapshot is reserved at its guest size (256 MiB) until its real size is known,
    // so a 260 MiB tier cannot take it next to any real snapshot (with the DAX root fs a hello
    // snapshot holds only ~45 MiB of touched RAM: 300 MiB would fit both)
    const tierDir = runShmPath(`small-${process.pid}`);
    const d = await startDaemon({
      policies: { placement: { policy: 'fixed', tier: 'small' } },
      snapshots: { tiers: [{ name: 'small', path: tierDir, latencyRank: 0, capacityMiB: 260 }] },
    });
    try {
      await d.deploy('one', 'hello.js');
      await d.deploy('two', 'hello.js', { env: { X: '2' } });
      const onTier = async (fns: string[]): Promise<true | undefined> => (JSON.stringify((await snapshots(d)).map((s) => s.function)) === JSON.stringify(fns) ? true : undefined);
      assert.equal((await d.client.invoke('one', {})).status, 200);
      await until("one's snapshot on the tier", () => onTier(['one']));
      assert.equal((await d.client.invoke('two', {})).status, 200);
      await until("two's snapshot in place of one's", () => onTier(['two']));
      const drops = d.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; cause?: string })
        .filter((e) => e.msg === 'snapshot dropped');
      assert.ok(drops.some((e) => e.cause === 'tier-full'), `no tier-full drop among ${JSON.stringify(drops)}`);
      await d.stop();
      assert.deepEqual(leftovers(d), []);
    } finally {
      cleanup(d);
      removeTierDir(tierDir);
    }
  });
});

describe('deferred kernel resync', { timeout: 10 * 60_000 }, () => {
  test('clones see the right time and their own randomness before the kernel part, and after it', async () => {
    // its own tmpfs tier, removed below: `snapshots` here replaces the helper's tiers, and the default
    // tier (/dev/shm/faascell-<hash>) would outlive the test's state directory. This daemon also keeps
    // the former cold path (coldSnapshot restore: the source stops, the instance continues from a
    // restore of its own snapshot) exercised end to end.
    const tierDir = runShmPath(`deferred-${process.pid}`);
    const d = await startDaemon({
      policies: { placement: { policy: 'fixed', tier: 'shm' } },
      snapshots: { kernelResync: 'deferred', coldSnapshot: 'restore', tiers: [{ name: 'shm', path: tierDir, latencyRank: 0, capacityMiB: 4096 }] },
    });
    try {
      await d.deploy('stateful', 'stateful.js', { maxInstances: 2 });
      const cold = await d.client.invoke('stateful', {});
      assert.equal(cold.body.activation!.startPath, 'cold');
      assert.equal(cold.body.activation!.startDetails?.coldSnapshot, 'restore');
      assert.ok(cold.body.activation!.timestamps.snapshotLoaded !== undefined, 'continued from a restore of its own snapshot');
      await evict(d, 'stateful');
      // let the snapshot's clock fall behind: an uncorrected clone would be >= 8 s late (past the 4 s margin)
      await new Promise((r) => setTimeout(r, 8000));
      const [a, b] = await Promise.all([d.client.invoke('stateful', { holdMs: 2000 }), d.client.invoke('stateful', { holdMs: 2000 })]);
      type R = { count: number; random: number; uuid: string; now: number };
      const [ra, rb] = [a.body.result as R, b.body.result as R];
      assert.deepEqual([a.body.activation!.startPath, b.body.activation!.startPath], ['restore', 'restore']);
      assert.deepEqual([ra.count, rb.count], [1, 1]);
      assert.notEqual(ra.random, rb.random);
      assert.notEqual(ra.uuid, rb.uuid);
      // Date in the first run: corrected in JavaScript (the snapshot's clock is minutes behind by now)
      for (const [r, res] of [[a, ra], [b, rb]] as const) {
        assertClockInRun(res.now, r.body.activation!.timestamps, "first run's clock");
      }
      // later runs: the kernel clock has been set and the JS offset dropped; time still right
      const again = await d.client.invoke('stateful', {});
      assert.equal(again.body.activation!.startPath, 'warm');
      assertClockInRun((again.body.result as R).now, again.body.activation!.timestamps, "later run's clock");
      await d.stop();
      assert.deepEqual(leftovers(d), []);
    } finally {
      cleanup(d);
      removeTierDir(tierDir);
    }
  });
});
