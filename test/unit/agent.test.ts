// The guest agent on the host: the bundled agent runs as a child process with
// its channel on fd 3 (a socket pair), exactly as in the guest minus /dev/hvc0.
// One in-process test drives createAgent() over a PassThrough pair.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import type { AgentReady } from '../../src/runtimes/agent-protocol.js';
import { createAgent } from '../../guest/agent/core.js';

const root = path.resolve(import.meta.dirname, '../..');
let tmp: string;
let bundle: string;
const procs = new Set<ChildProcess>();

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
  for (const p of procs) p.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

type Reply = { id: number; ok: boolean; result?: unknown; logs?: string[]; durationMs?: number; error?: { kind: string; message: string; stack?: string } };

class LineReader {
  private buf = Buffer.alloc(0);
  private lines: string[] = [];
  private waiters: ((l: string | undefined) => void)[] = [];
  private ended = false;
  constructor(input: Readable) {
    input.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      let nl: number;
      while ((nl = this.buf.indexOf(10)) !== -1) {
        const line = this.buf.subarray(0, nl).toString('utf8');
        this.buf = this.buf.subarray(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    const end = (): void => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    };
    input.on('end', end);
    input.on('close', end);
    input.on('error', end);
  }
  next(timeoutMs = 10_000): Promise<string | undefined> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      // timeoutMs 0: wait as long as the stream is open (no timer keeps the test process alive).
      const timer = timeoutMs > 0 ? setTimeout(() => reject(new Error('timeout waiting for a line')), timeoutMs) : undefined;
      this.waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }
}

