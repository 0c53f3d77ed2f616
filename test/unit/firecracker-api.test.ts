// Firecracker API client, hybrid vsock handshake and driver helpers, checked
// against fake servers on unix sockets (no firecracker binary is needed).

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FirecrackerApi, FirecrackerApiError } from '../../src/runtimes/firecracker/api.js';
import {
  FirecrackerDriver,
  findBinary,
  firecrackerBootArgs,
  firecrackerInstanceId,
  firecrackerSnapshotFiles,
  parseSmapsRollup,
} from '../../src/runtimes/firecracker/driver.js';
import { connectHybridVsock } from '../../src/runtimes/firecracker/vsock.js';

interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

type Responder = (r: Recorded) => { status: number; body?: unknown } | 'hang';

/** A fake Firecracker API: records every request; answers 204 unless `respond` says otherwise. */
class FakeApiServer {
  readonly requests: Recorded[] = [];
  respond: Responder = () => ({ status: 204 });
  private readonly server: http.Server;
  private readonly hanging = new Set<http.ServerResponse>();

  constructor(readonly socketPath: string) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const rec: Recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : undefined };
        this.requests.push(rec);
        const a = this.respond(rec);
        if (a === 'hang') {
          this.hanging.add(res);
          return;
        }
        if (a.body === undefined) {
          res.writeHead(a.status);
          res.end();
        } else {
          const out = JSON.stringify(a.body);
          res.writeHead(a.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(out) });
          res.end(out);
        }
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.socketPath, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const r of this.hanging) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Requests without the GET / readiness probes. */
  calls(): Array<{ method: string; path: string; body: unknown }> {
    return this.requests.map(({ method, path: p, body }) => ({ method, path: p, body }));
  }
}

let dir: string;

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fc-api-test-'));
});

after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function withServer(fn: (srv: FakeApiServer, api: FirecrackerApi) => Promise<void>, timeoutMs?: number): Promise<void> {
  const sock = path.join(dir, `api-${Math.random().toString(36).slice(2)}.sock`);
  const srv = new FakeApiServer(sock);
  await srv.listen();
  try {
    await fn(srv, new FirecrackerApi(sock, { timeoutMs }));
  } finally {
    await srv.close();
    await fs.rm(sock, { force: true });
  }
}

