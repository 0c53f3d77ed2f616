// Python functions (issue 21) through the real daemon and real microVMs booted
// from the Python image: the OpenWhisk contract (result, {error}, an exception
// with its traceback in the logs, exit during init and during a run, a timeout
// and the recovery after it, result and log size limits), a snapshot restore
// whose clones draw different random numbers and see the host's time, through
// the native API, the CLI and the OpenWhisk API (the openwhisk npm client
// creating a python:3 zip action), and a FaaSRail spec deployed in Python
// (deploy-spec --runtime python) and replayed. One daemon; the few cold boots it needs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { strToU8, zipSync } from 'fflate';
import openwhisk from 'openwhisk';
import { defaultCacheDir } from '../../src/config/schema.js';
import { findPythonImage } from '../../src/image/python.js';
import { runDeploySpec } from '../../src/cli/deploy-spec.js';
import { runReplayCommand } from '../../src/replay/replay.js';
import { FIXTURES, ROOT, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

const run = promisify(execFile);
const TOKEN = 'e2e-python-token-0123456789';
const UUID = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502';
const PY = path.join(FIXTURES, 'python');
const LOG_LIMIT = 64 * 1024;

type Activation = { startPath?: string; status: string; logs: string[]; functionRuntime?: string; vmId?: string };

describe('Python functions in their own microVMs', { timeout: 20 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    // never skipped: without the Python image this fails and says how to build it
    if (!(await findPythonImage(defaultCacheDir()))) throw new Error(`no Python image in ${defaultCacheDir()}: run \`npm run setup\` (or \`faascell image build --runtime python3\`) first`);
    d = await startDaemon({ api: { port: 0, token: TOKEN }, functionLimits: { maxLogBytes: LOG_LIMIT } });
  });
  after(() => stopAndCheck(d));

  const auth = (): { authorization: string } => ({ authorization: `Bearer ${TOKEN}` });
  const invoke = async (fn: string, params: unknown = {}): Promise<{ status: number; body: { result?: Record<string, unknown>; error?: { code: string; message: string }; activation?: Activation } }> => {
    const r = await fetch(`${d.url}/v1/functions/${fn}/invoke`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(params) });
    return { status: r.status, body: (await r.json()) as never };
  };
  const deploy = async (fn: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${d.url}/v1/functions/${fn}`, { method: 'PUT', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const evict = async (fn: string): Promise<void> => {
    await fetch(`${d.url}/v1/functions/${fn}/evict`, { method: 'POST', headers: auth() });
    for (let i = 0; i < 200; i++) {
      const st = (await (await fetch(`${d.url}/v1/status`, { headers: auth() })).json()) as { pool: { instances: { fn: string }[] } };
      if (!st.pool.instances.some((x) => x.fn === fn)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`instances of ${fn} did not stop`);
  };

  test('native API: a bad runtime is a 400 naming runtime; the contract: result, {error}, exception with its traceback in the logs, size limits', async () => {
    const bad = await deploy('contract', { source: 'def main(a): return a', runtime: 'python2' });
    assert.equal(bad.status, 400);
    assert.equal((bad.body.error as { field: string }).field, 'runtime');
    const dep = await deploy('contract', { source: readFileSync(path.join(PY, 'contract.py'), 'utf8'), runtime: 'python3', memoryMiB: 512, timeoutMs: 120_000 });
    assert.equal(dep.status, 201, JSON.stringify(dep.body));
    assert.equal(dep.body.runtime, 'python3');

    const ok = await invoke('contract', { mode: 'ok', name: 'héllo 🐍' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.result, { ok: true, name: 'héllo 🐍' });
    assert.equal(ok.body.activation?.startPath, 'cold');
    assert.equal(ok.body.activation?.functionRuntime, 'python3');
    assert.deepEqual(ok.body.activation?.logs, ['mode ok']);

    const err = await invoke('contract', { mode: 'error' });
    assert.equal(err.status, 502);
    assert.equal(err.body.error?.code, 'function_error');
    assert.match(err.body.error?.message ?? '', /the function said no/);

    const raised = await invoke('contract', { mode: 'raise', why: 42 });
    assert.equal(raised.status, 502);
    assert.equal(raised.body.error?.code, 'function_error');
    assert.match(raised.body.error?.message ?? '', /ValueError: bad input: 42/);
    const logs = raised.body.activation?.logs ?? [];
    assert.ok(logs.includes('Traceback (most recent call last):'), JSON.stringify(logs));
    assert.equal(logs.at(-1), 'ValueError: bad input: 42');
    assert.equal(raised.body.activation?.startPath, 'warm');

    const big = await invoke('contract', { mode: 'big', bytes: 2 * 1024 * 1024 });
    assert.equal(big.status, 502);
    assert.equal(big.body.error?.code, 'result_too_large');
    const many = await invoke('contract', { mode: 'logs', lines: 2000 });
    assert.equal(many.status, 200);
    assert.match(many.body.activation?.logs.at(-1) ?? '', /logs truncated: more than 65536 bytes/);
    // the VM served all of that
    assert.equal((await invoke('contract', { mode: 'ok' })).body.activation?.startPath, 'warm');
  });

  test('exit during a run is a crash with its status; a hung run times out; the function recovers from its snapshot each time', async () => {
    const exit = await invoke('contract', { mode: 'exit' });
    assert.equal(exit.status, 502);
    assert.equal(exit.body.error?.code, 'function_crashed');
    assert.match(exit.body.error?.message ?? '', /status 7/);
    const after1 = await invoke('contract', { mode: 'ok' });
    assert.equal(after1.status, 200);
    assert.equal(after1.body.activation?.startPath, 'restore');

    // init is quick (no heavy import): the cold start fits in the 15 s timeout, the hung run does not
    await deploy('hangs', { source: readFileSync(path.join(PY, 'contract.py'), 'utf8'), runtime: 'python3', memoryMiB: 512, timeoutMs: 15_000 });
    assert.equal((await invoke('hangs', { mode: 'ok' })).status, 200);
    const hung = await invoke('hangs', { mode: 'hang' });
    assert.equal(hung.status, 504, JSON.stringify(hung.body.error));
    assert.equal(hung.body.error?.code, 'timeout');
    const recovered = await invoke('hangs', { mode: 'ok' });
    assert.equal(recovered.status, 200, JSON.stringify(recovered.body.error));
    assert.equal(recovered.body.activation?.startPath, 'restore');
  });

  test('exit during init: an init failure with its exit code', async () => {
    await deploy('exits-init', { source: readFileSync(path.join(PY, 'contract.py'), 'utf8'), runtime: 'python3', memoryMiB: 512, timeoutMs: 120_000, env: { EXIT_IN_INIT: '3' } });
    const r = await invoke('exits-init', {});
    assert.equal(r.status, 502);
    assert.equal(r.body.error?.code, 'init_error');
    assert.match(r.body.error?.message ?? '', /exited the process during init \(status 3\)/);
  });

  test('restores of one snapshot draw different random numbers (random, numpy, os.urandom) and see the host\'s time', async () => {
    await deploy('rand', { source: readFileSync(path.join(PY, 'contract.py'), 'utf8'), runtime: 'python3', memoryMiB: 512, timeoutMs: 300_000, env: { IMPORT_NUMPY: '1' } });
    const cold = await invoke('rand', { mode: 'random' });
    assert.equal(cold.body.activation?.startPath, 'cold');
    const draws: Record<string, unknown>[] = [cold.body.result!];
    for (let i = 0; i < 2; i++) {
      await evict('rand');
      const before = Date.now();
      const r = await invoke('rand', { mode: 'random' });
      assert.equal(r.status, 200, JSON.stringify(r.body.error));
      assert.equal(r.body.activation?.startPath, 'restore');
      const t = Number(r.body.result!.time) * 1000;
      assert.ok(t >= before - 2000 && t <= Date.now() + 2000, `the clone's clock: ${t} vs host ${before}`);
      draws.push(r.body.result!);
    }
    for (const key of ['random', 'np_random', 'urandom']) {
      const values = draws.map((x) => x[key]);
      assert.equal(new Set(values).size, values.length, `${key}: ${JSON.stringify(values)}`);
    }
  });

  test('CLI: faascell deploy fn handler.py --runtime python3, invoke, ls', async () => {
    const env = { ...process.env, FAASCELL_URL: d.url, FAASCELL_TOKEN: TOKEN };
    const cli = (...args: string[]): Promise<{ stdout: string; stderr: string }> => run(process.execPath, [path.join(ROOT, 'bin', 'faascell.js'), ...args], { env });
    const dep = await cli('deploy', 'hello-py', path.join(PY, 'hello.py'), '--runtime', 'python3');
    assert.match(dep.stdout, /deployed hello-py version 1 \(python3,/);
    const inv = await cli('invoke', 'hello-py', '{"name":"CLI"}');
    assert.deepEqual(JSON.parse(inv.stdout), { payload: 'Hello, CLI!' });
    assert.match(inv.stderr, /hello-py \(python3\) success cold/);
    const ls = await cli('ls');
    assert.match(ls.stdout, /^hello-py\t1\tpython3\t256MiB/m);
    assert.match(ls.stdout, /^contract\t1\tpython3\t512MiB/m);
    await assert.rejects(cli('deploy', 'x', path.join(PY, 'hello.py'), '--runtime', 'cobol'), (e: { stderr: string }) => /error \(400 bad_request\): runtime: must be one of nodejs20, python3.*\[field: runtime\]/.test(e.stderr));
  });

  test('OpenWhisk API: the openwhisk client creates a python:3 zip action (__main__.py and a module beside it) and invokes it', async () => {
    const ow = openwhisk({ apihost: d.url, api_key: `${UUID}:${TOKEN}` });
    const zip = Buffer.from(
      zipSync({
        '__main__.py': strToU8('import greeting\n\ndef handler(args):\n    print("zip action called")\n    return {"payload": greeting.greet(args.get("name", "stranger"))}\n'),
        'greeting.py': strToU8('def greet(name):\n    return "Hello " + name + " from a zip"\n'),
      }),
    );
    const created = await ow.actions.create({ name: 'pyzip', action: zip, kind: 'python:3', exec: { main: 'handler' }, limits: { timeout: 120_000, memory: 256 } } as never);
    assert.equal(created.exec.kind, 'python:3');
    const a = (await ow.actions.invoke({ name: 'pyzip', blocking: true, params: { name: 'OW' } })) as unknown as { response: { success: boolean; result: { payload: string } }; logs: string[]; annotations: { key: string; value: unknown }[] };
    assert.equal(a.response.success, true);
    assert.equal(a.response.result.payload, 'Hello OW from a zip');
    assert.ok(a.logs.some((l) => l.includes('zip action called')), JSON.stringify(a.logs));
    assert.equal(a.annotations.find((x) => x.key === 'kind')?.value, 'python:3');
    const got = await ow.actions.get({ name: 'pyzip' });
    assert.equal(got.exec.kind, 'python:3');
    const refused = await ow.actions.create({ name: 'py2', action: 'def main(a): return a', kind: 'python:2' }).then(() => undefined, (e: { statusCode?: number; message: string }) => e);
    assert.equal(refused?.statusCode, 400);
  });

  test('a FaaSRail spec deployed in Python (deploy-spec --runtime python) and replayed: every request answered by the Python FunctionBench functions', async () => {
    const spec = path.join(ROOT, 'test', 'fixtures', 'traces', 'faasrail-spec.csv');
    const plan = await runDeploySpec({ spec, url: d.url, token: TOKEN, runtime: 'python', write: () => undefined });
    const { functions } = (await (await fetch(`${d.url}/v1/functions`, { headers: auth() })).json()) as { functions: { name: string; runtime: string }[] };
    for (const p of plan) assert.equal(functions.find((f) => f.name === p.name)?.runtime, 'python3', p.name);
    const out = path.join(d.dir, 'records-python.jsonl');
    const s = await runReplayCommand({ trace: spec, format: 'faasrail', url: d.url, token: TOKEN, compress: 4, out, json: true, seed: 3, write: () => undefined });
    const records = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { status: number; error?: string });
    assert.equal(s.sent, s.scheduled);
    assert.equal(s.errors, 0, JSON.stringify(records.filter((r) => r.status !== 200).slice(0, 3)));
    // the pyaes row ran the pyaes package's AES (Python), with the row's payload
    const r = await invoke(plan[1]!.name, { message_length: 64, num_iterations: 2 });
    assert.equal(r.status, 200, JSON.stringify(r.body.error));
    assert.equal(r.body.result?.message_length, 64);
    assert.equal(r.body.activation?.functionRuntime, 'python3');
  });
});
