// Image builder pieces checked with the host tools scripts/setup.sh installs (no VM): cpio(1) reads
// what writeCpio wrote; the guest helper compiles with the C compiler and parses its commands. The
// pieces that need no tool are in test/unit/image.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { writeCpio } from '../../src/image/cpio.js';
import { projectRoot } from '../../src/image/builder.js';
import { isPruned, TAR_EXCLUDES } from '../../src/image/python.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'image-tools-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

void test('writeCpio produces a newc archive that cpio(1) lists and extracts', (t) => {
  const archive = writeCpio([
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/hello', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
    { type: 'symlink', path: 'bin/hi', target: 'hello' },
    { type: 'chardev', path: 'console', major: 5, minor: 1 },
    { type: 'file', path: 'odd-name.txt', data: Buffer.from('x') },
  ]);
  assert.equal(archive.subarray(0, 6).toString(), '070701');
  assert.equal(archive.length % 4, 0);
  assert.ok(archive.includes(Buffer.from('TRAILER!!!')));
  if (spawnSync('cpio', ['--version']).status !== 0) return t.skip('cpio not installed');
  const list = spawnSync('cpio', ['-t', '-v', '--quiet'], { input: archive });
  assert.equal(list.status, 0, list.stderr.toString());
  const out = list.stdout.toString();
  for (const name of ['bin/hello', 'bin/hi -> hello', 'console', 'odd-name.txt']) assert.ok(out.includes(name), `${name} missing in:\n${out}`);
  const dir = fs.mkdtempSync(path.join(tmp, 'x-'));
  const ext = spawnSync('cpio', ['-i', '-d', '--quiet', '--no-absolute-filenames', '--nonmatching', 'console'], { input: archive, cwd: dir });
  assert.equal(ext.status, 0, ext.stderr.toString());
  assert.equal(fs.readFileSync(path.join(dir, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hi\n');
  assert.equal(fs.readlinkSync(path.join(dir, 'bin/hi')), 'hello');
  assert.equal(fs.statSync(path.join(dir, 'bin/hello')).mode & 0o777, 0o755);
});

void test('faascell-helper parses T, S and R commands (--dry-run: nothing is changed on this host)', (t) => {
  const cc = spawnSync('cc', ['--version']).status === 0 ? 'cc' : undefined;
  if (!cc) return t.skip('no C compiler');
  const bin = path.join(tmp, 'helper');
  const built = spawnSync(cc, ['-O2', '-Wall', '-Werror', '-o', bin, path.join(projectRoot(), 'guest', 'image', 'faascell-helper.c')]);
  assert.equal(built.status, 0, built.stderr.toString());
  const input = ['T 1700000000000 123', 'T 1 2 3', 'D 1700000000000 5 abcd', 'D 1 2', 'S 00ff10', 'S 0', 'S zz', 'R 1700000000000 5 abcd', 'R 1 2', 'X 1', '', `S ${'ab'.repeat(600)}`, 'x'.repeat(5000), 'S 0102'].join('\n') + '\n';
  // --dry-run is essential: without it the T command would set this machine's clock
  const r = spawnSync(bin, ['--dry-run', '--keep-pit'], { input });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(r.stdout.toString().trim().split('\n'), ['ok', 'err 22', 'ok', 'err 22', 'ok', 'err 22', 'err 22', 'ok', 'err 22', 'err 22', 'err 22', 'err 22', 'err 22', 'ok']);
});

void test('issue 21: unpacking with tar(1) and TAR_EXCLUDES leaves out exactly what isPruned names (the Python root fs)', () => {
  const src = path.join(tmp, 'pkg');
  const files = [
    'usr/share/doc/python3/copyright',
    'usr/share/doc-base/keep',
    'usr/lib/x86_64-linux-gnu/libfoo.a',
    'usr/lib/x86_64-linux-gnu/libfoo.so.1',
    'usr/lib/x86_64-linux-gnu/dri/iris_dri.so',
    'usr/lib/x86_64-linux-gnu/libLLVM-15.so.1',
    'usr/lib/python3/dist-packages/numpy/core/tests/test_a.py',
    'usr/lib/python3/dist-packages/numpy/core/multiarray.py',
    'usr/lib/python3/dist-packages/torch/bin/test_api',
    'usr/lib/python3/dist-packages/torch/bin/torch_shm_manager',
    'usr/bin/perl',
    'usr/bin/python3',
  ];
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.writeFileSync(path.join(src, f), f);
  }
  // a data tar as in a .deb: members named ./usr/...
  const archive = spawnSync('tar', ['-c', '-C', src, '-f', '-', './usr']);
  assert.equal(archive.status, 0, archive.stderr.toString());
  const out = path.join(tmp, 'unpacked');
  fs.mkdirSync(out);
  const x = spawnSync('tar', ['-x', '-p', '-C', out, ...TAR_EXCLUDES, '-f', '-'], { input: archive.stdout });
  assert.equal(x.status, 0, x.stderr.toString());
  for (const f of files) {
    const dropped = f.split('/').some((_, i, parts) => isPruned(parts.slice(0, i + 1).join('/')));
    assert.equal(fs.existsSync(path.join(out, f)), !dropped, `${f} ${dropped ? 'excluded' : 'unpacked'}`);
  }
  assert.ok(!fs.existsSync(path.join(out, 'usr/share/doc')), 'an excluded directory is not made either');
});
