// FirecrackerDriver end to end against a fake `firecracker` executable: a small
// node script (written to a temp dir) that serves a fake API on --api-sock,
// records every request, and plays a guest agent on its stdin/stdout (the
// serial port) once InstanceStart or a resuming snapshot load arrives. This
// exercises spawn -> configure -> start -> channel -> snapshot -> stop without
// the real binary; it says nothing about a real Firecracker's behaviour.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FirecrackerDriver } from '../../src/runtimes/firecracker/driver.js';
import { processAlive } from '../../src/core/process-alive.js';
import { VmStartError, type GuestImage, type VmConfig, type VmHandle } from '../../src/runtimes/types.js';

// CommonJS (the file has no extension and no package.json above it).
const FAKE_FIRECRACKER = String.raw`
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const conf = JSON.parse(fs.readFileSync(path.join(__dirname, 'fake-fc.json'), 'utf8'));
const argv = process.argv.slice(2);
if (argv.includes('--version')) {
  process.stdout.write('Firecracker v1.7.0-fake\n\nSupported snapshot data format versions: 1.0.0\n');
  process.exit(0);
}
const arg = (n) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
const record = (o) => fs.appendFileSync(conf.record, JSON.stringify(o) + '\n');
record({ argv, cwd: process.cwd(), pid: process.pid });
if (conf.mode === 'exit-early') {
  process.stderr.write('Error: fake failure: cannot open /dev/kvm\n');
  process.exit(1);
}
// a VMM that runs but never serves its API (a wedged start): the driver's deadline must say so
if (conf.mode === 'no-api') {
  setInterval(() => {}, 1000);
  return;
}
const sock = arg('--api-sock');
if (fs.existsSync(sock)) { process.stderr.write('socket exists\n'); process.exit(1); }
// Like firecracker (Rust ignores SIGPIPE), survive a host that closed the serial pipe first.
process.stdout.on('error', () => {});
let state = 'Not started';
let agentOn = false;
function startAgent(sendReady) {
  if (agentOn) return;
  agentOn = true;
  // Kernel noise on the shared serial port, then the agent's messages.
  process.stdout.write('[    0.512] random: crng init done\r\n');
  if (sendReady) process.stdout.write(JSON.stringify({ type: 'ready', agentVersion: 'fake', node: process.version, uptimeMs: { init: 1, agentStart: 2, ready: 3 } }) + '\n');
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
      const req = JSON.parse(line);
      process.stdout.write(JSON.stringify({ id: req.id, ok: true, result: { op: req.op, state } }) + '\n');
    }
  });
}
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString();
    const body = text ? JSON.parse(text) : undefined;
    record({ method: req.method, path: req.url, body, te: req.headers['transfer-encoding'] || null });
    const reply = (status, obj) => {
      if (obj === undefined) { res.writeHead(status); res.end(); return; }
      const s = JSON.stringify(obj);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s) });
      res.end(s);
    };
    const fault = (m) => reply(400, { fault_message: m });
    const key = req.method + ' ' + req.url;
    if (conf.failOn === key) return fault('fake fault for ' + key);
    if (key === 'GET /') return reply(200, { app_name: 'Firecracker', id: arg('--id'), state, vmm_version: '1.7.0-fake' });
    if (key === 'GET /version') return reply(200, { firecracker_version: '1.7.0-fake' });
    if (key === 'PUT /actions' && body.action_type === 'InstanceStart') {
      if (state !== 'Not started') return fault('already started');
      state = 'Running';
      reply(204);
      return startAgent(true);
    }
    if (key === 'PATCH /vm') { state = body.state === 'Paused' ? 'Paused' : 'Running'; return reply(204); }
    if (key === 'PUT /snapshot/create') {
      if (state !== 'Paused') return fault('microVM is not paused');
      fs.writeFileSync(body.snapshot_path, 'vmstate');
      fs.writeFileSync(body.mem_file_path, 'memory');
      return reply(204);
    }
    if (key === 'PUT /snapshot/load') {
      if (state !== 'Not started') return fault('load only before boot');
      const mem = body.mem_backend && body.mem_backend.backend_path;
      if (fs.readFileSync(body.snapshot_path, 'utf8') !== 'vmstate' || fs.readFileSync(mem, 'utf8') !== 'memory') return fault('bad snapshot');
      state = body.resume_vm ? 'Running' : 'Paused';
      reply(204);
      if (body.resume_vm) startAgent(false);
      return;
    }
    if (req.method === 'PUT' && state !== 'Not started') return fault('pre-boot only');
    return reply(204);
  });
});
const delay = conf.socketDelayMs || 0;
setTimeout(() => server.listen(sock), delay);
process.on('SIGTERM', () => { if (conf.ignoreTerm) return; process.exit(0); });
`;

