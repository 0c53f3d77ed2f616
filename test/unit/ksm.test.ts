// node.memory.ksm (issue 24): ksmd is turned on only when it was off, and put back as found, once.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startKsm } from '../../src/vmpool/ksm.js';

function ksmDir(run: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ksm-'));
  fs.writeFileSync(path.join(dir, 'run'), `${run}\n`);
  return dir;
}
const runOf = (dir: string) => fs.readFileSync(path.join(dir, 'run'), 'utf8').trim();

void test('ksm off on the host: the daemon turns it on and puts 0 back at stop, once', () => {
  const dir = ksmDir('0');
  try {
    const k = startKsm(dir);
    assert.equal(k.changed, true);
    assert.equal(runOf(dir), '1');
    k.restore();
    assert.equal(runOf(dir), '0');
    fs.writeFileSync(path.join(dir, 'run'), '1'); // someone else turned it on since
    k.restore();
    assert.equal(runOf(dir), '1', 'a second restore changes nothing');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

void test('ksm already on: left as it is, at start and at stop', () => {
  const dir = ksmDir('1');
  try {
    const k = startKsm(dir);
    assert.equal(k.changed, false);
    k.restore();
    assert.equal(runOf(dir), '1');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

void test('no KSM in the kernel: a clear error (the daemon logs it and runs without)', () => {
  assert.throws(() => startKsm(path.join(os.tmpdir(), 'no-such-ksm-dir')), { code: 'ENOENT' });
});
