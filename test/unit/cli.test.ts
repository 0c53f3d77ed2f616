// The command line a newcomer meets (issue 20): what a failure shows, the status summary,
// short activation ids, the deploy-time syntax check, the compiled build's staleness check,
// and the clean-up of a state directory's snapshot tiers. No VM, no daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatActivation, formatActivationDetail, formatFailure, formatStatus } from '../../src/cli/format.js';
import { checkSyntax } from '../../src/cli/syntax-check.js';
import { describeInitError, initErrorDetail } from '../../src/worker/init-error.js';
import { ActorSystem } from '../../src/core/actor.js';
import { silentLogger } from '../../src/core/logger.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import { PerfManager, type PerfMsg } from '../../src/perf/perf-manager.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { claimTiers } from '../../src/snapshots/tier-owner.js';
import { ownedTiers, removeTiers } from '../../src/snapshots/tier-gc.js';
import { removeDaemonPid, runningDaemon, writeDaemonPid } from '../../src/core/state-dir.js';
// plain JavaScript, run before anything is built
import { build, buildState, listSources, sourceStamp } from '../../scripts/build-lib.mjs';

const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'fc-cli-unit-'));

const failed = {
  id: '3f2a9c1b00112233445566778899aabb',
  function: 'broken',
  status: 'init_error',
  startPath: 'cold' as const,
  accelerator: 'tcg',
  totalMs: 2400,
  timings: { received: 0, vmmSpawned: 2, vmBooted: 900, agentReady: 2100, initDone: 2300 },
  timestamps: {},
  logs: ['loading config', 'about to require ./missing'],
  error: { code: 'init_error', message: 'function broken failed to initialise: SyntaxError: Unexpected end of input (main.js:4)' },
  vmId: 'vm-7',
};

test('a failed invoke shows the error with its status and code, then the function\'s logs', () => {
  const out = formatFailure(failed.error, failed, 502);
  assert.match(out, /^error \(502 init_error\): function broken failed to initialise: SyntaxError: Unexpected end of input \(main\.js:4\)$/m);
  assert.match(out, /^logs:\n {2}loading config\n {2}about to require \.\/missing$/m);
  assert.match(formatFailure({ code: 'timeout', message: 'x' }, { ...failed, logs: [] }, 504), /logs: \(none\)/);
});

test('`activation ID` shows the summary with the stages of the failed start, the error and the logs', () => {
  const out = formatActivationDetail(failed);
  const [head, ids, err] = out.split('\n');
  assert.match(head!, /^3f2a9c1b broken init_error cold\/tcg total 2\.40 s \(wait 2\.0 ms, kernel 898\.0 ms, agent start 1\.20 s, init 200\.0 ms\)/);
  assert.match(ids!, /^id 3f2a9c1b00112233445566778899aabb {2}vm vm-7/);
  assert.match(err!, /^error \(init_error\): .*\(main\.js:4\)$/);
  assert.match(out, /about to require/);
  // the one-line summary of `activations` starts with the 8-character short id
  assert.match(formatActivation(failed), /^3f2a9c1b /);
});

