// What-if (issue 23 item 2): the traffic a node served (real node stack on the
// fake driver, virtual clock) simulated with the node's live cost statistics and
// its configuration gives what the node did — an "as configured" error of zero
// start paths and refusals on this node — and alternatives run side by side.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/schema.js';
import { renderSvg } from '../../src/plots/render.js';
import { rowOf } from '../../src/traces/export.js';
import { slotsTrace } from '../../src/traces/slots.js';
import { whatIfSpec } from '../../src/whatif/plot.js';
import { liveProfile } from '../../src/whatif/profile.js';
import { formatWhatIf, whatIf, WhatIfInputError } from '../../src/whatif/whatif.js';
import { FUNCTIONS, NODE, policies, served, SLOT_MS } from '../helpers/traffic-node.js';

// the daemon configuration of the served node (test/helpers/traffic-node.ts)
const config = parseConfig({
  node: { memoryBudgetMiB: NODE.memoryMiB, lowWatermark: 0.8, highWatermark: 0.95, cores: 2, idleVmCpu: 0 },
  admission: { maxQueueDelayMs: NODE.maxQueueDelayMs, maxConcurrentStarts: NODE.maxConcurrentStarts, maxQueueLength: 100, maxConcurrentInvocations: 64, preferWarm: true },
  functionDefaults: { maxInstances: NODE.maxInstances },
  policies,
});

void test('what-if: the node\'s traffic with its live costs and configuration reproduces what it did; alternatives side by side', { timeout: 120_000 }, async () => {
  const trace = slotsTrace(FUNCTIONS, SLOT_MS, 'whatif');
  const node = await served(trace);
  const traffic = { start: 0, end: trace.nSlots * SLOT_MS, rows: node.records.map((r) => rowOf(r, 0, node.memoryOf)).sort((a, b) => a.arrivalMs - b.arrivalMs) };
  const profile = liveProfile(node.stats, node.functions, { cores: 2, idleVmCpu: 0, tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 1 << 20 }] });
  // the live costs are what the fake driver took: boot 2800 + init 200, restore 300 + resync 100
  assert.ok(Math.abs(profile.defaults.coldMs - 3000) < 1e-6, `cold ${profile.defaults.coldMs}`);
  assert.ok(Math.abs(profile.defaults.restoreMs - 400) < 1e-6, `restore ${profile.defaults.restoreMs}`);
  const r = await whatIf({ traffic, profile, config, baseDir: '.', alternatives: [{ policy: 'greedy-dual' }, { memoryMiB: 512 }, { cores: 1 }] });
  assert.equal(r.actual.invocations, trace.totalInvocations);
  assert.deepEqual(
    [r.asConfigured.warm, r.asConfigured.restore, r.asConfigured.cold, r.asConfigured.refusedTotal],
    [r.actual.warm, r.actual.restore, r.actual.cold, r.actual.refusedTotal],
    'as configured = what the node did',
  );
  assert.deepEqual([r.error.warmPts, r.error.restorePts, r.error.coldPts, r.error.refusedPts], [0, 0, 0, 0]);
  assert.equal(r.alternatives.length, 3);
  for (const a of r.alternatives) assert.equal(a.warm + a.restore + a.cold + a.refusedTotal, a.invocations, a.label);
  const half = r.alternatives[1]!;
  assert.equal(half.label, '512 MiB');
  assert.ok(half.peakMemoryMiB! <= 512, 'the alternative budget holds');
  assert.match(formatWhatIf(r), /as configured/);
  assert.match(await renderSvg(whatIfSpec(r)), /<svg/);
});

void test('what-if: an empty window and an unknown policy are clear errors naming the field', async () => {
  const profile = liveProfile({}, [], { cores: 2, idleVmCpu: 0, tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 0 }] });
  await assert.rejects(whatIf({ traffic: { start: 0, end: 60_000, rows: [] }, profile, config, baseDir: '.' }), (e: unknown) => e instanceof WhatIfInputError && e.field === 'since');
  const rows = [{ arrivalMs: 1, function: 'a', status: 'success', totalMs: 5, durationMs: 3, startPath: 'cold' as const }];
  await assert.rejects(whatIf({ traffic: { start: 0, end: 60_000, rows }, profile, config, baseDir: '.', alternatives: [{ policy: 'nope' }] }), (e: unknown) => e instanceof WhatIfInputError && e.field === 'policy');
});
