// The cluster simulator's command-line set-up and its speed notes (issue 23 item 6): a cell of a parallel run
// (--threads) gets its own nodes' failures, renumbered, with a policy set for every life of a node that
// starts again; progress marks (--progress-s) change no result and merge cell by cell. No worker thread here:
// the cells' options are built the way each worker builds them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { createPolicies } from '../../src/policies/index.js';
import { clusterOptions } from '../../src/sim/cluster/cli.js';
import { simulateCluster, type ClusterProgress, type ClusterSimOptions } from '../../src/sim/cluster/cluster.js';
import { mergeCells } from '../../src/sim/cluster/parallel.js';
import { DEFAULT_PROFILE } from '../../src/sim/profile.js';
import { writeAzureTrace } from '../../src/traces/generate.js';
import { syntheticTrace } from '../helpers/synthetic-trace.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-cluster-cells-'));
after(() => rmSync(dir, { recursive: true, force: true }));

void test('a cell of a parallel run: its own nodes fail, renumbered, and a node that starts again has a policy set for its second life', async () => {
  writeAzureTrace(dir, { functions: 12, slots: 3, seed: 4 });
  const cmd = { trace: dir, nodes: 6, fail: '1@20,3@30+10,4@40+5' };
  // cell 1 of 2 holds the cluster's nodes 1, 3 and 5 (as its nodes 0, 1 and 2); node 3 starts again
  const c1 = await clusterOptions({ ...cmd, cell: { index: 1, of: 2 } });
  assert.equal(c1.nodes, 3);
  assert.deepEqual(c1.failures, [
    { node: 0, atMs: 20_000 },
    { node: 1, atMs: 30_000, restartAfterMs: 10_000 },
  ]);
  assert.ok(c1.policies(1, 1), 'the restarted node has a policy set for its second life');
  // cell 0 of 2 holds nodes 0, 2 and 4 (node 4 is its node 2, and starts again)
  const c0 = await clusterOptions({ ...cmd, cell: { index: 0, of: 2 } });
  assert.equal(c0.nodes, 3);
  assert.deepEqual(c0.failures, [{ node: 2, atMs: 40_000, restartAfterMs: 5_000 }]);
  assert.ok(c0.policies(2, 1));
  // every invocation of each cell answered through the failures (each keeps a live node)
  for (const o of [c0, c1]) {
    const r = simulateCluster(o);
    assert.equal(r.unanswered, 0);
    assert.equal(r.completed + r.refused, r.invocations);
  }
});

void test('progress marks change no result; cells merge mark by mark', async () => {
  const t = await syntheticTrace({ functions: 40, slots: 6, seed: 8, log10Rate: [-1, 1.3] });
  const run = async (progressEveryMs?: number): Promise<ReturnType<typeof simulateCluster>> => {
    const sets = await Promise.all(Array.from({ length: 4 }, () => createPolicies({ keepAlive: 'fixed' }, { baseDir: '.' })));
    const o: ClusterSimOptions = { trace: t, profile: DEFAULT_PROFILE, nodes: 4, memoryMiB: 2048, policies: (k) => sets[k]!, progressEveryMs };
    return simulateCluster(o);
  };
  const plain = await run();
  const noted = await run(60_000);
  const strip = (r: ReturnType<typeof simulateCluster>): unknown => ({ ...r, wallMs: 0, cpuMs: 0, invocationsPerSecond: 0, progress: undefined });
  assert.deepEqual(strip(noted), strip(plain));
  const p = noted.progress!;
  assert.ok(p.length >= 6, `a mark a simulated minute (${p.length})`);
  p.forEach((x, i) => {
    assert.equal(x.simulatedS, 60 * (i + 1));
    if (i > 0) assert.ok(x.accepted >= p[i - 1]!.accepted && x.cpuMs >= p[i - 1]!.cpuMs);
  });
  assert.ok(p.at(-1)!.accepted <= noted.invocations);
  // what the nodes hold adds up over the cells too (instances, idle, functions, snapshots, heap)
  const mark = (simulatedS: number, accepted: number, wallMs: number, cpuMs: number, held = 0): ClusterProgress => ({
    simulatedS,
    accepted,
    wallMs,
    cpuMs,
    instances: held,
    idle: held,
    functions: held,
    snapshots: held,
    heapMiB: held,
  });
  const merged = mergeCells([
    { ...noted, progress: [mark(60, 10, 5, 9, 3), mark(120, 30, 9, 20, 4)] },
    { ...noted, progress: [mark(60, 7, 6, 8, 1), mark(120, 12, 8, 21, 2), mark(180, 20, 12, 30, 9)] },
  ]);
  assert.deepEqual(merged.progress, [mark(60, 17, 6, 9, 4), mark(120, 42, 9, 21, 6)]);
  // and a run's own marks say what its nodes held
  assert.ok(p.every((x) => x.instances! >= x.idle! && x.functions! >= 0 && x.heapMiB! > 0));
});
