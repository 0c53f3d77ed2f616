// Hostile guests, for real: a function runs inside the agent's process, so it
// can write to the agent's channel (the virtio-serial port, found through
// /proc/self/fd) and impersonate the agent. Each way of abusing the channel
// must cost only that function's VM, with a clear error for its invocation,
// while the daemon keeps serving others; nothing is left behind.
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

// the smallest bound the config allows: TCG moves data through virtio-serial slowly
const LIMIT = 64 * 1024;

// finds the agent's channel among the process's fds and writes `payload()` to it before returning
const hostile = (body: string) => `
const fs = require('fs');
function channelFd() {
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let t = '';
    try { t = fs.readlinkSync('/proc/self/fd/' + fd); } catch { continue; }
    if (t.startsWith('/dev/vport')) return Number(fd);
  }
  throw new Error('no channel fd among ' + fs.readdirSync('/proc/self/fd').join(','));
}
exports.main = async (p) => {
  const fd = channelFd();
  const w = (s) => { let b = Buffer.from(s); while (b.length) { const n = fs.writeSync(fd, b); b = b.subarray(n); } };
  ${body}
  return { wrote: true };
};
`;

const CASES: Array<{ name: string; source: string; status: number; code: string; message: RegExp }> = [
  { name: 'garbage', source: hostile(`w('not json at all\\n'.repeat(500));`), status: 502, code: 'function_crashed', message: /more than 100 lines that are not protocol messages/ },
  { name: 'giant-line', source: hostile(`w('{"id":2,"ok":true,"result":"' + 'x'.repeat(3 * ${LIMIT}) + '"}\\n');`), status: 502, code: 'function_crashed', message: /longer than 65536 bytes/ },
  { name: 'endless-line', source: hostile(`const chunk = 'y'.repeat(65536); for (let i = 0; i < 4096; i++) w(chunk);`), status: 502, code: 'function_crashed', message: /longer than 65536 bytes/ },
  { name: 'forged-reply', source: hostile(`w(JSON.stringify({ id: 987654, ok: true, result: 'forged' }) + '\\n');`), status: 502, code: 'function_crashed', message: /never sent/ },
  { name: 'malformed-reply', source: hostile(`w(JSON.stringify({ id: 2, ok: false, error: 'a string, not an object' }) + '\\n');`), status: 502, code: 'function_crashed', message: /malformed message from the guest/ },
  { name: 'silent', source: `exports.main = () => new Promise(() => {});`, status: 504, code: 'timeout', message: /did not finish within 3000 ms/ },
];

function runDirs(d: TestDaemon): string[] {
  const run = path.join(d.stateDir, 'run');
  return fs.existsSync(run) ? fs.readdirSync(run).filter((n) => !n.startsWith('.')) : [];
}

describe('hostile guests lose only their own VM', { timeout: 15 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    // snapshots off: every case is its own cold boot; the channel bound is small to keep the giant cases quick
    d = await startDaemon({ snapshots: { enabled: false }, limits: { guestMessageMaxBytes: LIMIT } });
    await d.deploy('hello', 'hello.js');
    for (const c of CASES) await d.client.deploy(c.name, Buffer.from(c.source), { codeKind: 'js', timeoutMs: c.code === 'timeout' ? 3000 : 60_000 });
  });
  after(() => stopAndCheck(d));

  for (const c of CASES) {
    test(`${c.name}: ${c.status} ${c.code}, its VM gone, the daemon serves others`, async () => {
      const warm = await d.client.invoke('hello', { name: 'before' });
      assert.equal(warm.status, 200, JSON.stringify(warm.body));
      const r = await d.client.invoke(c.name, {});
      assert.equal(r.status, c.status, JSON.stringify(r.body).slice(0, 500));
      assert.equal(r.body.error?.code, c.code);
      assert.match(r.body.error.message, c.message);
      const vmId = r.body.activation?.vmId;
      assert.ok(vmId, 'the activation names the VM');
      // its VM is stopped and its run directory removed
      const deadline = Date.now() + 60_000;
      while (runDirs(d).includes(vmId) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.ok(!runDirs(d).includes(vmId), `VM ${vmId} still has its run directory`);
      // the other function's warm VM was not disturbed
      const after = await d.client.invoke('hello', { name: 'after' });
      assert.equal(after.status, 200);
      assert.equal(after.body.activation!.startPath, 'warm');
      assert.equal(after.body.activation!.vmId, warm.body.activation!.vmId);
      // and the hostile function gets a fresh VM next time (the broken one is never reused)
      const again = await d.client.invoke(c.name, {});
      assert.equal(again.status, c.status);
      assert.notEqual(again.body.activation?.vmId, vmId);
    });
  }
});
