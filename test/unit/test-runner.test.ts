// The test runner's judgement (test/runner/): counting node:test's structured records, the skip
// allow-list, and what a test run owns. The last test runs node --test for real on small throwaway files
// (a failing describe-level before(), a timeout, an empty file, an unexplained skip) and requires each to fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import structuredRecords from '../../scripts/test-reporter.mjs';
import { ownedMounts, ownedShmEntries, whyOwned, type ProcessInfo } from '../runner/ownership.js';
import { parseRecords, tally, type TestRecord } from '../runner/results.js';
import { allowedSkip, impossibleHere } from '../runner/skips.js';
import { shmPrefix } from '../support/test-run.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const F = '/p/a.test.ts';
const rec = (r: Partial<TestRecord> & Pick<TestRecord, 'event' | 'name'>): TestRecord => ({ file: F, nesting: 0, suite: false, ...r });

void test('passes, plain failures, and the file-level record that carries the duration', () => {
  const r = tally('unit', ['/p/a.test.ts'], [rec({ event: 'pass', name: 'one' }), rec({ event: 'fail', name: 'two', failureType: 'testCodeFailure', error: 'x' }), rec({ event: 'complete', name: F, durationMs: 1234 })], 1, '/');
  assert.deepEqual([r.passed, r.failed, r.skipped], [1, 1, 0]);
  assert.equal(r.files[0]!.durationMs, 1234);
  assert.match(r.failures[0]!.why, /^failed: x/);
});

void test('time a file stays alive after its last test is measured (a pending timer costs the whole suite)', () => {
  const r = tally('e2e', [F], [rec({ event: 'pass', name: 'one', at: 1_000 }), rec({ event: 'pass', name: 'two', at: 4_000 }), rec({ event: 'complete', name: 'two', at: 4_001 }), rec({ event: 'pass', name: F, durationMs: 64_000, at: 64_000 })], 0, '/');
  assert.equal(r.files[0]!.idleAfterMs, 59_999);
  assert.equal(r.failed, 0);
});

void test('a failing describe-level before(): the suite and every test it cancelled are failures', () => {
  const r = tally('e2e', [F], [
    rec({ event: 'fail', name: 'a', nesting: 1, failureType: 'cancelledByParent' }),
    rec({ event: 'fail', name: 'b', nesting: 1, failureType: 'cancelledByParent' }),
    rec({ event: 'fail', name: 'daemon', suite: true, failureType: 'hookFailed', error: 'no image' }),
  ], 1, '/');
  assert.equal(r.failed, 3);
  assert.equal(r.passed, 0);
  assert.match(r.failures[2]!.why, /hook.*no image/);
  assert.match(r.failures[0]!.why, /^cancelled/);
});

void test('a timeout is a failure; a parent reporting its children\'s failure is not counted twice', () => {
  const r = tally('unit', [F], [
    rec({ event: 'fail', name: 'slow', failureType: 'testTimeoutFailure' }),
    rec({ event: 'fail', name: 'bad', nesting: 1, failureType: 'testCodeFailure' }),
    rec({ event: 'pass', name: 'good', nesting: 1 }),
    rec({ event: 'fail', name: 'd', suite: true, failureType: 'subtestsFailed' }),
  ], 1, '/');
  assert.deepEqual([r.passed, r.failed], [1, 2]);
  assert.match(r.failures[0]!.why, /timed out/);
});

void test('an empty file, an empty suite, a file that never reported: failures', () => {
  const r = tally('unit', ['/p/empty.test.ts', '/p/b.test.ts', '/p/lost.test.ts'], [
    { event: 'pass', name: '/p/empty.test.ts', file: '/p/empty.test.ts', nesting: 0, suite: false },
    { event: 'pass', name: 'ok', file: '/p/b.test.ts', nesting: 0, suite: false },
    { event: 'pass', name: 'nothing inside', file: '/p/b.test.ts', nesting: 0, suite: true },
  ], 0, '/');
  assert.equal(r.failed, 3);
  assert.deepEqual(r.failures.map((f) => f.why.split(' (')[0]), ['the suite holds no test', 'the file reports no test', 'the file reported nothing']);
});

