// Networking for functions (issue 10) with the real daemon, real VMs, real
// namespaces and nftables. All traffic stays on this machine: the test creates
// its own network namespace with an HTTP and DNS server on a private /29, and
// the daemon's VM range is checked against the host's routes before use.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cleanup, ROOT, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { parseCidr, rangeOf, overlaps } from '../../src/network/ipv4.js';
import { daemonNetworkId, type NetworkStatus } from '../../src/network/network-manager.js';
import { hostIfPrefix, hostTableName, netnsPrefix } from '../../src/network/plan.js';

const SERVER_SCRIPT = path.join(ROOT, 'test', 'fixtures', 'netns-server.cjs');
const DNS_NAME = 'svc.faascell.test';
const VM_RANGE = '10.200.0.0/16'; // the daemon's default network.hostCidr

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Everything networking could leave on the host, as text lines (compared before/after). */
function hostNetState(): string[] {
  const lines: string[] = [];
  for (const l of readdirSafe('/sys/class/net')) if (l.startsWith('fcv')) lines.push(`link ${l}`);
  for (const n of readdirSafe('/run/netns')) if (n.startsWith('faascell-')) lines.push(`netns ${n}`);
  for (const t of sh('nft', ['list', 'tables']).split('\n')) if (t.includes('faascell')) lines.push(t.trim());
  lines.push(`ip_forward ${readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()}`);
  for (const r of sh('ip', ['-4', 'route', 'show']).split('\n')) if (r.trim()) lines.push(`route ${r.trim()}`);
  return lines.sort();
}

function readdirSafe(dir: string): string[] {
  try {
    return execFileSync('ls', ['-1', dir], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** A /29 for the test server that overlaps no host route and not the daemon's VM range. */
function freeTestSubnet(): number {
  const routes = JSON.parse(sh('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as Array<{ dst: string }>;
  const taken = routes.map((r) => (r.dst === 'default' ? undefined : parseCidr(r.dst))).filter((c) => c !== undefined);
  for (let x = 0; x < 256; x++) {
    const c = parseCidr(`10.201.${x}.0/29`)!;
    const r = rangeOf(c);
    if (overlaps(r, rangeOf(parseCidr(VM_RANGE)!))) continue;
    if (!taken.some((t) => overlaps(rangeOf(t), r))) return x;
  }
  throw new Error('no free /29 in 10.201.0.0/16 for the test server');
}

class TestServerNs {
  readonly ns = `fctest-${process.pid}`;
  readonly hostIf = `fct${process.pid % 1_000_000}`;
  readonly server: string;
  readonly other: string;
  private readonly hostAddr: string;
  private proc: ChildProcess | undefined;

  constructor(x: number) {
    this.hostAddr = `10.201.${x}.1`;
    this.server = `10.201.${x}.2`;
    this.other = `10.201.${x}.3`;
  }

  async start(): Promise<void> {
    sh('ip', ['netns', 'add', this.ns]);
    sh('ip', ['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns]);
    sh('ip', ['addr', 'add', `${this.hostAddr}/29`, 'dev', this.hostIf]);
    sh('ip', ['link', 'set', this.hostIf, 'up']);
    for (const a of [this.server, this.other]) sh('ip', ['-n', this.ns, 'addr', 'add', `${a}/29`, 'dev', 'eth0']);
    sh('ip', ['-n', this.ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', this.ns, 'link', 'set', 'lo', 'up']);
    // replies go back the way they came (the host masquerades VM traffic to its end of this link)
    this.proc = spawn('ip', ['netns', 'exec', this.ns, process.execPath, SERVER_SCRIPT, this.server, DNS_NAME], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    this.proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 200 && !out.includes('ready'); i++) await sleep(50);
    if (!out.includes('ready')) throw new Error(`test server did not start: ${out}`);
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
    try {
      sh('ip', ['link', 'del', this.hostIf]);
    } catch {
      // gone with the namespace
    }
    try {
      sh('ip', ['netns', 'del', this.ns]);
    } catch {
      // never made
    }
  }
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
const missing = ['ip', 'nft', 'nsenter'].filter((t) => {
  try {
    sh('sh', ['-c', `command -v ${t}`]);
    return false;
  } catch {
    return true;
  }
});

describe('networking for functions', { timeout: 20 * 60_000, skip: isRoot ? false : 'needs root: network namespaces, veths and nftables' }, () => {
  let d: TestDaemon | undefined;
  let srv: TestServerNs;
  let before0: string[];
  let netId: string;
  const config = () => ({
    network: { dns: srv.server, poolSize: 2 },
    policies: { placement: { policy: 'fixed', tier: 'shm' } },
  });

  before(async () => {
    // fail loudly: setup installs these
    assert.deepEqual(missing, [], `missing tools (npm run setup installs them): ${missing.join(', ')}`);
    srv = new TestServerNs(freeTestSubnet());
    await srv.start();
    before0 = hostNetState();
    d = await startDaemon(config());
    netId = daemonNetworkId(path.join(d.stateDir, 'run'));
  });
  after(async () => {
    try {
      if (d) await stopAndCheck(d);
    } finally {
      srv.stop();
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

  test('ten clones of one networked snapshot fetch at the same time; connections from before the snapshot are dead', async () => {
    await d!.deploy('clones', 'net-fetch.js', {
      network: { mode: 'egress', allow: [`tcp://${srv.server}:8080`] },
      maxInstances: 10,
      timeoutMs: 150_000,
      env: { EARLY_CONNECT: `${srv.server}:8080` },
    });
    // the first start leaves the snapshot (taken right after init, with the early connection open)
    const first = await invoke(d!, 'clones', { urls: [`http://${srv.server}:8080/first`] });
    assert.equal(first.result.results[0]!.ok, true, JSON.stringify(first.result));
    assert.equal(first.result.early, 'error:ERR_FAASCELL_RESTORED', 'even the snapshot source continues from a restore');
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
    const left = hostNetState();
    assert.ok(left.some((l) => l.startsWith(`netns ${netnsPrefix(netId)}`)), 'a killed daemon cannot clean up');
    d = await startDaemon(config(), dir);
    assert.match(d.logs(), /reaped network objects left behind by a previous daemon/);
    const again = await invoke(d, 'offline', { urls: [] });
    assert.equal(again.activation.startPath !== undefined, true);
    await d.stop();
    const after0 = hostNetState();
    assert.deepEqual(after0, before0, 'host network state after kill -9, restart and stop');
    assert.ok(!existsSync(path.join(d.stateDir, 'run')) || sh('ls', ['-A', path.join(d.stateDir, 'run')]).trim() === '');
    cleanup(d);
    d = undefined;
  });
});
