// Issue 19: a shared-memory snapshot's RAM file on a tmpfs tier is made dense right
// after it is committed (and at start, for older ones; by a restore that comes
// first), so no clone's fault allocates in it; on other file systems it stays sparse. Real files on /dev/shm (tmpfs) and
// the real SnapshotManager with an in-memory database; no VM. The VM path is
// test/e2e/restored-memory.test.ts.
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ActorSystem, type Reply } from '../../src/core/actor.js';
import { realClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { openMemoryDb, type Db } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { SnapshotManager, type SnapshotManagerOptions } from '../../src/snapshots/manager.js';
import { allocatedBytes, denseBytes, ensureDense, fillHoles, holeBytes, isTmpfs, TMPFS_MAGIC } from '../../src/runtimes/ram-file.js';
import type { SnapshotMsg, SnapshotRecord, SnapshotRef } from '../../src/snapshots/types.js';
import { runShmDir } from '../support/test-run.js';

const MiB = 1048576;

/** A RAM file of `sizeMiB` with data in its first `dataMiB` only (the rest holes). */
function sparseRamFile(file: string, sizeMiB: number, dataMiB: number): Buffer {
  const data = Buffer.alloc(dataMiB * MiB, 0xab);
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, data, 0, data.length, 0);
    ftruncateSync(fd, sizeMiB * MiB);
  } finally {
    closeSync(fd);
  }
  return data;
}

void test('isTmpfs reads the file system type (statfs f_type), not the path', () => {
  assert.equal(isTmpfs('/anything', () => ({ type: TMPFS_MAGIC })), true);
  assert.equal(isTmpfs('/dev/shm/x', () => ({ type: 0xef53 })), false, 'ext4 is not tmpfs, whatever the path says');
  assert.equal(isTmpfs('/x', () => { throw new Error('ENOENT'); }), false);
  assert.equal(isTmpfs('/dev/shm'), true, 'this Linux host has /dev/shm on tmpfs');
});

