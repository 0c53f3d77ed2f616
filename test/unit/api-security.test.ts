// Issue 19 through the real fastify app (stand-ins for the actors behind it): deep JSON
// refused at the API on the native and the OpenWhisk routes, foreign Host names and
// cross-site browser requests refused before anything runs, a zip bomb refused as a 400.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { buildApi } from '../../src/api/server.js';
import type { ActorRef, Reply } from '../../src/core/actor.js';
import type { DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import type { PerfMsg } from '../../src/perf/perf-manager.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import type { PoolMsg } from '../../src/vmpool/pool.js';
import { zipOneEntry } from '../helpers/archives.js';

const limits = { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 };

function actor<M>(name: string, handle: (m: M) => void): ActorRef<M> {
  return { name, stopped: false, tell: handle, ask: <T>(build: (r: Reply<T>) => M) => new Promise<T>((resolve, reject) => handle(build({ resolve, reject }))) };
}

async function node(opts: { token?: string; unix?: boolean; allowedHosts?: string[]; crossOriginPrefixes?: string[] } = {}) {
  const db = openMemoryDb();
  const registry = new Registry(db, limits);
  registry.put('hello', { code: Buffer.from('exports.main = (p) => p') });
  const invoked: unknown[] = [];
  const poolCalls: string[] = [];
  const dispatcher = actor<DispatcherMsg>('dispatcher', ({ req }) => {
    invoked.push(req.params);
    const rec: ActivationRecord = { id: req.activationId ?? 'a1', function: req.fn, functionVersion: 1, runtime: 'qemu', startPath: 'warm', status: 'success', timestamps: {}, timings: {}, totalMs: 1, logs: [] };
    req.sink.deliver({ activation: rec, result: { ok: true } });
  });
  const pool = actor<PoolMsg>('pool', (m) => {
    poolCalls.push(m.kind);
    if ('reply' in m && m.reply) (m.reply as Reply<unknown>).resolve(m.kind === 'evictFunction' ? 0 : undefined);
  });
  const perf = actor<PerfMsg>('perf', (m) => 'reply' in m && (m.reply as Reply<unknown>).resolve([]));
  const app = await buildApi({
    registry, dispatcher, pool, perf,
    bodyLimitBytes: 1 << 20, maxCodeBytes: 1 << 20, token: opts.token, info: () => ({}),
    maxJsonDepth: 50,
    allowedHosts: opts.allowedHosts,
    viaUnixSocket: () => opts.unix ?? false,
    crossOriginPrefixes: opts.crossOriginPrefixes,
    openwhisk: { db, retain: 100, options: { namespace: 'guest', blockingWaitMs: 100 } },
  });
  await app.ready();
  return { app, invoked, poolCalls, registry };
}

/** `{"a":{"a":…1…}}` as text: JSON.stringify itself cannot write 5,000 levels (the finding) */
function nested(levels: number): string {
  return '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
}
const json = (text: string) => ({ headers: { 'content-type': 'application/json' }, payload: text });

void test('deep JSON: 400 naming the field on native and OpenWhisk routes; nothing reaches the function or the registry', async () => {
  const { app, invoked, registry } = await node();
  const native = await app.inject({ method: 'POST', url: '/v1/functions/hello/invoke', ...json(`{"deep":${nested(5000)}}`) });
  assert.equal(native.statusCode, 400);
  assert.equal(native.json().error.field, 'deep');
  assert.match(native.json().error.message, /^deep\.a\.a\.a…: nested more than 50 levels deep \(api\.maxJsonDepth\)/);
  // at the limit it passes
  const fine = await app.inject({ method: 'POST', url: '/v1/functions/hello/invoke', ...json(`{"deep":${nested(49)}}`) });
  assert.equal(fine.statusCode, 200);
  assert.equal(invoked.length, 1);

  const owInvoke = await app.inject({ method: 'POST', url: '/api/v1/namespaces/_/actions/hello?blocking=true', ...json(`{"deep":${nested(5000)}}`) });
  assert.equal(owInvoke.statusCode, 400);
  assert.match(owInvoke.json().error, /^deep/);
  const exec = { kind: 'nodejs:default', code: 'function main(p) { return p }' };
  for (const field of ['parameters', 'annotations']) {
    // the finding: an OpenWhisk PUT with deep parameters or annotations answered 500
    const put = await app.inject({ method: 'PUT', url: '/api/v1/namespaces/_/actions/deep?overwrite=true', ...json(`{"exec":${JSON.stringify(exec)},"${field}":[{"key":"p","value":${nested(5000)}}]}`) });
    assert.equal(put.statusCode, 400, put.body);
    assert.match(put.json().error, new RegExp(`^${field}\\[0\\]\\.value\\.a…: nested more than 50 levels`));
  }
  assert.equal(registry.get('deep'), undefined);
  assert.equal(invoked.length, 1);
});

void test('a foreign Host (DNS rebinding) is refused with 403 on every route, whatever it carries', async () => {
  const { app, invoked, poolCalls } = await node();
  const rebind = { host: 'rebind.attacker.example:8080' };
  for (const [method, url] of [['GET', '/healthz'], ['GET', '/v1/functions'], ['POST', '/v1/functions/hello/invoke'], ['POST', '/v1/functions/hello/evict'], ['GET', '/api/v1/namespaces/_/actions']] as const) {
    const r = await app.inject({ method, url, headers: rebind });
    assert.equal(r.statusCode, 403, `${method} ${url}`);
    if (url.startsWith('/api/')) assert.match(r.json().error, /^host: Host rebind\.attacker\.example is not a name of this daemon/);
    else assert.deepEqual({ code: r.json().error.code, field: r.json().error.field }, { code: 'forbidden', field: 'host' });
  }
  assert.equal(invoked.length, 0);
  assert.deepEqual(poolCalls, []);
  // the names of this machine pass
  for (const host of ['127.0.0.1:8080', 'localhost:8080', '[::1]:8080']) assert.equal((await app.inject({ method: 'GET', url: '/v1/functions', headers: { host } })).statusCode, 200, host);
  const listed = await node({ allowedHosts: ['faas.example.org'] });
  assert.equal((await listed.app.inject({ method: 'GET', url: '/v1/functions', headers: { host: 'faas.example.org' } })).statusCode, 200);
  // over the unix socket the Host is not checked (no browser gets there)
  const unix = await node({ unix: true });
  assert.equal((await unix.app.inject({ method: 'GET', url: '/v1/functions', headers: rebind })).statusCode, 200);
});

void test('cross-site browser requests are refused with 403 before anything runs; the daemon\'s own pages pass', async () => {
  const { app, invoked, poolCalls } = await node();
  const host = '127.0.0.1:8080';
  // the finding: a cross-origin POST with no body (no CORS preflight) invoked and evicted functions
  const evil = await app.inject({ method: 'POST', url: '/v1/functions/hello/evict', headers: { host, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' } });
  assert.equal(evil.statusCode, 403);
  assert.equal(evil.json().error.field, 'sec-fetch-site');
  const noFetchMeta = await app.inject({ method: 'POST', url: '/v1/functions/hello/invoke', headers: { host, origin: 'http://evil.example', 'content-type': 'text/plain' }, payload: '' });
  assert.equal(noFetchMeta.statusCode, 403);
  assert.equal(noFetchMeta.json().error.field, 'origin');
  const otherPort = await app.inject({ method: 'POST', url: '/api/v1/namespaces/_/actions/hello', headers: { host, origin: 'http://127.0.0.1:3000', 'sec-fetch-site': 'same-site' } });
  assert.equal(otherPort.statusCode, 403);
  assert.equal(invoked.length, 0);
  assert.deepEqual(poolCalls, []);
  const own = await app.inject({ method: 'POST', url: '/v1/functions/hello/invoke', headers: { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }, payload: { x: 1 } });
  assert.equal(own.statusCode, 200);
  assert.equal(invoked.length, 1);
  // a prefix declared public (what OpenWhisk web actions are): other origins pass there, and only there
  const pub = await node({ crossOriginPrefixes: ['/v1/functions/hello/invoke'] });
  const fromPage = { host, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' };
  assert.equal((await pub.app.inject({ method: 'POST', url: '/v1/functions/hello/invoke', headers: fromPage, payload: {} })).statusCode, 200);
  assert.equal((await pub.app.inject({ method: 'POST', url: '/v1/functions/hello/evict', headers: fromPage })).statusCode, 403);
});

void test('with a token: the caller check comes first, the token is still required after it', async () => {
  const { app } = await node({ token: 't'.repeat(16) });
  assert.equal((await app.inject({ method: 'GET', url: '/v1/functions', headers: { host: 'rebind.attacker.example' } })).statusCode, 403);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/functions' })).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/functions', headers: { authorization: `Bearer ${'t'.repeat(16)}` } })).statusCode, 200);
});

void test('a zip bomb deployed through the API is a 400 naming code, on both APIs', async () => {
  const { app, registry } = await node();
  // one entry declaring 2 GiB; its data 1 MiB of zeros deflated (the daemon never inflates it)
  const bomb = zipOneEntry('index.js', deflateRawSync(Buffer.alloc(1 << 20)), 0x7fffffff);
  const native = await app.inject({ method: 'PUT', url: '/v1/functions/bomb', payload: { code: bomb.toString('base64'), codeKind: 'zip' } });
  assert.equal(native.statusCode, 400);
  assert.equal(native.json().error.field, 'code');
  assert.match(native.json().error.message, /declares 2147483647 bytes unpacked/);
  const ow = await app.inject({ method: 'PUT', url: '/api/v1/namespaces/_/actions/bomb', payload: { exec: { kind: 'nodejs:default', code: bomb.toString('base64'), binary: true } } });
  assert.equal(ow.statusCode, 400);
  assert.match(ow.json().error, /declares 2147483647 bytes unpacked/);
  assert.equal(registry.get('bomb'), undefined);
});
