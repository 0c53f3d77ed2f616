// Conformance (docs/architecture.md): the same scenario through the simulator and
// through the daemon's real actors on a virtual clock with a fake driver
// (test/helpers/conformance.ts) must make the same decisions in the same order:
// starts, assignments, refusals, stops, snapshot drops and moves, from the first
// arrival until the node is idle — with functions updated and deleted during the
// run, a shutdown, a full queue, every kind of start failure, full tiers, a
// pre-warming keep-alive policy and snapshot moves between tiers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PlacementPolicy } from '../../src/policies/types.js';
import type { FaultModel, StartFault, StartInfo } from '../../src/sim/faults.js';
import { BOOT_MS, COLD_MS, conform, FUNCTIONS, INIT_MS, RESTORE_MS, SLOT_MS, type NodeEvent, type Scenario } from '../helpers/conformance.js';

const END = FUNCTIONS[0]!.counts.length * SLOT_MS;

/** Every scenario changes the node while it runs: an update, a delete, and a shutdown after the trace. */
const CHANGES: NodeEvent[] = [
  { at: 54_400.125, kind: 'update', fn: 'a' },
  { at: 69_260.375, kind: 'update', fn: 'c' },
  { at: 57_000.625, kind: 'delete', fn: 'g' },
  { at: END + 8_000.5, kind: 'shutdown' },
];

function covers(log: string[], kinds: string[]): void {
  for (const k of kinds) assert.ok(log.some((x) => x.includes(k)), `the scenario exercises ${k}`);
}

const COMMON = ['"kind":"start"', '"path":"restore"', '"fresh":false', '"cause":"evicted"', '"kind":"reject"', '"cause":"stale"', '"reason":"deleted"', '"cause":"shutdown"', '"cause":"invalidated"'];

