// Issue 19, "Input" and "The default daemon on loopback", through the real daemon
// (`faascell serve`): zip and tar.gz bombs, slowloris sockets, DNS rebinding and
// cross-site requests, the unix-socket API against another local user (uid nobody),
// FAASCELL_TOKEN's length rule, and deep parameters against a real warm VM.
// Only the last part starts a VM; everything talks to loopback or to the test's own socket.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createDeflateRaw, createGzip, type Gzip, type DeflateRaw } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURES, ROOT, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { tarHeader, zipOneEntry } from '../helpers/archives.js';

const GiB = 1024 * 1024 * 1024;

/** zeros through a deflate stream, 1 MiB at a time (the bomb's packed bytes: about 1 MB for 1 GiB) */
async function pack(stream: DeflateRaw | Gzip, head: Buffer, zeros: number, tail: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => stream.on('end', r));
  const chunk = Buffer.alloc(1 << 20);
  const write = (b: Buffer): Promise<void> => (stream.write(b) ? Promise.resolve() : new Promise((r) => stream.once('drain', r)));
  await write(head);
  for (let left = zeros; left > 0; left -= chunk.length) await write(left >= chunk.length ? chunk : chunk.subarray(0, left));
  await write(tail);
  stream.end();
  await done;
  return Buffer.concat(out);
}

/** Peak resident memory of a process (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** One request with free headers (fetch will not send a foreign Host); bounded at 10 s. */
function request(port: number, method: string, p: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) }, agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

const portOf = (d: TestDaemon): number => Number(new URL(d.url).port);

describe('issue 19 without a VM: input bounds and the loopback default', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ snapshots: { enabled: false } });
  });
  after(() => stopAndCheck(d));

  test('zip and tar.gz bombs (1 GiB in about 1 MB) are refused with 400; the daemon keeps answering and its memory stays bounded', async () => {
    const zipped = await pack(createDeflateRaw({ level: 9 }), Buffer.alloc(0), GiB, Buffer.alloc(0));
    const gz = await pack(createGzip({ level: 9 }), tarHeader('index.js', GiB), GiB, Buffer.alloc(1024));
    const bombs: Array<[string, Buffer, 'zip' | 'tgz']> = [
      ['zip declaring its 1 GiB', zipOneEntry('index.js', zipped, GiB), 'zip'],
      ['zip whose headers say 1 KiB', zipOneEntry('index.js', zipped, 1024), 'zip'],
      ['tar.gz of a 1 GiB file', gz, 'tgz'],
    ];
    const pid = d.proc.pid!;
    const before = peakRss(pid);
    for (const [what, bomb, codeKind] of bombs) {
      assert.ok(bomb.length < 2 * 1024 * 1024, `${what}: ${bomb.length} bytes`);
      // /healthz polled all along the deploy: every poll answered
      let deploying = true;
      const polls: number[] = [];
      const poller = (async () => {
        while (deploying) {
          const t0 = performance.now();
          const r = await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(30_000) });
          assert.equal(r.status, 200);
          polls.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const t0 = performance.now();
      const res = await fetch(`${d.url}/v1/functions/bomb`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: bomb.toString('base64'), codeKind }), signal: AbortSignal.timeout(120_000) });
      const ms = performance.now() - t0;
      deploying = false;
      await poller;
      const body = (await res.json()) as { error: { code: string; field: string; message: string } };
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(body)}`);
      assert.equal(body.error.field, 'code');
      console.log(`# ${what}: ${res.status} in ${ms.toFixed(0)} ms (${body.error.message}); /healthz polls ${polls.length}, slowest ${Math.max(0, ...polls).toFixed(0)} ms`);
    }
    const grew = peakRss(pid) - before;
    console.log(`# daemon peak RSS grew by ${(grew / 1048576).toFixed(1)} MiB over the three deploys`);
    // the finding: 2.23 GB; the budget allows at most 4 x api.maxCodeBytes (200 MiB) of files
    assert.ok(grew < 256 * 1024 * 1024, `peak RSS grew by ${grew} bytes`);
    assert.equal((await request(portOf(d), 'GET', '/v1/functions/bomb')).status, 404);
  });

  test('slowloris: 200 sockets that never finish their headers are closed by the daemon; it answers meanwhile', async () => {
    const port = portOf(d);
    const opened = performance.now();
    const closes = Array.from({ length: 200 }, () => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('connect', () => s.write('GET /v1/functions HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
      // a header line now and then, as slowloris does, so no idle timer fires
      const drip = setInterval(() => s.writable && s.write('X-Slow: 1\r\n'), 1000);
      return new Promise<number>((resolve, reject) => {
        const bound = setTimeout(() => {
          clearInterval(drip);
          s.destroy();
          reject(new Error('a slow socket was still open after 45 s'));
        }, 45_000);
        s.on('close', () => {
          clearInterval(drip);
          clearTimeout(bound);
          resolve(performance.now() - opened);
        });
      });
    });
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await request(port, 'GET', '/healthz')).status, 200);
    const closedAfter = await Promise.all(closes);
    console.log(`# 200 slow sockets closed after ${Math.min(...closedAfter).toFixed(0)}-${Math.max(...closedAfter).toFixed(0)} ms (api.headersTimeoutMs 10000)`);
    assert.equal((await request(port, 'GET', '/healthz')).status, 200);
  });

  test('DNS rebinding and cross-site requests are refused with 403 before anything runs; the daemon\'s own origin works', async () => {
    const port = portOf(d);
    await d.deploy('hello', 'hello.js');
    const rebound = await request(port, 'GET', '/v1/functions', { host: `rebind.attacker.example:${port}` });
    assert.equal(rebound.status, 403);
    assert.deepEqual((rebound.json.error as { field: string }).field, 'host');
    // a web page's POST without a body: no CORS preflight, it used to invoke and evict
    for (const p of ['/v1/functions/hello/evict', '/v1/functions/hello/invoke', '/api/v1/namespaces/_/actions/hello?blocking=true']) {
      const r = await request(port, 'POST', p, { host: `127.0.0.1:${port}`, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' });
      assert.equal(r.status, 403, p);
    }
    const { activations } = await d.client.call<{ activations: unknown[] }>('GET', '/v1/activations');
    assert.equal(activations.length, 0, 'nothing was invoked');
    const own = await request(port, 'POST', '/v1/functions/hello/evict', { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' });
    assert.equal(own.status, 200);
    // the dashboard's static page (no data) and its data routes from its own origin
    assert.equal((await request(port, 'GET', '/ui/state', { host: `localhost:${port}`, 'sec-fetch-site': 'same-origin' })).status, 200);
  });

  test('the API on a unix socket, mode 0600: the CLI uses it by default; another local user (nobody) is refused', async () => {
    const { statSync } = await import('node:fs');
    const st = statSync(d.socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    // the CLI without a URL, pointed only at the state directory: it goes through the socket
    const env: NodeJS.ProcessEnv = { ...process.env, FAASCELL_STATE_DIR: d.stateDir };
    delete env.FAASCELL_URL;
    const cli = (...args: string[]): string => execFileSync(process.execPath, [path.join(ROOT, 'bin', 'faascell.js'), ...args], { env, encoding: 'utf8', timeout: 60_000 });
    cli('deploy', 'via-socket', path.join(FIXTURES, 'hello.js'));
    assert.match(cli('ls'), /via-socket/);
    assert.equal((await d.client.call<{ name: string }>('GET', '/v1/functions/via-socket')).name, 'via-socket', 'deployed on this daemon (over its socket), not on whatever listens on :8080');
    // as uid nobody, with the directories on the way open to everyone (a 0755 state dir): the socket's mode refuses
    chmodSync(d.dir, 0o755);
    chmodSync(d.stateDir, 0o755);
    const probe = `const s=require('node:net').connect(process.argv[1]);s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)})`;
    const asNobody = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe, d.socket], { encoding: 'utf8', timeout: 30_000, cwd: os.tmpdir() }).trim();
    assert.equal(asNobody, 'EACCES');
  });
});

test('FAASCELL_TOKEN is held to the 16-character rule: a daemon on 0.0.0.0 with FAASCELL_TOKEN=a does not start', { timeout: 120_000 }, async () => {
  const dir = path.join(os.tmpdir(), `fc-e2e-token-${process.pid}`);
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'faascell.js'), 'serve', '--host', '0.0.0.0', '--port', '0', '--state-dir', dir], { env: { ...process.env, FAASCELL_TOKEN: 'a' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const bound = setTimeout(() => {
      proc.kill('SIGKILL'); // it started: the finding
      resolve(null);
    }, 90_000);
    proc.once('exit', (c) => {
      clearTimeout(bound);
      resolve(c);
    });
  });
  execFileSync('rm', ['-rf', dir]);
  assert.notEqual(code, null, `it started:\n${out.slice(-2000)}`);
  assert.notEqual(code, 0);
  assert.match(out, /api\.token \(from FAASCELL_TOKEN\): at least 16 characters/);
});

