// Issue 19 (slow clients) and the unix-socket listener, on the real fastify app and real
// sockets (loopback TCP and a unix socket in a temporary directory); the actors behind the
// API are stand-ins. Timeouts here are short; every wait is bounded.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import type { HttpLimits } from '../../src/api/http-limits.js';
import type { ActorRef, Reply } from '../../src/core/actor.js';
import type { DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { HttpSource } from '../../src/sources/http.js';

const LIMITS: HttpLimits = { headersTimeoutMs: 400, requestTimeoutMs: 800, keepAliveTimeoutMs: 300, maxConnections: 40 };

function actor<M>(name: string, handle: (m: M) => void): ActorRef<M> {
  return { name, stopped: false, tell: handle, ask: <T>(build: (r: Reply<T>) => M) => new Promise<T>((resolve, reject) => handle(build({ resolve, reject }))) };
}

async function daemon(t: { after: (f: () => Promise<void> | void) => void }, opts: { tcp?: boolean } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-http-'));
  const registry = new Registry(openMemoryDb(), { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 });
  registry.put('slow', { code: Buffer.from('exports.main = () => 1') });
  // the "function" answers after params.ms
  const dispatcher = actor<DispatcherMsg>('dispatcher', ({ req }) => {
    const rec: ActivationRecord = { id: 'a', function: req.fn, functionVersion: 1, runtime: 'qemu', status: 'success', timestamps: {}, timings: {}, totalMs: 0, logs: [] };
    setTimeout(() => req.sink.deliver({ activation: rec, result: { done: true } }), (req.params as { ms?: number }).ms ?? 0);
  });
  const unixConnections = new WeakSet<net.Socket>();
  const app = await buildApi({ registry, dispatcher, pool: actor('pool', () => undefined), perf: actor('perf', () => undefined), bodyLimitBytes: 1 << 20, maxCodeBytes: 1 << 20, info: () => ({}), http: LIMITS, viaUnixSocket: (s) => unixConnections.has(s) });
  const sock = path.join(dir, 'api.sock');
  const src = new HttpSource(app, { tcp: opts.tcp === false ? undefined : { host: '127.0.0.1', port: 0 }, socket: { path: sock }, limits: LIMITS, unixConnections });
  await src.start();
  t.after(async () => {
    await src.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = opts.tcp === false ? 0 : Number(new URL(src.url).port);
  return { src, sock, port, dir };
}

function get(target: { port?: number; socketPath?: string }, p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', ...target, path: p, headers, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}

/** A connection that resolves `closed` when the server ends it (bounded: fails after 20 s). */
function slowSocket(target: { port?: number; path?: string }, first: string): { sock: net.Socket; closed: Promise<string> } {
  const sock = target.path ? net.connect(target.path) : net.connect(target.port!, '127.0.0.1');
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString()));
  sock.on('connect', () => sock.write(first));
  const closed = new Promise<string>((resolve, reject) => {
    const bound = setTimeout(() => {
      sock.destroy();
      reject(new Error('the server kept a slow socket open for 20 s'));
    }, 20_000);
    sock.on('close', () => {
      clearTimeout(bound);
      resolve(got);
    });
    sock.on('error', () => undefined);
  });
  return { sock, closed };
}

void test('slowloris: sockets that never finish their headers or body are closed (408), on TCP and the unix socket; the API keeps answering', async (t) => {
  const d = await daemon(t);
  const slow: Array<Promise<string>> = [];
  for (let i = 0; i < 15; i++) {
    slow.push(slowSocket({ port: d.port }, 'GET /v1/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ').closed);
    slow.push(slowSocket({ path: d.sock }, 'GET /v1/functions HTTP/1.1\r\nHost: localhost\r\nX-Slow: ').closed);
  }
  // a body that trickles in: headers complete, body never does
  const trickle = slowSocket({ port: d.port }, 'POST /v1/functions/slow/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
  // the trickle starts once the request's head is written (slowSocket writes it on 'connect', registered first):
  // a space written before a slow connect would be sent ahead of the request line (a 400, not the 408 asserted)
  let timer: NodeJS.Timeout | undefined;
  trickle.sock.once('connect', () => (timer = setInterval(() => trickle.sock.write(' '), 100)));
  t.after(() => clearInterval(timer));
  slow.push(trickle.closed);
  // meanwhile the API answers
  assert.equal((await get({ port: d.port }, '/healthz')).status, 200);
  assert.equal((await get({ socketPath: d.sock }, '/healthz')).status, 200);
  const answers = await Promise.all(slow);
  clearInterval(timer);
  for (const a of answers) assert.match(a, /^$|^HTTP\/1\.1 408/, 'closed, with 408 when anything is said');
  assert.ok(answers.some((a) => a.startsWith('HTTP/1.1 408')));
  assert.equal((await get({ port: d.port }, '/healthz')).status, 200);
});

void test('an answer that takes longer than requestTimeoutMs is still delivered (the wait is not the client\'s)', async (t) => {
  const d = await daemon(t);
  const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const body = JSON.stringify({ ms: LIMITS.requestTimeoutMs * 3 });
    const req = http.request({ host: '127.0.0.1', port: d.port, method: 'POST', path: '/v1/functions/slow/invoke', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, agent: false }, (r) => {
      let b = '';
      r.on('data', (x: Buffer) => (b += x.toString()));
      r.on('end', () => resolve({ status: r.statusCode!, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body).result, { done: true });
});

void test('idle kept-alive sockets are closed; connections beyond maxConnections are closed at once', async (t) => {
  const d = await daemon(t);
  const idle = slowSocket({ port: d.port }, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.match(await idle.closed, /^HTTP\/1\.1 200/);
  // fill the listener with silent sockets, then one more
  const held: net.Socket[] = [];
  t.after(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < LIMITS.maxConnections; i++) {
    const s = net.connect(d.port, '127.0.0.1');
    held.push(s);
    await new Promise((r) => s.once('connect', r));
  }
  await new Promise((r) => setTimeout(r, 50));
  const extra = slowSocket({ port: d.port }, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.equal(await extra.closed, '', 'closed without an answer');
  // and they too are reclaimed: afterwards the API answers again
  for (const s of held) s.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await get({ port: d.port }, '/healthz')).status, 200);
});

void test('the unix socket: mode 0600, removed at stop; a stale one is replaced, a live one is an error; socket-only mode', async (t) => {
  const d = await daemon(t, { tcp: false });
  assert.equal(d.src.url, `unix:${d.sock}`);
  assert.equal(statSync(d.sock).mode & 0o777, 0o600);
  assert.equal((await get({ socketPath: d.sock }, '/healthz', { host: 'anything.example' })).status, 200);
  // a second daemon on the same path refuses to start
  const app2 = await buildApi({ registry: new Registry(openMemoryDb(), { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 }), dispatcher: actor('d', () => undefined), pool: actor('p', () => undefined), perf: actor('f', () => undefined), bodyLimitBytes: 1000, maxCodeBytes: 1000, info: () => ({}) });
  const second = new HttpSource(app2, { socket: { path: d.sock }, limits: LIMITS });
  await assert.rejects(second.start(), /another process listens on/);
  await app2.close();
  await d.src.stop();
  assert.equal(existsSync(d.sock), false, 'removed at stop');
  // what a killed daemon leaves: a socket file nobody listens on (a process that listened, killed with SIGKILL)
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(d.sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((r) => child.stdout.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.equal(existsSync(d.sock), true, 'left behind');
  const app3 = await buildApi({ registry: new Registry(openMemoryDb(), { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 }), dispatcher: actor('d', () => undefined), pool: actor('p', () => undefined), perf: actor('f', () => undefined), bodyLimitBytes: 1000, maxCodeBytes: 1000, info: () => ({}) });
  const third = new HttpSource(app3, { socket: { path: d.sock }, limits: LIMITS });
  await third.start();
  assert.equal((await get({ socketPath: d.sock }, '/healthz')).status, 200);
  await third.stop();
});
