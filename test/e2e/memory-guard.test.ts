// Issue 24: the host-memory guard with real VMs growing their memory inside a small
// memory cgroup (the test creates it as the daemon's limits.cgroupParent, sets its
// limit from what the VMs use, and removes it). In the guard's order:
//   1 the group runs short while a VM grows: the node evicts the idle VM, the growing
//     run finishes;
//   2 the group runs short again with nothing idle left: the node stops the growing VM
//     itself (its request fails with 503, counted as a memory_guard stop), before the
//     kernel's OOM killer would pick a victim (the group's oom_kill count stays 0);
//   3 the memory is back: the guard's level returns to ok and a new start is admitted.
// Thresholds are set wide (fractions of the group's limit) so that the guard's
// reading interval and the VM's growth rate leave a margin under any load; the limit
// is set from the usage measured at the time, never from a fixed guess.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { runId, shmPrefix } from '../support/test-run.js';
import { detectHostCgroups, CONTROLLERS } from '../../src/runtimes/jail/cgroups.js';
import { cgroupAvailable } from '../../src/vmpool/host-memory.js';

const MiB = 1024 * 1024;
const GUARD = { enabled: true, intervalMs: 100, evictBelow: 0.3, refuseBelow: 0.2, stopBelow: 0.1, psiSomeEvict: 0, psiFullRefuse: 0 };
const parent = `/${shmPrefix(runId())}memguard`;
const layout = detectHostCgroups('auto', parent);
const mem = layout.controllers.memory;
const why = process.getuid?.() !== 0 ? 'needs root (cgroups)' : !mem ? `no memory cgroup controller: ${layout.notes.join('; ')}` : undefined;

interface Counters { evictions: number; pressureEvictions: number; pressureStops: number }
interface Status {
  pool: {
    instances: Array<{ fn: string; state: string }>;
    counters: Counters;
    memory: { accounting: string; unmeasured: number; guard?: { level: number; source?: string } };
  };
}
const status = (d: TestDaemon) => d.client.call<Status>('GET', '/v1/status');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const v1 = mem?.version === 'v1';
const groupDir = mem ? path.join(mem.mount, parent) : '';
const limitFile = v1 ? 'memory.limit_in_bytes' : 'memory.max';
const read = (f: string) => fs.readFileSync(path.join(groupDir, f), 'utf8');

/** What the group uses as the guard counts it (inactive file pages reclaimable), MiB. */
function usedMiB(): number {
  const a = cgroupAvailable(mem!.version, String(2 ** 40), read(v1 ? 'memory.usage_in_bytes' : 'memory.current'), read('memory.stat'))!;
  return a.limitMiB - a.availableMiB;
}
function setLimitMiB(mib: number): void {
  fs.writeFileSync(path.join(groupDir, limitFile), String(Math.round(mib) * MiB));
}
function oomKills(): number {
  const text = read(v1 ? 'memory.oom_control' : 'memory.events');
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
}

