// Owner markers of snapshot tier directories and the reclaiming of tiers whose
// state directory is gone (item 5 of issue 12). Temporary directories stand in
// for /dev/shm.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { claimTiers, isOwnableTierPath, ownerMarkerPath, readOwner, reclaimTiers, STATE_DB_FILE } from '../../src/snapshots/tier-owner.js';

function setup() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tier-owner-'));
  const shm = path.join(root, 'shm');
  fs.mkdirSync(shm);
  const state = (name: string, living = true) => {
    const d = path.join(root, name);
    fs.mkdirSync(d, { recursive: true });
    if (living) fs.writeFileSync(path.join(d, STATE_DB_FILE), '');
    return d;
  };
  const tier = (name: string, mib = 1) => {
    const d = path.join(shm, name);
    fs.mkdirSync(path.join(d, 'snap1'), { recursive: true });
    fs.writeFileSync(path.join(d, 'snap1', 'mem'), Buffer.alloc(mib * 1024 * 1024, 1));
    return d;
  };
  return { root, shm, state, tier, done: () => fs.rmSync(root, { recursive: true, force: true }) };
}

void test('a daemon claims its tiers with a marker beside each directory', () => {
  const s = setup();
  try {
    const a = s.state('a');
    const t = path.join(s.shm, 'faascell-aaa');
    const r = claimTiers(a, [{ name: 'shm', path: t }], 1000);
    assert.deepEqual(r, { claimed: [t], refused: [] });
    assert.deepEqual(readOwner(ownerMarkerPath(t)), { version: 1, stateDir: a, tier: 'shm', path: t, claimedAt: 1000 });
    // claiming again keeps the marker
    claimTiers(a, [{ name: 'shm', path: t }], 2000);
    assert.equal(readOwner(ownerMarkerPath(t))!.claimedAt, 1000);
    // a mount point or a top-level directory is never claimed
    assert.equal(isOwnableTierPath('/dev/shm'), !fs.existsSync('/dev/shm') || fs.statSync('/dev/shm').dev === fs.statSync('/dev').dev);
    assert.deepEqual(claimTiers(a, [{ name: 'x', path: '/tmp' }]).refused, ['/tmp']);
  } finally {
    s.done();
  }
});

void test('tiers whose state directory is gone are removed; living, unmarked and unreadable ones stay', () => {
  const s = setup();
  try {
    const living = s.state('living');
    const gone = s.state('gone', false); // the directory exists, its database does not: deleted state
    const me = s.state('me');
    const tLiving = s.tier('faascell-living');
    const tGone = s.tier('faascell-gone', 2);
    const tGone2 = s.tier('fc-e2e-gone');
    const tUnmarked = s.tier('faascell-legacy');
    const tBadMarker = s.tier('faascell-bad');
    claimTiers(living, [{ name: 'shm', path: tLiving }]);
    claimTiers(gone, [{ name: 'shm', path: tGone }]);
    claimTiers(path.join(s.root, 'never-existed'), [{ name: 'shm', path: tGone2 }]);
    fs.writeFileSync(ownerMarkerPath(tBadMarker), '{not json');
    const mine = path.join(s.shm, 'faascell-me');
    const r = reclaimTiers({ stateDir: me, tiers: [{ name: 'shm', path: mine }], extraParents: [s.shm] });
    assert.deepEqual(r.reclaimed.map((x) => x.path).sort(), [tGone, tGone2].sort());
    assert.ok(r.reclaimed.find((x) => x.path === tGone)!.bytes >= 2 * 1024 * 1024);
    assert.equal(r.reclaimed.find((x) => x.path === tGone)!.why, 'owner-gone');
    for (const d of [tGone, tGone2]) {
      assert.ok(!fs.existsSync(d), `${d} still there`);
      assert.ok(!fs.existsSync(ownerMarkerPath(d)));
    }
    for (const d of [tLiving, tUnmarked, tBadMarker]) assert.ok(fs.existsSync(d), `${d} removed`);
    assert.deepEqual(r.unowned.sort(), [tUnmarked].sort()); // the bad marker's directory has a marker file: not "unowned", just not judged
    assert.deepEqual(r.claimed, [mine]);
  } finally {
    s.done();
  }
});

void test('a tier this state directory no longer configures is reclaimed; a marker naming another path is ignored', () => {
  const s = setup();
  try {
    const me = s.state('me');
    const old = s.tier('faascell-old');
    claimTiers(me, [{ name: 'old', path: old }]);
    const moved = s.tier('faascell-moved');
    // a marker whose recorded path is not the directory beside it: copied or forged, not trusted
    fs.writeFileSync(ownerMarkerPath(moved), JSON.stringify({ version: 1, stateDir: path.join(s.root, 'nobody'), tier: 'x', path: '/elsewhere', claimedAt: 0 }));
    const r = reclaimTiers({ stateDir: me, tiers: [{ name: 'shm', path: path.join(s.shm, 'faascell-new') }], extraParents: [s.shm] });
    assert.deepEqual(r.reclaimed.map((x) => [x.path, x.why]), [[old, 'tier-dropped']]);
    assert.ok(fs.existsSync(moved));
  } finally {
    s.done();
  }
});
