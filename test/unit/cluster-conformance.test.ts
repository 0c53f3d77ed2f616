// Cluster conformance (issue 23): one trace through (a) the cluster simulator —
// three simulated nodes (the one-node simulator's shell around the daemon's
// decision core) behind the broker model — and (b) three real node stacks
// (Dispatcher, VmPool, Workers on a fake driver, PerfManager, SnapshotManager) on
// one virtual clock behind the same broker model, routing with the daemon's
// locality code. Every broker decision (route, deliver, hand-back, forward) and
// every node decision (start, assign, refuse, stop) must be identical: the
// simulated cluster is the real nodes' logic, not a rewrite of it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../src/core/clock.js';
import { createPolicies, type PoliciesConfigInput } from '../../src/policies/index.js';
import type { PullRule } from '../../src/cluster/capacity.js';
import type { BrokerDecision } from '../../src/sim/cluster/broker.js';
import { ClusterSimulator, nodeName } from '../../src/sim/cluster/cluster.js';
import { profileSchema } from '../../src/sim/profile.js';
import type { Decision } from '../../src/sim/simulator.js';
import { slotsTrace } from '../../src/traces/slots.js';
import { clusterHarness } from '../helpers/cluster-harness.js';
import { COLD_MS, FUNCTIONS, RESTORE_MS, SLOT_MS } from '../helpers/conformance.js';

const NODES = 3;

// FUNCTIONS: the node conformance test's scenario (12 slots of 10 s, bursts, idle gaps; 'g' is a burst beyond
// what the nodes hold at once: queues, hand-backs, forwarding)
const NODE = { memoryMiB: 768, maxInstances: 2, maxConcurrentStarts: 2 };
const BROKER = {
  routing: 'locality' as const,
  roundMs: 5,
  heartbeatMs: 1000,
  nodeTimeoutMs: 5000,
  localityWaitMs: 500,
  ackWaitMs: 10_000,
  maxInFlight: 'auto' as const,
  maxHandbacks: 5,
  seed: 11,
};
const expand = { spread: 'random' as const, seed: 7 };
const profile = profileSchema.parse({
  accelerator: 'test',
  defaults: { coldMs: COLD_MS, restoreMs: RESTORE_MS, warmMs: 0, memoryMiB: 256, restoreMsByTier: { shm: RESTORE_MS } },
  tiers: [{ name: 'shm', latencyRank: 0, capacityMiB: 1 << 20 }],
  node: { cores: 2, idleVmCpu: 0 },
});
const policies: PoliciesConfigInput = { keepAlive: { policy: 'fixed', ttlSeconds: 25 }, eviction: 'lru', selection: 'mru', placement: 'fixed', admission: 'deadline' };
const names = Array.from({ length: NODES }, (_, k) => nodeName(k, NODES));

interface Logs {
  broker: BrokerDecision[];
  nodes: Decision[][];
}

async function simulated(maxQueueDelayMs: number, pullRule: PullRule | undefined): Promise<Logs> {
  const trace = slotsTrace(FUNCTIONS, SLOT_MS, 'cluster-conformance');
  const logs: Logs = { broker: [], nodes: names.map(() => []) };
  const sets = await Promise.all(names.map(() => createPolicies(policies, { baseDir: '.' })));
  new ClusterSimulator({
    trace,
    profile,
    nodes: NODES,
    policies: (k) => sets[k]!,
    memoryMiB: NODE.memoryMiB,
    maxInstancesPerFunction: NODE.maxInstances,
    maxQueueDelayMs,
    node: { cpuModel: false, maxConcurrentStarts: NODE.maxConcurrentStarts, snapshots: true, preferWarm: true },
    expand,
    ...BROKER,
    pullRule,
    onBrokerDecision: (d) => logs.broker.push(d),
    onNodeDecision: (k, d) => logs.nodes[k]!.push(d),
  }).run();
  return logs;
}

