// CPU-bound overload (issue 18), the short version of scripts/overload-experiment.ts: four FunctionBench-style
// functions from a FaaSRail spec (`deploy-spec`, the path a user takes), replayed open loop at several times what
// the node's two cores compute, for 40 s. Guarantees, not timings: every request answered (a result or a clear
// 429/503), within its queueing deadline plus its function's timeout; every function with offered load served (the
// CPU is shared max-min fair, not kept by the functions that got instances first); refusals early (admitted
// requests refused at their deadline are few: the records' admission.refusedLate); the HTTP server keeps answering
// during the load; no VMM outlives the daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { latencyByStatus, codeOf, probeHealth } from '../../bench/load-lib.js';
import { runDeploySpec } from '../../src/cli/deploy-spec.js';
import { replay, type ReplayRecord } from '../../src/replay/replay.js';
import { loadTrace } from '../../src/traces/index.js';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

const QUEUE_DELAY_MS = 10_000;
const SLOT_S = 10;
/** per 10-s column: 22.5 requests/s in all; their runs take about 0.1, 0.5, 1.3 and 1.2 s of a core each under TCG */
const ROWS = [
  { bench: 'pyaes-0f0f0f0f0f0f', payload: { message_length: 1472, num_iterations: 1 }, counts: [90, 90, 90, 90] },
  { bench: 'chameleon-1e1e1e1e1e1e', payload: { nrow: 296, ncol: 296 }, counts: [60, 60, 60, 60] },
  { bench: 'matmul_fb-2d2d2d2d2d2d', payload: { N: 320, M: 320 }, counts: [45, 45, 45, 45] },
  { bench: 'image_rotate-3c3c3c3c3c3c', payload: { img_name: 'img032k.jpeg', ops: 'filter-gray_scale-resize' }, counts: [30, 30, 30, 30] },
];

function spec(): string {
  const cell = (s: string): string => `"${s.replace(/"/g, '""')}"`;
  const head = ['avg', 'mapped_wreq', ...ROWS[0]!.counts.map((_, i) => String(i + 1))];
  return [head.join(','), ...ROWS.map((r) => ['100', cell(JSON.stringify({ bench: r.bench, payload: JSON.stringify(r.payload) })), ...r.counts].join(','))].join('\n') + '\n';
}

void test('CPU-bound overload for 40 s: every function served, every request answered in time, refusals early', { timeout: 15 * 60_000 }, async (t) => {
  let d: TestDaemon | undefined;
  try {
    d = await startDaemon({ admission: { maxQueueDelayMs: QUEUE_DELAY_MS, fairness: 'max-min' } });
    const file = path.join(d.dir, 'overload-spec.csv');
    writeFileSync(file, spec());
    const plan = await runDeploySpec({ spec: file, url: d.url, write: () => undefined });
    const timeoutOf = new Map(plan.map((p) => [p.name, p.timeoutMs]));
    // the HTTP server keeps answering: /healthz from this process every second during the load
    const probe = probeHealth(d.url, 1000);
    const records: ReplayRecord[] = [];
    const trace = await loadTrace(file, 'faasrail', { slotSeconds: SLOT_S });
    const maxTimeout = Math.max(...timeoutOf.values());
    const summary = await replay({ trace, url: d.url, spread: 'random', seed: 1, timeoutMs: QUEUE_DELAY_MS + maxTimeout + 60_000, maxInflight: 100_000, progress: null, onRecord: (r) => records.push(r) });
    const health = await probe.stop();
    for (const s of latencyByStatus(records)) t.diagnostic(`${s.status} ${s.code || 'ok'}: n=${s.n} p50=${s.p50Ms} ms p99=${s.p99Ms} ms max=${s.maxMs} ms`);

    // every request answered: a result or a clear refusal, within its deadline plus its function's timeout
    assert.equal(records.length, summary.scheduled);
    const hung = records.filter((r) => r.status === 0);
    assert.deepEqual(hung.slice(0, 5).map((r) => `${r.function}: ${r.error}`), [], `${hung.length} requests got no answer`);
    const unclear = records.filter((r) => r.status !== 200 && !((r.status === 429 && codeOf(r) === 'too_many_requests') || (r.status === 503 && codeOf(r) === 'unavailable')));
    assert.deepEqual(unclear.slice(0, 5).map((r) => `${r.function}: ${r.status} ${r.error}`), [], `${unclear.length} answers neither a result nor a 429/503`);
    const overdue = records.filter((r) => (r.latencyMs ?? Infinity) > QUEUE_DELAY_MS + timeoutOf.get(r.function)! + 30_000);
    assert.deepEqual(overdue.slice(0, 5).map((r) => `${r.function}: ${r.status} after ${r.latencyMs} ms`), [], `${overdue.length} answers later than deadline + timeout`);

    // every function with offered load served; the overload refused
    const served = new Map<string, number>();
    for (const r of records) if (r.status === 200) served.set(r.function, (served.get(r.function) ?? 0) + 1);
    t.diagnostic(`served per function: ${plan.map((p) => `${p.name} ${served.get(p.name) ?? 0}`).join(', ')}`);
    for (const p of plan) assert.ok((served.get(p.name) ?? 0) > 0, `${p.name} (${p.benchmark}) was served nothing`);
    const refused = records.filter((r) => r.status === 429 || r.status === 503);
    assert.ok(refused.length > 0, 'several times the capacity cannot all be served');

    // refusals early: few admitted requests were refused at their deadline (the records say which)
    let late = 0;
    for (const p of plan) {
      const { activations } = await d.client.call<{ activations: Array<{ admission?: { refusedLate?: boolean } }> }>('GET', `/v1/activations?function=${encodeURIComponent(p.name)}&limit=1000`);
      late += activations.filter((a) => a.admission?.refusedLate).length;
    }
    t.diagnostic(`refused ${refused.length} of ${records.length}, of which ${late} at their deadline`);
    assert.ok(late <= 0.1 * refused.length, `${late} of ${refused.length} refusals came at the deadline`);

    // the HTTP server kept answering
    const failed = health.filter((h) => h.status !== 200);
    t.diagnostic(`/healthz during the load: ${health.length} probes, max ${Math.round(Math.max(...health.map((h) => h.ms)))} ms`);
    assert.ok(health.length > 0);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} health probes unanswered within 10 s`);
  } finally {
    await stopAndCheck(d);
  }
});