test('the status summary: memory, instances per function and state, queues, snapshots, counters', () => {
  const out = formatStatus(
    {
      version: '0.1.0',
      startedAt: 1_000,
      runtime: 'qemu',
      accelerator: 'tcg',
      acceleratorReason: 'KVM unusable',
      image: { version: 'abc123', kernel: 'minimal' },
      policies: { keepAlive: 'fixed', eviction: 'priority' },
      pool: {
        memoryUsedMiB: 512,
        memoryBudgetMiB: 4096,
        busy: 1,
        starting: 0,
        startSlots: 1,
        instances: [{ fn: 'hello', state: 'idle', workerState: 'idle' }, { fn: 'hello', state: 'busy', workerState: 'running' }],
        queues: { hello: 0, slow: 3 },
        tiers: [{ name: 'shm', usedBytes: 90 * 2 ** 20, capacityBytes: 4 * 2 ** 30, snapshots: 1 }],
        counters: { arrivals: 10, warm: 8, freshCold: 1, freshRestore: 1, coldStarts: 1, restoreStarts: 1, startFailures: 0, evictions: 0, rejectedQueueFull: 2 },
      },
      snapshots: [{ function: 'hello', tier: 'shm', status: 'ready' }],
    },
    1_000 + 125_000,
  );
  assert.match(out, /^faascell 0\.1\.0 up 2m05s: qemu\/tcg \(KVM unusable\), image abc123 \(minimal kernel\)$/m);
  assert.match(out, /^memory {5}512 of 4096 MiB reserved \(13 %\); 1 running/m);
  assert.match(out, /^instances {2}2: hello 1 idle, 1 running$/m);
  assert.match(out, /^queued {5}slow 3$/m);
  assert.match(out, /^snapshots {2}1: hello on shm$/m);
  assert.match(out, /^tiers {6}shm 90 MiB of 4\.0 GiB$/m);
  assert.match(out, /10 requests \(8 warm.*2 refused$/m);
  assert.match(out, /--json/);
});

test('an init failure names the error class and the place in the function\'s code', () => {
  const syntax = '/tmp/faascell-work/fn-Ab12Cd/main.js:4\n\n\n\nSyntaxError: Unexpected end of input\n    at internalCompileFunction (node:internal/vm:76:18)';
  assert.deepEqual(initErrorDetail(syntax), { name: 'SyntaxError', location: 'main.js:4' });
  assert.deepEqual(describeInitError('Unexpected end of input', syntax), { text: 'SyntaxError: Unexpected end of input (main.js:4)', location: 'main.js:4' });
  const thrown = "Error: no config\n    at Object.<anonymous> (/tmp/faascell-work/fn-x1/lib/config.js:12:9)\n    at Module._compile (node:internal/modules/cjs/loader:1256:14)";
  assert.deepEqual(initErrorDetail(thrown), { name: 'Error', location: 'lib/config.js:12:9' });
  assert.deepEqual(describeInitError('no config', thrown).text, 'Error: no config (lib/config.js:12:9)');
  assert.deepEqual(describeInitError('ES module main.mjs does not export a function "main"', undefined), { text: 'ES module main.mjs does not export a function "main"' });
});

test('deploy checks a .js file\'s syntax with the agent\'s rules (CommonJS, ES module syntax, .mjs)', async () => {
  assert.deepEqual(await checkSyntax('ok.js', 'exports.main = () => ({ ok: true });\n'), { ok: true });
  assert.deepEqual(await checkSyntax('script.js', '#!/usr/bin/env node\nfunction main() { return {}; }\nreturn;\n'), { ok: true });
  assert.deepEqual(await checkSyntax('esm.js', 'export function main() { return { ok: true }; }\n'), { ok: true });
  assert.deepEqual(await checkSyntax('tla.mjs', 'const x = await Promise.resolve(1);\nexport default () => ({ x });\n'), { ok: true });
  const cjs = await checkSyntax('examples/bad.js', 'const a = 1;\nexports.main = () => {\n  return { ok: true ;\n};\n');
  assert.equal(cjs.ok, false);
  assert.ok(!cjs.ok && cjs.location === 'examples/bad.js:3' && /^SyntaxError: /.test(cjs.message), JSON.stringify(cjs));
  const esm = await checkSyntax('bad.mjs', 'export function main() {\n  return {ok: 1\n}\n');
  assert.ok(!esm.ok && esm.location === 'bad.mjs:4' && /SyntaxError: Unexpected end of input/.test(esm.message), JSON.stringify(esm));
});

test('`activation PREFIX`: the ids that start with a prefix (the route resolves a unique one)', async () => {
  const db = openMemoryDb();
  const sys = new ActorSystem(silentLogger, () => undefined);
  const perf = sys.spawn<PerfMsg>('perf', new PerfManager(db, 1000));
  const rec = (id: string): ActivationRecord => ({ id, function: 'f', functionVersion: 1, runtime: 'qemu', status: 'success', timestamps: { received: 1 }, timings: {}, totalMs: 1, logs: [] });
  for (const id of ['3f2a9c1b0000', '3f2a9c1b1111', '3f2b0000aaaa', 'a_b-c']) await new Promise<void>((r) => perf.tell({ kind: 'activation', record: rec(id), written: () => r() }));
  const ids = (prefix: string, limit = 6): Promise<string[]> => perf.ask<string[]>((r) => ({ kind: 'idsWithPrefix', prefix, limit, reply: r }), 1000);
  assert.deepEqual(await ids('3f2a'), ['3f2a9c1b0000', '3f2a9c1b1111']);
  assert.deepEqual(await ids('3f2a9c1b1'), ['3f2a9c1b1111']);
  assert.deepEqual(await ids('3f2b'), ['3f2b0000aaaa']);
  assert.deepEqual(await ids('a_b'), ['a_b-c'], "'_' is not a wildcard");
  assert.deepEqual(await ids('a%'), []);
  assert.deepEqual(await ids('3f', 1), ['3f2a9c1b0000']);
  await sys.shutdown();
});

test('the build stamp changes with a source\'s content or the file set; a stale build is rebuilt, never run', async () => {
  const root = tmp();
  try {
    mkdirSync(path.join(root, 'src', 'lib'), { recursive: true });
    mkdirSync(path.join(root, 'src', 'ui', 'client'), { recursive: true });
    writeFileSync(path.join(root, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext' } }));
    writeFileSync(path.join(root, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(path.join(root, 'src', 'main.ts'), "import { twice } from './lib/twice.js';\nexport const answer: number = twice(21);\n");
    writeFileSync(path.join(root, 'src', 'lib', 'twice.ts'), 'export const twice = (x: number): number => 2 * x;\n');
    writeFileSync(path.join(root, 'src', 'ui', 'client', 'app.ts'), 'document.title = "x";\n');
    writeFileSync(path.join(root, 'src', 'main.test.ts'), '');
    assert.deepEqual(listSources(root), ['src/lib/twice.ts', 'src/main.ts'], 'browser code and tests are not part of the build');
    assert.equal(buildState(root), 'missing');
    const first = await build(root);
    assert.equal(first.built, true);
    assert.equal(buildState(root), 'fresh');
    const mod = (await import(pathToFileURL(path.join(root, 'dist', 'src', 'main.js')).href + '?1')) as { answer: number };
    assert.equal(mod.answer, 42);
    assert.equal((await build(root)).built, false, 'a fresh build is not redone');

    const before = sourceStamp(root);
    writeFileSync(path.join(root, 'src', 'lib', 'twice.ts'), 'export const twice = (x: number): number => 3 * x;\n');
    utimesSync(path.join(root, 'src', 'lib', 'twice.ts'), new Date(), new Date(Date.now() + 5000));
    assert.notEqual(sourceStamp(root), before);
    assert.equal(buildState(root), 'stale');
    await build(root);
    assert.equal(((await import(pathToFileURL(path.join(root, 'dist', 'src', 'lib', 'twice.js')).href + '?2')) as { twice: (x: number) => number }).twice(2), 6);

    rmSync(path.join(root, 'src', 'lib', 'twice.ts'));
    writeFileSync(path.join(root, 'src', 'main.ts'), 'export const answer = 1;\n');
    assert.equal(buildState(root), 'stale', 'a removed source makes the build stale');
    await build(root);
    assert.equal(existsSync(path.join(root, 'dist', 'src', 'lib', 'twice.js')), false, 'the output of a removed source is removed');
    assert.ok(JSON.parse(readFileSync(path.join(root, 'dist', '.build-stamp.json'), 'utf8')).sources);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('gc / --clean-on-exit: a state directory\'s tiers only, by their owner markers', () => {
  const root = tmp();
  try {
    const shm = path.join(root, 'shm'); // stands in for /dev/shm
    mkdirSync(shm);
    const mine = path.resolve(root, 'state-a');
    const other = path.resolve(root, 'state-b');
    const tierA = path.join(shm, 'faascell-a');
    const droppedA = path.join(shm, 'faascell-a-old');
    const tierB = path.join(shm, 'faascell-b');
    for (const d of [tierA, droppedA, tierB]) {
      mkdirSync(d);
      writeFileSync(path.join(d, 'mem'), Buffer.alloc(8192, 1));
    }
    claimTiers(mine, [{ name: 'shm', path: tierA }, { name: 'old', path: droppedA }]);
    claimTiers(other, [{ name: 'shm', path: tierB }]);
    const disk = path.join(mine, 'snapshots');
    mkdirSync(disk, { recursive: true });
    const owned = ownedTiers(mine, [{ name: 'shm', path: tierA }, { name: 'disk', path: disk }, { name: 'shared', path: tierB }], [shm]);
    assert.deepEqual(owned.map((t) => t.path).sort(), [disk, tierA, droppedA].sort(), "another state directory's tier is never included");
    assert.ok(owned.find((t) => t.path === tierA)!.bytes >= 8192);
    removeTiers(owned);
    for (const p of [tierA, droppedA, disk, `${tierA}.faascell-owner.json`, `${droppedA}.faascell-owner.json`]) assert.equal(existsSync(p), false, p);
    assert.equal(existsSync(tierB), true);
    assert.equal(existsSync(`${tierB}.faascell-owner.json`), true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the daemon pid file: gc refuses while it names a living process', () => {
  const dir = tmp();
  try {
    assert.equal(runningDaemon(dir), undefined);
    writeDaemonPid(dir);
    assert.equal(runningDaemon(dir), process.pid);
    removeDaemonPid(dir);
    assert.equal(runningDaemon(dir), undefined);
    writeFileSync(path.join(dir, 'daemon.pid'), '2147483646\n'); // a pid nobody has
    assert.equal(runningDaemon(dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a TypeScript policy module loads in the compiled daemon (through tsx, registered only for it)', async () => {
  const dir = tmp();
  try {
    writeFileSync(path.join(dir, 'ttl.ts'), "interface Opts { seconds?: number }\nexport default (o: Opts) => ({ name: 'ts-ttl', onInvocation() {}, onIdle: (): { keepWarmMs: number } => ({ keepWarmMs: (o.seconds ?? 1) * 1000 }) });\n");
    const root = path.resolve(import.meta.dirname, '..', '..');
    await build(root); // the compiled loader in dist/
    const loader = pathToFileURL(path.join(root, 'dist', 'src', 'policies', 'module-loader.js')).href;
    const script = `const { loadPolicyModule } = await import(${JSON.stringify(loader)});
const p = await loadPolicyModule('keepAlive', 'policies.keepAlive', './ttl.ts', { seconds: 7 }, { rng: { next: () => 0.5 }, baseDir: ${JSON.stringify(dir)} });
console.log(JSON.stringify([p.name, p.onIdle().keepWarmMs]));`;
    const { spawnSync } = await import('node:child_process');
    // plain node: no tsx loader in this process until the module loader registers it
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ['ts-ttl', 7000]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a refused request shows its error without an empty logs section', () => {
  const refused = { ...failed, status: 'rejected', startPath: undefined, logs: [], error: { code: 'not_found', message: 'function nope does not exist' } };
  assert.equal(formatFailure(refused.error, refused, 404), 'error (404 not_found): function nope does not exist');
});