interface FakeConf {
  record: string;
  mode?: 'ok' | 'exit-early' | 'no-api';
  failOn?: string;
  socketDelayMs?: number;
  ignoreTerm?: boolean;
}

interface Rec {
  argv?: string[];
  cwd?: string;
  pid?: number;
  method?: string;
  path?: string;
  body?: unknown;
  te?: string | null;
}

let dir: string;
let fakeBin: string;
let recordPath: string;
const handles: VmHandle[] = [];

async function setFake(c: Omit<FakeConf, 'record'>): Promise<void> {
  await fs.rm(recordPath, { force: true });
  await fs.writeFile(path.join(dir, 'fake-fc.json'), JSON.stringify({ record: recordPath, ...c }));
}

async function records(): Promise<Rec[]> {
  const text = await fs.readFile(recordPath, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Rec);
}

/** API calls in order, without the GET / readiness probes. */
async function apiCalls(): Promise<Array<{ method?: string; path?: string; body?: unknown }>> {
  return (await records()).filter((r) => r.method && !(r.method === 'GET' && r.path === '/')).map(({ method, path: p, body }) => ({ method, path: p, body }));
}

function vmConfig(name: string, over: Partial<VmConfig> = {}): VmConfig {
  const image: GuestImage = {
    version: 'test',
    dir,
    kernelPath: path.join(dir, 'vmlinux'),
    kernelKind: 'minimal',
    initrdPath: path.join(dir, 'initrd.cpio.gz'),
    rootfsPath: path.join(dir, 'node.sqfs'),
    cmdline: 'console=ttyS0 reboot=t panic=-1 quiet tsc_early_khz=2400000',
    sizes: { kernelBytes: 1, initrdBytes: 1, rootfsBytes: 1 },
  };
  return {
    vmId: name,
    memoryMiB: 256,
    vcpus: 1,
    image,
    runDir: path.join(dir, 'run', name),
    accelerator: 'kvm',
    memory: { kind: 'anonymous' },
    ...over,
  };
}

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fc-driver-test-'));
  fakeBin = path.join(dir, 'firecracker');
  recordPath = path.join(dir, 'requests.jsonl');
  await fs.writeFile(fakeBin, `#!${process.execPath}\n${FAKE_FIRECRACKER}`, { mode: 0o755 });
});

