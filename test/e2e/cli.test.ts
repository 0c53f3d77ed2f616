// The command line as a newcomer uses it (issue 20), through bin/faascell.js (the compiled
// command) against a real daemon with real VMs: deploy, invoke, a function whose code does
// not load (the deploy says so; forced through, its invoke shows the error, file:line and
// logs), `activation <short id>`, `status`, and the stop message / `gc` for the snapshots
// kept on the tmpfs tier.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, ROOT, cleanup, leftovers, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { ownerMarkerPath } from '../../src/snapshots/tier-owner.js';
import { runNode, type Ran } from '../support/process.js';

/** One `faascell …` command, as a user types it (bounded: 120 s). */
function faascell(url: string, ...args: string[]): Promise<Ran> {
  return runNode([path.join(ROOT, 'bin', 'faascell.js'), ...args], { cwd: ROOT, env: { ...process.env, FAASCELL_URL: url } });
}

let d: TestDaemon;
let work: string;

before(async () => {
  d = await startDaemon();
  work = mkdtempSync(path.join(os.tmpdir(), 'fc-e2e-cli-'));
  // does not parse: the object literal is never closed (line 3)
  writeFileSync(path.join(work, 'broken.js'), "const greeting = 'hi';\nexports.main = () => {\n  return { greeting ;\n};\n");
  // parses, logs, then throws during its init (line 2)
  writeFileSync(path.join(work, 'no-config.js'), "console.log('reading the configuration');\nthrow new Error('no configuration found');\nexports.main = () => ({});\n");
});

after(async () => {
  if (d) cleanup(d);
  if (work) rmSync(work, { recursive: true, force: true });
});

test('deploy and invoke: the result on stdout, a one-line summary with a short id on stderr', async () => {
  const dep = await faascell(d.url, 'deploy', 'hello', path.join(FIXTURES, 'hello.js'));
  assert.equal(dep.code, 0, dep.stderr);
  assert.match(dep.stdout, /^deployed hello version 1 \(nodejs20, 256 MiB, 1 vCPU, timeout 30 s\)/);
  const inv = await faascell(d.url, 'invoke', 'hello', '{"name":"cli"}');
  assert.equal(inv.code, 0, inv.stderr);
  assert.deepEqual(JSON.parse(inv.stdout).greeting, 'Hello, cli!');
  assert.match(inv.stderr, /^[0-9a-f]{8} hello success cold\//m);
});

test('code that does not parse: deploy refuses and names file:line; forced, the invoke shows the error and where', async () => {
  const file = path.join(work, 'broken.js');
  const dep = await faascell(d.url, 'deploy', 'broken', file);
  assert.equal(dep.code, 1);
  assert.match(dep.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: SyntaxError: `));
  assert.match(dep.stderr, /not deployed/);
  const forced = await faascell(d.url, 'deploy', 'broken', file, '--no-syntax-check');
  assert.equal(forced.code, 0, forced.stderr);
  const inv = await faascell(d.url, 'invoke', 'broken');
  assert.equal(inv.code, 1);
  assert.equal(inv.stdout, '');
  assert.match(inv.stderr, /^error \(502 init_error\): function broken failed to initialise: SyntaxError: .* \(index\.js:3\)$/m);
  assert.match(inv.stderr, /^logs: \(none\)$/m);
  // the summary line: the failed start's path, not "-" as if it had only waited in a queue
  assert.match(inv.stderr, /^[0-9a-f]{8} broken init_error cold\//m);
});

test('an init that throws: the invoke shows the error, file:line:column and what the function logged', async () => {
  const dep = await faascell(d.url, 'deploy', 'no-config', path.join(work, 'no-config.js'));
  assert.equal(dep.code, 0, dep.stderr);
  const inv = await faascell(d.url, 'invoke', 'no-config');
  assert.equal(inv.code, 1);
  assert.match(inv.stderr, /^error \(502 init_error\): function no-config failed to initialise: Error: no configuration found \(index\.js:2:7\)$/m);
  assert.match(inv.stderr, /^logs:\n {2}.*reading the configuration/m);
});

test('`activation` takes the short id `activations` prints; `status` is a summary, --json the whole object', async () => {
  const list = await faascell(d.url, 'activations', '--function', 'no-config');
  assert.equal(list.code, 0, list.stderr);
  const short = /^([0-9a-f]{8}) no-config init_error/m.exec(list.stdout)?.[1];
  assert.ok(short, list.stdout);
  const one = await faascell(d.url, 'activation', short);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, new RegExp(`^${short} no-config init_error cold/`, 'm'));
  assert.match(one.stdout, /^error \(init_error\): .*no configuration found \(index\.js:2:7\)$/m);
  assert.match(one.stdout, /reading the configuration/);
  const tooShort = await faascell(d.url, 'activation', short.slice(0, 2));
  assert.equal(tooShort.code, 1);
  assert.match(tooShort.stderr, /error \(404 not_found\).*at least 4 characters/);

  const st = await faascell(d.url, 'status');
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /^memory {5}\d+ of \d+ MiB reserved/m);
  assert.match(st.stdout, /^instances {2}\d+/m);
  assert.ok(JSON.parse((await faascell(d.url, 'status', '--json')).stdout).pool);

  // the function's failure is counted as the invocation's status, with the path of the start it failed in
  const metrics = await (await fetch(`${d.url}/metrics`)).text();
  assert.match(metrics, /faascell_activations_total\{function="no-config",start_path="cold",status="init_error",runtime="nodejs20"\} 1/);
});

test('a clean stop says where the snapshots stay; gc removes exactly that state directory\'s tiers', async () => {
  let out = '';
  d.proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  await d.stop();
  assert.deepEqual(leftovers(d), []);
  assert.match(out, /its snapshots stay for the next start \(.*fc-e2e-/);
  assert.match(out, /faascell gc --state-dir /);
  assert.ok(existsSync(d.shmTier), 'hello\'s snapshot is kept on the tmpfs tier');
  const gc = await faascell(d.url, 'gc', '--config', path.join(d.dir, 'config.json'));
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, new RegExp(`removing shm ${d.shmTier}`));
  assert.equal(existsSync(d.shmTier), false);
  assert.equal(existsSync(ownerMarkerPath(d.shmTier)), false, 'and its owner marker');
});
