// Issue 19: a restored VM can use the memory it was given. A 256 MiB function
// allocates during its run until 90 % of its guest's memory is in use, cold and
// after restores, for both snapshot kinds (shared-memory RAM file on the tmpfs
// tier and on the disk tier; full-stream). Each clone touches guest memory its
// snapshot never touched: on tmpfs that used to grow the snapshot's RAM file and
// charge the clone twice, until its memory cgroup killed the VMM
// (function_crashed). The snapshot's files keep their allocated size whatever the
// clones do, and each tier's reported size equals what is allocated on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

const FRACTION = 0.9;

interface Snap { id: string; function: string; tier: string; dir: string; status: string; sizeBytes: number; kind: string }
interface Tier { name: string; usedBytes: number; snapshots: number }
interface Status { snapshots: Snap[]; pool: { instances: Array<{ fn: string }>; tiers: Tier[] } }
interface AllocResult { allocatedMiB: number; totalKiB: number; usedKiB: number }

const status = (d: TestDaemon) => d.client.call<Status>('GET', '/v1/status');

/** Bytes allocated (st_blocks) under a directory, file by file. */
function allocated(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (p: string): void => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const full = path.join(p, e.name);
      if (e.isDirectory()) walk(full);
      else out.set(path.relative(dir, full), statSync(full).blocks * 512);
    }
  };
  walk(dir);
  return out;
}
const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

async function evict(d: TestDaemon, fn: string): Promise<void> {
  await d.client.call('POST', `/v1/functions/${fn}/evict`);
  for (let i = 0; i < 200; i++) {
    if (!(await status(d)).pool.instances.some((x) => x.fn === fn)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`instances of ${fn} did not stop`);
}

async function readySnapshot(d: TestDaemon, fn: string): Promise<Snap> {
  for (let i = 0; i < 300; i++) {
    const s = (await status(d)).snapshots.find((x) => x.function === fn && x.status === 'ready');
    if (s) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ready snapshot of ${fn}`);
}

/** One invocation allocating until FRACTION of the guest's memory is in use: it must succeed on the expected path. */
async function allocate(d: TestDaemon, fn: string, path_: 'cold' | 'restore' | 'any'): Promise<AllocResult> {
  const r = await d.client.invoke(fn, { fraction: FRACTION });
  assert.equal(r.status, 200, `${fn} (${path_}): ${JSON.stringify(r.body).slice(0, 600)}`);
  if (path_ !== 'any') assert.equal(r.body.activation!.startPath, path_);
  const res = r.body.result as AllocResult;
  assert.ok(res.usedKiB >= FRACTION * res.totalKiB, `${fn}: ${res.usedKiB} of ${res.totalKiB} KiB in use`);
  return res;
}

/**
 * Cold start (leaves a snapshot on `tier`), then `restores` restores one after the other and a
 * pair at once, each allocating 90 %; the snapshot's files and the tier's accounting are checked.
 */
async function restoreHeavyRun(d: TestDaemon, fn: string, tier: string, tierPath: string, restores: number): Promise<string> {
  await d.deploy(fn, 'allocate-run.js', { memoryMiB: 256, maxInstances: 2 });
  const cold = await allocate(d, fn, 'cold');
  const snap = await readySnapshot(d, fn);
  assert.equal(snap.tier, tier);
  const before = allocated(snap.dir);
  await evict(d, fn);
  for (let i = 0; i < restores; i++) {
    await allocate(d, fn, 'restore');
    await evict(d, fn);
  }
  // two clones allocating at the same time (the second request may also be served warm by the first)
  await Promise.all([allocate(d, fn, 'any'), allocate(d, fn, 'any')]);
  const after = allocated(snap.dir);
  assert.deepEqual(Object.fromEntries(after), Object.fromEntries(before), "the snapshot's files keep their allocated size whatever the clones do");
  const st = await status(d);
  const mine = st.snapshots.find((x) => x.id === snap.id);
  assert.ok(mine, 'the snapshot is still there');
  assert.equal(mine.sizeBytes, total(after), "the catalogue holds the snapshot's allocated bytes");
  const t = st.pool.tiers.find((x) => x.name === tier)!;
  assert.equal(t.usedBytes, total(allocated(tierPath)), `tier ${tier}: reported size equals what is allocated on it`);
  return `${fn}: guest ${Math.round(cold.totalKiB / 1024)} MiB, snapshot ${snap.kind} on ${tier}: ${(total(after) / 1048576).toFixed(1)} MiB allocated before and after ${restores} restores and 2 calls at once`;
}

const CASES: Array<{ title: string; fn: string; kind: 'shared-memory' | 'full-stream'; tier: 'shm' | 'disk'; restores: number }> = [
  { title: 'shared-memory snapshot on the tmpfs tier: restored clones use 90 % of their memory, the RAM file keeps its size', fn: 'alloc-shm', kind: 'shared-memory', tier: 'shm', restores: 3 },
  { title: 'shared-memory snapshot on the disk tier: restored clones use 90 % of their memory', fn: 'alloc-disk', kind: 'shared-memory', tier: 'disk', restores: 1 },
  { title: 'full-stream snapshot: restored clones use 90 % of their memory', fn: 'alloc-full', kind: 'full-stream', tier: 'shm', restores: 1 },
];

for (const c of CASES) {
  void test(c.title, { timeout: 10 * 60_000 }, async (t) => {
    let d: TestDaemon | undefined;
    try {
      d = await startDaemon({ policies: { placement: { policy: 'fixed', tier: c.tier } }, snapshots: { kind: c.kind } });
      const tierPath = c.tier === 'shm' ? d.shmTier : path.join(d.dir, 'disk-tier');
      t.diagnostic(await restoreHeavyRun(d, c.fn, c.tier, tierPath, c.restores));
    } finally {
      await stopAndCheck(d);
    }
  });
}
