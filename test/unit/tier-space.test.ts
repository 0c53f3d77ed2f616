// Free-space check of a snapshot tier before a snapshot is placed on it (issue 12:
// a full tier makes the start fall back to a cold boot without a snapshot).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertTierSpace, freeBytes, snapshotBytesNeeded, SNAPSHOT_STATE_MARGIN_BYTES, TierSpaceError } from '../../src/snapshots/tier-space.js';

const MiB = 1024 * 1024;
const fsWith = (freeMiB: number) => () => ({ bavail: freeMiB * 256, bsize: 4096 });

void test('a snapshot needs its guest RAM plus the state margin', () => {
  assert.equal(snapshotBytesNeeded(256), 256 * MiB + SNAPSHOT_STATE_MARGIN_BYTES);
});

void test('enough room passes; too little throws a typed error naming the tier and the sizes', () => {
  assertTierSpace('/t', 256, 0, fsWith(300));
  assert.throws(() => assertTierSpace('/t', 256, 0, fsWith(200)), (e: unknown) => {
    assert.ok(e instanceof TierSpaceError);
    assert.equal(e.tierPath, '/t');
    assert.equal(e.freeBytes, 200 * MiB);
    assert.equal(e.neededBytes, 256 * MiB + SNAPSHOT_STATE_MARGIN_BYTES);
    assert.match(e.message, /tier \/t: 200 MiB free, a snapshot may need 272 MiB/);
    return true;
  });
});

void test('snapshots still being written on the tier count against its free space', () => {
  assertTierSpace('/t', 128, 0, fsWith(300));
  assert.throws(() => assertTierSpace('/t', 128, 200 * MiB, fsWith(300)), TierSpaceError);
});

void test('the real file system of a directory reports its free bytes', () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tier-space-'));
  try {
    const free = freeBytes(d);
    assert.ok(Number.isFinite(free) && free >= 0);
    assert.throws(() => assertTierSpace(d, Math.ceil(free / MiB) + 1), TierSpaceError);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});
