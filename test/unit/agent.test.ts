// The Node guest agent on the host: what only it has (module shapes, crypto
// mixing, the deferred resync, the in-process createAgent). The protocol both
// agents share is tested against both in agent-protocol.test.ts.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { createAgent } from '../../guest/agent/core.js';
import { type AgentProc, agentProcs, b64, Client, LineReader, PROJECT_ROOT as root, runReq as run, startAgentProcess, stopAgent } from '../helpers/agent-process.js';

let tmp: string;
let bundle: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-test-'));
  bundle = path.join(tmp, 'agent.mjs');
  await build({
    entryPoints: [path.join(root, 'guest/agent/agent.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    logLevel: 'silent',
  });
});

after(() => {
  for (const p of agentProcs) p.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

const startAgent = (): AgentProc => startAgentProcess([process.execPath, bundle], tmp);
const single = (code: string, name = 'index.js'): Record<string, unknown> => ({
  op: 'init',
  files: { [name]: b64(code) },
  main: name,
  entry: 'main',
  env: {},
});

type AgentHooks = Omit<Parameters<typeof createAgent>[0], 'input' | 'output' | 'workRoot'>;

/** An agent created in this process over a stream pair, ready sent, with a client on the other end. */
function inProcessAgent(workPrefix: string, hooks: AgentHooks = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  const agent = createAgent({ input, output, workRoot: fs.mkdtempSync(path.join(tmp, workPrefix)), ...hooks });
  const client = new Client(new LineReader(output), input);
  agent.sendReady();
  const close = async (): Promise<void> => {
    input.end();
    await agent.done;
  };
  return { input, output, agent, client, close };
}

/** The JS clock hooks, recording what they were asked to do. */
const jsClockInto = (events: string[]) => ({
  correctTo: () => void events.push('js-clock'),
  reset: () => void events.push('js-clock-reset'),
});

void test('module shapes: CommonJS variants, plain script, ES modules', async (t) => {
  const cases: { name: string; files: Record<string, string>; main: string; entry?: string }[] = [
    { name: 'exports.main', files: { 'index.js': 'exports.main = (p) => ({ v: "exports.main", p })' }, main: 'index.js' },
    { name: 'module.exports = fn', files: { 'index.js': 'module.exports = (p) => ({ v: "fn", p })' }, main: 'index.js' },
    { name: 'module.exports.main', files: { 'index.js': 'module.exports.main = function (p) { return { v: "m.e.main", p } }' }, main: 'index.js' },
    { name: 'module.exports = { main }', files: { 'a.cjs': 'function main(p) { return { v: "obj", p } }\nmodule.exports = { main }' }, main: 'a.cjs' },
    { name: 'plain script', files: { 'action.js': '// OpenWhisk style\nfunction main(params) {\n  return { v: "plain", p: params }\n}' }, main: 'action.js' },
    { name: 'plain script, custom entry', files: { 'index.js': 'function handler(p) { return { v: "handler", p } }' }, main: 'index.js', entry: 'handler' },
    { name: 'shebang', files: { 'index.js': '#!/usr/bin/env node\nexports.main = (p) => ({ v: "shebang", p })' }, main: 'index.js' },
    { name: '.mjs export function', files: { 'index.mjs': 'export function main(p) { return { v: "mjs", p } }' }, main: 'index.mjs' },
    { name: '.js with ESM syntax', files: { 'index.js': 'import os from "node:os";\nexport default async function (p) { return { v: "esm-default", p, t: typeof os.cpus } }' }, main: 'index.js' },
    {
      name: '"type": "module" with default object',
      files: { 'package.json': '{"type":"module"}', 'index.js': 'const x = 1;\nexport default { main: (p) => ({ v: "esm-obj", p }) }' },
      main: 'index.js',
    },
    { name: 'transpiled ESM (exports.default)', files: { 'index.js': 'Object.defineProperty(exports, "__esModule", { value: true });\nexports.default = (p) => ({ v: "ts", p })' }, main: 'index.js' },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const a = startAgent();
      try {
        const files = Object.fromEntries(Object.entries(c.files).map(([k, v]) => [k, b64(v)]));
        const init = await a.request({ op: 'init', files, main: c.main, entry: c.entry ?? 'main', env: {} });
        assert.equal(init.ok, true, JSON.stringify(init));
        const r = await a.request(run({ n: 1 }));
        assert.equal(r.ok, true, JSON.stringify(r));
        assert.equal((r.result as { p: unknown }).p !== undefined, true);
        assert.deepEqual((r.result as { p: unknown }).p, { n: 1 });
      } finally {
        await stopAgent(a);
      }
    });
  }
});

