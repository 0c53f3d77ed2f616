// The one place a C file is compiled with the host's compiler (the guest helper, the VMMs' THP-off launcher):
// a tiny program compiled for real into a temporary directory; a missing compiler through a PATH without one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cachedBinaryPath, compileC, compileCId, ensureCompiledC, findCc } from '../../src/image/compile-c.js';

const withTmp = async (body: (dir: string) => Promise<void>): Promise<void> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-compile-c-test-'));
  try {
    await body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
};

const HELLO = '#include <stdio.h>\nint main(void) { puts("compiled"); return 0; }\n';

void test('a real C file: compiled, runs; cached once built; nothing temporary left', async (t) => {
  if (!findCc()) return t.skip('no C compiler on this host: the set-up installs build-essential');
  await withTmp(async (dir) => {
    const source = path.join(dir, 'hello.c');
    fs.writeFileSync(source, HELLO);
    const out = cachedBinaryPath(path.join(dir, 'bin'), 'hello', 'v1', HELLO);
    const first = await ensureCompiledC({ source, out, flags: ['-O2'] });
    assert.deepEqual(first, { ok: true, path: out, built: true });
    assert.equal(execFileSync(out, { encoding: 'utf8' }), 'compiled\n');
    assert.equal((fs.statSync(out).mode & 0o111) !== 0, true, 'executable');
    const again = await ensureCompiledC({ source, out, flags: ['-O2'] });
    assert.deepEqual(again, { ok: true, path: out, built: false });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'bin')), [path.basename(out)]);
  });
});

void test('a compile error: typed compile-failed with the first line the compiler printed, no output file', async (t) => {
  if (!findCc()) return t.skip('no C compiler on this host: the set-up installs build-essential');
  await withTmp(async (dir) => {
    const source = path.join(dir, 'broken.c');
    fs.writeFileSync(source, 'int main(void) { return nope; }\n');
    const out = path.join(dir, 'broken');
    const r = await compileC({ source, out, flags: [] });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'compile-failed');
    assert.equal(!r.ok && r.detail.includes('\n'), false, 'one line');
    assert.deepEqual(fs.readdirSync(dir), ['broken.c']);
  });
});

void test('no compiler in the search path: typed no-compiler, nothing written; a compiler that cannot run: compile-failed', async () => {
  await withTmp(async (dir) => {
    const empty = path.join(dir, 'empty-path');
    fs.mkdirSync(empty);
    assert.equal(findCc(empty), undefined);
    const source = path.join(dir, 'hello.c');
    fs.writeFileSync(source, HELLO);
    const out = path.join(dir, 'out', 'hello');
    const r = await compileC({ source, out, flags: [], searchPath: empty });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'no-compiler');
    assert.equal(fs.existsSync(path.join(dir, 'out')), false);
    const gone = await compileC({ source, out, flags: [], cc: path.join(dir, 'no-such-cc') });
    assert.equal(!gone.ok && gone.reason, 'compile-failed');
    assert.deepEqual(fs.readdirSync(path.join(dir, 'out')), []);
    assert.equal(compileCId(HELLO, empty).endsWith(' no-cc'), true);
  });
});

void test('the cache name follows the source and the tag, and an image key names the compiler', () => {
  assert.equal(cachedBinaryPath('/c', 'x', 't', 'a'), cachedBinaryPath('/c', 'x', 't', 'a'));
  assert.notEqual(cachedBinaryPath('/c', 'x', 't', 'a'), cachedBinaryPath('/c', 'x', 't', 'b'));
  assert.notEqual(cachedBinaryPath('/c', 'x', 't', 'a'), cachedBinaryPath('/c', 'x', 'u', 'a'));
  assert.match(cachedBinaryPath('/c', 'x', 't', 'a'), /^\/c\/x-[0-9a-f]{16}$/);
  assert.notEqual(compileCId('a'), compileCId('b'));
});
