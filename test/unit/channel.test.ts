// SocketChannel against a local unix server playing the guest agent.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, SocketChannel, ChannelClosedError, ChannelTimeoutError, parseJsonObject } from '../../src/runtimes/channel.js';

void test('LineSplitter: partial lines, CRLF, UTF-8 split across chunks', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(Buffer.from('{"a":')), []);
  assert.deepEqual(s.push(Buffer.from('1}\r\n{"b"')), ['{"a":1}']);
  const euro = Buffer.from('"€"}\n', 'utf8'); // € is 3 bytes
  assert.deepEqual(s.push(Buffer.concat([Buffer.from(':'), euro.subarray(0, 2)])), []);
  assert.deepEqual(s.push(euro.subarray(2)), ['{"b":"€"}']);
  assert.deepEqual(s.push(Buffer.from('\n\nx\ny')), ['', '', 'x']);
  assert.equal(s.pending, 'y');
});

void test('parseJsonObject ignores non-objects', () => {
  assert.equal(parseJsonObject('hello'), undefined);
  assert.equal(parseJsonObject('[1,2]'), undefined);
  assert.equal(parseJsonObject('42'), undefined);
  assert.equal(parseJsonObject('{broken'), undefined);
  assert.deepEqual(parseJsonObject(' {"x":1} '), { x: 1 });
});

async function withServer(
  t: { after: (fn: () => void | Promise<void>) => void },
  onConn: (c: net.Socket) => void,
): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chan-test-'));
  const sock = path.join(dir, 'c.sock');
  const conns: net.Socket[] = [];
  const server = net.createServer((c) => {
    conns.push(c);
    onConn(c);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  t.after(async () => {
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return sock;
}

const READY = { type: 'ready', agentVersion: '1', node: 'v20', uptimeMs: { init: 1, agentStart: 2, ready: 3 } };

void test('ready before ready() is called, noise ignored, replies matched out of order', async (t) => {
  const sock = await withServer(t, (c) => {
    // noise first (tty echo), then ready split across writes
    c.write('garbage line\n[1,2]\n');
    const r = JSON.stringify(READY) + '\n';
    c.write(r.slice(0, 10));
    setTimeout(() => c.write(r.slice(10)), 5);
    const split = new LineSplitter();
    const held: Array<{ id: number; op: string }> = [];
    c.on('data', (d: Buffer) => {
      for (const line of split.push(d)) {
        const req = JSON.parse(line) as { id: number; op: string; params?: { name?: string } };
        if (req.op === 'ping') held.push(req);
        if (req.op === 'run') {
          c.write(JSON.stringify({ id: req.id, ok: true, result: { hello: req.params?.name } }) + '\n');
          // answer held pings after the run: out of order
          for (const h of held.splice(0)) c.write(JSON.stringify({ id: h.id, ok: true }) + '\n');
        }
        // 'init' never gets an answer (timeout test)
      }
    });
  });
  const ch = await SocketChannel.connect(sock, 2000);
  t.after(() => ch.close());
  await new Promise((r) => setTimeout(r, 50));
  const ready = await ch.ready(1000);
  assert.deepEqual(ready, READY);
  // a second call resolves at once too
  assert.deepEqual(await ch.ready(1), READY);

  const ping = ch.request({ op: 'ping' }, 2000);
  const run = ch.request({ op: 'run', activationId: 'a1', params: { name: 'wörld €' }, deadlineMs: 1000 }, 2000);
  const [p, r] = await Promise.all([ping, run]);
  assert.equal(p.ok, true);
  assert.equal(r.ok, true);
  assert.deepEqual(r.ok && r.result, { hello: 'wörld €' });
  assert.notEqual(p.id, r.id);

  await assert.rejects(ch.request({ op: 'init', files: {}, main: 'index.js', entry: 'main', env: {} }, 30), ChannelTimeoutError);
});

void test('ready() waits for a late ready; close rejects all pending', async (t) => {
  let conn: net.Socket | undefined;
  const sock = await withServer(t, (c) => {
    conn = c;
    setTimeout(() => c.write(JSON.stringify(READY) + '\n'), 30);
  });
  const ch = await SocketChannel.connect(sock, 2000);
  await assert.rejects(ch.ready(1), ChannelTimeoutError);
  assert.deepEqual(await ch.ready(1000), READY);
  const a = ch.request({ op: 'ping' }, 5000);
  const b = ch.request({ op: 'ping' }, 5000);
  conn?.destroy(); // the VM goes away
  await assert.rejects(a, ChannelClosedError);
  await assert.rejects(b, ChannelClosedError);
  await ch.closed;
  await assert.rejects(ch.request({ op: 'ping' }, 100), ChannelClosedError);
});

void test('close() before ready rejects the ready waiter', async (t) => {
  const sock = await withServer(t, () => undefined);
  const ch = await SocketChannel.connect(sock, 2000);
  const r = ch.ready(5000);
  const p = ch.request({ op: 'ping' }, 5000);
  ch.close();
  await assert.rejects(r, ChannelClosedError);
  await assert.rejects(p, ChannelClosedError);
  await ch.closed;
});

void test('connect retries until the socket appears', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chan-late-'));
  const sock = path.join(dir, 'late.sock');
  const server = net.createServer((c) => c.write(JSON.stringify(READY) + '\n'));
  t.after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  setTimeout(() => server.listen(sock), 80);
  const ch = await SocketChannel.connect(sock, 2000);
  assert.equal((await ch.ready(1000)).type, 'ready');
  ch.close();
  await assert.rejects(SocketChannel.connect(path.join(dir, 'never.sock'), 50), /timed out/);
});
