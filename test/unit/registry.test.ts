import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { zipSync, strToU8 } from 'fflate';
import { openDb, openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { unpackCode, sniffCodeKind } from '../../src/registry/code.js';
import { FaasError } from '../../src/core/errors.js';
import { tarOf } from '../helpers/archives.js';

const limits = { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 };
const hello = Buffer.from('function main(p) { return { hello: p.name } }');

test('put, get, list, update bumps the version, delete', () => {
  const r = new Registry(openMemoryDb(), limits);
  const a = r.put('hello', { code: hello }, 1000);
  assert.equal(a.created, true);
  assert.equal(a.def.version, 1);
  assert.equal(a.def.memoryMiB, 256);
  assert.equal(a.def.main, 'index.js');
  const b = r.put('hello', { code: hello, memoryMiB: 512 }, 2000);
  assert.equal(b.created, false);
  assert.equal(b.def.version, 2);
  assert.equal(b.def.createdAt, 1000);
  assert.equal(b.def.updatedAt, 2000);
  assert.deepEqual(r.list().map((d) => d.name), ['hello']);
  assert.equal(r.delete('hello'), true);
  assert.equal(r.get('hello'), undefined);
  assert.equal(r.delete('hello'), false);
});

test('validation names the field', () => {
  const r = new Registry(openMemoryDb(), limits);
  const field = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof FaasError);
      return e.field;
    }
    return undefined;
  };
  assert.equal(field(() => r.put('bad name!', { code: hello })), 'name');
  assert.equal(field(() => r.put('f', { code: hello, memoryMiB: 64 })), 'memoryMiB');
  assert.equal(field(() => r.put('f', { code: hello, vcpus: 9 })), 'vcpus');
  assert.equal(field(() => r.put('f', { code: hello, timeoutMs: 0 })), 'timeoutMs');
  assert.equal(field(() => r.put('f', { code: hello, entry: 'a-b' })), 'entry');
  assert.equal(field(() => r.put('f', { code: hello, env: { 'BAD-KEY': 'x' } })), 'env.BAD-KEY');
  assert.equal(field(() => r.put('f', { code: Buffer.alloc(0) })), 'code');
  const big = field(() => r.put('f', { code: Buffer.alloc(2 << 20, 0x61) }));
  assert.equal(big, 'code');
});

test('definitions survive reopening the database', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faascell-reg-'));
  try {
    const db1 = openDb(dir);
    new Registry(db1, limits).put('persist', { code: hello, env: { A: '1' } });
    db1.close();
    const db2 = openDb(dir);
    const d = new Registry(db2, limits).get('persist');
    assert.equal(d?.env.A, '1');
    db2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zip with package.json main and a nested module', () => {
  const zip = Buffer.from(zipSync({ 'pkg/package.json': strToU8('{"main":"lib/entry.js"}'), 'pkg/lib/entry.js': strToU8('exports.main=()=>({})'), 'pkg/lib/util.js': strToU8('') }));
  assert.equal(sniffCodeKind(zip), 'zip');
  const u = unpackCode('zip', zip, 1 << 20);
  assert.equal(u.main, 'lib/entry.js');
  assert.deepEqual([...u.files.keys()].sort(), ['lib/entry.js', 'lib/util.js', 'package.json']);
});

test('tar.gz (ustar) with index.js', () => {
  const tar = tarOf({ 'package/index.js': 'exports.main=()=>({ok:true})', 'package/package.json': '{}' });
  const tgz = gzipSync(tar);
  assert.equal(sniffCodeKind(tgz), 'tgz');
  const u = unpackCode('tgz', tgz, 1 << 20);
  assert.equal(u.main, 'index.js');
  assert.equal(u.files.get('index.js')?.toString(), 'exports.main=()=>({ok:true})');
});

test('archives that escape, are corrupt or have no main are refused', () => {
  assert.throws(() => unpackCode('zip', Buffer.from(zipSync({ '../evil.js': strToU8('x') })), 1 << 20), /escapes/);
  assert.throws(() => unpackCode('zip', Buffer.from('PK\x03\x04garbage'), 1 << 20), /zip/);
  assert.throws(() => unpackCode('tgz', Buffer.from([0x1f, 0x8b, 1, 2, 3]), 1 << 20), /gzip/);
  assert.throws(() => unpackCode('zip', Buffer.from(zipSync({ 'a.txt': strToU8('x'), 'b.txt': strToU8('y') })), 1 << 20), /no index.js/);
});

test('replicas keep the version and times they were made with; listeners hear the origin; synced() waits for them', async () => {
  const a = new Registry(openMemoryDb(), limits);
  const b = new Registry(openMemoryDb(), limits);
  const heard: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  b.onChange((c) => {
    heard.push(`${c.kind}:${c.origin}`);
    return c.origin === 'local' ? gate : undefined;
  });
  a.put('f', { code: hello }, 1000);
  const { def } = a.put('f', { code: hello, memoryMiB: 512 }, 2000);
  const stored = b.putReplica(def, hello);
  assert.equal(stored.version, 2);
  assert.equal(stored.createdAt, 1000);
  assert.equal(stored.updatedAt, 2000);
  assert.equal(stored.memoryMiB, 512);
  assert.throws(() => b.putReplica({ ...def, codeSha256: '0'.repeat(64) }, hello), (e: FaasError) => e.field === 'code');
  b.put('g', { code: hello });
  let synced = false;
  const s = b.synced().then(() => (synced = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(synced, false, 'a local change waits for its listener');
  release();
  await s;
  b.delete('f', 'replica');
  assert.deepEqual(heard, ['put:replica', 'put:local', 'delete:replica']);
});
