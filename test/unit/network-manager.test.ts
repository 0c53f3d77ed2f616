// NetworkManager's pool of slots with stand-in host operations (the real ones,
// namespaces and nft, run in test/e2e/network.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ActorSystem, type ActorRef } from '../../src/core/actor.js';
import { silentLogger } from '../../src/core/logger.js';
import { parseCidr } from '../../src/network/ipv4.js';
import { type HostOps, NetworkManager, type NetworkMsg, type NetworkStatus, type VmEndpoints } from '../../src/network/network-manager.js';
import type { SlotPlan } from '../../src/network/plan.js';
import type { NetworkSpec } from '../../src/network/spec.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const EGRESS: NetworkSpec = { mode: 'egress', allow: ['10.201.0.2:8080'] };

/** Records every host operation; each takes `delayMs`; `fail` makes named steps throw. */
class FakeHost implements HostOps {
  readonly calls: string[] = [];
  readonly rules = new Map<number, string>();
  readonly alive = new Set<number>();
  fail = new Set<string>();
  constructor(
    private readonly delayMs = 5,
    private readonly recycle = true,
  ) {}
  private async step(name: string): Promise<void> {
    this.calls.push(name);
    await sleep(this.delayMs);
    if (this.fail.has(name.split(' ')[0]!)) throw new Error(`${name} failed`);
  }
  hostUp = () => this.step('hostUp');
  hostDown = () => this.step('hostDown');
  reapStale = async () => {
    await this.step('reap');
    return { netns: 0, links: 0, table: false };
  };
  createSlot = async (p: SlotPlan) => {
    await this.step(`createSlot ${p.slot}`);
    this.alive.add(p.slot);
  };
  applyRules = async (p: SlotPlan, text: string) => {
    await this.step(`applyRules ${p.slot}`);
    this.rules.set(p.slot, text);
  };
  recycleSlot = (p: SlotPlan) => this.step(`recycleSlot ${p.slot}`);
  destroySlot = async (p: SlotPlan) => {
    await this.step(`destroySlot ${p.slot}`);
    this.alive.delete(p.slot);
  };
  hostLocalAddresses = async () => [];
  canRecycle = () => this.recycle;
  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(prefix)).length;
  }
}

