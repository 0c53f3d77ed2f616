// QMP client against a real, paused QEMU (no kernel needed: -S). Integration: it starts a QEMU process.
// The protocol edge cases against a fake server are in test/unit/qmp.test.ts.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QmpClient, QmpError, QmpClosedError, QmpTimeoutError, type QmpEvent } from '../../src/runtimes/qemu/qmp.js';

const QEMU = 'qemu-system-x86_64';
const haveQemu = spawnSync(QEMU, ['--version']).status === 0;

function startQemu(dir: string): { proc: ChildProcess; sock: string; exited: Promise<void> } {
  const sock = path.join(dir, 'qmp.sock');
  const proc = spawn(
    QEMU,
    ['-M', 'microvm', '-S', '-nodefaults', '-no-user-config', '-display', 'none', '-accel', 'tcg', '-qmp', `unix:${sock},server=on,wait=off`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return { proc, sock, exited };
}

void test('QMP client against a paused QEMU', { skip: haveQemu ? false : `${QEMU} not installed (apt-get install qemu-system-x86)` }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qmp-test-'));
  const q = startQemu(dir);
  const held: { qmp?: QmpClient } = {};
  t.after(async () => {
    held.qmp?.close();
    if (q.proc.exitCode === null && q.proc.signalCode === null) {
      q.proc.kill('SIGKILL');
      await q.exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const qmp = await QmpClient.connect(q.sock, { timeoutMs: 10_000 });
  held.qmp = qmp;
  assert.ok(qmp.greeting);
  assert.equal(typeof qmp.greeting.version.qemu.major, 'number');

  await t.test('query-status / query-version, several in flight', async () => {
    const [st, ver, st2] = await Promise.all([
      qmp.execute<{ status: string; running: boolean }>('query-status'),
      qmp.execute<{ qemu: { major: number } }>('query-version'),
      qmp.execute<{ status: string }>('query-status'),
    ]);
    assert.equal(st.status, 'prelaunch');
    assert.equal(st.running, false);
    assert.equal(st2.status, 'prelaunch');
    assert.equal(ver.qemu.major, qmp.greeting!.version.qemu.major);
  });

  await t.test('unknown command rejects with the QMP class', async () => {
    await assert.rejects(qmp.execute('no-such-command'), (e: unknown) => {
      assert.ok(e instanceof QmpError);
      assert.equal(e.qmpClass, 'CommandNotFound');
      assert.match(e.desc, /no-such-command/);
      return true;
    });
    // bad arguments too
    await assert.rejects(qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'nope', state: true }] }), QmpError);
    // the connection is still usable afterwards
    assert.equal((await qmp.execute<{ status: string }>('query-status')).status, 'prelaunch');
  });

  await t.test('events: cont -> RESUME, stop -> STOP', async () => {
    const seen: QmpEvent[] = [];
    qmp.on('event', (e: QmpEvent) => seen.push(e));
    const resumed = qmp.waitForEvent('RESUME', 5000);
    await qmp.execute('cont');
    const ev = await resumed;
    assert.equal(ev.event, 'RESUME');
    assert.ok(ev.timestamp);
    const stopped = qmp.waitForEvent('STOP', 5000);
    await qmp.execute('stop');
    await stopped;
    assert.deepEqual(
      seen.map((e) => e.event).filter((n) => n === 'RESUME' || n === 'STOP'),
      ['RESUME', 'STOP'],
    );
    await assert.rejects(qmp.waitForEvent('NEVER_HAPPENS', 50), QmpTimeoutError);
  });

  await t.test('close: pending commands and waiters reject, QEMU quit is seen', async () => {
    const shutdown = qmp.waitForEvent('SHUTDOWN', 5000);
    const never = qmp.waitForEvent('NEVER_HAPPENS', 10_000);
    await qmp.execute('quit');
    await shutdown;
    await assert.rejects(never, QmpClosedError);
    await qmp.closed;
    assert.equal(qmp.isOpen, false);
    await assert.rejects(qmp.execute('query-status'), QmpClosedError);
    await q.exited;
  });
});