after(async () => {
  for (const h of handles) await h.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

void describe('FirecrackerDriver with a fake firecracker executable', () => {
  void test('boot: spawn, configure, start; channel; snapshot; stop', async () => {
    await setFake({ mode: 'ok', socketDelayMs: 50 });
    const driver = new FirecrackerDriver({ binary: fakeBin });
    const cfg = vmConfig('boot-1', { vcpus: 2, memoryMiB: 384, extraCmdline: 'faascell.debug=1' });
    const vm = await driver.boot(cfg);
    handles.push(vm);
    assert.equal(vm.vmId, 'boot-1');
    assert.equal(vm.accelerator, 'kvm');
    assert.ok(processAlive(vm.pid));

    const recs = await records();
    const start = recs[0];
    assert.ok(start?.argv);
    assert.deepEqual(start.argv, [
      '--api-sock',
      path.join(cfg.runDir, 'fc.sock'),
      '--id',
      'boot-1',
      '--log-path',
      path.join(cfg.runDir, 'firecracker.log'),
      '--level',
      'Warning',
    ]);
    assert.equal(start.pid, vm.pid);
    assert.equal(start.cwd, cfg.runDir);
    // Readiness probes first, then the configuration in order, InstanceStart last.
    assert.ok(recs.slice(1).some((r) => r.method === 'GET' && r.path === '/'));
    assert.deepEqual(await apiCalls(), [
      {
        method: 'PUT',
        path: '/boot-source',
        body: {
          kernel_image_path: cfg.image.kernelPath,
          initrd_path: cfg.image.initrdPath,
          boot_args: 'panic=-1 quiet console=ttyS0 reboot=k loglevel=1 faascell.agent_tty=ttyS0 faascell.debug=1',
        },
      },
      { method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'rootfs', path_on_host: cfg.image.rootfsPath, is_root_device: false, is_read_only: true } },
      { method: 'PUT', path: '/machine-config', body: { vcpu_count: 2, mem_size_mib: 384, smt: false } },
      { method: 'PUT', path: '/actions', body: { action_type: 'InstanceStart' } },
    ]);
    assert.ok(recs.every((r) => !r.te), 'no chunked request bodies');
    for (const k of ['vmmSpawned', 'apiReady', 'configured', 'instanceStarted', 'channelConnected']) {
      assert.equal(typeof vm.timings[k], 'number', k);
    }

    // The serial channel: kernel noise is skipped, ready and replies arrive.
    const ready = await vm.channel.ready(5_000);
    assert.equal(ready.agentVersion, 'fake');
    const reply = await vm.channel.request({ op: 'ping' }, 5_000);
    assert.deepEqual(reply, { id: 1, ok: true, result: { op: 'ping', state: 'Running' } });

    const mem = await vm.memoryUsage();
    assert.ok(mem.rssKiB > 0 && mem.pssKiB > 0, JSON.stringify(mem));

    const snapDir = path.join(dir, 'snaps', 'a');
    const n0 = (await apiCalls()).length;
    const t = await vm.snapshot({ statePath: path.join(snapDir, 'vm.state'), memoryPath: path.join(snapDir, 'vm.mem'), kind: 'shared-memory' });
    assert.ok(t.pauseMs >= 0 && t.saveMs >= 0);
    assert.deepEqual((await apiCalls()).slice(n0), [
      { method: 'PATCH', path: '/vm', body: { state: 'Paused' } },
      {
        method: 'PUT',
        path: '/snapshot/create',
        body: { snapshot_type: 'Full', snapshot_path: path.join(snapDir, 'vm.state'), mem_file_path: path.join(snapDir, 'vm.mem') },
      },
    ]);
    assert.equal(await fs.readFile(path.join(snapDir, 'vm.state'), 'utf8'), 'vmstate');

    await vm.stop();
    assert.equal(processAlive(vm.pid), false);
    await assert.rejects(fs.access(cfg.runDir), /ENOENT/);
    const exit = await vm.exited;
    assert.ok(exit.code !== null || exit.signal !== null);
    await vm.channel.closed;
    await vm.stop(); // idempotent
  });

  void test('restore: fresh process, snapshot/load with a File backend and resume_vm', async () => {
    const snapDir = path.join(dir, 'snaps', 'a');
    await setFake({ mode: 'ok' });
    const driver = new FirecrackerDriver({ binary: fakeBin });
    const cfg = vmConfig('restore-1', { memory: { kind: 'file', path: path.join(snapDir, 'vm.mem'), share: false } });
    const vm = await driver.restore(cfg, { statePath: path.join(snapDir, 'vm.state'), memoryPath: path.join(snapDir, 'vm.mem'), kind: 'shared-memory' });
    handles.push(vm);
    // Nothing but the load: a snapshot load is refused after any other configuration.
    assert.deepEqual(await apiCalls(), [
      {
        method: 'PUT',
        path: '/snapshot/load',
        body: { snapshot_path: path.join(snapDir, 'vm.state'), mem_backend: { backend_type: 'File', backend_path: path.join(snapDir, 'vm.mem') }, resume_vm: true },
      },
    ]);
    assert.equal(typeof vm.timings.stateLoaded, 'number');
    assert.equal(typeof vm.timings.resumed, 'number');
    const reply = await vm.channel.request({ op: 'ping' }, 5_000);
    assert.equal(reply.ok, true);
    await vm.stop();
    assert.equal(processAlive(vm.pid), false);
    await assert.rejects(fs.access(cfg.runDir), /ENOENT/);
  });

  void test('restore refuses missing snapshot files before spawning anything', async () => {
    await setFake({ mode: 'ok' });
    const driver = new FirecrackerDriver({ binary: fakeBin });
    await assert.rejects(
      driver.restore(vmConfig('restore-missing'), { statePath: path.join(dir, 'none.state'), memoryPath: path.join(dir, 'none.mem'), kind: 'shared-memory' }),
      /none\.state is missing/,
    );
    assert.deepEqual(await records(), []);
  });

  void test('an API fault during configuration kills the VMM, removes runDir, and surfaces fault_message', async () => {
    await setFake({ mode: 'ok', failOn: 'PUT /machine-config' });
    const driver = new FirecrackerDriver({ binary: fakeBin });
    const cfg = vmConfig('fail-config');
    await assert.rejects(driver.boot(cfg), /PUT \/machine-config failed with 400: fake fault for PUT \/machine-config/);
    const pid = (await records())[0]?.pid;
    assert.ok(pid);
    assert.equal(processAlive(pid), false);
    await assert.rejects(fs.access(cfg.runDir), /ENOENT/);
  });

  void test('a VMM that exits before its API is up: the error carries its stderr', async () => {
    await setFake({ mode: 'exit-early' });
    const driver = new FirecrackerDriver({ binary: fakeBin });
    const cfg = vmConfig('exit-early');
    await assert.rejects(driver.boot(cfg), /firecracker exited \(code 1.*cannot open \/dev\/kvm/);
    await assert.rejects(fs.access(cfg.runDir), /ENOENT/);
  });

  // issue 17: the decision core decides on the type of a failed start (a deadline keeps the snapshot,
  // a refused snapshot is dropped), never on its text: the same typed errors as the QEMU driver
  void test('failed starts are typed VmStartErrors: refused snapshot, deadline, exited VMM, API fault', async () => {
    const reason = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
      } catch (e) {
        assert.ok(e instanceof VmStartError, `a VmStartError, not ${String(e)}`);
        return `${e.op}:${e.reason}`;
      }
      assert.fail('the start should fail');
    };
    const driver = new FirecrackerDriver({ binary: fakeBin });
    // its API never comes up: the driver's start deadline (short here) is what fails the start
    const wedged = new FirecrackerDriver({ binary: fakeBin, startTimeoutMs: 300 });
    const missing = { statePath: path.join(dir, 'none.state'), memoryPath: path.join(dir, 'none.mem'), kind: 'shared-memory' as const };
    assert.equal(await reason(driver.restore(vmConfig('t-missing'), missing)), 'restore:snapshot-unusable');
    const state = path.join(dir, 'typed.state');
    const mem = path.join(dir, 'typed.mem');
    await fs.writeFile(state, 'x');
    await fs.writeFile(mem, 'x');
    await setFake({ mode: 'ok', failOn: 'PUT /snapshot/load' });
    assert.equal(await reason(driver.restore(vmConfig('t-refused'), { statePath: state, memoryPath: mem, kind: 'shared-memory' })), 'restore:snapshot-unusable');
    await setFake({ mode: 'no-api' });
    assert.equal(await reason(wedged.restore(vmConfig('t-slow'), { statePath: state, memoryPath: mem, kind: 'shared-memory' })), 'restore:timeout');
    assert.equal(await reason(wedged.boot(vmConfig('t-boot-slow'))), 'boot:timeout');
    await setFake({ mode: 'exit-early' });
    assert.equal(await reason(driver.boot(vmConfig('t-exit'))), 'boot:vmm-exited');
    await setFake({ mode: 'ok', failOn: 'PUT /machine-config' });
    assert.equal(await reason(driver.boot(vmConfig('t-config'))), 'boot:vmm-failed');
    assert.equal(await reason(new FirecrackerDriver({ binary: path.join(dir, 'no-such-firecracker') }).boot(vmConfig('t-nobin'))), 'boot:vmm-failed');
  });

  void test('stop escalates to SIGKILL when TERM is ignored', async () => {
    await setFake({ mode: 'ok', ignoreTerm: true });
    const driver = new FirecrackerDriver({ binary: fakeBin });
    const vm = await driver.boot(vmConfig('stubborn'));
    handles.push(vm);
    await vm.stop();
    const ex = await vm.exited;
    assert.equal(ex.signal, 'SIGKILL', JSON.stringify(ex));
    assert.equal(processAlive(vm.pid), false);
  });

  void test('cpuAffinity runs the VMM under taskset with the same pid', async () => {
    // a CPU this process may run on (a container may not have CPU 0); taskset is util-linux, always there
    const cpu = Number(/^Cpus_allowed_list:\s+(\d+)/m.exec(await fs.readFile('/proc/self/status', 'utf8'))?.[1] ?? 0);
    await setFake({ mode: 'ok' });
    const vm = await new FirecrackerDriver({ binary: fakeBin }).boot(vmConfig('pinned', { cpuAffinity: [cpu] }));
    handles.push(vm);
    assert.equal((await records())[0]?.pid, vm.pid);
    const status = await fs.readFile(`/proc/${vm.pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Cpus_allowed_list:\\s+${cpu}$`, 'm'));
    await vm.stop();
  });

  void test('tcg is refused: Firecracker has no software emulation', async () => {
    const driver = new FirecrackerDriver({ binary: fakeBin });
    await assert.rejects(driver.boot(vmConfig('tcg', { accelerator: 'tcg' })), /only on KVM/);
  });

  void test('report() with the fake binary: found, version read', async () => {
    const r = await new FirecrackerDriver({ binary: fakeBin }).report();
    assert.equal(r.binary, fakeBin);
    assert.equal(r.version, 'Firecracker v1.7.0-fake');
    assert.equal(r.accelerator, 'kvm');
    // available also needs real KVM: on a PVM or KVM-less host that is a listed problem.
    if (!r.available) assert.ok(r.problems.length > 0);
  });
});