async function real(maxQueueDelayMs: number, pullRule: PullRule | undefined): Promise<Logs & { accepted: number; answered: number }> {
  const trace = slotsTrace(FUNCTIONS, SLOT_MS, 'cluster-conformance');
  const clock = new VirtualClock(0);
  const logs: Logs = { broker: [], nodes: names.map(() => []) };
  const h = await clusterHarness({
    clock,
    nodes: NODES,
    trace,
    names,
    // the simulator's broker refuses what waits in it past the nodes' queue deadline: the same rule here
    broker: { ...BROKER, pullRule, queueDeadlineMs: maxQueueDelayMs },
    expand,
    policies,
    node: {
      snapshots: true,
      behaviour: { bootMs: COLD_MS - 200, initMs: 200, restoreMs: RESTORE_MS - 100, resyncMs: 100, ownRestoreMs: 0, snapshotMs: 0 },
      pool: {
        memoryBudgetMiB: NODE.memoryMiB,
        maxQueueDelayMs,
        tiers: [{ name: 'shm', latencyRank: 0, capacityBytes: (1 << 20) * 1048576 }],
        starts: { maxConcurrent: NODE.maxConcurrentStarts, cores: 2, idleVmCpu: 0, defaultColdMs: COLD_MS, defaultRestoreMs: RESTORE_MS, preferWarm: true },
      },
    },
    deploy: (fn) => ({ memoryMiB: FUNCTIONS.find((f) => f.name === fn)!.memoryMiB, maxInstances: NODE.maxInstances, timeoutMs: 60_000 }),
    params: (i) => ({ ms: FUNCTIONS[i]!.avgDurationMs }),
    onNodeDecision: (k, d) => logs.nodes[k]!.push(d),
  });
  h.broker.onDecision = (d) => logs.broker.push(d);
  try {
    const r = await h.run();
    return { ...logs, ...r };
  } finally {
    await h.close();
  }
}

/** Decisions before the end of the trace, in a canonical order (same-time decisions of one node may come in either order). */
function canonical<D extends { t: number; kind: string }>(log: D[], endMs: number): string[] {
  return log
    .filter((d) => d.t < endMs)
    .map((d) => JSON.stringify({ ...d, t: Number(d.t.toFixed(6)) }))
    .sort((x, y) => {
      const tx = Number(JSON.parse(x).t);
      const ty = Number(JSON.parse(y).t);
      return tx - ty || (x < y ? -1 : x > y ? 1 : 0);
    });
}

function compare(what: string, sim: string[], daemon: string[]): void {
  const n = Math.min(sim.length, daemon.length);
  for (let i = 0; i < n; i++) {
    if (sim[i] !== daemon[i]) {
      assert.fail(`${what}: decision ${i} differs\n  simulator: ${sim[i]}\n  real:      ${daemon[i]}\n  before it: ${sim.slice(Math.max(0, i - 3), i).join('\n             ')}`);
    }
  }
  assert.equal(daemon.length, sim.length, `${what}: the real nodes made ${daemon.length} decisions, the simulator ${sim.length}`);
}

const ROUTES = ['"why":"warm"', '"why":"snapshot"', '"to":"shared"', '"via":"addressed"', '"via":"shared"', '"kind":"forward"'];
// pull rule undefined: the daemon's default (starts); `instances`, the former default, stays selectable
for (const [label, maxQueueDelayMs, kinds, pullRule] of [
  ['queue delay 15 s', 15_000, ROUTES, undefined],
  // a node that pulled more than it can start in time refuses: the work is handed back to the shared queue
  ['queue delay 4 s: refusals and hand-backs', 4000, [...ROUTES, '"kind":"handback"'], undefined],
  // and refusals by the broker of what waited in it past the deadline
  ['queue delay 4 s, pullRule instances', 4000, [...ROUTES, '"kind":"handback"', '"kind":"expire"'], 'instances'],
] as Array<[string, number, string[], PullRule | undefined]>) {
  void test(`cluster conformance, ${label}: the simulated cluster and three real node stacks make the same decisions`, { timeout: 180_000 }, async () => {
    const endMs = FUNCTIONS[0]!.counts.length * SLOT_MS;
    const sim = await simulated(maxQueueDelayMs, pullRule);
    const r = await real(maxQueueDelayMs, pullRule);
    assert.equal(r.answered, r.accepted, 'every invocation answered');
    assert.equal(r.accepted, FUNCTIONS.reduce((a, f) => a + f.counts.reduce((x, y) => x + y, 0), 0), 'every arrival accepted');
    const sb = canonical(sim.broker, endMs);
    // the trace exercises the broker's decisions: routes of each kind, both queues, forwarding
    for (const k of kinds) assert.ok(sb.some((x) => x.includes(k)), `the simulated broker made a decision with ${k}`);
    compare('broker', sb, canonical(r.broker, endMs));
    for (let k = 0; k < NODES; k++) {
      const sn = canonical(sim.nodes[k]!, endMs);
      assert.ok(sn.length > 0, `node ${k} did something`);
      compare(`node ${names[k]}`, sn, canonical(r.nodes[k]!, endMs));
    }
  });
}