void test('a file that crashed or exited outside its tests; node exiting non-zero with nothing counted', () => {
  const crashed = tally('unit', [F], [rec({ event: 'pass', name: 'fine' }), rec({ event: 'fail', name: F, failureType: 'testCodeFailure', error: 'test failed' })], 1, '/');
  assert.equal(crashed.failed, 1);
  assert.match(crashed.failures[0]!.why, /outside its tests/);
  const odd = tally('unit', [F], [rec({ event: 'pass', name: 'fine' })], 7, '/');
  assert.equal(odd.failed, 1);
  assert.match(odd.failures[0]!.why, /exited with status 7/);
});

void test('skips: only the documented impossibilities pass; every skip is listed with its reason', () => {
  const r = tally('unit', [F], [
    rec({ event: 'pass', name: 'kvm', skip: impossibleHere('no-usable-kvm', '/dev/kvm is missing') }),
    rec({ event: 'pass', name: 'lazy', skip: 'qemu not installed' }),
    rec({ event: 'pass', name: 'bare', skip: true }),
    rec({ event: 'pass', name: 'later', todo: 'write it' }),
    rec({ event: 'pass', name: 'whole suite', suite: true, skip: impossibleHere('no-firecracker', 'no binary') }),
  ], 0, '/');
  assert.deepEqual([r.passed, r.failed, r.skipped], [0, 3, 2]);
  assert.equal(r.skips.length, 5);
  assert.deepEqual(r.skips.map((s) => s.allowed), ['no-usable-kvm', undefined, undefined, undefined, 'no-firecracker']);
  assert.equal(allowedSkip('impossible here (no-such-thing): x'), undefined);
  assert.equal(allowedSkip('needs root'), undefined);
});

void test('the reporter writes one record per pass, fail and completion, with the failure type', async () => {
  async function* events(): AsyncGenerator<{ type: string; data: unknown }> {
    yield { type: 'test:start', data: { name: 'x', nesting: 0 } };
    yield { type: 'test:fail', data: { name: 'x', nesting: 0, file: F, line: 3, details: { duration_ms: 5, error: { failureType: 'hookFailed', cause: new Error('boom') } } } };
    yield { type: 'test:pass', data: { name: 'y', nesting: 1, file: F, skip: 'why', details: { duration_ms: 1, type: 'suite' } } };
    yield { type: 'test:diagnostic', data: { message: 'tests 2' } };
  }
  let out = '';
  for await (const line of structuredRecords(events())) out += line;
  const rs = parseRecords(out);
  assert.equal(rs.length, 2);
  assert.equal(typeof rs[0]!.at, 'number');
  delete rs[0]!.at;
  assert.deepEqual(rs[0], { event: 'fail', file: F, name: 'x', nesting: 0, line: 3, suite: false, durationMs: 5, failureType: 'hookFailed', error: 'boom' });
  assert.equal(rs[1]!.suite, true);
  assert.equal(rs[1]!.skip, 'why');
});

const proc = (over: Partial<ProcessInfo>): ProcessInfo => ({ pid: 10, ppid: 1, cmdline: ['qemu-system-x86_64'], environ: [], ...over });

void test('ownership: by the run id in the environment, by the run\'s directories in the command line or cwd; nothing else', () => {
  const run = { id: 'ab12cd34', root: '/tmp/fc-test-ab12cd34', shmRoot: '/dev/shm' };
  assert.match(whyOwned(run, proc({ environ: ['PATH=/bin', 'FAASCELL_TEST_RUN=ab12cd34'] }))!, /environment/);
  assert.match(whyOwned(run, proc({ cmdline: ['qemu-system-x86_64', '-chardev', 'socket,path=/tmp/fc-test-ab12cd34/fc-e2e-x/state/run/vm-1/channel.sock'] }))!, /command line/);
  assert.match(whyOwned(run, proc({ cmdline: ['qemu', '-object', 'memory-backend-file,mem-path=/dev/shm/fc-test-ab12cd34-e2e-x/f/mem'] }))!, /command line/);
  assert.match(whyOwned(run, proc({ cwd: '/tmp/fc-test-ab12cd34/nats' }))!, /directory/);
  // another run, a foreign daemon's VMM, a run id that merely starts like ours
  assert.equal(whyOwned(run, proc({ environ: ['FAASCELL_TEST_RUN=ffff0000'] })), undefined);
  assert.equal(whyOwned(run, proc({ cmdline: ['qemu-system-x86_64', '-qmp', 'unix:/var/lib/faascell/run/vm-7/qmp.sock'], cwd: '/' })), undefined);
  assert.equal(whyOwned(run, proc({ cmdline: ['x', '/tmp/fc-test-ab12cd345/y'], environ: ['FAASCELL_TEST_RUN=ab12cd345'] })), undefined);
  assert.equal(whyOwned(run, proc({ cmdline: ['x', '/dev/shm/fc-test-ab12cd345-y'] })), undefined);
});