void test('fillHoles makes a sparse tmpfs file dense, keeping its size and contents', async () => {
  const dir = runShmDir('ramfile');
  try {
    const f = path.join(dir, 'mem');
    const data = sparseRamFile(f, 16, 1);
    assert.equal(allocatedBytes(f), 1 * MiB);
    assert.equal(holeBytes(f), 15 * MiB);
    assert.equal(denseBytes(f), 16 * MiB, 'what it will take');
    await fillHoles(f);
    assert.equal(allocatedBytes(f), 16 * MiB, 'every page allocated');
    assert.equal(holeBytes(f), 0);
    const back = readFileSync(f);
    assert.equal(back.length, 16 * MiB, 'same size');
    assert.ok(back.subarray(0, MiB).equals(data), 'data kept');
    assert.ok(back.subarray(MiB).every((b) => b === 0), 'former holes read as zeros');
    await fillHoles(f); // idempotent
    assert.equal(allocatedBytes(f), 16 * MiB);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('ensureDense: a restore fills a sparse tmpfs RAM file, leaves a dense one and a disk one alone', async () => {
  const dir = runShmDir('ramfile');
  try {
    const f = path.join(dir, 'mem');
    sparseRamFile(f, 8, 1);
    assert.equal(await ensureDense(f, () => false), false, 'not tmpfs: left sparse (the page cache reads holes as clean zero pages)');
    assert.equal(holeBytes(f), 7 * MiB);
    assert.equal(await ensureDense(f), true);
    assert.equal(holeBytes(f), 0);
    assert.equal(await ensureDense(f), false, 'dense: nothing to do');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Rig {
  ask<T>(build: (reply: Reply<T>) => SnapshotMsg): Promise<T>;
  stop(): Promise<void>;
}

function manager(db: Db, tierPath: string, opts: Partial<SnapshotManagerOptions> = {}): Rig {
  const sys = new ActorSystem(silentLogger, () => undefined);
  const ref = sys.spawn<SnapshotMsg>('snapshots', new SnapshotManager({ db, tiers: [{ name: 'shm', path: tierPath, latencyRank: 0, capacityMiB: 1024 }], imageVersion: 'img-1', kind: 'shared-memory', uncache: false, clock: realClock, ...opts }));
  return { ask: (build) => ref.ask(build, 10_000), stop: () => sys.shutdown() };
}

/** A manager on a fresh tier directory (removed afterwards). */
async function withManager(tier: string, opts: Partial<SnapshotManagerOptions>, body: (m: Rig, db: Db, tier: string) => Promise<void>): Promise<void> {
  const db = openMemoryDb();
  const m = manager(db, tier, opts);
  try {
    await body(m, db, tier);
  } finally {
    await m.stop();
    rmSync(tier, { recursive: true, force: true });
  }
}

async function takeSnapshot(m: Rig, db: Db, sizeMiB: number, dataMiB: number): Promise<{ ref: SnapshotRef; bytes: number }> {
  const registry = new Registry(db, { defaults: { memoryMiB: 128, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60_000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  const fn = registry.put('f', { code: Buffer.from('function main(p){return p}') }).def;
  const ref = await m.ask<SnapshotRef>((reply) => ({ kind: 'prepare', fn, versionKey: 'v1', tier: 'shm', reply }));
  // what the VMM leaves: the RAM file (sparse) and the device state
  sparseRamFile(ref.files.memoryPath, sizeMiB, dataMiB);
  writeFileSync(ref.files.statePath, Buffer.alloc(60 * 1024, 1));
  const bytes = await m.ask<number>((reply) => ({ kind: 'commit', id: ref.id, createMs: 10, reply }));
  return { ref, bytes };
}

void test('commit on a tmpfs tier answers the size the files take once dense, then fills the RAM file\'s holes', async () => {
  await withManager(runShmDir('ramfile-tier'), {}, async (m, db) => {
    const { ref, bytes } = await takeSnapshot(m, db, 64, 2);
    // the actor handles one message at a time: the list below comes after the fill
    const [rec] = await m.ask<SnapshotRecord[]>((reply) => ({ kind: 'list', reply }));
    assert.equal(holeBytes(ref.files.memoryPath), 0, 'no hole left for a clone to fault on');
    assert.equal(allocatedBytes(ref.files.memoryPath), 64 * MiB);
    const allocated = allocatedBytes(ref.files.memoryPath) + allocatedBytes(ref.files.statePath);
    assert.equal(bytes, allocated, 'the size the core is told is what the tier holds');
    assert.equal(rec!.sizeBytes, allocated);
    assert.equal(rec!.status, 'ready');
  });
});

void test('on a disk tier the RAM file stays sparse (the page cache reads holes as clean zero pages)', async () => {
  await withManager(mkdtempSync(path.join(os.tmpdir(), 'fc-ramfile-disk-')), { isTmpfs: () => false }, async (m, db) => {
    const { ref, bytes } = await takeSnapshot(m, db, 64, 2);
    assert.equal(holeBytes(ref.files.memoryPath), 62 * MiB);
    assert.equal(bytes, allocatedBytes(ref.files.memoryPath) + allocatedBytes(ref.files.statePath));
  });
});

void test('a RAM file whose holes cannot be filled: the snapshot is removed (its next restore fails, the core drops it)', async () => {
  await withManager(runShmDir('ramfile-full'), { fillHoles: () => Promise.reject(new Error('fallocate: No space left on device (fake)')) }, async (m, db, tier) => {
    await takeSnapshot(m, db, 64, 2);
    assert.deepEqual(await m.ask<SnapshotRecord[]>((reply) => ({ kind: 'list', reply })), [], 'not in the catalogue');
    assert.deepEqual(readdirSync(tier), [], 'its files are gone');
  });
});

void test('at start, sparse RAM files on a tmpfs tier (older snapshots, grown ones) are filled and measured again', async () => {
  const tier = runShmDir('ramfile-start');
  const db = openMemoryDb();
  // written by a daemon that did not fill holes
  const before = manager(db, tier, { isTmpfs: () => false });
  let id: string;
  try {
    const { ref, bytes } = await takeSnapshot(before, db, 64, 2);
    id = ref.id;
    assert.ok(bytes < 4 * MiB);
    assert.equal(holeBytes(ref.files.memoryPath), 62 * MiB);
  } finally {
    await before.stop();
  }
  const after = manager(db, tier);
  try {
    const [rec] = await after.ask<SnapshotRecord[]>((reply) => ({ kind: 'list', reply }));
    assert.equal(rec!.id, id);
    const mem = path.join(rec!.dir, 'mem');
    assert.equal(holeBytes(mem), 0);
    assert.equal(rec!.sizeBytes, allocatedBytes(mem) + allocatedBytes(path.join(rec!.dir, 'state')));
  } finally {
    await after.stop();
    rmSync(tier, { recursive: true, force: true });
  }
});