describe('issue 19 with a VM: deep parameters', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ snapshots: { enabled: false } });
  });
  after(() => stopAndCheck(d));

  test('5,000-deep parameters are a 400 naming the field; the warm VM keeps serving', async () => {
    await d.deploy('hello', 'hello.js');
    const first = await d.client.invoke('hello', { name: 'a' });
    assert.equal(first.status, 200);
    const vm = first.body.activation!.vmId;
    const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
    const r = await fetch(`${d.url}/v1/functions/hello/invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"name":"b","deep":${deep}}`, signal: AbortSignal.timeout(60_000) });
    const body = (await r.json()) as { error: { code: string; field: string; message: string } };
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 300));
    assert.deepEqual({ code: body.error.code, field: body.error.field }, { code: 'bad_request', field: 'deep' });
    const next = await d.client.invoke('hello', { name: 'c' });
    assert.equal(next.status, 200);
    assert.equal(next.body.activation!.startPath, 'warm');
    assert.equal(next.body.activation!.vmId, vm, 'the same VM');
    // OpenWhisk's PUT with deep parameters: a 400 (it was a 500)
    const ow = await fetch(`${d.url}/api/v1/namespaces/_/actions/deep`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: `{"exec":{"kind":"nodejs:default","code":"function main(p){return p}"},"parameters":[{"key":"p","value":${deep}}]}`, signal: AbortSignal.timeout(60_000) });
    assert.equal(ow.status, 400);
    assert.match(((await ow.json()) as { error: string }).error, /^parameters\[0\]\.value\.a…: nested more than 100 levels/);
  });
});