async function withManager(host: FakeHost, opts: { poolSize?: number; prewarm?: boolean; cidr?: string }, body: (ref: ActorRef<NetworkMsg>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-net-'));
  const sys = new ActorSystem(silentLogger, (f) => assert.fail(`actor failure: ${String(f.error)}`));
  try {
    const c = parseCidr(opts.cidr ?? '10.200.0.0/16')!;
    const ref = sys.spawn<NetworkMsg>(
      'network',
      new NetworkManager(path.join(dir, 'run'), { hostCidr: { addr: c.addr, prefix: c.prefix }, poolSize: opts.poolSize ?? 2, prewarm: opts.prewarm ?? false, id: 'abc123', ops: host }),
    );
    await body(ref);
  } finally {
    await sys.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

const allocate = (ref: ActorRef<NetworkMsg>, vmId: string, network?: NetworkSpec) => ref.ask<VmEndpoints>((reply) => ({ kind: 'allocate', vmId, fn: 'f', network, reply }), 30_000);
const status = (ref: ActorRef<NetworkMsg>) => ref.ask<NetworkStatus>((reply) => ({ kind: 'status', reply }), 30_000);
async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

void test('no network: a run directory and no host work at all', async () => {
  const host = new FakeHost();
  await withManager(host, {}, async (ref) => {
    const ep = await allocate(ref, 'vm-1');
    assert.equal(ep.network, undefined);
    assert.match(ep.runDir, /run\/vm-1$/);
    await allocate(ref, 'vm-2', { mode: 'none', allow: [] });
    ref.tell({ kind: 'release', vmId: 'vm-1' });
    assert.equal((await status(ref)).host, 'down');
  });
  assert.deepEqual(host.calls, ['reap', 'hostDown'], 'only the start-up reap and the (idempotent) teardown');
});

void test('first egress start: host set-up and a slot on demand, then the pool fills', async () => {
  const host = new FakeHost();
  await withManager(host, { poolSize: 2 }, async (ref) => {
    const ep = await allocate(ref, 'vm-1', EGRESS);
    assert.ok(ep.network);
    assert.equal(ep.network.pooled, false);
    assert.equal(ep.network.netnsPath, '/run/netns/faascell-abc123-0');
    assert.equal(ep.network.tap, 'tap0');
    assert.equal(ep.network.hostSideAddress, '10.200.0.2');
    assert.equal(ep.network.guestAddress, '172.16.0.2');
    assert.match(host.rules.get(0)!, /ip daddr 10.201.0.2 meta l4proto \{ tcp, udp \} th dport 8080 accept/);
    assert.equal(host.calls[1], 'hostUp');
    // not asked to keep a pool until an egress function is known (prepare) ...
    ref.tell({ kind: 'prepare' });
    await until('pool filled', async () => (await status(ref)).slots.free === 2);
    // ... then the next start is served from it
    const ep2 = await allocate(ref, 'vm-2', EGRESS);
    assert.equal(ep2.network?.pooled, true);
    await until('pool refilled', async () => (await status(ref)).slots.free === 2);
    assert.equal(host.count('hostUp'), 1, 'the host is set up once');
  });
  assert.equal(host.alive.size, 0, 'every slot removed at stop');
  assert.equal(host.calls.at(-1), 'hostDown');
});

void test('prewarm: host and pool ready before the first start', async () => {
  const host = new FakeHost();
  await withManager(host, { poolSize: 3, prewarm: true }, async (ref) => {
    await until('pool filled', async () => (await status(ref)).slots.free === 3);
    const ep = await allocate(ref, 'vm-1', EGRESS);
    assert.equal(ep.network?.pooled, true);
    assert.equal(host.count('createSlot'), 4, 'one more made to refill');
  });
});

void test('release recycles the slot; a burst beyond the pool shrinks back to the pool size', async () => {
  const host = new FakeHost();
  await withManager(host, { poolSize: 1, prewarm: true }, async (ref) => {
    await until('pool filled', async () => (await status(ref)).slots.free === 1);
    const eps = await Promise.all(Array.from({ length: 5 }, (_, i) => allocate(ref, `vm-${i}`, EGRESS)));
    assert.equal(new Set(eps.map((e) => e.network!.slot)).size, 5, 'distinct slots');
    for (let i = 0; i < 5; i++) ref.tell({ kind: 'release', vmId: `vm-${i}` });
    await until('back to the pool size', async () => {
      const s = await status(ref);
      return s.slots.free === 1 && s.slots.used === 0 && s.slots.recycling === 0 && s.slots.destroying === 0 && s.slots.creating === 0;
    });
    assert.equal(host.count('recycleSlot'), 5, 'used slots are cleaned before reuse');
    assert.equal(host.alive.size, 1);
  });
});

void test('without conntrack a used slot is destroyed, never reused', async () => {
  const host = new FakeHost(5, false);
  await withManager(host, { poolSize: 1, prewarm: true }, async (ref) => {
    await until('pool filled', async () => (await status(ref)).slots.free === 1);
    const ep = await allocate(ref, 'vm-1', EGRESS);
    ref.tell({ kind: 'release', vmId: 'vm-1' });
    await until('slot destroyed', () => host.calls.includes(`destroySlot ${ep.network!.slot}`));
    assert.equal(host.count('recycleSlot'), 0);
  });
});

void test('the same VM id allocating again (snapshot source continuing) gets a clean slot', async () => {
  const host = new FakeHost();
  await withManager(host, { poolSize: 1, prewarm: true }, async (ref) => {
    const a = await allocate(ref, 'vm-1', EGRESS);
    const b = await allocate(ref, 'vm-1', EGRESS);
    assert.notEqual(a.network!.slot, b.network!.slot);
    await until('old slot recycled', () => host.calls.includes(`recycleSlot ${a.network!.slot}`));
  });
});

void test('a release while the rules are still being applied recycles the slot afterwards', async () => {
  const host = new FakeHost(40);
  await withManager(host, { poolSize: 0 }, async (ref) => {
    const p = allocate(ref, 'vm-1', EGRESS);
    await until('rules being applied', () => host.calls.some((c) => c.startsWith('applyRules')));
    ref.tell({ kind: 'release', vmId: 'vm-1' });
    const ep = await p;
    await until('recycled', () => host.calls.includes(`recycleSlot ${ep.network!.slot}`));
    await until('pool size 0: removed', async () => (await status(ref)).slots.free === 0 && host.alive.size === 0);
  });
});

void test('failures: host set-up, slot creation and rules each fail the start with the cause, and are retried next time', async () => {
  const host = new FakeHost();
  await withManager(host, { poolSize: 0 }, async (ref) => {
    host.fail = new Set(['hostUp']);
    await assert.rejects(allocate(ref, 'vm-1', EGRESS), /hostUp failed/);
    host.fail = new Set(['createSlot']);
    await assert.rejects(allocate(ref, 'vm-2', EGRESS), /createSlot 0 failed/);
    assert.equal(host.count('hostUp'), 2, 'host set-up retried after a failure');
    host.fail = new Set(['applyRules']);
    await assert.rejects(allocate(ref, 'vm-3', EGRESS), /applyRules/);
    host.fail = new Set();
    const ep = await allocate(ref, 'vm-4', EGRESS);
    assert.ok(ep.network);
    await until('failed slots removed', () => host.alive.size === 1);
  });
});

void test('capacity: a /30 host range holds one VM; the next start is refused with the reason', async () => {
  const host = new FakeHost();
  await withManager(host, { poolSize: 0, cidr: '10.200.0.0/30' }, async (ref) => {
    await allocate(ref, 'vm-1', EGRESS);
    await assert.rejects(allocate(ref, 'vm-2', EGRESS), /no free network slot.*holds 1/);
    ref.tell({ kind: 'release', vmId: 'vm-1' });
    await until('recycled', async () => (await status(ref)).slots.used === 0 && (await status(ref)).slots.recycling === 0);
    const ep = await allocate(ref, 'vm-3', EGRESS);
    assert.equal(ep.network?.slot, 0);
  });
});

void test('a manager without network options refuses egress clearly', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-net-'));
  const sys = new ActorSystem(silentLogger, () => undefined);
  try {
    const ref = sys.spawn<NetworkMsg>('network', new NetworkManager(path.join(dir, 'run')));
    await assert.rejects(allocate(ref, 'vm-1', EGRESS), /without network support/);
    assert.ok((await allocate(ref, 'vm-2')).runDir);
  } finally {
    await sys.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
