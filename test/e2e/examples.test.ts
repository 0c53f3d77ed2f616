// The files in examples/ run as they are (issue 20 item 3), against a real daemon with real
// VMs: the functions the README's tour deploys, the OpenWhisk client example (the `openwhisk`
// npm package, as docs/openwhisk.md shows it), and the keep-alive policy module, loaded by the
// compiled daemon from the example configuration's own reference.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, cleanup, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { runNode } from '../support/process.js';

const EXAMPLES = path.join(ROOT, 'examples');
let d: TestDaemon | undefined;

before(async () => {
  // the policy module the example configuration names, resolved as that file would resolve it
  d = await startDaemon({ policies: { keepAlive: { policy: 'module', module: path.join(EXAMPLES, 'policies', 'keepalive-double-ttl.mjs'), options: { baseTtlSeconds: 60, maxTtlSeconds: 3600 } } } });
});

after(async () => {
  if (d) cleanup(d);
});

const code = (file: string): Buffer => readFileSync(path.join(EXAMPLES, 'functions', file));

test('the example configuration\'s keep-alive module is the daemon\'s policy', async () => {
  const st = await d!.client.call<{ policies: { keepAlive: string } }>('GET', '/v1/status');
  assert.equal(st.policies.keepAlive, 'double-ttl');
});

test('examples/functions: hello and sleep answer; greet fails its init without GREETING and works with it', async () => {
  await d!.client.deploy('hello', code('hello.js'), { codeKind: 'js' });
  const hello = await d!.client.invoke('hello', { name: 'cell' });
  assert.equal(hello.status, 200, JSON.stringify(hello.body));
  assert.deepEqual(hello.body.result, { greeting: 'Hello, cell!' });

  await d!.client.deploy('sleep', code('sleep.js'), { codeKind: 'js' });
  const sleep = await d!.client.invoke('sleep', { ms: 20 });
  assert.equal(sleep.status, 200, JSON.stringify(sleep.body));
  assert.deepEqual(sleep.body.result, { slept: 20 });

  await d!.client.deploy('greet', code('greet.js'), { codeKind: 'js' });
  const failed = await d!.client.invoke('greet', { name: 'cell' });
  assert.equal(failed.status, 502);
  assert.equal(failed.body.error?.code, 'init_error');
  assert.match(failed.body.error.message, /Error: GREETING is not set .* \(index\.js:7:\d+\)$/);
  assert.ok(failed.body.activation!.logs.some((l) => l.includes('GREETING=(unset)')), JSON.stringify(failed.body.activation!.logs));
  await d!.client.deploy('greet', code('greet.js'), { codeKind: 'js', env: { GREETING: 'Hello' } });
  const ok = await d!.client.invoke('greet', { name: 'cell' });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.result, { message: 'Hello, cell!' });
});

test('examples/openwhisk-client.mjs runs as written against the daemon', async () => {
  const r = await runNode([path.join(EXAMPLES, 'openwhisk-client.mjs')], { cwd: ROOT, env: { ...process.env, FAASCELL_URL: d!.url }, timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { payload: 'Hello John' });
});

test('the daemon stops clean', async () => {
  await stopAndCheck(d);
  d = undefined;
});