void test('zip-style package: nested main, relative require, node_modules, data files, env, cwd', async () => {
  const a = startAgent();
  try {
    const files = {
      'package.json': b64('{"name":"pkg","main":"lib/index.js"}'),
      'lib/index.js': b64(`
        const util = require('./util');
        const dep = require('leftpad-ish');
        const fs = require('fs');
        exports.main = (p) => ({
          util: util.twice(p.n),
          dep: dep('7', 3),
          data: JSON.parse(fs.readFileSync('data/config.json', 'utf8')).answer,
          env: process.env.GREETING,
          esm: typeof require('./esm.mjs').ok,
        });`),
      'lib/util.js': b64('exports.twice = (n) => n * 2'),
      'lib/esm.mjs': b64('export const ok = () => 1'),
      'node_modules/leftpad-ish/package.json': b64('{"name":"leftpad-ish","main":"main.js"}'),
      'node_modules/leftpad-ish/main.js': b64("module.exports = (s, n) => s.padStart(n, '0')"),
      'data/config.json': b64('{"answer":42}'),
    };
    const init = await a.request({ op: 'init', files, main: 'lib/index.js', entry: 'main', env: { GREETING: 'hi' } });
    assert.equal(init.ok, true, JSON.stringify(init));
    const r = await a.request(run({ n: 21 }));
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.result, { util: 42, dep: '007', data: 42, env: 'hi', esm: 'function' });
  } finally {
    await stopAgent(a);
  }
});

void test('init failures only the Node agent has: an ES module without the entry', async () => {
  const a = startAgent();
  try {
    const r = await a.request(single('export const x = 1', 'index.mjs'));
    assert.equal(r.error?.kind, 'init', JSON.stringify(r));
    assert.match(r.error?.message ?? '', /does not export a function "main"/);
    assert.equal(r.error?.stack, undefined);
  } finally {
    await stopAgent(a);
  }
});

void test('run results and application errors of JavaScript: rejections, null, bigint, a throwing timer', async () => {
  const a = startAgent();
  try {
    const code = `
      exports.main = async (p) => {
        switch (p.mode) {
          case 'reject': return Promise.reject(new Error('async boom'));
          case 'reject-string': throw 'just a string';
          case 'null': return null;
          case 'bigint': return { n: 1n };
          case 'timer-throw': setTimeout(() => { throw new Error('from a timer') }, 10); return new Promise(() => {});
          default: return { ok: true };
        }
      };`;
    assert.equal((await a.request(single(code))).ok, true);
    assert.match((await a.request(run({ mode: 'reject' }))).error?.message ?? '', /async boom/);
    assert.equal((await a.request(run({ mode: 'reject-string' }))).error?.message, 'just a string');
    assert.match((await a.request(run({ mode: 'null' }))).error?.message ?? '', /got null/);
    assert.match((await a.request(run({ mode: 'bigint' }))).error?.message ?? '', /not JSON-serialisable/);
    const tt = await a.request(run({ mode: 'timer-throw' }));
    assert.equal(tt.error?.kind, 'application');
    assert.match(tt.error?.message ?? '', /from a timer/);
    assert.deepEqual((await a.request(run({}))).result, { ok: true });
  } finally {
    await stopAgent(a);
  }
});

