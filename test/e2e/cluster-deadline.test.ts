// The broker's queue deadline in a real cluster (issue 18): nats-server (JetStream) and one daemon with
// real VMs, admission.maxQueueDelayMs 2 s, cluster.maxInFlight 1 and locality off. The node is full: its
// one instance runs a long call and it pulls nothing more, so the next calls accepted by its HTTP API
// wait in the shared queue and are refused by their ingress at the deadline (503 queue_timeout +
// Retry-After, a record, a metric), long before the requester's timeout. An invocation a node pulls
// after its deadline (a requester that held none) is refused by that node instead of run. Guarantees
// only: the answer's type and that it came before the requester's timeout; no other wall-clock bound.
// (A node's own queue refuses at the same deadline; a call waiting there is not handed back past it:
// test/unit/cluster-deadline.test.ts.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterClient } from '../../src/cluster/client.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { startNatsServer, type NatsServer } from '../cluster-helpers/nats-server.js';

const DEADLINE_MS = 2000;
const FN_TIMEOUT_MS = 60_000;
const OUTCOME_TIMEOUT_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

interface HttpAnswer {
  status: number;
  retryAfter: string | null;
  body: { activation?: ActivationRecord; error?: { code: string; message: string } };
  ms: number;
}

async function invoke(d: TestDaemon, params: Record<string, unknown>): Promise<HttpAnswer> {
  const t0 = Date.now();
  const res = await fetch(`${d.url}/v1/functions/work/invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as HttpAnswer['body'], ms: Date.now() - t0 };
}

describe('cluster: the broker queue deadline with real nats-server and a real daemon', { timeout: 5 * 60_000 }, () => {
  let nats: NatsServer;
  let d: TestDaemon;
  let client: ClusterClient;

  before(async () => {
    nats = await startNatsServer();
    d = await startDaemon({
      // requests wait in the node's queue (no refusal on an estimate): the node's queue fills and blocks its pulls
      policies: { admission: 'queue-length' },
      admission: { maxQueueDelayMs: DEADLINE_MS },
      // one invocation in flight at most, and none addressed to it for locality: a busy node takes nothing more
      cluster: { nats: nats.url, node: 'n1', heartbeatMs: 500, outcomeTimeoutMs: OUTCOME_TIMEOUT_MS, maxInFlight: 1, locality: false },
    });
    client = await ClusterClient.connect({ nats: nats.url });
    await d.deploy('work', 'cluster-work.js', { maxInstances: 1, timeoutMs: FN_TIMEOUT_MS });
  });
  after(async () => {
    await client?.close();
    if (d) await stopAndCheck(d);
    await nats?.cleanup();
  });

  test('pulled after its deadline: the node refuses it (503 queue_timeout) and does not run it', async () => {
    // a requester that accepted it 10 s ago and holds no deadline (like an ingress that died): the node is the
    // first to see it, and it applies its own admission.maxQueueDelayMs
    const r = await client.invoke('work', { n: 0 }, { acceptedAt: Date.now() - 10_000, timeoutMs: 60_000 });
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.error?.code, 'unavailable');
    assert.ok(r.retryAfterMs !== undefined && r.retryAfterMs > 0, 'Retry-After');
    const act = r.body.activation!;
    assert.equal(act.status, 'rejected');
    assert.equal(act.cluster?.expired, 'puller');
    assert.equal(act.startPath, undefined, 'it never ran');
    assert.equal(act.node, 'n1');
    // stored on the node that refused it
    const got = await d.client.call<ActivationRecord>('GET', `/v1/activations/${act.id}`);
    assert.equal(got.cluster?.expired, 'puller');
  });

  test('nobody can take it: the ingress refuses it at its deadline, before the requester gives up', async () => {
    // the one instance, warm: a cold start takes longer than the 2 s deadline under TCG, so the first calls may be
    // refused at the deadline while it boots; the instance is kept once it is up
    const warm = await until('a warm instance', async () => ((await invoke(d, { n: 0, ms: 10 })).status === 200 ? true : undefined), 120_000);
    assert.ok(warm);
    // A: the one instance, busy for 12 s
    const a = invoke(d, { n: 1, ms: 12_000 });
    await until('A running', async () => ((await d.client.call<{ pool: { busy: number } }>('GET', '/v1/status')).pool.busy > 0 ? true : undefined), 30_000);
    // B and C: accepted by the node's API, they wait in the shared queue: nobody pulls them
    const b = invoke(d, { n: 2 });
    const c = await invoke(d, { n: 3 });
    assert.equal(c.status, 503, JSON.stringify(c.body));
    assert.equal(c.body.error?.code, 'unavailable');
    assert.ok(c.retryAfter !== null && Number(c.retryAfter) >= 1, `Retry-After: ${c.retryAfter}`);
    const rec = c.body.activation!;
    assert.equal(rec.cluster?.expired, 'ingress');
    assert.equal(rec.startPath, undefined, 'it never ran');
    assert.ok(c.ms < FN_TIMEOUT_MS + OUTCOME_TIMEOUT_MS, `answered by the deadline, not the requester's timeout (${c.ms} ms)`);
    // the record is on the ingress, the refusal counted
    const got = await d.client.call<ActivationRecord>('GET', `/v1/activations/${rec.id}`);
    assert.equal(got.cluster?.expired, 'ingress');
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    // (the warm-up's calls made while the instance booted may have been refused the same way: at least C)
    const counted = (by: string): number => Number(new RegExp(`faascell_cluster_queue_deadline_refusals_total\\{function="work",by="${by}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    assert.ok(counted('ingress') >= 1, metrics.split('\n').filter((l) => l.includes('deadline_refusals')).join('\n'));
    assert.equal(counted('puller'), 1);
    const rb = await b;
    assert.equal(rb.status, 503, JSON.stringify(rb.body));
    assert.equal(rb.body.activation?.cluster?.expired, 'ingress');
    // A ran to its end
    const ra = await a;
    assert.equal(ra.status, 200, JSON.stringify(ra.body));
    // exactly one answer each: no outcome arrived for nobody
    const st = await d.client.call<{ outcomesUnclaimed: number }>('GET', '/v1/cluster');
    assert.equal(st.outcomesUnclaimed, 0);
    assert.equal(client.unclaimed, 0);
  });
});
