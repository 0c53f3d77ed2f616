// The guest agent's connection tracker: after a restore, connections opened
// before the snapshot are destroyed with ERR_FAASCELL_RESTORED (loopback only).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { installConnectionTracker, RESTORED_CODE } from '../../guest/agent/connections.js';
import { createAgent } from '../../guest/agent/core.js';

const tracker = installConnectionTracker();

void test('tcp connections (net, http keep-alive) are closed with a clear error; unix sockets are not', async () => {
  const server = net.createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const ipcPath = path.join(os.tmpdir(), `fc-conn-${process.pid}.sock`);
  const ipcServer = net.createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => ipcServer.listen(ipcPath, r));
  const httpServer = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  const httpPort = (httpServer.address() as net.AddressInfo).port;
  try {
    const a = net.connect(port, '127.0.0.1');
    const b = net.createConnection({ host: '127.0.0.1', port });
    const c = new net.Socket().connect(port, '127.0.0.1');
    const unix = net.connect(ipcPath);
    await Promise.all([a, b, c, unix].map((s) => new Promise((r) => s.once('connect', r))));
    // an http keep-alive agent keeps its socket after the request
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => http.get({ host: '127.0.0.1', port: httpPort, agent }, (res) => res.resume().on('end', resolve)).on('error', reject));
    assert.equal(tracker.size, 4, 'three net sockets and the kept-alive http socket');
    const errors: string[] = [];
    for (const s of [a, b, c]) s.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? ''));
    assert.equal(tracker.closeAll(), 4);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(errors, [RESTORED_CODE, RESTORED_CODE, RESTORED_CODE]);
    assert.ok(a.destroyed && b.destroyed && c.destroyed);
    assert.equal(unix.destroyed, false, 'a unix socket lives inside the guest: it survives a restore');
    assert.equal(tracker.size, 0);
    // the http agent dropped its dead socket: the next request opens a new one and works
    const body = await new Promise<string>((resolve, reject) =>
      http.get({ host: '127.0.0.1', port: httpPort, agent }, (res) => {
        let t = '';
        res.on('data', (d: Buffer) => (t += d.toString()));
        res.on('end', () => resolve(t));
      }).on('error', reject),
    );
    assert.equal(body, 'ok');
    agent.destroy();
    unix.destroy();
  } finally {
    await new Promise((r) => server.close(r));
    await new Promise((r) => ipcServer.close(r));
    httpServer.closeAllConnections();
    await new Promise((r) => httpServer.close(r));
  }
});

void test('resync (a restore) closes them before replying and says how many', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  let calls = 0;
  const agent = createAgent({ input, output, workRoot: os.tmpdir(), restored: () => (calls++, 3) });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  output.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  agent.sendReady();
  input.write(`${JSON.stringify({ id: 1, op: 'resync', epochMs: Date.now(), seed: Buffer.alloc(32).toString('base64') })}\n`);
  const deadline = Date.now() + 30_000;
  while (!lines.some((l) => l.id === 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const reply = lines.find((l) => l.id === 1)!;
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.equal((reply.result as { connectionsClosed?: number }).connectionsClosed, 3);
  assert.equal(calls, 1);
  input.end();
  await agent.done;
});
