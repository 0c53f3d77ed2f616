import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildMapping, parseMapText } from '../../src/replay/mapping.js';
import { replay, runReplayCommand, type ReplayRecord } from '../../src/replay/replay.js';
import { faasrailTrace } from '../../src/traces/faasrail.js';

interface Seen {
  name: string;
  body: unknown;
  auth: string | undefined;
  at: number;
}

/**
 * A stand-in for the daemon's invoke endpoint (answers after delayMs, like a slow function). With
 * holdUntilSeen, no answer leaves before that many requests to a known function have arrived (or a minute has passed): only an
 * open-loop client, which sends without waiting for answers, gets them all in flight at once.
 */
async function mockDaemon(delayMs: number, known: string[], holdUntilSeen = 0) {
  const seen: Seen[] = [];
  let inflight = 0;
  let maxInflight = 0;
  let n = 0;
  let release!: () => void;
  const released = holdUntilSeen > 0 ? new Promise<void>((r) => (release = r)) : Promise.resolve();
  const bound = holdUntilSeen > 0 ? setTimeout(() => release(), 60_000) : undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/v1\/functions\/([^/]+)\/invoke$/.exec(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !m) {
        res.writeHead(404).end();
        return;
      }
      const name = decodeURIComponent(m[1]!);
      seen.push({ name, body: JSON.parse(Buffer.concat(chunks).toString() || '{}'), auth: req.headers.authorization, at: performance.now() });
      if (!known.includes(name)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: `no function ${name}` } }));
        return;
      }
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      const k = n++;
      if (holdUntilSeen > 0 && n >= holdUntilSeen) release();
      void released.then(() => setTimeout(() => {
        inflight--;
        const startPath = k === 0 ? 'cold' : 'warm';
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({ result: { ok: true }, activation: { id: `a${k}`, function: name, startPath, status: 'success', totalMs: delayMs } }),
        );
      }, delayMs));
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    maxInflight: () => maxInflight,
    close: () => {
      clearTimeout(bound);
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

void test('mapping: explicit, file, round-robin by popularity, identity', async (t) => {
  const tr = faasrailTrace(
    [
      { name: 'x', avgDurationMs: 1, counts: [1] },
      { name: 'y', avgDurationMs: 1, counts: [5] },
      { name: 'z', avgDurationMs: 1, counts: [3] },
    ],
    1000,
    't',
  );
  assert.deepEqual(await buildMapping(tr, {}), ['x', 'y', 'z']);
  assert.deepEqual(await buildMapping(tr, { map: 'y=echo, z=sleep' }), [undefined, 'echo', 'sleep']);
  assert.deepEqual(await buildMapping(tr, { functions: 'a,b' }), ['a', 'a', 'b']); // y→a, z→b, x→a
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faascell-map-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'm.json'), '{"x":"one"}');
  assert.deepEqual(await buildMapping(tr, { mapFile: path.join(dir, 'm.json') }), ['one', undefined, undefined]);
  writeFileSync(path.join(dir, 'm.txt'), '# comment\nz=two\n');
  assert.deepEqual(await buildMapping(tr, { mapFile: path.join(dir, 'm.txt') }), [undefined, undefined, 'two']);
  await assert.rejects(buildMapping(tr, { map: 'nope=a' }), /not in the trace/);
  await assert.rejects(buildMapping(tr, { map: 'x=a', functions: 'b' }), /only one of/);
  assert.throws(() => parseMapText('x'), /expected traceFn=deployedFn/);
});

void test('open loop: requests go out on schedule while earlier ones are outstanding', async (t) => {
  // no answer before all 20 requests have arrived: a closed loop would stall on the first one
  const d = await mockDaemon(300, ['echo'], 20);
  t.after(d.close);
  // 20 invocations in one 1-s slot, evenly spaced (every 50 ms); each answer takes 300 ms.
  const tr = faasrailTrace([{ name: 'f', avgDurationMs: 300, request: { n: 1 }, counts: [20] }], 1000, 't');
  const records: ReplayRecord[] = [];
  const s = await replay({ trace: tr, url: d.url, map: 'f=echo', spread: 'even', progress: null, token: 'tok', onRecord: (r) => records.push(r) });
  assert.equal(s.sent, 20);
  assert.equal(s.ok, 20);
  assert.equal(records.length, 20);
  assert.equal(d.maxInflight(), 20, 'every request went out while the earlier ones were outstanding');
  assert.deepEqual(s.byStartPath, { cold: 1, warm: 19 });
  assert.ok(s.p50LatencyMs >= 300);
  assert.deepEqual(d.seen[0]!.body, { n: 1 });
  assert.equal(d.seen[0]!.auth, 'Bearer tok');
  const r = records.find((x) => x.startPath === 'cold')!;
  assert.equal(r.function, 'echo');
  assert.equal(r.traceFunction, 'f');
  assert.equal(r.totalMs, 300);
  // Scheduled times follow the trace: 25, 75, 125, ... ms
  const sched = records.map((x) => x.scheduledMs).sort((a, b) => a - b);
  assert.deepEqual(sched.slice(0, 3), [25, 75, 125]);
});

void test('compression, max-inflight valve, errors and the JSONL file', async (t) => {
  // answers held until 30 requests are outstanding: the valve (30) is reached whatever the machine's speed
  const d = await mockDaemon(400, ['echo'], 30);
  t.after(d.close);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faascell-rp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const spec = path.join(dir, 'spec.json');
  // 10 s of trace (10 per 1-s slot for f, 1 per slot for g) compressed 20x = 0.5 s
  writeFileSync(
    spec,
    JSON.stringify({
      slotSeconds: 1,
      functions: [
        { name: 'f', avgDurationMs: 10, counts: Array(10).fill(10) },
        { name: 'g', avgDurationMs: 10, counts: Array(10).fill(1) },
      ],
    }),
  );
  const out = path.join(dir, 'rec.jsonl');
  let printed = '';
  const s = await runReplayCommand({
    trace: spec,
    format: 'faasrail',
    url: d.url,
    map: 'f=echo,g=missing',
    compress: 20,
    maxInflight: 30,
    out,
    json: true,
    progress: null,
    write: (x) => (printed += x),
  });
  assert.equal(s.scheduled, 110);
  assert.ok(s.skippedInflight > 0, 'the valve must trip: 110 requests in 0.5 s, 400 ms each, at most 30 outstanding');
  assert.equal(s.sent + s.skippedInflight, 110);
  assert.ok(s.maxInflight <= 30);
  assert.ok((s.byStatus['404'] ?? 0) > 0);
  const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ReplayRecord);
  assert.equal(lines.length, 110);
  assert.ok(lines.some((l) => l.status === 404 && l.function === 'missing' && /not_found/.test(l.error ?? '')));
  assert.ok(lines.some((l) => l.error === 'not sent: max-inflight reached'));
  assert.equal((JSON.parse(printed) as { sent: number }).sent, s.sent);
});

void test('duration limit and unreachable daemon', async () => {
  const tr = faasrailTrace([{ name: 'f', avgDurationMs: 1, counts: [4, 4, 4] }], 1000, 't');
  const s = await replay({ trace: tr, url: 'http://127.0.0.1:9', durationS: 1, progress: null, timeoutMs: 2000 });
  assert.equal(s.scheduled, 4);
  assert.equal(s.errors, 4);
  assert.deepEqual(s.byStatus, { '0': 4 });
});
