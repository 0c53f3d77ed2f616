// SocketChannel against a local unix server playing the guest agent.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, SocketChannel, ChannelClosedError, ChannelEncodeError, ChannelTimeoutError, parseJsonObject } from '../../src/runtimes/channel.js';

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

void test('issue 19: parameters too deep for JSON.stringify fail the request alone (typed, nothing sent); the channel stays open', async (t) => {
  const seen: string[] = [];
  const sock = await withServer(t, (c) => {
    c.write(JSON.stringify(READY) + '\n');
    const split = new LineSplitter();
    c.on('data', (d: Buffer) => {
      for (const line of split.push(d)) {
        const req = JSON.parse(line) as { id: number; op: string };
        seen.push(req.op);
        c.write(JSON.stringify({ id: req.id, ok: true, result: {} }) + '\n');
      }
    });
  });
  const ch = await SocketChannel.connect(sock, 2000);
  t.after(() => ch.close());
  await ch.ready(1000);
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = { a: deep };
  const err = await ch.request({ op: 'run', activationId: 'a1', params: deep, deadlineMs: 1000 }, 2000).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ChannelEncodeError, String(err));
  assert.equal(isGuestProtocolFault(err), false, 'not the guest\'s fault');
  const next = await ch.request({ op: 'run', activationId: 'a2', params: { ok: 1 }, deadlineMs: 1000 }, 2000);
  assert.equal(next.ok, true);
  assert.deepEqual(seen, ['run'], 'only the encodable request reached the guest');
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

// ---- hostile guests: every bad input ends in a typed failure of this channel only

import fc from 'fast-check';
import {
  ChannelError,
  ChannelFloodError,
  ChannelOversizeError,
  ChannelProtocolError,
  checkGuestMessage,
  isGuestProtocolFault,
  RateBucket,
} from '../../src/runtimes/channel.js';

/** A channel whose guest side is `guest` (the server end of a real unix socket). */
async function hostile(
  t: { after: (fn: () => void | Promise<void>) => void },
  limits: Record<string, number> = {},
): Promise<{ ch: SocketChannel; guest: net.Socket; violations: ChannelProtocolError[] }> {
  let guest!: net.Socket;
  const connected = new Promise<void>((r) => {
    void withServer(t, (c) => {
      guest = c;
      r();
    }).then(async (sock) => {
      holder.sock = sock;
    });
  });
  const holder: { sock?: string } = {};
  while (!holder.sock) await new Promise((r) => setTimeout(r, 1));
  const violations: ChannelProtocolError[] = [];
  const ch = await SocketChannel.connect(holder.sock, 2000, { limits, onViolation: (e) => violations.push(e) });
  await connected;
  t.after(() => ch.close());
  return { ch, guest, violations };
}

void test('oversize: a giant line fails the pending request with ChannelOversizeError and closes only this channel', async (t) => {
  const { ch, guest, violations } = await hostile(t, { maxLineBytes: 64 * 1024 });
  const run = ch.request({ op: 'run', activationId: 'a', params: {}, deadlineMs: 1000 }, 5000);
  guest.write(Buffer.alloc(200 * 1024, 0x61));
  guest.write('\n');
  const err = await run.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ChannelOversizeError, String(err));
  assert.equal(err.code, 'oversize');
  assert.ok(isGuestProtocolFault(err));
  await ch.closed;
  assert.equal(violations.length, 1);
  const later = await ch.request({ op: 'ping' }, 100).then(() => undefined, (e: unknown) => e);
  assert.ok(later instanceof ChannelClosedError);
  assert.equal((later as Error).cause, violations[0]);
});

void test('endless line: no newline ever, the buffer stops at the bound', async (t) => {
  const { ch, guest, violations } = await hostile(t, { maxLineBytes: 32 * 1024 });
  const ping = ch.request({ op: 'ping' }, 5000);
  for (let i = 0; i < 20 && !guest.destroyed; i++) guest.write(Buffer.alloc(4096, 0x7b));
  await assert.rejects(ping, ChannelOversizeError);
  assert.equal(violations.length, 1);
});

