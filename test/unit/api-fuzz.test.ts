// Property-based tests of the HTTP API (fast-check) over bodies, names, query
// parameters and headers: every answer is a JSON reply with a status below 500
// and the {error: {code, message}} shape for errors; nothing throws or hangs.
// The API runs on a real Registry (SQLite in memory); the actors behind it are
// stand-ins that answer at once (the real daemon is fuzzed in test/e2e/api-fuzz).
// Also: a function's env values never come back from the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/server.js';
import type { ActorRef, Reply } from '../../src/core/actor.js';
import type { DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import type { PerfMsg } from '../../src/perf/perf-manager.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import type { PoolMsg } from '../../src/vmpool/pool.js';
import type { ActivationRecord } from '../../src/perf/activation.js';

function ref<M>(name: string, onAsk: (msg: M) => unknown, onTell: (msg: M) => void = () => undefined): ActorRef<M> {
  return {
    name,
    stopped: false,
    tell: onTell,
    ask: async <T>(build: (r: Reply<T>) => M): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const msg = build({ resolve, reject });
        resolve(onAsk(msg) as T);
      }),
  };
}

const SECRET = 'hunter2-very-secret-value';

async function api(token?: string): Promise<{ app: FastifyInstance; invoked: string[] }> {
  const registry = new Registry(openMemoryDb(), {
    defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30_000, maxInstances: 4 },
    limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900_000, maxInstances: 64 },
    maxCodeBytes: 1024 * 1024,
  });
  const invoked: string[] = [];
  const activation = (fn: string): ActivationRecord => ({ id: 'a1', function: fn, status: 'success', timestamps: {}, totalMs: 1 }) as unknown as ActivationRecord;
  const app = await buildApi({
    registry,
    dispatcher: ref<DispatcherMsg>('dispatcher', () => undefined, (m) => {
      invoked.push(m.req.fn);
      m.req.sink.deliver({ activation: activation(m.req.fn), result: { ok: true } });
    }),
    pool: ref<PoolMsg>('pool', (m) => (m.kind === 'evictFunction' ? 0 : m.kind === 'status' ? { instances: [] } : undefined)),
    perf: ref<PerfMsg>('perf', (m) => (m.kind === 'list' || m.kind === 'idsWithPrefix' ? [] : undefined)),
    bodyLimitBytes: 64 * 1024,
    maxCodeBytes: 1024 * 1024,
    token,
    info: () => ({ version: 'test' }),
    limits: () => ({ cgroup: { mode: 'none' } }),
  });
  await app.ready();
  return { app, invoked };
}

const json = fc.jsonValue({ maxDepth: 3 });
const nameArb = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,70}$/),
  fc.constantFrom('..', '%2e%2e', 'a/b', 'x%00y', ' ', '€', 'a'.repeat(65), 'hello'),
);
const headerValue = fc.string({ maxLength: 60 }).filter((s) => /^[\t\x20-\x7e]*$/.test(s));
const headersArb = fc.dictionary(
  fc.constantFrom('content-type', 'authorization', 'accept', 'x-forwarded-for', 'content-encoding', 'x-anything', 'transfer-encoding-x'),
  fc.oneof(headerValue, fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-16', 'Bearer x', 'gzip')),
);
const bodyArb = fc.oneof(
  json.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.record({ source: fc.string({ maxLength: 50 }), env: fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer())) }).map((v) => JSON.stringify(v)),
  fc.record(
    {
      code: fc.oneof(fc.base64String({ maxLength: 40 }), fc.string({ maxLength: 20 })),
      codeKind: fc.oneof(fc.constantFrom('js', 'zip', 'tgz'), fc.string({ maxLength: 5 })),
      memoryMiB: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 5 })),
      vcpus: fc.oneof(fc.integer({ min: -3, max: 99 }), fc.constant(null)),
      timeoutMs: fc.integer(),
      maxInstances: fc.integer({ min: -1, max: 100 }),
      entry: fc.string({ maxLength: 20 }),
    },
    { requiredKeys: [] },
  ).map((v) => JSON.stringify(v)),
);
type Method = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';
const routeArb = fc.oneof(
  fc.tuple(fc.constant<Method>('PUT'), nameArb.map((n) => `/v1/functions/${encodeURIComponent(n)}`)),
  fc.tuple(fc.constantFrom<Method>('GET', 'DELETE'), nameArb.map((n) => `/v1/functions/${encodeURIComponent(n)}`)),
  fc.tuple(fc.constant<Method>('POST'), nameArb.map((n) => `/v1/functions/nx-${encodeURIComponent(n)}/invoke`)),
  fc.tuple(fc.constant<Method>('POST'), nameArb.map((n) => `/v1/functions/${encodeURIComponent(n)}/evict`)),
  fc.tuple(fc.constant<Method>('GET'), fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 })).map(([l, f]) => `/v1/activations?limit=${encodeURIComponent(l)}&function=${encodeURIComponent(f)}`)),
  fc.tuple(fc.constant<Method>('GET'), fc.string({ maxLength: 80 }).map((id) => `/v1/activations/${encodeURIComponent(id)}`)),
  // inject() needs a parseable URL: free-form paths are encoded, the malformed ones are chosen
  fc.tuple(fc.constantFrom<Method>('GET', 'PATCH', 'POST'), fc.oneof(fc.string({ maxLength: 40 }).map((p) => `/${encodeURI(p)}`), fc.constantFrom('/%', '/v1/functions/%ZZ', '/v1/functions/%/invoke', '/v1/functions/a%00b', '//', '/v1//functions'))),
  fc.tuple(fc.constant<Method>('GET'), fc.constantFrom('/v1/status', '/v1/functions', '/healthz')),
);

