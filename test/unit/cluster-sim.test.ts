// The cluster simulator's guarantees (issue 23): every accepted invocation gets an
// answer — through node failures (redelivery after the ack wait, rescue of a dead
// node's addressed queue) and restarts — under every routing policy; one node
// behind the broker serves a trace like the one-node simulator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPolicies } from '../../src/policies/index.js';
import { ROUTING_POLICIES } from '../../src/sim/cluster/broker.js';
import { livesOf, simulateCluster, type ClusterSimOptions } from '../../src/sim/cluster/cluster.js';
import { DEFAULT_PROFILE } from '../../src/sim/profile.js';
import { simulate } from '../../src/sim/simulator.js';
import type { Trace } from '../../src/traces/types.js';
import { syntheticTrace } from '../helpers/synthetic-trace.js';

function trace(functions: number, slots: number, seed: number, durationMedianMs?: number): Promise<Trace> {
  return syntheticTrace({ functions, slots, seed, log10Rate: [-1, 1.3], ...(durationMedianMs ? { durationMedianMs, durationSigma: 0.3 } : {}) });
}

async function policySets(o: Pick<ClusterSimOptions, 'nodes' | 'failures'>): Promise<ClusterSimOptions['policies']> {
  const sets = await Promise.all(Array.from({ length: o.nodes }, (_, k) => Promise.all(Array.from({ length: livesOf(o, k) }, () => createPolicies({ keepAlive: 'fixed' }, { baseDir: '.' })))));
  return (k, life) => sets[k]![life]!;
}

void test('one node behind the broker answers what the one-node simulator answers', async () => {
  const t = await trace(30, 30, 3);
  const one = simulateCluster({ trace: t, profile: DEFAULT_PROFILE, nodes: 1, memoryMiB: 4096, policies: await policySets({ nodes: 1 }) });
  const alone = simulate({ trace: t, profile: DEFAULT_PROFILE, memoryMiB: 4096, policies: await createPolicies({ keepAlive: 'fixed' }, { baseDir: '.' }) });
  assert.equal(one.invocations, t.totalInvocations);
  assert.equal(one.completed + one.refused + one.unanswered, one.invocations);
  assert.equal(one.unanswered, 0, 'every invocation answered');
  assert.equal(alone.invocations, one.invocations);
  // the node pulls only what it can serve at once (nothing while a request waits): the same work, queued in the broker instead
  assert.equal(one.warm + one.restores + one.coldStarts, one.completed);
});

void test('every routing policy answers every invocation of a 5-node cluster', async () => {
  const t = await trace(40, 20, 5);
  for (const routing of ROUTING_POLICIES) {
    const r = simulateCluster({ trace: t, profile: DEFAULT_PROFILE, nodes: 5, memoryMiB: 2048, routing, policies: await policySets({ nodes: 5 }) });
    assert.equal(r.invocations, t.totalInvocations, routing);
    assert.equal(r.unanswered, 0, `${routing}: every invocation answered`);
    assert.equal(r.completed + r.refused, r.invocations, routing);
    if (routing === 'shared') assert.equal(r.broker.toShared, r.invocations, 'shared: everything through the shared queue');
    if (routing === 'locality') assert.ok(r.broker.targetedWarm > 0, 'locality sends work to warm instances');
  }
});

void test('a node that dies with work pulled: redelivered after the ack wait, its queue rescued; it starts again and serves', async () => {
  // long runs (about 20 s): a node always has work in flight when it dies
  const t = await trace(40, 20, 9, 20_000);
  const failures = [{ node: 1, atMs: 5 * 60_000, restartAfterMs: 4 * 60_000 }, { node: 2, atMs: 8 * 60_000 }];
  const r = simulateCluster({ trace: t, profile: DEFAULT_PROFILE, nodes: 4, memoryMiB: 2048, failures, perNode: true, policies: await policySets({ nodes: 4, failures }) });
  assert.equal(r.unanswered, 0, 'every invocation answered');
  assert.equal(r.completed + r.refused, r.invocations);
  assert.ok(r.broker.redelivered > 0, 'work a dead node had pulled was delivered again');
  const n1 = r.perNode!.find((n) => n.name === 'n1')!;
  assert.ok(n1.invocations > 0);
});

