// Issue 19 (zip bombs): archives are unpacked with their declared sizes checked
// first and every inflation bounded, for zip and tar.gz alike, sync and on the
// thread pool. The bombs here are small (a few MiB inflated); the e2e test sends
// a real 1 GiB one through the daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { FaasError } from '../../src/core/errors.js';
import { unpackCode, unpackCodeAsync, unpackSteps, type CodeKind } from '../../src/registry/code.js';
import { tarHeader, tarOf, zipOneEntry } from '../helpers/archives.js';

const MiB = 1 << 20;

/** A tar.gz of one file of `size` zero bytes. */
function tgzOfZeros(size: number): Buffer {
  return gzipSync(Buffer.concat([tarHeader('index.js', size), Buffer.alloc(size), Buffer.alloc(1024)]));
}

const codeError = (re: RegExp) => (e: unknown) => e instanceof FaasError && e.status === 400 && e.field === 'code' && re.test(e.message);

void test('a zip whose directory declares more than the budget is refused before anything is inflated', () => {
  const bomb = zipOneEntry('index.js', deflateRawSync(Buffer.alloc(4 * MiB)), 0x7fffffff);
  const steps = unpackSteps('zip', bomb, MiB);
  assert.throws(() => steps.next(), codeError(/declares 2147483647 bytes unpacked, more than 1048576/));
});

void test('a zip entry that inflates past what it declares stops at its declared size (sync and thread pool)', async () => {
  const lying = zipOneEntry('index.js', deflateRawSync(Buffer.alloc(8 * MiB)), 1024);
  const first = unpackSteps('zip', lying, MiB).next();
  assert.equal(first.done, false);
  assert.equal(!first.done && first.value.maxBytes, 1024, 'the inflation is bounded by the declared size');
  assert.throws(() => unpackCode('zip', lying, MiB), codeError(/entry index\.js inflates to more than 1024 bytes/));
  await assert.rejects(unpackCodeAsync('zip', lying, MiB), codeError(/entry index\.js inflates to more than 1024 bytes/));
  // declaring more than it holds is refused too
  const short = zipOneEntry('index.js', deflateRawSync(Buffer.from('exports.main=()=>1')), 100);
  assert.throws(() => unpackCode('zip', short, MiB), codeError(/its header says 100/));
});

void test('a tar.gz whose trailer declares more than the budget is refused before inflating; one that lies stops at the budget', async () => {
  const bomb = tgzOfZeros(16 * MiB); // more than the budget plus what tar itself may take (1 KiB per possible file)
  assert.throws(() => unpackSteps('tgz', bomb, MiB).next(), codeError(/gzip stream declares \d+ bytes unpacked/));
  const lying = Buffer.from(bomb);
  lying.writeUInt32LE(100, lying.length - 4); // ISIZE says 100 bytes
  const first = unpackSteps('tgz', lying, MiB).next();
  assert.ok(!first.done && first.value.maxBytes < 16 * MiB, 'bounded by the budget (plus tar headers)');
  assert.throws(() => unpackCode('tgz', lying, MiB), codeError(/inflates to more than/));
  await assert.rejects(unpackCodeAsync('tgz', lying, MiB), codeError(/inflates to more than/));
});

void test('zips that are not what they say are refused with 400 naming code', () => {
  const good = Buffer.from(zipSync({ 'index.js': new TextEncoder().encode('exports.main=()=>1') }));
  const encrypted = Buffer.from(good);
  const cd = encrypted.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  encrypted.writeUInt16LE(encrypted.readUInt16LE(cd + 8) | 1, cd + 8);
  assert.throws(() => unpackCode('zip', encrypted, MiB), codeError(/encrypted/));
  const bzip = Buffer.from(good);
  bzip.writeUInt16LE(12, cd + 10);
  assert.throws(() => unpackCode('zip', bzip, MiB), codeError(/compression method 12/));
  assert.throws(() => unpackCode('zip', good.subarray(0, good.length - 30), MiB), codeError(/end of central directory/));
  const farOffset = Buffer.from(good);
  farOffset.writeUInt32LE(good.length, cd + 42);
  assert.throws(() => unpackCode('zip', farOffset, MiB), codeError(/local header missing/));
});

void test('property: any archive within the budget unpacks to its files, sync and on the thread pool alike; beyond it, 400', async () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9]{0,7}(\/[a-z0-9]{1,8}){0,2}\.js$/);
  const content = fc.oneof(fc.string({ maxLength: 200 }), fc.nat({ max: 20_000 }).map((n) => 'x'.repeat(n)));
  await fc.assert(
    fc.asyncProperty(fc.dictionary(name, content, { minKeys: 1, maxKeys: 6 }), fc.constantFrom<CodeKind>('zip', 'tgz'), fc.integer({ min: 100, max: 60_000 }), async (files, kind, budget) => {
      const withMain: Record<string, string> = { 'index.js': 'exports.main=()=>1', ...files };
      // one name may not be both a file and a folder
      const names = Object.keys(withMain);
      fc.pre(!names.some((a) => names.some((b) => b.startsWith(a + '/'))));
      const archive = kind === 'zip' ? Buffer.from(zipSync(Object.fromEntries(names.map((n) => [n, new TextEncoder().encode(withMain[n])])))) : gzipSync(tarOf(withMain));
      const size = names.reduce((s, n) => s + Buffer.byteLength(withMain[n]!), 0);
      if (size > budget) {
        assert.throws(() => unpackCode(kind, archive, budget), codeError(/./));
        await assert.rejects(unpackCodeAsync(kind, archive, budget), codeError(/./));
        return;
      }
      const a = unpackCode(kind, archive, budget);
      const b = await unpackCodeAsync(kind, archive, budget);
      assert.equal(a.totalBytes, size);
      for (const u of [a, b]) assert.deepEqual(Object.fromEntries([...u.files].map(([k, v]) => [k, v.toString()])), withMain);
    }),
    { numRuns: 150 },
  );
});