void test('conformance: fixed TTL, LRU eviction, deadline admission, a full queue', { timeout: 300_000 }, async () => {
  const log = await conform({
    label: 'fixed',
    policies: { keepAlive: { policy: 'fixed', ttlSeconds: 25 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' },
    maxQueueLength: 6,
    events: CHANGES,
  });
  covers(log, [...COMMON, '"cause":"expired"', '"reason":"queue_full"']);
});

void test('conformance: greedy-dual, priority eviction, queue-length admission', { timeout: 300_000 }, async () => {
  const log = await conform({
    label: 'greedy-dual',
    policies: { keepAlive: 'greedy-dual', eviction: 'priority', selection: 'lru', placement: 'fixed', admission: 'queue-length' },
    events: CHANGES,
  });
  covers(log, COMMON);
});

void test('conformance: every kind of start failure, a full tier device, snapshots evicted from a small tier', { timeout: 300_000 }, async () => {
  // which start fails, how and when: the same plan (fresh per shell) drives the simulator and the fake driver;
  // each fault hits the first start that fits it (a list of them for init: the function backs off)
  const applied: string[][] = [];
  const plan = (): FaultModel => {
    const fired = new Map<string, number>();
    applied.push([]);
    const mine = applied[applied.length - 1]!;
    const take = (key: string, times: number, fits: boolean, f: StartFault): StartFault | undefined => {
      const n = fired.get(key) ?? 0;
      if (!fits || n >= times) return undefined;
      fired.set(key, n + 1);
      mine.push(key);
      return f;
    };
    return {
      start: (s: StartInfo) =>
        take('boot', 1, s.fn === 'b' && s.path === 'cold', { kind: 'boot', afterMs: BOOT_MS }) ??
        take('spawn', 1, s.fn === 'c' && s.path === 'cold', { kind: 'boot', afterMs: 0 }) ??
        take('init', 3, s.fn === 'e' && s.path === 'cold', { kind: 'init', afterMs: COLD_MS }) ??
        take('snapshot', 1, s.fn === 'd' && s.path === 'cold' && s.snapshot, { kind: 'snapshot', afterMs: COLD_MS }) ??
        take('restore-broken', 1, s.fn === 'a' && s.path === 'restore', { kind: 'restore-broken', afterMs: RESTORE_MS }) ??
        take('restore-slow', 2, s.fn === 'g' && s.path === 'restore', { kind: 'restore-slow', afterMs: 3 * RESTORE_MS }) ??
        take('resync', 1, s.fn === 'f' && s.path === 'restore', { kind: 'resync', afterMs: 0 }),
      // the shm tier's device is full for a while: snapshots placed there go to disk instead
      tierFull: (tier, now) => tier === 'shm' && now >= 20_000 && now < 40_000,
    };
  };
  const log = await conform({
    label: 'faults',
    policies: { keepAlive: { policy: 'fixed', ttlSeconds: 8 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' },
    tiers: [
      // room for two snapshots (100 MiB once taken, reserved at the function's memory size before): more evict
      // the least recently used (cause tier-full)
      { name: 'shm', latencyRank: 0, capacityMiB: 300, restoreMs: RESTORE_MS },
      { name: 'disk', latencyRank: 1, capacityMiB: 1 << 20, restoreMs: RESTORE_MS },
    ],
    faults: plan,
    // long enough that e's next requests (slots 7 and 8) come while it backs off
    backoffBaseMs: 40_000,
    backoffMaxMs: 80_000,
    events: CHANGES,
  });
  assert.deepEqual(applied[0], applied[1], 'both shells met the same faults');
  for (const k of ['boot', 'spawn', 'init', 'snapshot', 'restore-broken', 'restore-slow', 'resync']) assert.ok(applied[0]!.includes(k), `the ${k} fault happened`);
  covers(log, [...COMMON, '"reason":"start_failed"', '"cause":"broken"', '"cause":"failed"', '"cause":"tier-full"', '"reason":"start_backoff"']);
});

void test('conformance: a pre-warming keep-alive policy (hybrid histogram)', { timeout: 300_000 }, async () => {
  const log = await conform({
    label: 'prewarm',
    // histogram bins of 1 s over 60 s: the trace's idle gaps are learned within its first minute
    policies: { keepAlive: { policy: 'hybrid-histogram', binMinutes: 1 / 60, rangeMinutes: 1, minSamples: 2, headPercentile: 5, tailPercentile: 99 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' },
    memoryMiB: 2048,
    events: CHANGES,
  });
  covers(log, ['"cause":"prewarm-unload"', '"kind":"start"']);
});

void test('conformance: snapshots move between tiers as placement revisits them (two-phase)', { timeout: 300_000 }, async () => {
  // a placement that keeps a new snapshot on the fast tier and moves it to the slow one after two restores
  const tiered: PlacementPolicy = {
    name: 'test-tiered',
    revisit: true,
    place: (_fn, tiers, stats) => ({ action: 'snapshot', tier: (stats?.samples ?? 0) >= 2 ? (tiers.find((t) => t.name === 'disk') ?? tiers[0]!).name : tiers[0]!.name, reason: 'test' }),
  };
  const log = await conform({
    label: 'moves',
    policies: { keepAlive: { policy: 'fixed', ttlSeconds: 4 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' },
    policyOverrides: (p) => {
      p.placement = tiered;
    },
    tiers: [
      { name: 'shm', latencyRank: 0, capacityMiB: 1 << 20, restoreMs: RESTORE_MS },
      { name: 'disk', latencyRank: 1, capacityMiB: 1 << 20, restoreMs: RESTORE_MS },
    ],
    events: CHANGES,
  });
  covers(log, ['"kind":"moveSnapshot"', '"path":"restore"']);
});

void test('conformance fails when one shell decides differently (the check has teeth)', { timeout: 300_000 }, async () => {
  void INIT_MS;
  // the same fault plan, except the daemon's first start of b fails and the simulator's does not
  let daemonSide = false;
  const plan: Scenario['faults'] = { start: (s) => (daemonSide && s.fn === 'b' && s.nth === 1 ? { kind: 'boot', afterMs: BOOT_MS } : undefined) };
  const sc: Scenario = { label: 'teeth', policies: { keepAlive: { policy: 'fixed', ttlSeconds: 25 } }, faults: plan };
  const { simulated, real, lines, compare } = await import('../helpers/conformance.js');
  const s = lines(await simulated(sc));
  daemonSide = true;
  const r = lines((await real(sc)).log);
  assert.throws(() => compare(s, r), /decision \d+ differs/);
});
