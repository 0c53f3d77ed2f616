// The real daemon's HTTP API fuzzed over real sockets (fast-check): random
// methods, paths, names, query strings, headers and bodies, plus raw malformed
// HTTP. No answer may be a 5xx, none may hang, and the daemon must stay healthy.
// Only functions that do not exist are invoked: no VM is started.
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

const REQUEST_TIMEOUT_MS = 10_000;

async function send(url: string, method: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; text: string }> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
  try {
    const res = await fetch(url, { method, headers, body, signal: ctrl.signal });
    return { status: res.status, text: await res.text() };
  } finally {
    clearTimeout(timer);
  }
}

/** Raw bytes on a TCP connection; resolves with what the server sent before closing (or after a pause). */
function raw(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, 3000);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      if ((e as NodeJS.ErrnoException).code === 'ECONNRESET') resolve(got);
      else reject(e);
    });
    s.write(bytes);
  });
}

describe('API fuzz against the real daemon', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ snapshots: { enabled: false } });
  });
  after(() => stopAndCheck(d));

  test('random requests: no 5xx, no hang, JSON errors', async () => {
    const name = fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom('%', '%ZZ', '..', '%2e%2e', 'a'.repeat(300), '€uro', 'x y'));
    const path = fc.oneof(
      name.map((n) => `/v1/functions/${encodeURIComponent(n)}`),
      name.map((n) => `/v1/functions/nx-${encodeURIComponent(n)}/invoke`),
      name.map((n) => `/v1/functions/nx-${n}/evict`),
      fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([a, b]) => `/v1/activations?limit=${encodeURIComponent(a)}&function=${encodeURIComponent(b)}&x=${encodeURIComponent(a)}`),
      name.map((n) => `/v1/activations/${encodeURIComponent(n)}`),
      fc.constantFrom('/v1/status', '/v1/functions', '/healthz', '/', '/v1', '/v2/functions', '/%', '/v1/functions/%/invoke'),
    );
    const headers = fc.dictionary(fc.constantFrom('content-type', 'accept', 'authorization', 'x-a', 'content-encoding', 'accept-encoding'), fc.oneof(fc.constantFrom('application/json', 'text/plain', 'gzip', 'Bearer x', '100-continue', 'application/json; charset=latin1'), fc.stringMatching(/^[\x20-\x7e]{0,40}$/)));
    const body = fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)), fc.string({ maxLength: 200 }), fc.constant('{"source":"exports.main=()=>1","memoryMiB":"x"}'));
    let requests = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), path, headers, body, async (method, p, h, b) => {
        const withBody = !['GET', 'HEAD', 'OPTIONS'].includes(method) && b !== undefined;
        const { 'content-encoding': _ce, ...safe } = h; // (Expect and bad encodings: the raw-socket cases below)
        requests++;
        const r = await send(d.url + p, method, { 'content-type': 'application/json', ...safe }, withBody ? b : undefined);
        assert.ok(r.status < 500, `${method} ${p} ${JSON.stringify(h)} ${String(b).slice(0, 80)} → ${r.status} ${r.text.slice(0, 300)}`);
        if (r.status >= 400 && method !== 'HEAD') assert.equal(typeof (JSON.parse(r.text) as { error?: { code?: string } }).error?.code, 'string', r.text);
      }),
      { numRuns: 300 },
    );
    const st = await d.client.call<{ pool: unknown }>('GET', '/v1/status');
    assert.ok(st.pool);
    assert.ok(requests >= 300);
  });

  test('malformed HTTP on a raw socket: a 4xx or a closed connection, never a crash', async () => {
    const port = Number(new URL(d.url).port);
    const cases: Array<string | Buffer> = [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      'GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
      `GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
      'POST /v1/functions/nx/invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n0123456789',
      'POST /v1/functions/nx/invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n',
      'POST /v1/functions/nx/invoke HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{"a":',
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), // a TLS hello
      'GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /v1/functions/nx/invoke HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\nContent-Length: 2\r\n\r\n{}',
      'POST /v1/functions/nx/invoke HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nabcd',
    ];
    for (const c of cases) {
      const got = await raw(port, c);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0);
      assert.ok(status === 0 || (status >= 200 && status < 500), `${JSON.stringify(String(c).slice(0, 60))} → ${got.slice(0, 200)}`);
    }
    const h = await send(d.url + '/healthz', 'GET', {}, undefined);
    assert.equal(h.status, 200);
    assert.equal(d.proc.exitCode, null, 'the daemon exited');
  });
});
