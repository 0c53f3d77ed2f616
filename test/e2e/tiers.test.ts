// A state directory deleted while its snapshots still sit on a tmpfs tier: the
// next daemon to start (any state directory) frees that tier, because the owner
// marker beside it names a state directory that no longer exists.
// A snapshot tier whose file system is full (issue 12): the snapshot goes to the
// next tier, and the next start restores from there.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { ownerMarkerPath, readOwner } from '../../src/snapshots/tier-owner.js';
import os from 'node:os';
import { runShmPath } from '../support/test-run.js';

void test('a tmpfs tier whose state directory was deleted is reclaimed at the next start', { timeout: 10 * 60_000 }, async () => {
  const tier = runShmPath(`reclaim-${process.pid}`);
  let a: TestDaemon | undefined;
  let b: TestDaemon | undefined;
  try {
    a = await startDaemon({ policies: { placement: { policy: 'fixed', tier: 'shm' } }, snapshots: { tiers: [{ name: 'shm', path: tier, latencyRank: 0, capacityMiB: 4096 }] } });
    await a.deploy('hello', 'hello.js');
    const r = await a.client.invoke('hello', { name: 'snap' });
    assert.equal(r.status, 200);
    const deadline = Date.now() + 60_000;
    while (fs.readdirSync(tier).length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.equal(fs.readdirSync(tier).length, 1, 'one snapshot on the tier');
    assert.equal(readOwner(ownerMarkerPath(tier))?.stateDir, a.stateDir);
    await a.stop();
    cleanup(a); // deletes the state directory, not the tier: the situation of a user who removed it
    assert.ok(fs.existsSync(tier), 'the tier outlives its state directory');
    a = undefined;

    b = await startDaemon({ snapshots: { enabled: false } });
    assert.ok(!fs.existsSync(tier), `${tier} was not reclaimed`);
    assert.ok(!fs.existsSync(ownerMarkerPath(tier)));
    assert.match(b.logs(), /snapshot tiers without a living owner/);
  } finally {
    if (a) cleanup(a);
    await stopAndCheck(b);
    fs.rmSync(tier, { recursive: true, force: true });
    fs.rmSync(ownerMarkerPath(tier), { force: true });
  }
});

void test('the fastest tier is full on its device: the snapshot lands on the next tier and is restored from it', { timeout: 10 * 60_000 }, async (t) => {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-e2e-tierfallback-'));
  // a 48 MiB tmpfs the daemon is told holds 4 GiB: only the free-space check can see that a 256 MiB guest's snapshot does not fit
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0700', 'fc-e2e-tierfallback', mnt]);
  let d: TestDaemon | undefined;
  try {
    d = await startDaemon({
      policies: { placement: { policy: 'fixed' } },
      snapshots: {
        tiers: [
          { name: 'tiny', path: path.join(mnt, 'tier'), latencyRank: 0, capacityMiB: 4096 },
          { name: 'next', path: path.join(mnt + '-next'), latencyRank: 1, capacityMiB: 4096 },
        ],
      },
    });
    await d.deploy('hello', 'hello.js');
    const first = await d.client.invoke('hello', { name: 'cold' });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.activation!.startPath, 'cold');
    assert.match(d.logs(), /snapshot tier full: the snapshot goes to another tier/);
    const deadline = Date.now() + 30_000;
    type Snap = { id: string; function: string; tier: string; status: string };
    let snaps: Snap[] = [];
    while (Date.now() < deadline) {
      snaps = (await d.client.call<{ snapshots: Snap[] }>('GET', '/v1/status')).snapshots.filter((x) => x.function === 'hello');
      if (snaps.some((x) => x.status === 'ready')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(snaps.map((x) => [x.tier, x.status]), [['next', 'ready']], 'the snapshot is on the second tier');
    assert.deepEqual(fs.readdirSync(path.join(mnt, 'tier')), [], 'nothing written on the full tier');
    await d.client.call('POST', '/v1/functions/hello/evict');
    const second = await d.client.invoke('hello', { name: 'restored' });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.activation!.startPath, 'restore');
    assert.equal(second.body.activation!.snapshot?.tier, 'next');
    t.diagnostic(`tiny tier: ${execFileSync('df', ['-h', mnt], { encoding: 'utf8' }).trim().split('\n')[1]}; restored from ${second.body.activation!.snapshot?.id} on next`);
  } finally {
    await stopAndCheck(d);
    execFileSync('umount', ['-l', mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
    fs.rmSync(mnt + '-next', { recursive: true, force: true });
  }
});