void test('stray rejections and logs after a run do not kill the agent; they show up in the next run', async () => {
  const a = startAgent();
  try {
    // the stray timer leaves a marker once it has logged and rejected: the next run is sent after that, not after a guess
    const marker = path.join(tmp, `leaked-${process.pid}`);
    const code = `exports.main = (p) => {
      if (p.leak) {
        setTimeout(() => { console.log('late log'); Promise.reject(new Error('nobody catches me')); require('fs').writeFileSync(p.leak, ''); }, 20);
      }
      return { ok: 1 };
    }`;
    await a.request(single(code));
    assert.deepEqual((await a.request(run({ leak: marker }))).logs, []);
    for (let i = 0; i < 3000 && !fs.existsSync(marker); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(fs.existsSync(marker), 'the stray timer ran');
    const next = await a.request(run({}));
    assert.equal(next.ok, true);
    assert.equal(next.logs?.[0], 'late log');
    assert.match(next.logs?.[1] ?? '', /unhandled promise rejection: Error: nobody catches me/);
  } finally {
    await stopAgent(a);
  }
});

void test('resync reseeds Math.random and crypto helpers', async () => {
  const code = `const c = require('crypto');
    exports.main = () => ({ r: [Math.random(), Math.random()], uuid: c.randomUUID(), wuuid: globalThis.crypto.randomUUID(),
      int: c.randomInt(10, 20), bytes: c.randomBytes(8).toString('hex'), gv: Array.from(crypto.getRandomValues(new Uint8Array(4))),
      fill: c.randomFillSync(Buffer.alloc(6), 2, 2).toString('hex') })`;
  const seedA = b64(Buffer.alloc(32, 1));
  const seedB = b64(Buffer.alloc(32, 2));
  const results: { r: number[]; uuid: string; wuuid: string; int: number; bytes: string; gv: number[]; fill: string }[] = [];
  for (const seed of [seedA, seedA, seedB]) {
    const a = startAgent();
    try {
      await a.request(single(code));
      const rs = await a.request({ op: 'resync', epochMs: Date.now(), seed });
      assert.equal(rs.ok, true, JSON.stringify(rs));
      const r = await a.request(run());
      assert.equal(r.ok, true, JSON.stringify(r));
      results.push(r.result as (typeof results)[number]);
    } finally {
      await stopAgent(a);
    }
  }
  const [x, y, z] = results as [(typeof results)[number], (typeof results)[number], (typeof results)[number]];
  assert.deepEqual(x.r, y.r, 'same seed, same Math.random sequence');
  assert.notDeepEqual(x.r, z.r, 'different seed, different sequence');
  for (const v of [...x.r, ...z.r]) assert.ok(v >= 0 && v < 1);
  const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(x.uuid, uuidRe);
  assert.match(x.wuuid, uuidRe);
  assert.ok(x.int >= 10 && x.int < 20);
  assert.equal(x.bytes.length, 16);
  assert.equal(x.gv.length, 4);
  assert.match(x.fill, /^0000[0-9a-f]{4}0000$/, 'randomFillSync only touches its range');
});

void test('createAgent over a stream pair (in-process, no capture)', async () => {
  const { output, client, close } = inProcessAgent('inproc-');
  const ready = await client.ready;
  assert.equal(ready.type, 'ready');
  assert.equal((await client.request({ op: 'ping' })).ok, true);
  assert.equal((await client.request(single('exports.main = (p) => ({ twice: p.n * 2 })'))).ok, true);
  assert.deepEqual((await client.request(run({ n: 4 }))).result, { twice: 8 });
  await close();
  output.end();
});

void test('installRandomness: seeded Math.random is deterministic per seed and roughly uniform; uninstall restores', async () => {
  const { installRandomness } = await import('../../guest/agent/random.js');
  const crypto = await import('node:crypto');
  const origRandom = Math.random;
  const origBytes = crypto.default.randomBytes;
  const r = installRandomness(Buffer.alloc(32, 0));
  try {
    const draw = (seed: Buffer, n: number): number[] => {
      r.reseed(seed);
      return Array.from({ length: n }, () => Math.random());
    };
    const base = Buffer.alloc(32, 0);
    const oneBit = Buffer.from(base);
    oneBit[31] = 1;
    assert.deepEqual(draw(base, 5), draw(base, 5));
    assert.notDeepEqual(draw(base, 5), draw(oneBit, 5));
    const xs = draw(crypto.randomBytes(32), 20000);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    // Patched crypto still produces the requested sizes; XOR changes output vs. the raw DRBG is not observable here.
    assert.equal(crypto.default.randomBytes(33).length, 33);
    await new Promise<void>((resolve, reject) =>
      crypto.default.randomBytes(7, (err, buf) => (err ? reject(err) : (assert.equal(buf.length, 7), resolve()))),
    );
    const arr = new Uint16Array(4);
    await new Promise<void>((resolve, reject) => crypto.default.randomFill(arr, 1, 2, (err) => (err ? reject(err) : resolve())));
    assert.equal(arr[0], 0);
    assert.equal(arr[3], 0);
  } finally {
    r.uninstall();
  }
  assert.equal(Math.random, origRandom);
  assert.equal(crypto.default.randomBytes, origBytes);
});

void test('resync: kernel now (before the reply) vs deferred (after the next run replied)', async () => {
  const events: string[] = [];
  const mk = () =>
    inProcessAgent('resync-', {
      reseed: () => void events.push('js-seed'),
      setClock: async (_ms, onSet) => {
        events.push('kernel-clock');
        onSet?.();
      },
      seedKernel: async () => void events.push('kernel-seed'),
      jsClock: jsClockInto(events),
    });
  const seed = b64(Buffer.alloc(32, 7));

  // now: everything before the reply, the JS clock is never offset
  let a = mk();
  await a.client.ready;
  const now = await a.client.request({ op: 'resync', epochMs: Date.now(), seed });
  assert.equal(now.ok, true, JSON.stringify(now));
  assert.deepEqual(events.splice(0), ['js-seed', 'kernel-clock', 'js-clock-reset', 'kernel-seed']);
  await a.close();

  // deferred: the reply comes after the JS part; the kernel part follows the next run's reply
  a = mk();
  await a.client.ready;
  assert.equal((await a.client.request(single('exports.main = () => ({ ok: 1 })'))).ok, true);
  const def = await a.client.request({ op: 'resync', epochMs: Date.now(), seed, kernel: 'deferred' });
  assert.equal(def.ok, true, JSON.stringify(def));
  assert.deepEqual(events.splice(0), ['js-seed', 'js-clock']);
  assert.deepEqual((await a.client.request(run())).result, { ok: 1 });
  await new Promise((r) => setTimeout(r, 50));
  // the kernel clock is set and the JS offset dropped in one synchronous step
  assert.deepEqual(events.splice(0), ['kernel-clock', 'js-clock-reset', 'kernel-seed']);

  // a bad kernel mode is refused, naming the field
  const bad = await a.client.request({ op: 'resync', epochMs: Date.now(), seed, kernel: 'later' });
  assert.equal(bad.ok, false);
  assert.match(JSON.stringify(bad), /kernel/);
  await a.close();
});

void test('resync deferred: the kernel part also runs after a second without any run', async () => {
  const events: string[] = [];
  const { client, close } = inProcessAgent('resync2-', {
    setClock: async (_ms, onSet) => {
      events.push('kernel-clock');
      onSet?.();
    },
    jsClock: jsClockInto(events),
  });
  await client.ready;
  assert.equal((await client.request({ op: 'resync', epochMs: Date.now(), seed: b64(Buffer.alloc(32)), kernel: 'deferred' })).ok, true);
  assert.deepEqual(events, ['js-clock']);
  await new Promise((r) => setTimeout(r, 1300));
  assert.deepEqual(events, ['js-clock', 'kernel-clock', 'js-clock-reset']);
  await close();
});

void test('resync with setClockAndSeed: the kernel part is one step (one helper round trip), now and deferred', async () => {
  const events: string[] = [];
  const mk = () =>
    inProcessAgent('resync3-', {
      reseed: () => void events.push('js-seed'),
      setClock: async () => void events.push('UNUSED clock'),
      seedKernel: async () => void events.push('UNUSED seed'),
      setClockAndSeed: async (ms, seed, onSet) => {
        events.push(`kernel-both ${seed.length}`);
        assert.ok(Math.abs(ms - Date.now()) < 5000);
        onSet?.();
      },
      jsClock: jsClockInto(events),
    });
  const seed = b64(Buffer.alloc(32, 9));
  let a = mk();
  await a.client.ready;
  const now = await a.client.request({ op: 'resync', epochMs: Date.now(), seed });
  assert.equal(now.ok, true, JSON.stringify(now));
  assert.deepEqual(events.splice(0), ['js-seed', 'kernel-both 32', 'js-clock-reset']);
  const steps = (now as { result: Record<string, number> }).result;
  assert.ok(steps.clockMs !== undefined && steps.kernelSeedMs !== undefined, JSON.stringify(steps));
  await a.close();

  a = mk();
  await a.client.ready;
  assert.equal((await a.client.request(single('exports.main = () => ({ ok: 2 })'))).ok, true);
  assert.equal((await a.client.request({ op: 'resync', epochMs: Date.now(), seed, kernel: 'deferred' })).ok, true);
  assert.deepEqual(events.splice(0), ['js-seed', 'js-clock']);
  assert.deepEqual((await a.client.request(run())).result, { ok: 2 });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(events.splice(0), ['kernel-both 32', 'js-clock-reset']);
  await a.close();
});

void test('run carrying a resync: applied before user code (now: kernel part too; deferred: after the reply); malformed or failing: the function does not run', async () => {
  const events: string[] = [];
  let failKernel = false;
  const mk = () =>
    inProcessAgent('runresync-', {
      reseed: () => void events.push('js-seed'),
      setClockAndSeed: async (_ms, _seed, onSet) => {
        if (failKernel) throw new Error('helper gone');
        events.push('kernel');
        onSet?.();
      },
      jsClock: jsClockInto(events),
    });
  const seed = b64(Buffer.alloc(32, 3));
  const a = mk();
  await a.client.ready;
  // the function records that it ran
  assert.equal((await a.client.request(single('exports.main = () => { globalThis.__ran = (globalThis.__ran || 0) + 1; return { ran: globalThis.__ran }; }'))).ok, true);
  const now = await a.client.request({ ...run(), resync: { epochMs: Date.now(), seed } });
  assert.equal(now.ok, true, JSON.stringify(now));
  assert.deepEqual((now as { result: unknown }).result, { ran: 1 });
  assert.ok((now as { resync?: Record<string, number> }).resync?.kernelSeedMs !== undefined, JSON.stringify(now));
  assert.deepEqual(events.splice(0), ['js-seed', 'kernel', 'js-clock-reset']);

  const def = await a.client.request({ ...run(), resync: { epochMs: Date.now(), seed, kernel: 'deferred' } });
  assert.deepEqual((def as { result: unknown }).result, { ran: 2 });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(events.splice(0), ['js-seed', 'js-clock', 'kernel', 'js-clock-reset']);

  const bad = await a.client.request({ ...run(), resync: { epochMs: 'soon', seed } });
  assert.equal(bad.ok, false);
  assert.match(JSON.stringify(bad), /run\.resync needs epochMs/);
  failKernel = true;
  const failed = await a.client.request({ ...run(), resync: { epochMs: Date.now(), seed } });
  assert.equal(failed.ok, false);
  assert.equal((failed as { error: { kind: string } }).error.kind, 'state');
  failKernel = false;
  // neither of the last two ran the function
  assert.deepEqual(((await a.client.request(run())) as { result: unknown }).result, { ran: 3 });
  await a.close();
});

void test('warmUp runs the resync path once as a dry run: JS reseeded, helper call marked dry, clock offset back to none', async () => {
  const events: string[] = [];
  // no client: a warm-up happens before the agent says it is ready
  const input = new PassThrough();
  const agent = createAgent({
    input,
    output: new PassThrough(),
    workRoot: fs.mkdtempSync(path.join(tmp, 'warmup-')),
    reseed: (seed) => void events.push(`js-seed ${seed.length}`),
    setClockAndSeed: async (_ms, _seed, onSet, dry) => {
      events.push(`kernel dry=${dry === true}`);
      onSet?.();
    },
    jsClock: jsClockInto(events),
  });
  await agent.warmUp();
  assert.deepEqual(events, ['js-seed 32', 'kernel dry=true', 'js-clock-reset', 'js-clock', 'js-clock-reset']);
  input.end();
  await agent.done;
});
