// Networking for functions (issue 10) with the real daemon, real VMs, real
// namespaces and nftables. All traffic stays on this machine: the test creates
// its own network namespace with an HTTP and DNS server on a private /29, and
// the daemon's VM range is checked against the host's routes before use.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { cleanup, leftovers, qemuProcessesUnder, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { daemonNetworkId, type NetworkStatus } from '../../src/network/network-manager.js';
import { reapStale } from '../../src/network/host.js';
import { parseCidr } from '../../src/network/ipv4.js';
import { hostIfPrefix, hostTableName, netnsPrefix } from '../../src/network/plan.js';
import { DNS_NAME, freeTestSubnet, hostNetState, missingNetTools, TestServerNs } from '../fixtures/netns.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface FetchResult {
  ok: boolean;
  status?: number;
  body?: string;
  code?: string;
  ms: number;
}
interface FnResult {
  results: FetchResult[];
  early: string;
  restoredEvents: number;
}

async function status(d: TestDaemon): Promise<{ network: NetworkStatus; pool: { instances: Array<{ fn: string }> } }> {
  return d.client.call('GET', '/v1/status');
}

async function evict(d: TestDaemon, fn: string): Promise<void> {
  await d.client.call('POST', `/v1/functions/${fn}/evict`);
  for (let i = 0; i < 200; i++) {
    if (!(await status(d)).pool.instances.some((x) => x.fn === fn)) return;
    await sleep(100);
  }
  throw new Error(`instances of ${fn} did not stop`);
}

async function invoke(d: TestDaemon, fn: string, params: Record<string, unknown>): Promise<{ result: FnResult; activation: NonNullable<Awaited<ReturnType<TestDaemon['client']['invoke']>>['body']['activation']> }> {
  const r = await d.client.invoke(fn, params);
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 2000));
  return { result: r.body.result as FnResult, activation: r.body.activation! };
}

const isRoot = process.getuid?.() === 0;
const missing = missingNetTools();