void test('ownership of tmpfs entries: the run\'s prefix, and tiers whose owner marker names a state dir under the root', (t) => {
  const shm = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-shm-'));
  t.after(() => fs.rmSync(shm, { recursive: true, force: true }));
  const run = { id: 'ab12cd34', root: '/tmp/fc-test-ab12cd34', shmRoot: shm };
  const make = (name: string, owner?: string): void => {
    fs.mkdirSync(path.join(shm, name));
    if (owner) fs.writeFileSync(path.join(shm, `${name}.faascell-owner.json`), JSON.stringify({ version: 1, stateDir: owner, tier: 'shm', path: path.join(shm, name), claimedAt: 0 }));
  };
  make(`${shmPrefix('ab12cd34')}tier-1`);
  make('faascell-0123456789ab', '/tmp/fc-test-ab12cd34/fc-e2e-q/state');
  make('faascell-ba9876543210', '/var/lib/faascell');
  make(`${shmPrefix('ab12cd345')}other-run`);
  make('unmarked');
  fs.writeFileSync(path.join(shm, 'broken.faascell-owner.json'), '{');
  assert.deepEqual(ownedShmEntries(run).map((p) => path.basename(p)), ['faascell-0123456789ab', 'faascell-0123456789ab.faascell-owner.json', `${shmPrefix('ab12cd34')}tier-1`]);
});

void test('ownership of mounts: only mount points inside the run\'s directories, deepest first', () => {
  const run = { id: 'ab12cd34', root: '/tmp/fc-test-ab12cd34', shmRoot: '/dev/shm' };
  const line = (mp: string): string => `36 35 0:31 / ${mp} rw,relatime shared:1 - tmpfs tmpfs rw`;
  const info = [line('/'), line('/tmp/fc-test-ab12cd34/fc-e2e-fulltier-x'), line('/tmp/fc-test-ab12cd34/fc-e2e-fulltier-x/deeper'), line('/tmp/fc-test-ab12cd345/x'), line('/dev/shm')].join('\n');
  assert.deepEqual(ownedMounts(run, info), ['/tmp/fc-test-ab12cd34/fc-e2e-fulltier-x/deeper', '/tmp/fc-test-ab12cd34/fc-e2e-fulltier-x']);
});

void test('node --test for real: a failing before(), a timeout, an empty file and an unexplained skip each fail', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-red-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files: Record<string, string> = {
    'hook.test.mjs': "import { describe, test, before } from 'node:test';\ndescribe('needs a daemon', () => { before(() => { throw new Error('daemon did not start'); }); test('a', () => {}); test('b', () => {}); });\n",
    'timeout.test.mjs': "import { test } from 'node:test';\ntest('hangs', { timeout: 100 }, () => new Promise((r) => setTimeout(r, 5000)));\n",
    'empty.test.mjs': '// no test at all\n',
    'skip.test.mjs': "import { test } from 'node:test';\ntest('quietly skipped', { skip: 'chromium not installed' }, () => {});\n",
    'green.test.mjs': "import { test } from 'node:test';\ntest('fine', () => {});\n",
  };
  const expected: Record<string, number> = { 'hook.test.mjs': 3, 'timeout.test.mjs': 1, 'empty.test.mjs': 1, 'skip.test.mjs': 1, 'green.test.mjs': 0 };
  for (const [name, body] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, body);
    const out = path.join(dir, `${name}.jsonl`);
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=dot', '--test-reporter-destination=stdout', `--test-reporter=${path.join(ROOT, 'scripts', 'test-reporter.mjs')}`, `--test-reporter-destination=${out}`, file], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    const res = tally('throwaway', [file], parseRecords(fs.readFileSync(out, 'utf8')), r.status ?? 1, dir);
    assert.equal(res.failed, expected[name], `${name}: ${JSON.stringify(res.failures)}`);
    if (name === 'green.test.mjs') assert.equal(res.passed, 1);
  }
});
