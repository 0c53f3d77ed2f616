// Issue 19 (DNS rebinding, cross-site requests): which callers the API refuses, a pure decision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkCaller, hostName } from '../../src/api/request-guard.js';

const tcp = (host: string | undefined, extra: { origin?: string; secFetchSite?: string } = {}) => ({ host, viaUnixSocket: false, ...extra });
const refused = (o: ReturnType<typeof checkCaller>): string | undefined => (o.ok ? undefined : o.field);

void test('Host: localhost names and IP literals pass; other names only when allowed', () => {
  for (const h of ['localhost', 'localhost:8080', 'LOCALHOST:1', 'api.localhost:80', '127.0.0.1:8080', '127.9.9.9', '[::1]:8080', '10.0.0.5:8080', undefined]) {
    assert.equal(refused(checkCaller(tcp(h), [])), undefined, String(h));
  }
  for (const h of ['rebind.attacker.example', 'rebind.attacker.example:8080', 'localhost.attacker.example', '127.0.0.1.nip.io:8080', 'a@127.0.0.1', 'x y', '']) {
    assert.equal(refused(checkCaller(tcp(h), [])), 'host', h);
  }
  assert.equal(refused(checkCaller(tcp('faas.example.org:8080'), ['faas.example.org'])), undefined);
  assert.equal(refused(checkCaller(tcp('FAAS.example.org'), ['faas.example.org'])), undefined);
  assert.equal(refused(checkCaller(tcp('other.example.org'), ['faas.example.org'])), 'host');
  assert.equal(refused(checkCaller(tcp('anything.example'), ['*'])), undefined);
  // over the unix socket no browser can be the caller: its Host is not checked
  assert.equal(refused(checkCaller({ host: 'rebind.attacker.example', viaUnixSocket: true }, [])), undefined);
});

void test('Origin: only the daemon\'s own', () => {
  assert.equal(refused(checkCaller(tcp('127.0.0.1:8080', { origin: 'http://127.0.0.1:8080' }), [])), undefined);
  assert.equal(refused(checkCaller(tcp('localhost', { origin: 'http://localhost:80' }), [])), undefined);
  for (const origin of ['http://evil.example', 'http://127.0.0.1:3000', 'http://localhost:8080', 'null', 'not a url']) {
    assert.equal(refused(checkCaller(tcp('127.0.0.1:8080', { origin }), [])), 'origin', origin);
  }
  // the rebinding page: same origin in the browser's eyes, refused on its Host
  assert.equal(refused(checkCaller(tcp('rebind.attacker.example:8080', { origin: 'http://rebind.attacker.example:8080' }), [])), 'host');
  // a proxy forwarding a browser's request to the unix socket: its Origin is checked too
  assert.equal(refused(checkCaller({ host: 'faas.example.org', origin: 'http://evil.example', viaUnixSocket: true }, [])), 'origin');
});

void test('Sec-Fetch-Site: same-origin and none (typed by the user) pass; same-site and cross-site do not', () => {
  assert.equal(refused(checkCaller(tcp('127.0.0.1:8080', { secFetchSite: 'same-origin' }), [])), undefined);
  assert.equal(refused(checkCaller(tcp('127.0.0.1:8080', { secFetchSite: 'none' }), [])), undefined);
  assert.equal(refused(checkCaller(tcp('127.0.0.1:8080', { secFetchSite: 'cross-site' }), [])), 'sec-fetch-site');
  assert.equal(refused(checkCaller(tcp('127.0.0.1:8080', { secFetchSite: 'same-site' }), [])), 'sec-fetch-site');
});

void test('property: a name that is not localhost, an IP literal or listed is always refused over TCP', () => {
  fc.assert(
    fc.property(fc.domain(), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), (d, port) => {
      fc.pre(d !== 'localhost' && !d.endsWith('.localhost'));
      const h = port === undefined ? d : `${d}:${port}`;
      assert.equal(hostName(h), d.toLowerCase());
      assert.equal(refused(checkCaller(tcp(h), [])), 'host');
      assert.equal(refused(checkCaller(tcp(h), [d])), undefined);
    }),
    { numRuns: 300 },
  );
});

void test('routes public by design (crossOriginAllowed): any Origin passes, a foreign Host still does not', () => {
  const pub = (host: string, origin: string) => checkCaller({ host, origin, secFetchSite: 'cross-site', viaUnixSocket: false, crossOriginAllowed: true }, []);
  assert.equal(refused(pub('127.0.0.1:8080', 'http://evil.example')), undefined);
  assert.equal(refused(pub('rebind.attacker.example:8080', 'http://rebind.attacker.example:8080')), 'host');
});
