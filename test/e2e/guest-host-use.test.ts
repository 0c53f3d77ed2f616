// Issue 19 with real VMs through the real daemon: what a guest can make the host keep or spend,
// and what of its secrets the host leaves readable.
// - secrets at rest: a 0755 state dir is tightened, the database files are 0600; another local
//   user (nobody) cannot read the function's env value back from them;
// - logs: a list carries no logs unless asked; with logs=true they are there;
// - console: a guest flooding /dev/console keeps at most two rotated files in its run dir, and the
//   kept console of a crashed VM still holds what it printed last;
// - work after the result: a function that keeps spinning after it returned gets at most
//   limits.idleCpuQuota of the host's CPU while the node lists it idle, and its next run is served.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { qemuProcessesUnder, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import type { PoolStatus } from '../../src/vmpool/pool.js';

const KiB = 1024;
const CONSOLE_MAX = 64 * KiB;
const IDLE_CAP = 0.1;
const SECRET = `s3cret-${process.pid}-${Date.now()}`;

const FLOOD = `
const fs = require('fs');
exports.main = (p) => {
  const fd = fs.openSync('/dev/console', 'w');
  const line = Buffer.from('flood '.repeat(40) + '\\n');
  const end = Date.now() + p.ms;
  let bytes = 0;
  while (Date.now() < end) bytes += fs.writeSync(fd, line);
  fs.writeSync(fd, 'FLOOD-DONE\\n');
  fs.closeSync(fd);
  return { bytes };
};`;

const CRASH = `
const fs = require('fs');
exports.main = () => {
  fs.writeFileSync('/dev/console', 'LAST-WORDS-BEFORE-EXIT\\n');
  process.exit(3);
};`;


const LOGS = `exports.main = (p) => { for (let i = 0; i < p.lines; i++) console.log('line ' + i + ' ' + 'x'.repeat(1000)); return { ok: true }; };`;

const ENV = `exports.main = () => ({ has: typeof process.env.API_KEY === 'string' });`;

function ticks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime, 10 ms each
}

/** The VMM of one of this daemon's VMs (QEMU runs as `-name faascell-<vmId>`, its run dir in the test's directory). */
function vmmPid(d: TestDaemon, vmId: string): number {
  const lines = qemuProcessesUnder(d.dir).filter((l) => l.includes(`faascell-${vmId} `));
  assert.equal(lines.length, 1, `one VMM for ${vmId}: ${lines.join('\n')}`);
  return Number(lines[0]!.trim().split(/\s+/)[0]);
}

async function instanceOf(d: TestDaemon, fn: string): Promise<PoolStatus['instances'][number]> {
  const st = await d.client.call<{ pool: PoolStatus }>('GET', '/v1/status');
  const inst = st.pool.instances.find((i) => i.fn === fn);
  assert.ok(inst, `an instance of ${fn} in ${JSON.stringify(st.pool.instances)}`);
  return inst;
}