function checkAnswer(status: number, body: string, what: string): void {
  assert.ok(status >= 200 && status < 500, `${what} → ${status}: ${body.slice(0, 300)}`);
  if (status === 204) return;
  let v: unknown;
  assert.doesNotThrow(() => (v = JSON.parse(body)), `${what}: not JSON: ${body.slice(0, 200)}`);
  if (status >= 400) {
    const e = (v as { error?: { code?: unknown; message?: unknown } }).error;
    assert.equal(typeof e?.code, 'string', `${what}: no error.code in ${body.slice(0, 200)}`);
    assert.equal(typeof e?.message, 'string', `${what}: no error.message`);
  }
}

void test('API fuzz: no 5xx, JSON errors with a code, for any route, name, body and header', async () => {
  for (const token of [undefined, 'a-token-of-sixteen-chars']) {
    const { app, invoked } = await api(token);
    try {
      await fc.assert(
        fc.asyncProperty(routeArb, bodyArb, headersArb, async ([method, url], body, headers) => {
          const withBody = method !== 'GET' && method !== 'DELETE';
          const res = await app.inject({ method, url, headers: { 'content-type': 'application/json', ...headers }, payload: withBody ? body : undefined });
          checkAnswer(res.statusCode, res.body, `${method} ${url} ${JSON.stringify(headers)} ${body.slice(0, 80)}`);
          // without the token nothing but /healthz answers, except a URL too malformed to route (400 before any route runs)
          if (token && url !== '/healthz' && headers.authorization !== `Bearer ${token}`) {
            assert.ok(res.statusCode === 401 || (res.statusCode === 400 && (JSON.parse(res.body) as { error: { field?: string } }).error.field === 'url'), `${url} answered ${res.statusCode} without the token`);
          }
        }),
        { numRuns: 1500 },
      );
      // the invoke route answers 404 for a function that does not exist before anything is dispatched
      assert.ok(invoked.every((fn) => fn.startsWith('nx-')));
    } finally {
      await app.close();
    }
  }
});

void test('env values are never returned: deploy, get, list', async () => {
  const { app } = await api();
  try {
    const put = await app.inject({ method: 'PUT', url: '/v1/functions/sec', payload: { source: 'exports.main = () => ({})', env: { API_KEY: SECRET, OTHER: 'x' } } });
    assert.equal(put.statusCode, 201, put.body);
    for (const r of [put, await app.inject({ method: 'GET', url: '/v1/functions/sec' }), await app.inject({ method: 'GET', url: '/v1/functions' }), await app.inject({ method: 'GET', url: '/v1/status' })]) {
      assert.ok(!r.body.includes(SECRET), `secret in ${r.body}`);
    }
    const got = JSON.parse((await app.inject({ method: 'GET', url: '/v1/functions/sec' })).body) as Record<string, unknown>;
    assert.deepEqual(got.envNames, ['API_KEY', 'OTHER']);
    assert.equal(got.env, undefined);
    // a bad env entry is named by its key, the value is not echoed
    const bad = await app.inject({ method: 'PUT', url: '/v1/functions/sec', payload: { source: 'x', env: { 'BAD-KEY': SECRET } } });
    assert.equal(bad.statusCode, 400);
    assert.ok(!bad.body.includes(SECRET));
  } finally {
    await app.close();
  }
});
