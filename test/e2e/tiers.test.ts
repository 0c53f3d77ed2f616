// A state directory deleted while its snapshots still sit on a tmpfs tier: the
// next daemon to start (any state directory) frees that tier, because the owner
// marker beside it names a state directory that no longer exists.
import fs from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { ownerMarkerPath, readOwner } from '../../src/snapshots/tier-owner.js';

void test('a tmpfs tier whose state directory was deleted is reclaimed at the next start', { timeout: 10 * 60_000 }, async () => {
  const tier = `/dev/shm/fc-e2e-reclaim-${process.pid}`;
  let a: TestDaemon | undefined;
  let b: TestDaemon | undefined;
  try {
    a = await startDaemon({ policies: { placement: { policy: 'fixed', tier: 'shm' } }, snapshots: { tiers: [{ name: 'shm', path: tier, latencyRank: 0, capacityMiB: 4096 }] } });
    await a.deploy('hello', 'hello.js');
    const r = await a.client.invoke('hello', { name: 'snap' });
    assert.equal(r.status, 200);
    const deadline = Date.now() + 10_000;
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
