// snapshots.coldSnapshot 'copy' (issue 9, item 1): the file mechanics of the copy, with real files on
// tmpfs (the snapshot tier's file system, /dev/shm). The Worker logic is in test/unit/cold-snapshot.test.ts.
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { copySparse } from '../../src/runtimes/qemu/driver.js';
import { runShmDir } from '../support/test-run.js';

void test('copySparse keeps holes and content; after the rename, writes through the source file never reach the snapshot path', async () => {
  const dir = runShmDir('cs-copy');
  try {
    const live = path.join(dir, 'mem');
    const MiB = 1 << 20;
    const fd = openSync(live, 'w+');
    ftruncateSync(fd, 64 * MiB);
    const page = Buffer.alloc(4096, 0xab);
    for (const off of [0, 5 * MiB, 40 * MiB + 4096]) writeSync(fd, page, 0, page.length, off);
    const before = readFileSync(live);
    // the same steps as QemuVm.snapshotAndContinue: copy beside, rename over the snapshot path
    const tmp = `${live}.copy`;
    await copySparse(live, tmp);
    renameSync(tmp, live);
    // the source keeps its open file (a VM's MAP_SHARED mapping): it writes on after the snapshot
    writeSync(fd, Buffer.alloc(4096, 0xcd), 0, 4096, 5 * MiB);
    writeSync(fd, Buffer.alloc(4096, 0xef), 0, 4096, 20 * MiB);
    closeSync(fd);
    const snap = readFileSync(live);
    assert.equal(snap.length, 64 * MiB);
    assert.ok(snap.equals(before), 'the snapshot holds the state at the copy, not the later writes');
    const st = statSync(live);
    assert.ok(st.blocks * 512 < 4 * MiB, `the copy stays sparse (${st.blocks * 512} bytes allocated)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