class Client {
  private nextId = 1;
  private pending = new Map<number, (r: Reply) => void>();
  readonly unmatched: Reply[] = [];
  readonly ready: Promise<AgentReady>;
  constructor(
    readonly reader: LineReader,
    readonly out: Writable,
  ) {
    this.ready = reader.next().then((l) => {
      if (!l) throw new Error('agent closed before ready');
      const r = JSON.parse(l) as AgentReady;
      void this.pump();
      return r;
    });
  }
  private async pump(): Promise<void> {
    for (;;) {
      const l = await this.reader.next(0).catch(() => undefined);
      if (l === undefined) return;
      const r = JSON.parse(l) as Reply;
      const w = this.pending.get(r.id);
      if (w) {
        this.pending.delete(r.id);
        w(r);
      } else this.unmatched.push(r);
    }
  }
  raw(line: string): void {
    this.out.write(`${line}\n`);
  }
  async request(body: Record<string, unknown>, timeoutMs = 10_000): Promise<Reply> {
    await this.ready;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout on ${String(body.op)}`)), timeoutMs);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.out.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }
  async waitUnmatched(): Promise<Reply> {
    for (let i = 0; i < 200 && this.unmatched.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const r = this.unmatched.shift();
    if (!r) throw new Error('no unmatched reply');
    return r;
  }
}

interface AgentProc extends Client {
  proc: ChildProcess;
  exited: Promise<number | null>;
}

function startAgent(): AgentProc {
  const work = fs.mkdtempSync(path.join(tmp, 'work-'));
  const proc = spawn(process.execPath, [bundle], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, FAASCELL_AGENT_CHANNEL: 'fd:3', FAASCELL_WORK_DIR: work, FAASCELL_INIT_UPTIME: '1.5' },
  });
  procs.add(proc);
  const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  void exited.then(() => procs.delete(proc));
  const ch = proc.stdio[3] as unknown as Readable & Writable;
  const c = new Client(new LineReader(ch), ch) as AgentProc;
  c.proc = proc;
  c.exited = exited;
  return c;
}

async function stopAgent(a: AgentProc): Promise<void> {
  a.out.end();
  const code = await Promise.race([a.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
  if (code === 'timeout') a.proc.kill('SIGKILL');
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const single = (code: string, name = 'index.js'): Record<string, unknown> => ({
  op: 'init',
  files: { [name]: b64(code) },
  main: name,
  entry: 'main',
  env: {},
});
const run = (params: unknown = {}): Record<string, unknown> => ({ op: 'run', activationId: 'a1', params, deadlineMs: 10_000 });

void test('ready, ping, protocol errors, state errors', async () => {
  const a = startAgent();
  try {
    const ready = await a.ready;
    assert.equal(ready.type, 'ready');
    assert.equal(ready.node, process.version);
    assert.equal(ready.uptimeMs.init, 1500);
    assert.ok(ready.uptimeMs.agentStart > 0 && ready.uptimeMs.ready >= ready.uptimeMs.agentStart);

    assert.deepEqual(await a.request({ op: 'ping' }), { id: 1, ok: true });
    const unk = await a.request({ op: 'fly' });
    assert.equal(unk.ok, false);
    assert.equal(unk.error?.kind, 'protocol');

    a.raw('this is not json');
    const bad = await a.waitUnmatched();
    assert.equal(bad.id, -1);
    assert.equal(bad.error?.kind, 'protocol');
    a.raw('[1,2,3]');
    assert.equal((await a.waitUnmatched()).error?.kind, 'protocol');
    a.raw('{"op":"ping"}');
    assert.equal((await a.waitUnmatched()).error?.kind, 'protocol');
    a.raw('   '); // blank lines (tty noise) are ignored

    const malformed = await a.request({ op: 'init', files: 'nope', main: 1 });
    assert.equal(malformed.error?.kind, 'protocol');
    const r0 = await a.request(run());
    assert.equal(r0.error?.kind, 'state');

    const init = await a.request(single('exports.main = (p) => ({ got: p })'));
    assert.equal(init.ok, true, JSON.stringify(init));
    assert.equal(typeof init.durationMs, 'number');
    const again = await a.request(single('exports.main = () => ({})'));
    assert.equal(again.error?.kind, 'state');
    // still usable after all that
    assert.deepEqual((await a.request(run({ x: 1 }))).result, { got: { x: 1 } });
  } finally {
    await stopAgent(a);
  }
});

void test('logs: console methods, stdout/stderr writes, partial lines; unicode', async () => {
  const a = startAgent();
  try {
    const code = `
      console.log('loading');
      exports.main = async (p) => {
        console.log('log', p.name);
        console.info('info');
        console.warn('warn');
        console.error('error');
        console.debug('debug');
        process.stdout.write('part1 ');
        process.stdout.write('part2\\nnext');
        process.stderr.write(Buffer.from('bytes ✓\\n'));
        return { greeting: 'héllo ' + p.name, emoji: '🎉', cjk: '漢字' };
      };`;
    const init = await a.request(single(code));
    assert.deepEqual(init.logs, ['loading']);
    const r = await a.request(run({ name: 'wörld 🌍' }));
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.result, { greeting: 'héllo wörld 🌍', emoji: '🎉', cjk: '漢字' });
    assert.deepEqual(r.logs, ['log wörld 🌍', 'info', 'warn', 'error', 'debug', 'part1 part2', 'bytes ✓', 'next']);
    assert.ok(typeof r.durationMs === 'number' && r.durationMs >= 0);
    // logs do not leak into the next run
    const r2 = await a.request(run({ name: 'x' }));
    assert.equal(r2.logs?.length, 8);
  } finally {
    await stopAgent(a);
  }
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

void test('init failures are kind "init"', async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['syntax error', single('exports.main = (p) => {'), /Unexpected|SyntaxError|end of input/],
    ['throws while loading', single('throw new Error("boom at load")'), /boom at load/],
    ['no entry', single('exports.other = () => ({})'), /no function "main"/],
    ['ESM without entry', single('export const x = 1', 'index.mjs'), /does not export a function "main"/],
    ['missing main file', { op: 'init', files: { 'a.js': b64('') }, main: 'b.js', entry: 'main', env: {} }, /ENOENT|Cannot find|no such file/],
    ['path escape', { op: 'init', files: { '../evil.js': b64('') }, main: 'index.js', entry: 'main', env: {} }, /invalid file path/],
    ['missing require', single('require("not-installed-anywhere"); exports.main = () => ({})'), /Cannot find module/],
  ];
  for (const [name, req, re] of cases) {
    await t.test(name, async () => {
      const a = startAgent();
      try {
        const r = await a.request(req);
        assert.equal(r.ok, false);
        assert.equal(r.error?.kind, 'init', JSON.stringify(r));
        assert.match(r.error?.message ?? '', re);
        // the VM is not usable after a failed init
        assert.equal((await a.request(run())).error?.kind, 'state');
        assert.equal((await a.request(single('exports.main = () => ({})'))).error?.kind, 'state');
      } finally {
        await stopAgent(a);
      }
    });
  }
});

void test('run results and application errors', async () => {
  const a = startAgent();
  try {
    const code = `
      exports.main = async (p) => {
        switch (p.mode) {
          case 'throw': throw new TypeError('bad input');
          case 'reject': return Promise.reject(new Error('async boom'));
          case 'reject-string': throw 'just a string';
          case 'undefined': return undefined;
          case 'number': return 42;
          case 'null': return null;
          case 'array': return [1, 2];
          case 'circular': { const o = {}; o.self = o; return o; }
          case 'bigint': return { n: 1n };
          case 'big': return { data: 'x'.repeat(p.size) };
          case 'timer-throw': setTimeout(() => { throw new Error('from a timer') }, 10); return new Promise(() => {});
          default: return { ok: true };
        }
      };`;
    assert.equal((await a.request(single(code))).ok, true);
    const t1 = await a.request(run({ mode: 'throw' }));
    assert.equal(t1.error?.kind, 'application');
    assert.equal(t1.error?.message, 'bad input');
    assert.match(t1.error?.stack ?? '', /TypeError: bad input/);
    assert.match((await a.request(run({ mode: 'reject' }))).error?.message ?? '', /async boom/);
    assert.equal((await a.request(run({ mode: 'reject-string' }))).error?.message, 'just a string');
    assert.deepEqual((await a.request(run({ mode: 'undefined' }))).result, {});
    assert.match((await a.request(run({ mode: 'number' }))).error?.message ?? '', /must return an object.*number/);
    assert.match((await a.request(run({ mode: 'null' }))).error?.message ?? '', /got null/);
    assert.deepEqual((await a.request(run({ mode: 'array' }))).result, [1, 2]);
    assert.match((await a.request(run({ mode: 'circular' }))).error?.message ?? '', /not JSON-serialisable/);
    assert.match((await a.request(run({ mode: 'bigint' }))).error?.message ?? '', /not JSON-serialisable/);
    const tt = await a.request(run({ mode: 'timer-throw' }));
    assert.equal(tt.error?.kind, 'application');
    assert.match(tt.error?.message ?? '', /from a timer/);

    const size = 1024 * 1024;
    const big = await a.request(run({ mode: 'big', size }), 30_000);
    assert.equal(big.ok, true);
    assert.equal((big.result as { data: string }).data.length, size);
    assert.deepEqual((await a.request(run({}))).result, { ok: true });
  } finally {
    await stopAgent(a);
  }
});

void test('large init payload and 1 MiB params', async () => {
  const a = startAgent();
  try {
    const blob = Buffer.alloc(3 * 1024 * 1024, 7);
    const files = { 'index.js': b64('const fs = require("fs"); exports.main = (p) => ({ n: p.s.length, blob: fs.statSync("blob.bin").size })'), 'blob.bin': b64(blob) };
    assert.equal((await a.request({ op: 'init', files, main: 'index.js', entry: 'main', env: {} }, 30_000)).ok, true);
    const r = await a.request(run({ s: 'é'.repeat(512 * 1024) }), 30_000);
    assert.deepEqual(r.result, { n: 512 * 1024, blob: blob.length });
  } finally {
    await stopAgent(a);
  }
});

void test('concurrent run is a state error', async () => {
  const a = startAgent();
  try {
    await a.request(single('exports.main = (p) => new Promise((r) => setTimeout(() => r({ slow: p.n }), 1000))'));
    // both written at once: the second reaches the agent while the first (1 s) runs, however slow the machine
    const first = a.request(run({ n: 1 }));
    const second = await a.request(run({ n: 2 }));
    assert.equal(second.error?.kind, 'state');
    assert.deepEqual((await first).result, { slow: 1 });
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

void test('process.exit in user code ends the agent (the guest /init then powers off)', async () => {
  const a = startAgent();
  await a.request(single('exports.main = () => { process.exit(3) }'));
  void a.request(run()).catch(() => undefined);
  const code = await Promise.race([a.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
  assert.equal(code, 3);
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
  const input = new PassThrough();
  const output = new PassThrough();
  const work = fs.mkdtempSync(path.join(tmp, 'inproc-'));
  const agent = createAgent({ input, output, workRoot: work });
  const client = new Client(new LineReader(output), input);
  agent.sendReady();
  const ready = await client.ready;
  assert.equal(ready.type, 'ready');
  assert.equal((await client.request({ op: 'ping' })).ok, true);
  assert.equal((await client.request(single('exports.main = (p) => ({ twice: p.n * 2 })'))).ok, true);
  assert.deepEqual((await client.request(run({ n: 4 }))).result, { twice: 8 });
  input.end();
  await agent.done;
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
  const mk = () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const agent = createAgent({
      input,
      output,
      workRoot: fs.mkdtempSync(path.join(tmp, 'resync-')),
      reseed: () => void events.push('js-seed'),
      setClock: async (_ms, onSet) => {
        events.push('kernel-clock');
        onSet?.();
      },
      seedKernel: async () => void events.push('kernel-seed'),
      jsClock: { correctTo: () => void events.push('js-clock'), reset: () => void events.push('js-clock-reset') },
    });
    const client = new Client(new LineReader(output), input);
    agent.sendReady();
    return { input, output, agent, client };
  };
  const seed = b64(Buffer.alloc(32, 7));

  // now: everything before the reply, the JS clock is never offset
  let a = mk();
  await a.client.ready;
  const now = await a.client.request({ op: 'resync', epochMs: Date.now(), seed });
  assert.equal(now.ok, true, JSON.stringify(now));
  assert.deepEqual(events.splice(0), ['js-seed', 'kernel-clock', 'js-clock-reset', 'kernel-seed']);
  a.input.end();
  await a.agent.done;

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
  a.input.end();
  await a.agent.done;
});

void test('resync deferred: the kernel part also runs after a second without any run', async () => {
  const events: string[] = [];
  const input = new PassThrough();
  const output = new PassThrough();
  const agent = createAgent({
    input,
    output,
    workRoot: fs.mkdtempSync(path.join(tmp, 'resync2-')),
    setClock: async (_ms, onSet) => {
      events.push('kernel-clock');
      onSet?.();
    },
    jsClock: { correctTo: () => void events.push('js-clock'), reset: () => void events.push('js-clock-reset') },
  });
  const client = new Client(new LineReader(output), input);
  agent.sendReady();
  await client.ready;
  assert.equal((await client.request({ op: 'resync', epochMs: Date.now(), seed: b64(Buffer.alloc(32)), kernel: 'deferred' })).ok, true);
  assert.deepEqual(events, ['js-clock']);
  await new Promise((r) => setTimeout(r, 1300));
  assert.deepEqual(events, ['js-clock', 'kernel-clock', 'js-clock-reset']);
  input.end();
  await agent.done;
});

void test('resync with setClockAndSeed: the kernel part is one step (one helper round trip), now and deferred', async () => {
  const events: string[] = [];
  const mk = () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const agent = createAgent({
      input,
      output,
      workRoot: fs.mkdtempSync(path.join(tmp, 'resync3-')),
      reseed: () => void events.push('js-seed'),
      setClock: async () => void events.push('UNUSED clock'),
      seedKernel: async () => void events.push('UNUSED seed'),
      setClockAndSeed: async (ms, seed, onSet) => {
        events.push(`kernel-both ${seed.length}`);
        assert.ok(Math.abs(ms - Date.now()) < 5000);
        onSet?.();
      },
      jsClock: { correctTo: () => void events.push('js-clock'), reset: () => void events.push('js-clock-reset') },
    });
    const client = new Client(new LineReader(output), input);
    agent.sendReady();
    return { input, agent, client };
  };
  const seed = b64(Buffer.alloc(32, 9));
  let a = mk();
  await a.client.ready;
  const now = await a.client.request({ op: 'resync', epochMs: Date.now(), seed });
  assert.equal(now.ok, true, JSON.stringify(now));
  assert.deepEqual(events.splice(0), ['js-seed', 'kernel-both 32', 'js-clock-reset']);
  const steps = (now as { result: Record<string, number> }).result;
  assert.ok(steps.clockMs !== undefined && steps.kernelSeedMs !== undefined, JSON.stringify(steps));
  a.input.end();
  await a.agent.done;

  a = mk();
  await a.client.ready;
  assert.equal((await a.client.request(single('exports.main = () => ({ ok: 2 })'))).ok, true);
  assert.equal((await a.client.request({ op: 'resync', epochMs: Date.now(), seed, kernel: 'deferred' })).ok, true);
  assert.deepEqual(events.splice(0), ['js-seed', 'js-clock']);
  assert.deepEqual((await a.client.request(run())).result, { ok: 2 });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(events.splice(0), ['kernel-both 32', 'js-clock-reset']);
  a.input.end();
  await a.agent.done;
});

void test('run carrying a resync: applied before user code (now: kernel part too; deferred: after the reply); malformed or failing: the function does not run', async () => {
  const events: string[] = [];
  let failKernel = false;
  const mk = () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const agent = createAgent({
      input,
      output,
      workRoot: fs.mkdtempSync(path.join(tmp, 'runresync-')),
      reseed: () => void events.push('js-seed'),
      setClockAndSeed: async (_ms, _seed, onSet) => {
        if (failKernel) throw new Error('helper gone');
        events.push('kernel');
        onSet?.();
      },
      jsClock: { correctTo: () => void events.push('js-clock'), reset: () => void events.push('js-clock-reset') },
    });
    const client = new Client(new LineReader(output), input);
    agent.sendReady();
    return { input, agent, client };
  };
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
  a.input.end();
  await a.agent.done;
});

void test('warmUp runs the resync path once as a dry run: JS reseeded, helper call marked dry, clock offset back to none', async () => {
  const events: string[] = [];
  const input = new PassThrough();
  const output = new PassThrough();
  const agent = createAgent({
    input,
    output,
    workRoot: fs.mkdtempSync(path.join(tmp, 'warmup-')),
    reseed: (seed) => void events.push(`js-seed ${seed.length}`),
    setClockAndSeed: async (_ms, _seed, onSet, dry) => {
      events.push(`kernel dry=${dry === true}`);
      onSet?.();
    },
    jsClock: { correctTo: () => void events.push('js-clock'), reset: () => void events.push('js-clock-reset') },
  });
  await agent.warmUp();
  assert.deepEqual(events, ['js-seed 32', 'kernel dry=true', 'js-clock-reset', 'js-clock', 'js-clock-reset']);
  input.end();
  await agent.done;
});