void test('fairness max-min in a cluster (issue 18): every invocation answered, served or refused by the broker at the latest at its deadline', async () => {
  // the failure scenario's load (4 nodes, 40 functions, ~20 s runs): with the built-in profile (runs of no measured
  // CPU) and with runs of half a core, where the cluster is over its capacity and nodes with queued work pull nothing
  const t = await trace(40, 20, 9, 20_000);
  const half = { ...DEFAULT_PROFILE, defaults: { ...DEFAULT_PROFILE.defaults, cpuShare: 0.5 } };
  for (const [label, profile] of [['no CPU measured', DEFAULT_PROFILE], ['runs of half a core', half]] as const) {
    const expires: number[] = [];
    const r = simulateCluster({
      trace: t,
      profile,
      nodes: 4,
      memoryMiB: 2048,
      node: { fairness: 'max-min' },
      onBrokerDecision: (d) => {
        if (d.kind === 'expire') expires.push(d.id);
      },
      policies: await policySets({ nodes: 4 }),
    });
    assert.equal(r.unanswered, 0, `${label}: every invocation answered`);
    assert.equal(r.completed + r.refused, r.invocations, label);
    assert.ok(r.completed > 0, label);
    // the broker's refusals are the deadline's (queue_timeout, as the nodes' own past their queue deadline)
    assert.ok(expires.length <= (r.refusedByReason.queue_timeout ?? 0), label);
    if (profile === half) assert.ok(expires.length > 0, `${label}: over capacity, the broker refuses what no node took in time`);
  }
});

void test('cluster.maxDeliveries (issue 18): a message redelivered past it after node failures is answered daemon_restarted, never run again', async () => {
  // long runs (about 20 s): the nodes that die hold pulled work, which comes back after the ack wait
  const t = await trace(40, 20, 9, 20_000);
  const failures = [{ node: 1, atMs: 5 * 60_000, restartAfterMs: 4 * 60_000 }, { node: 2, atMs: 8 * 60_000 }];
  for (const maxDeliveries of [1, 5]) {
    const deliveries = new Map<number, number>();
    const givenUp = new Set<number>();
    const r = simulateCluster({
      trace: t,
      profile: DEFAULT_PROFILE,
      nodes: 4,
      memoryMiB: 2048,
      failures,
      maxDeliveries,
      onBrokerDecision: (d) => {
        if (d.kind === 'deliver') {
          assert.ok(!givenUp.has(d.id), `invocation ${d.id} delivered again after it was given up`);
          deliveries.set(d.id, (deliveries.get(d.id) ?? 0) + 1);
        }
        if (d.kind === 'give_up') {
          assert.ok((deliveries.get(d.id) ?? 0) >= maxDeliveries, `invocation ${d.id} given up after ${deliveries.get(d.id)} deliveries`);
          givenUp.add(d.id);
        }
      },
      policies: await policySets({ nodes: 4, failures }),
    });
    assert.equal(r.unanswered, 0, `maxDeliveries ${maxDeliveries}: every invocation answered`);
    assert.equal(r.completed + r.refused, r.invocations);
    assert.ok(r.broker.redelivered > 0, 'work a dead node had pulled came back');
    assert.equal(r.refusedByReason.daemon_restarted ?? 0, givenUp.size, 'each one given up is answered daemon_restarted, once');
    // one delivery allowed: every redelivered message is given up; five: a single failure per message never reaches it
    if (maxDeliveries === 1) assert.equal(givenUp.size, r.broker.redelivered);
    else assert.equal(givenUp.size, 0);
  }
});