/** Removes a cgroup directory tree (cgroup directories are removed with rmdir, deepest first). */
function rmCgroupTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmCgroupTree(path.join(dir, e.name));
  fs.rmdirSync(dir);
}

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${ms / 1000} s (last ${JSON.stringify(v).slice(0, 400)})`);
    await sleep(100);
  }
}

if (why) void test('memory guard prerequisites', () => assert.fail(why));

void test('memory guard: real VMs growing in a small memory cgroup — idle evicted first, then the growing VM stopped with a typed failure, never the OOM killer', { skip: why !== undefined, timeout: 5 * 60_000 }, async (t) => {
  fs.mkdirSync(groupDir, { recursive: true });
  setLimitMiB(3072); // room to boot; lowered once the VMs are up
  let d: TestDaemon | undefined;
  try {
    d = await startDaemon({
      limits: { cgroupParent: parent },
      snapshots: { enabled: false },
      policies: { keepAlive: { policy: 'fixed', ttlSeconds: 600 } },
      node: { memory: { accounting: 'measured', sampleIntervalMs: 500, guard: GUARD } },
    });
    await d.deploy('idle', 'hello.js', { memoryMiB: 128 });
    await d.deploy('grow', 'grow-slowly.js', { memoryMiB: 512, timeoutMs: 120_000 });
    const [a, b] = await Promise.all([d.client.invoke('idle', { name: 'x' }), d.client.invoke('grow', {})]);
    assert.equal(a.status, 200, JSON.stringify(a.body).slice(0, 300));
    assert.equal(b.status, 200, JSON.stringify(b.body).slice(0, 300));
    await until('both VMs measured', () => status(d!), (s) => s.pool.memory.unmeasured === 0 && s.pool.instances.length === 2);

    // 1: 40 % of the limit left; growing by 30 % of what both use crosses evictBelow (30 %)
    const u1 = usedMiB();
    setLimitMiB(u1 / 0.6);
    t.diagnostic(`phase 1: two idle VMs use ${u1.toFixed(0)} MiB of the group; limit ${(u1 / 0.6).toFixed(0)} MiB`);
    const grow1 = Math.ceil(0.3 * u1);
    const r1 = await d.client.invoke('grow', { mib: grow1, stepMib: 2, everyMs: 100 });
    assert.equal(r1.status, 200, `the growing run finishes once the idle VM is gone: ${JSON.stringify(r1.body).slice(0, 300)}`);
    let s = await status(d);
    assert.ok(s.pool.counters.pressureEvictions >= 1, `the idle VM was evicted for the host: ${JSON.stringify(s.pool.counters)}`);
    assert.equal(s.pool.counters.pressureStops, 0, 'nothing stopped while something idle could go');
    assert.deepEqual(s.pool.instances.map((i) => i.fn), ['grow'], 'the idle VM went, the growing one stays');
    assert.equal(oomKills(), 0, 'the kernel killed nothing');

    // 2: 32 % left, nothing idle to evict; the VM grows past stopBelow (10 %): the node stops it
    await until('the guard back to ok', () => status(d!), (x) => x.pool.memory.guard?.level === 0);
    const u2 = usedMiB();
    setLimitMiB(u2 / 0.68);
    t.diagnostic(`phase 2: the grown VM uses ${u2.toFixed(0)} MiB; limit ${(u2 / 0.68).toFixed(0)} MiB`);
    const r2 = await d.client.invoke('grow', { fastMib: grow1, mib: Math.ceil(0.6 * u2), stepMib: 2, everyMs: 100 });
    assert.equal(r2.status, 503, `the growing VM is stopped by the node: ${JSON.stringify(r2.body).slice(0, 300)}`);
    assert.equal(r2.body.error?.code, 'unavailable');
    assert.equal(r2.body.activation?.status, 'rejected');
    assert.equal(oomKills(), 0, 'the node stopped it before the kernel OOM killer');
    s = await status(d);
    assert.equal(s.pool.counters.pressureStops, 1, JSON.stringify(s.pool.counters));
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    assert.match(metrics, /^faascell_instance_stops_total\{cause="memory_guard"\} 1$/m);

    // 3: memory is back: starts are admitted again
    await until('the guard back to ok after the stop', () => status(d!), (x) => x.pool.memory.guard?.level === 0);
    const r3 = await d.client.invoke('idle', { name: 'y' });
    assert.equal(r3.status, 200, JSON.stringify(r3.body).slice(0, 300));
    assert.equal(oomKills(), 0);
  } finally {
    await stopAndCheck(d);
    // the daemon made <parent>/<group> in every hierarchy it used; the test made <parent>
    for (const c of CONTROLLERS) {
      const p = layout.controllers[c];
      if (p) rmCgroupTree(path.join(p.mount, parent));
    }
  }
  for (const c of CONTROLLERS) {
    const p = layout.controllers[c];
    if (p) assert.equal(fs.existsSync(path.join(p.mount, parent)), false, `cgroup ${c}:${parent} removed`);
  }
});
