// QMP client against a fake QMP server (a unix socket in this process): line buffering, timeouts,
// a server that closes, a socket that never appears. Against a real QEMU: test/integration/qmp.test.ts.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QmpClient, QmpClosedError, QmpTimeoutError } from '../../src/runtimes/qemu/qmp.js';

void test('QMP: pending command rejects when the server closes; timeouts', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qmp-fake-'));
  const sock = path.join(dir, 'fake.sock');
  const clients: net.Socket[] = [];
  // A fake server that greets, acknowledges capabilities and then ignores everything.
  const server = net.createServer((c) => {
    clients.push(c);
    c.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\r\n');
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('qmp_capabilities')) {
        const id = /"id":\s*"([^"]+)"/.exec(buf)?.[1];
        buf = '';
        // split the reply across two writes to exercise the line buffer
        c.write(`{"return": {}, "id": "${id}"`);
        setTimeout(() => c.write('}\r\n'), 5);
      }
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  t.after(() => {
    for (const c of clients) c.destroy();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const qmp = await QmpClient.connect(sock, { timeoutMs: 2000 });
  await assert.rejects(qmp.execute('query-status', undefined, { timeoutMs: 30 }), QmpTimeoutError);
  const p = qmp.execute('query-status');
  for (const c of clients) c.destroy();
  await assert.rejects(p, QmpClosedError);
  await qmp.closed;
});

void test('QMP: connect times out when the socket never appears', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qmp-none-'));
  try {
    await assert.rejects(QmpClient.connect(path.join(dir, 'absent.sock'), { timeoutMs: 100 }), /timed out/);
    await assert.rejects(QmpClient.connect(path.join(dir, 'absent.sock'), { timeoutMs: 5000, abort: () => 'vmm exited' }), /vmm exited/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