void test('garbage after the noise allowance, malformed replies and replies to unsent requests are protocol violations', async (t) => {
  await t.test('garbage', async (t2) => {
    const { ch, guest } = await hostile(t2, { maxNoiseLines: 5 });
    const ready = ch.ready(5000);
    guest.write('x\n'.repeat(10));
    const e = await ready.then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof ChannelProtocolError && e.code === 'protocol', String(e));
  });
  await t.test('malformed reply', async (t2) => {
    const { ch, guest } = await hostile(t2);
    const run = ch.request({ op: 'ping' }, 5000);
    guest.write(JSON.stringify({ id: 1, ok: false, error: 'not an object' }) + '\n');
    await assert.rejects(run, (e: unknown) => e instanceof ChannelProtocolError && /error object/.test(e.message));
  });
  await t.test('reply to a request never sent', async (t2) => {
    const { ch, guest } = await hostile(t2);
    const run = ch.request({ op: 'ping' }, 5000);
    guest.write(JSON.stringify({ id: 99, ok: true }) + '\n');
    await assert.rejects(run, (e: unknown) => e instanceof ChannelProtocolError && /never sent/.test(e.message));
  });
  await t.test('a late reply to a timed-out request is tolerated', async (t2) => {
    const { ch, guest, violations } = await hostile(t2);
    await assert.rejects(ch.request({ op: 'ping' }, 10), ChannelTimeoutError);
    guest.write(JSON.stringify({ id: 1, ok: true }) + '\n');
    const p = ch.request({ op: 'ping' }, 5000);
    guest.write(JSON.stringify({ id: 2, ok: true, result: 1 }) + '\n');
    assert.equal((await p).ok, true);
    assert.equal(violations.length, 0);
  });
});

void test('flood: more messages than the rate allows', async (t) => {
  const { ch, guest } = await hostile(t, { ratePerSec: 10, burst: 20, maxNoiseLines: 1_000_000 });
  const ready = ch.ready(5000);
  guest.write('{"type":"noise"}\n'.repeat(100));
  await assert.rejects(ready, ChannelFloodError);
});

void test('token bucket refills at its rate', () => {
  let now = 0;
  const b = new RateBucket(10, 2, () => now);
  assert.equal(b.take(), true);
  assert.equal(b.take(), true);
  assert.equal(b.take(), false);
  now += 100; // one token back
  assert.equal(b.take(), true);
  assert.equal(b.take(), false);
  now += 10_000;
  assert.equal(b.take(), true);
  assert.equal(b.take(), true);
  assert.equal(b.take(), false);
});

void test('message schema: what a guest may send', () => {
  assert.equal(checkGuestMessage(READY), undefined);
  assert.match(checkGuestMessage({ type: 'ready' })!, /agentVersion/);
  assert.match(checkGuestMessage({ ...READY, uptimeMs: { init: 'x' } })!, /uptimeMs/);
  assert.equal(checkGuestMessage({ id: 3, ok: true, result: { any: ['thing'] }, logs: ['l'], durationMs: 2 }), undefined);
  assert.equal(checkGuestMessage({ id: 3, ok: false, error: { kind: 'application', message: 'boom', stack: 's' } }), undefined);
  assert.match(checkGuestMessage({ id: 3, ok: false, error: { kind: 'evil', message: 'x' } })!, /error kind/);
  assert.match(checkGuestMessage({ id: 1.5, ok: true })!, /integer/);
  assert.match(checkGuestMessage({ id: 1, ok: 'yes' })!, /boolean/);
  assert.match(checkGuestMessage({ id: 1, ok: true, logs: [1] })!, /logs/);
  assert.equal(checkGuestMessage({ hello: 1 }), undefined); // not a reply: noise, counted
  assert.match(checkGuestMessage({ ok: true })!, /id/);
});

void test('fuzz: any byte stream from the guest ends in replies or one typed failure, never a crash', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(Buffer.from('\n')), fc.constant(Buffer.from(JSON.stringify({ id: 1, ok: true }) + '\n')), fc.string().map((s) => Buffer.from(s + '\n'))), { maxLength: 30 }),
      async (chunks) => {
        const splitter = new LineSplitter(512);
        let failed: unknown;
        for (const c of chunks) {
          try {
            splitter.push(Buffer.from(c));
          } catch (e) {
            failed = e;
            break;
          }
        }
        assert.ok(failed === undefined || failed instanceof ChannelOversizeError);
      },
    ),
    { numRuns: 300 },
  );
  // the same through a real socket: the request settles (reply, typed failure or timeout), nothing throws
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 8 }), async (chunks) => {
      const { ch, guest } = await hostile(t, { maxLineBytes: 1024, maxNoiseLines: 3 });
      const p = ch.request({ op: 'ping' }, 200).then(
        () => 'reply',
        (e: unknown) => e,
      );
      for (const c of chunks) guest.write(Buffer.from(c));
      const r = await p;
      assert.ok(r === 'reply' || r instanceof ChannelError, String(r));
      ch.close();
    }),
    { numRuns: 25 },
  );
});