describe('networking for functions', { timeout: 20 * 60_000, skip: isRoot ? false : 'needs root: network namespaces, veths and nftables' }, () => {
  let d: TestDaemon | undefined;
  let srv: TestServerNs;
  let made: TestServerNs | undefined; // for after(), which runs even when before() failed
  let before0: string[];
  let netId: string;
  const config = () => ({
    network: { dns: srv.server, poolSize: 2 },
    policies: { placement: { policy: 'fixed', tier: 'shm' } },
  });

  before(async () => {
    // fail loudly: setup installs these
    assert.deepEqual(missing, [], `missing tools (npm run setup installs them): ${missing.join(', ')}`);
    srv = made = new TestServerNs(freeTestSubnet());
    await srv.start();
    before0 = hostNetState();
    d = await startDaemon(config());
    netId = daemonNetworkId(path.join(d.stateDir, 'run'));
  });
  after(async () => {
    try {
      if (d) await stopAndCheck(d);
    } finally {
      // a test that failed half-way may have left a killed daemon's objects; its state directory is gone,
      // so no later daemon has its id: reap them here with the daemon's own reaper (a no-op after a clean run)
      if (netId) await reapStale({ id: netId, hostCidr: parseCidr('10.200.0.0/16')! }).catch(() => undefined);
      made?.stop();
    }
  });

  test('an egress function reaches the allowlisted server, by address and by name', async () => {
    await d!.deploy('fetcher', 'net-fetch.js', { network: { mode: 'egress', allow: [`${srv.server}:8080`] } });
    const { result, activation } = await invoke(d!, 'fetcher', { urls: [`http://${srv.server}:8080/hello`, `http://${DNS_NAME}:8080/by-name`] });
    assert.equal(result.results[0]!.ok, true, JSON.stringify(result));
    assert.match(result.results[0]!.body!, /^hello from the test namespace \/hello /);
    assert.equal(result.results[1]!.ok, true, `DNS through the gateway: ${JSON.stringify(result.results[1])}`);
    assert.match(result.results[1]!.body!, /\/by-name/);
    assert.equal(typeof activation.startDetails?.networkSetupMs, 'number', 'the start records its network set-up');
    const st = (await status(d!)).network;
    assert.equal(st.host, 'up');
    assert.ok(st.slots.used >= 1);
  });

  test('outside the allowlist: another address, another port, the host itself, other VMs are refused', async () => {
    const t0 = Date.now();
    const { result } = await invoke(d!, 'fetcher', {
      urls: [`http://${srv.other}:8080/`, `http://${srv.server}:8081/`, 'http://10.200.0.1:22/', 'http://10.200.0.6:8080/'],
      timeoutMs: 8000,
    });
    for (const r of result.results) {
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.equal(r.code, 'EHOSTUNREACH', `refused at once by the namespace's rules, not left to time out: ${JSON.stringify(r)}`);
    }
    assert.ok(Date.now() - t0 < 30_000);
  });

  test('a function without networking cannot reach the server', async () => {
    await d!.deploy('offline', 'net-fetch.js');
    const { result, activation } = await invoke(d!, 'offline', { urls: [`http://${srv.server}:8080/`], timeoutMs: 3000 });
    assert.equal(result.results[0]!.ok, false, JSON.stringify(result));
    assert.equal(activation.startDetails?.networkSetupMs, undefined, 'no network set-up for it');
  });

  test('switching a function to egress and back is a new version: the next start has the new network', async () => {
    await d!.deploy('offline', 'net-fetch.js', { network: { mode: 'egress', allow: [`${srv.server}:8080`] } });
    const on = await invoke(d!, 'offline', { urls: [`http://${srv.server}:8080/now-online`] });
    assert.equal(on.result.results[0]!.ok, true, JSON.stringify(on.result));
    assert.equal(typeof on.activation.startDetails?.networkSetupMs, 'number');
    await d!.deploy('offline', 'net-fetch.js');
    const off = await invoke(d!, 'offline', { urls: [`http://${srv.server}:8080/`], timeoutMs: 3000 });
    assert.notEqual(off.activation.vmId, on.activation.vmId, 'the egress VM was retired');
    assert.equal(off.result.results[0]!.ok, false, JSON.stringify(off.result));
  });

  test('ten clones of one networked snapshot fetch at the same time; connections from before the snapshot are dead', async (t) => {
    await d!.deploy('clones', 'net-fetch.js', {
      network: { mode: 'egress', allow: [`tcp://${srv.server}:8080`] },
      maxInstances: 10,
      timeoutMs: 150_000,
      env: { EARLY_CONNECT: `${srv.server}:8080` },
    });
    // the first start leaves the snapshot (taken right after init, with the early connection open)
    const first = await invoke(d!, 'clones', { urls: [`http://${srv.server}:8080/first`] });
    assert.equal(first.result.results[0]!.ok, true, JSON.stringify(first.result));
    // snapshots.coldSnapshot copy (the default): the source VM runs on after its snapshot, its connection
    // intact (it is the same VM); restore: it continues from a restore of its snapshot, which closes it
    const sourceMode = first.activation.startDetails?.coldSnapshot;
    assert.ok(sourceMode === 'copy' || sourceMode === 'restore', `coldSnapshot ${String(sourceMode)}`);
    assert.equal(first.result.early, sourceMode === 'copy' ? 'open' : 'error:ERR_FAASCELL_RESTORED', `the snapshot source (${sourceMode})`);
    await evict(d!, 'clones');
    // each request waits at the server until all ten are there: ten VMs at once
    const calls = await Promise.all(Array.from({ length: 10 }, () => invoke(d!, 'clones', { urls: [`http://${srv.server}:8080/barrier?n=10`], timeoutMs: 140_000 })));
    for (const c of calls) {
      assert.equal(c.result.results[0]!.ok, true, JSON.stringify(c.result));
      assert.equal(c.result.results[0]!.status, 200, JSON.stringify(c.result));
      assert.equal(c.result.results[0]!.body, 'barrier passed by 10');
      assert.equal(c.activation.startPath, 'restore');
      assert.equal(c.result.early, 'error:ERR_FAASCELL_RESTORED');
      assert.equal(c.result.restoredEvents, 1);
    }
    assert.equal(new Set(calls.map((c) => c.activation.vmId)).size, 10, 'ten distinct VMs');
    const setup = calls.map((c) => `${String(c.activation.startDetails?.networkSetupMs)}${c.activation.startDetails?.networkPooled ? 'p' : ''}`);
    t.diagnostic(`network set-up per clone (ms, p = pooled slot): ${setup.join(' ')}; totals ${calls.map((c) => Math.round(c.activation.totalMs)).join(' ')} ms`);
    const st = (await status(d!)).network;
    assert.ok(st.slots.used >= 10, `ten clones, each in its own namespace (used slots: ${st.slots.used})`);
    await evict(d!, 'clones');
  });

  test('changing the allowlist replaces warm VMs; nothing is left after stop, kill -9 and restart', async () => {
    // the old rule let /hello through; the new one allows only another port
    await d!.deploy('fetcher', 'net-fetch.js', { network: { mode: 'egress', allow: [`${srv.server}:9999`] } });
    const { result } = await invoke(d!, 'fetcher', { urls: [`http://${srv.server}:8080/hello`], timeoutMs: 5000 });
    assert.equal(result.results[0]!.code, 'EHOSTUNREACH', JSON.stringify(result));

    const during = hostNetState();
    assert.ok(during.some((l) => l.startsWith(`link ${hostIfPrefix(netId)}`)), 'host-side veths exist while VMs run');
    assert.ok(during.some((l) => l.startsWith(`netns ${netnsPrefix(netId)}`)));
    assert.ok(during.includes(`table ip ${hostTableName(netId)}`));

    // a clean stop removes everything
    await d!.stop();
    assert.deepEqual(hostNetState(), before0, 'host network state after a clean stop');

    // kill -9 leaves objects behind; the restarted daemon reaps them
    const dir = d!.dir;
    d = await startDaemon(config(), dir);
    await invoke(d, 'fetcher', { urls: [] });
    assert.ok(hostNetState().some((l) => l.startsWith(`netns ${netnsPrefix(netId)}`)));
    d.proc.kill('SIGKILL');
    await new Promise((r) => d!.proc.once('exit', r));
    // its VMMs die with it (parent-death signal through nsenter and setpriv), even before any restart
    for (let i = 0; i < 100 && qemuProcessesUnder(dir).length > 0; i++) await sleep(100);
    assert.deepEqual(qemuProcessesUnder(dir), [], 'no VMM outlives a killed daemon');
    const left = hostNetState();
    assert.ok(left.some((l) => l.startsWith(`netns ${netnsPrefix(netId)}`)), 'a killed daemon cannot clean up');
    d = await startDaemon(config(), dir);
    // the reap runs as the NetworkManager starts, before it serves any VM
    for (let i = 0; i < 100 && !/reaped network objects left behind/.test(d.logs()); i++) await sleep(100);
    assert.match(d.logs(), /reaped network objects left behind by a previous daemon/);
    const again = await invoke(d, 'offline', { urls: [] });
    assert.equal(again.activation.startPath !== undefined, true);
    await d.stop();
    const after0 = hostNetState();
    assert.deepEqual(after0, before0, 'host network state after kill -9, restart and stop');
    assert.deepEqual(leftovers(d), [], 'no VMM process or run directory left');
    cleanup(d);
    d = undefined;
  });
});