void describe('FirecrackerApi requests', () => {
  void test('boot configuration: exact method, path and JSON body', async () => {
    await withServer(async (srv, api) => {
      await api.putBootSource({ kernel_image_path: '/img/vmlinux', initrd_path: '/img/initrd.cpio.gz', boot_args: 'console=ttyS0 reboot=k' });
      await api.putDrive({ drive_id: 'rootfs', path_on_host: '/img/node.sqfs', is_root_device: false, is_read_only: true });
      await api.putMachineConfig({ vcpu_count: 2, mem_size_mib: 256, smt: false });
      await api.putVsock({ guest_cid: 3, uds_path: '/run/vm/v.sock' });
      await api.instanceStart();
      await api.sendCtrlAltDel();
      assert.deepEqual(srv.calls(), [
        { method: 'PUT', path: '/boot-source', body: { kernel_image_path: '/img/vmlinux', initrd_path: '/img/initrd.cpio.gz', boot_args: 'console=ttyS0 reboot=k' } },
        { method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'rootfs', path_on_host: '/img/node.sqfs', is_root_device: false, is_read_only: true } },
        { method: 'PUT', path: '/machine-config', body: { vcpu_count: 2, mem_size_mib: 256, smt: false } },
        { method: 'PUT', path: '/vsock', body: { guest_cid: 3, uds_path: '/run/vm/v.sock' } },
        { method: 'PUT', path: '/actions', body: { action_type: 'InstanceStart' } },
        { method: 'PUT', path: '/actions', body: { action_type: 'SendCtrlAltDel' } },
      ]);
      for (const r of srv.requests) {
        // Firecracker's HTTP server wants a Content-Length, not chunked encoding.
        assert.equal(r.headers['transfer-encoding'], undefined);
        assert.equal(Number(r.headers['content-length']), Buffer.byteLength(JSON.stringify(r.body)));
        assert.equal(r.headers['content-type'], 'application/json');
      }
    });
  });

  void test('pause, resume, snapshot create and load', async () => {
    await withServer(async (srv, api) => {
      await api.pause();
      await api.createSnapshot({ snapshot_type: 'Full', snapshot_path: '/snap/vm.state', mem_file_path: '/snap/vm.mem' });
      await api.resume();
      await api.loadSnapshot({ snapshot_path: '/snap/vm.state', mem_backend: { backend_type: 'File', backend_path: '/snap/vm.mem' }, resume_vm: true });
      assert.deepEqual(srv.calls(), [
        { method: 'PATCH', path: '/vm', body: { state: 'Paused' } },
        { method: 'PUT', path: '/snapshot/create', body: { snapshot_type: 'Full', snapshot_path: '/snap/vm.state', mem_file_path: '/snap/vm.mem' } },
        { method: 'PATCH', path: '/vm', body: { state: 'Resumed' } },
        {
          method: 'PUT',
          path: '/snapshot/load',
          body: { snapshot_path: '/snap/vm.state', mem_backend: { backend_type: 'File', backend_path: '/snap/vm.mem' }, resume_vm: true },
        },
      ]);
    });
  });

  void test('GET / and GET /version are parsed', async () => {
    await withServer(async (srv, api) => {
      srv.respond = (r) =>
        r.path === '/'
          ? { status: 200, body: { app_name: 'Firecracker', id: 'vm-1', state: 'Not started', vmm_version: '1.7.0' } }
          : { status: 200, body: { firecracker_version: '1.7.0' } };
      const info = await api.describeInstance();
      assert.equal(info.state, 'Not started');
      assert.equal(info.id, 'vm-1');
      assert.deepEqual(await api.getVersion(), { firecracker_version: '1.7.0' });
      assert.deepEqual(
        srv.requests.map((r) => [r.method, r.path, r.headers['content-length']]),
        [
          ['GET', '/', undefined],
          ['GET', '/version', undefined],
        ],
      );
    });
  });

  void test('a 400 carries fault_message into the error', async () => {
    await withServer(async (srv, api) => {
      srv.respond = () => ({ status: 400, body: { fault_message: 'Invalid kernel path: No such file or directory (os error 2)' } });
      await assert.rejects(api.putBootSource({ kernel_image_path: '/nope' }), (e: unknown) => {
        assert.ok(e instanceof FirecrackerApiError);
        assert.equal(e.statusCode, 400);
        assert.equal(e.faultMessage, 'Invalid kernel path: No such file or directory (os error 2)');
        assert.match(e.message, /PUT \/boot-source failed with 400: Invalid kernel path/);
        return true;
      });
    });
  });

  void test('a 500 without a JSON body still rejects', async () => {
    await withServer(async (srv, api) => {
      srv.respond = () => ({ status: 500 });
      await assert.rejects(api.instanceStart(), (e: unknown) => e instanceof FirecrackerApiError && e.statusCode === 500);
    });
  });

  void test('a request that gets no answer times out', async () => {
    await withServer(async (srv, api) => {
      srv.respond = () => 'hang';
      // the server never answers: only the client's own deadline ends the request (the message names it)
      await assert.rejects(api.pause(), (e: unknown) => e instanceof FirecrackerApiError && e.code === 'ETIMEDOUT' && /timed out after 150 ms/.test(e.message));
    }, 150);
  });

  void test('a missing socket is a transport error (ENOENT), not an HTTP status', async () => {
    const api = new FirecrackerApi(path.join(dir, 'absent.sock'));
    await assert.rejects(api.describeInstance(), (e: unknown) => e instanceof FirecrackerApiError && e.code === 'ENOENT' && e.statusCode === undefined);
  });

  void test('waitReady waits for a socket that appears later, and gives up on abort', async () => {
    const sock = path.join(dir, 'late.sock');
    const srv = new FakeApiServer(sock);
    srv.respond = () => ({ status: 200, body: { app_name: 'Firecracker', id: 'x', state: 'Not started', vmm_version: '1' } });
    const api = new FirecrackerApi(sock);
    const timer = setTimeout(() => void srv.listen(), 100);
    try {
      const info = await api.waitReady(3_000);
      assert.equal(info.app_name, 'Firecracker');
    } finally {
      clearTimeout(timer);
      await srv.close();
      await fs.rm(sock, { force: true });
    }
    await assert.rejects(new FirecrackerApi(path.join(dir, 'never.sock')).waitReady(3_000, { abort: () => 'process exited' }), /process exited/);
    await assert.rejects(new FirecrackerApi(path.join(dir, 'never.sock')).waitReady(100), /not ready after 100 ms/);
  });
});