describe('issue 19: guest-driven use of the host, and secrets at rest', { timeout: 20 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    // an existing state dir left 0755 (by hand or an older version), in a directory others may enter
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-e2e-'));
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, 'state'), { mode: 0o755 });
    fs.chmodSync(path.join(dir, 'state'), 0o755);
    // snapshots off: each function is one cold-booted VM, which the test finds by its run directory
    d = await startDaemon({ snapshots: { enabled: false }, limits: { consoleMaxBytes: CONSOLE_MAX, idleCpuQuota: IDLE_CAP } }, dir);
  });
  after(() => stopAndCheck(d));

  test('the state dir becomes 0700, the database files 0600; nobody reads an env value back', async () => {
    await d.client.deploy('envfn', Buffer.from(ENV), { codeKind: 'js', env: { API_KEY: SECRET } });
    const r = await d.client.invoke('envfn', {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((fs.statSync(d.stateDir).mode & 0o777).toString(8), '700');
    const files = fs.readdirSync(d.stateDir).filter((f) => f.startsWith('faascell.db'));
    assert.ok(files.includes('faascell.db') && files.includes('faascell.db-wal'), files.join(','));
    for (const f of files) assert.equal((fs.statSync(path.join(d.stateDir, f)).mode & 0o777).toString(8), '600', f);
    // as another local user: even with the directory opened up again, the files refuse. nobody opens them
    // through a descriptor of the state dir (/proc/self/fd/3/…), so the test run's own 0700 directories
    // above it do not stop nobody first; a 0644 file beside them shows that this way in works
    fs.chmodSync(d.stateDir, 0o755);
    fs.writeFileSync(path.join(d.stateDir, 'control.txt'), 'readable\n', { mode: 0o644 });
    fs.chmodSync(path.join(d.stateDir, 'control.txt'), 0o644);
    const dirFd = fs.openSync(d.stateDir, 'r');
    const asNobody = (f: string) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', `/proc/self/fd/3/${f}`], { stdio: ['ignore', 'pipe', 'pipe', dirFd], encoding: 'utf8' });
    try {
      const control = asNobody('control.txt');
      assert.equal(control.stdout, 'readable\n', `nobody cannot read even a 0644 file of the state dir: ${control.stderr}`);
      for (const f of files) {
        const r = asNobody(f);
        assert.notEqual(r.status, 0, `nobody read ${f}`);
        assert.match(r.stderr, /Permission denied/, f);
      }
    } finally {
      fs.closeSync(dirFd);
      fs.rmSync(path.join(d.stateDir, 'control.txt'));
      fs.chmodSync(d.stateDir, 0o700);
    }
    // the value is not in the public status either (version keys hash a random id, not it)
    const status = JSON.stringify(await d.client.call('GET', '/v1/status'));
    assert.ok(!status.includes(SECRET));
  });

  test('a list of activations carries no logs unless asked', async () => {
    await d.client.deploy('chatty', Buffer.from(LOGS), { codeKind: 'js' });
    for (let i = 0; i < 3; i++) assert.equal((await d.client.invoke('chatty', { lines: 200 })).status, 200);
    const plain = await d.client.call<{ activations: Array<{ function: string; logs?: string[] }> }>('GET', '/v1/activations?function=chatty&limit=1000');
    assert.equal(plain.activations.length, 3);
    assert.ok(plain.activations.every((a) => a.logs === undefined), 'logs in a list nobody asked them for');
    const withLogs = await d.client.call<{ activations: Array<{ logs?: string[] }> }>('GET', '/v1/activations?function=chatty&logs=true');
    assert.ok(withLogs.activations.every((a) => a.logs?.length === 200));
  });

  test('a guest flooding /dev/console keeps at most two rotated files on the host; a crashed VM keeps its last words', async () => {
    await d.client.deploy('flood', Buffer.from(FLOOD), { codeKind: 'js', timeoutMs: 60_000 });
    const r = await d.client.invoke('flood', { ms: 8000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const wrote = (r.body.result as { bytes: number }).bytes;
    assert.ok(wrote > 4 * CONSOLE_MAX, `the guest wrote only ${wrote} bytes`);
    const inst = await instanceOf(d, 'flood');
    const run = path.join(d.stateDir, 'run', inst.id);
    // give the pipe a moment to deliver the end of the flood
    let tail = '';
    for (let i = 0; i < 50 && !tail.includes('FLOOD-DONE'); i++) {
      await new Promise((res) => setTimeout(res, 100));
      tail = fs.readFileSync(path.join(run, 'console.log'), 'latin1');
    }
    assert.ok(tail.includes('FLOOD-DONE'), 'the newest console output is kept');
    const consoleFiles = fs.readdirSync(run).filter((f) => f.startsWith('console.log'));
    assert.deepEqual(consoleFiles.sort(), ['console.log', 'console.log.1']);
    for (const f of consoleFiles) {
      const size = fs.statSync(path.join(run, f)).size;
      assert.ok(size <= CONSOLE_MAX, `${f} is ${size} bytes (cap ${CONSOLE_MAX})`);
    }

    await d.client.deploy('crash', Buffer.from(CRASH), { codeKind: 'js' });
    const c = await d.client.invoke('crash', {});
    assert.equal(c.status, 502, JSON.stringify(c.body));
    const rec = c.body.activation as { id: string; consoleLogPath?: string };
    // the record names the kept console (written once the VM is stopped)
    let consoleLogPath = rec.consoleLogPath;
    for (let i = 0; i < 50 && !(consoleLogPath && fs.existsSync(consoleLogPath)); i++) {
      await new Promise((res) => setTimeout(res, 200));
      consoleLogPath = (await d.client.call<{ consoleLogPath?: string }>('GET', `/v1/activations/${rec.id}`)).consoleLogPath;
    }
    assert.ok(consoleLogPath && fs.existsSync(consoleLogPath), `kept console ${consoleLogPath}`);
    assert.match(fs.readFileSync(consoleLogPath, 'latin1'), /LAST-WORDS-BEFORE-EXIT/);
  });

  test('a function spinning after its result gets at most limits.idleCpuQuota of the CPU while idle; its next run is served', async () => {
    await d.deploy('spin', 'spin-after-result.js');
    const first = await d.client.invoke('spin', {});
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const inst = await instanceOf(d, 'spin');
    assert.equal(inst.state, 'idle', 'the node lists it idle');
    const pid = vmmPid(d, inst.id);
    // measured over 6 s of idleness: the kernel holds the VMM to its quota (10 ms per 100 ms)
    const t0 = ticks(pid);
    const w0 = performance.now();
    await new Promise((res) => setTimeout(res, 6000));
    const share = ((ticks(pid) - t0) * 10) / (performance.now() - w0);
    assert.ok(share <= IDLE_CAP * 1.5 + 0.02, `an idle spinning VMM used ${share.toFixed(3)} of a CPU (bound ${IDLE_CAP})`);
    assert.equal((await instanceOf(d, 'spin')).state, 'idle');
    // the cap comes off for the run: it is served (and the loop it left is still there)
    const second = await d.client.invoke('spin', {});
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.deepEqual(second.body.result, { spinning: true });
    assert.equal(second.body.activation?.startPath, 'warm');
  });
});