void describe('hybrid vsock handshake', () => {
  void test('sends CONNECT <port>, accepts OK, keeps bytes sent right after it', async () => {
    const uds = path.join(dir, 'v.sock');
    const seen: string[] = [];
    const server = net.createServer((c) => {
      c.once('data', (d: Buffer) => {
        seen.push(d.toString());
        // OK line and the guest's first bytes in one segment.
        c.write('OK 1073741824\n{"type":"ready"}\n');
      });
    });
    await new Promise<void>((r) => server.listen(uds, () => r()));
    try {
      const sock = await connectHybridVsock(uds, 52, 2_000);
      const got = new Promise<string>((r) => sock.once('data', (d: Buffer) => r(d.toString())));
      sock.resume();
      assert.equal(await got, '{"type":"ready"}\n');
      assert.deepEqual(seen, ['CONNECT 52\n']);
      sock.destroy();
    } finally {
      server.close();
      await fs.rm(uds, { force: true });
    }
  });

  void test('rejects when Firecracker closes the connection (nobody listening on the port)', async () => {
    const uds = path.join(dir, 'v2.sock');
    const server = net.createServer((c) => c.once('data', () => c.end()));
    await new Promise<void>((r) => server.listen(uds, () => r()));
    try {
      await assert.rejects(connectHybridVsock(uds, 1024, 2_000), /closed before OK/);
    } finally {
      server.close();
      await fs.rm(uds, { force: true });
    }
  });
});

void describe('driver helpers', () => {
  void test('boot args: QEMU/TCG-only arguments dropped, serial console and agent tty set', () => {
    const args = firecrackerBootArgs('console=ttyS0 reboot=t panic=-1 quiet tsc_early_khz=2400000 random.trust_cpu=on', 'foo=bar');
    assert.equal(args, 'panic=-1 quiet random.trust_cpu=on console=ttyS0 reboot=k loglevel=1 faascell.agent_tty=ttyS0 foo=bar');
    assert.equal(firecrackerBootArgs('quiet', undefined, 7), 'quiet console=ttyS0 reboot=k loglevel=7 faascell.agent_tty=ttyS0 panic=1');
  });

  void test('instance id is sanitised for --id', () => {
    assert.equal(firecrackerInstanceId('fn_hello.3'), 'fn-hello-3');
    assert.equal(firecrackerInstanceId('x'.repeat(80)).length, 64);
    assert.equal(firecrackerInstanceId(''), 'faascell-vm');
  });

  void test('snapshot files: full-stream targets get a memory file next to the state', () => {
    assert.deepEqual(firecrackerSnapshotFiles({ statePath: '/s/a.state', memoryPath: '/s/a.mem', kind: 'shared-memory' }), {
      statePath: '/s/a.state',
      memoryPath: '/s/a.mem',
    });
    assert.deepEqual(firecrackerSnapshotFiles({ statePath: '/s/a.state', memoryPath: '', kind: 'full-stream' }), {
      statePath: '/s/a.state',
      memoryPath: '/s/a.state.mem',
    });
  });

  void test('smaps_rollup parsing', () => {
    const text = '00400000-7ffd [rollup]\nRss:              251904 kB\nPss:               22528 kB\nPss_Anon:  1 kB\n';
    assert.deepEqual(parseSmapsRollup(text), { rssKiB: 251904, pssKiB: 22528 });
  });

  void test('findBinary: PATH search and explicit path', async () => {
    const bin = path.join(dir, 'bin');
    await fs.mkdir(bin, { recursive: true });
    const exe = path.join(bin, 'firecracker');
    await fs.writeFile(exe, '#!/bin/sh\n', { mode: 0o755 });
    await fs.writeFile(path.join(bin, 'not-exec'), '', { mode: 0o644 });
    assert.equal(await findBinary('firecracker', `/nonexistent:${bin}`), exe);
    assert.equal(await findBinary(exe), exe);
    assert.equal(await findBinary('not-exec', bin), undefined);
    assert.equal(await findBinary('firecracker', '/nonexistent'), undefined);
  });
});

void describe('report()', () => {
  void test('a missing binary is reported as such; the accelerator is always kvm', async () => {
    const r = await new FirecrackerDriver({ binary: 'firecracker-that-does-not-exist-xyz' }).report();
    assert.equal(r.runtime, 'firecracker');
    assert.equal(r.available, false);
    assert.equal(r.binary, undefined);
    assert.equal(r.accelerator, 'kvm');
    assert.match(r.acceleratorReason ?? '', /kvm/i);
    assert.ok(r.problems.some((p) => /firecracker-that-does-not-exist-xyz' not found in PATH/.test(p)), r.problems.join('; '));

    const r2 = await new FirecrackerDriver({ binary: path.join(dir, 'nope', 'firecracker') }).report();
    assert.equal(r2.available, false);
    assert.ok(r2.problems.some((p) => /not found at .*nope\/firecracker \(configured path\)/.test(p)), r2.problems.join('; '));
  });
});
