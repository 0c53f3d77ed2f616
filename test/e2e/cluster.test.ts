// A FaaSCell cluster with real VMs (issue 13): nats-server (JetStream, file storage)
// and three daemons started by the test. Deploy once, invoke through any node,
// kill -9 a node mid-load, restart it, restart nats-server mid-load. Guarantees
// asserted: every accepted invocation gets an outcome; redeliveries are counted;
// a killed node's VMs die with it; a restarted node rejoins and serves.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterClient } from '../../src/cluster/client.js';
import type { ClusterStatus } from '../../src/cluster/index.js';
import type { InvokeBody } from '../../src/cli/client.js';
import { qemuProcessesUnder, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { startNatsServer, type NatsServer } from '../cluster-helpers/nats-server.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

interface Answer {
  status: number;
  body: InvokeBody;
  accepted: boolean;
}

/** `total` invocations with at most `concurrency` outstanding; `during(done)` is called after each answer. */
async function load(client: ClusterClient, total: number, concurrency: number, during: (done: number) => void, params: (i: number) => Record<string, unknown> = (i) => ({ n: i, ms: 50 })): Promise<Answer[]> {
  const out: Answer[] = new Array<Answer>(total);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      out[i] = await client.invoke('work', params(i), { timeoutMs: 150_000, publishDeadlineMs: 30_000 });
      during(++done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

function summary(answers: Answer[]): { ok: number; errors: Record<string, number>; byNode: Record<string, number>; redelivered: number; forwarded: number; handedBack: number } {
  const s = { ok: 0, errors: {} as Record<string, number>, byNode: {} as Record<string, number>, redelivered: 0, forwarded: 0, handedBack: 0 };
  for (const a of answers) {
    if (a.status === 200) s.ok++;
    else s.errors[`${a.status} ${a.body.error?.code ?? '?'}`] = (s.errors[`${a.status} ${a.body.error?.code ?? '?'}`] ?? 0) + 1;
    const act = a.body.activation;
    if (act?.node) s.byNode[act.node] = (s.byNode[act.node] ?? 0) + 1;
    if ((act?.cluster?.redeliveries ?? 0) > 0) s.redelivered++;
    if (act?.cluster?.forwardedFrom) s.forwarded++;
    if ((act?.cluster?.handbacks ?? 0) > 0) s.handedBack++;
  }
  return s;
}

/** Every invocation ended with a result or a clear error; none timed out waiting for an outcome. */
function assertAllAnswered(t: TestContext, what: string, answers: Answer[]): void {
  const s = summary(answers);
  t.diagnostic(`${what}: ${JSON.stringify(s)}`);
  assert.equal(answers.filter((a) => a === undefined).length, 0);
  for (const a of answers) {
    assert.ok(a.status === 200 || (a.status >= 400 && typeof a.body.error?.code === 'string'), `a result or a clear error: ${JSON.stringify(a.body).slice(0, 300)}`);
    assert.notEqual(a.status, 504, `an invocation without an outcome: ${JSON.stringify(a.body).slice(0, 300)}`);
  }
}

describe('cluster: nats-server + three daemons with real VMs', { timeout: 15 * 60_000 }, () => {
  let nats: NatsServer;
  const daemons: TestDaemon[] = [];
  const cfg = (name: string): Record<string, unknown> => ({
    node: { memoryBudgetMiB: 1024 },
    admission: { maxConcurrentStarts: 1 },
    cluster: { nats: nats.url, node: name, heartbeatMs: 500, nodeTimeoutMs: 3000, ackWaitMs: 5000, localityWaitMs: 500 },
  });
  let client: ClusterClient;

  before(async () => {
    nats = await startNatsServer();
    for (const n of ['n1', 'n2', 'n3']) daemons.push(await startDaemon(cfg(n)));
    client = await ClusterClient.connect({ nats: nats.url });
  });
  after(async () => {
    await client?.close();
    const errs: string[] = [];
    for (const d of daemons) await stopAndCheck(d).catch((e: Error) => errs.push(e.message));
    await nats?.cleanup();
    if (errs.length) throw new Error(errs.join('\n'));
  });

  test('deploy once through one node: every node has it; invoke through any node; the record names the node; status and lookup cluster-wide', async () => {
    const [d1, d2, d3] = daemons as [TestDaemon, TestDaemon, TestDaemon];
    await d1.deploy('work', 'cluster-work.js', { maxInstances: 2, timeoutMs: 20_000 });
    for (const d of [d2, d3]) await until(`work on ${d.url}`, async () => (await d.client.raw('GET', '/v1/functions/work')).status === 200 || undefined, 10_000);
    const r = await d2.client.invoke('work', { n: 1, ms: 10 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body.result as { n: number }).n, 1);
    assert.match(r.body.activation!.node ?? '', /^n[123]$/);
    assert.equal(r.body.activation!.cluster!.requester, 'n2');
    // looked up through a node that may not have run it
    const got = await d3.client.call<{ id: string; node: string }>('GET', `/v1/activations/${r.body.activation!.id}`);
    assert.equal(got.id, r.body.activation!.id);
    assert.equal(got.node, r.body.activation!.node);
    // the OpenWhisk API of a node goes through the broker too; its record names the node
    const ow = await fetch(`${d3.url}/api/v1/namespaces/_/actions/work?blocking=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 2, ms: 10 }) });
    const owBody = (await ow.json()) as { response: { success: boolean; result: { n: number } }; annotations: { key: string; value: unknown }[] };
    assert.equal(ow.status, 200, JSON.stringify(owBody));
    assert.equal(owBody.response.result.n, 2);
    assert.match(String(owBody.annotations.find((a) => a.key === 'node')?.value), /^n[123]$/);
    const st = await until('three nodes up', async () => {
      const s = await d1.client.call<ClusterStatus>('GET', '/v1/cluster');
      return s.nodes.filter((n) => n.state === 'up').length === 3 ? s : undefined;
    }, 10_000);
    assert.deepEqual(st.nodes.map((n) => n.node), ['n1', 'n2', 'n3']);
    // an update through another node reaches every node (and retires the old version there)
    await d3.deploy('work', 'cluster-work.js', { maxInstances: 2, timeoutMs: 20_000, env: { V: '2' } });
    for (const d of [d1, d2]) await until(`version 2 on ${d.url}`, async () => ((await d.client.call<{ version: number }>('GET', '/v1/functions/work')).version === 2 ? true : undefined), 10_000);
  });

  test('kill -9 a node mid-load: every invocation answered, redeliveries counted, its VMs gone; restarted, it rejoins and serves', async (t) => {
    const d2 = daemons[1]!;
    let killed = false;
    let killing: Promise<void> | undefined;
    const kill = async (): Promise<void> => {
      // kill when it has pulled work it has not answered: that work must be redelivered
      await until('n2 busy', async () => {
        const s = await daemons[0]!.client.call<ClusterStatus>('GET', '/v1/cluster');
        return (s.nodes.find((n) => n.node === 'n2')?.inFlight ?? 0) > 0 || undefined;
      }, 60_000);
      t.diagnostic(`n2 VMs before the kill: ${qemuProcessesUnder(d2.dir).length}`);
      d2.proc.kill('SIGKILL');
      killed = true;
    };
    const answers = await load(client, 240, 12, (done) => {
      if (done === 40 && !killing) killing = kill();
    });
    await killing;
    assert.ok(killed);
    assertAllAnswered(t, 'kill -9 n2 during 240 invocations', answers);
    const s = summary(answers);
    assert.ok(s.redelivered >= 1, 'what the killed node had pulled was redelivered');
    t.diagnostic(`outcomes of a second run dropped at the client: ${client.unclaimed}`);
    // its VMs die with it (parent-death signal)
    await until('n2 VMs gone', () => (qemuProcessesUnder(d2.dir).length === 0 ? true : undefined), 15_000);
    // restart on the same state directory: same node name, it rejoins and serves its addressed queue
    await d2.stop();
    const again = await startDaemon(cfg('n2'), d2.dir);
    daemons[1] = again;
    await until('n2 up again', async () => {
      const st = await daemons[0]!.client.call<ClusterStatus>('GET', '/v1/cluster');
      return st.nodes.find((n) => n.node === 'n2' && n.state === 'up') ? true : undefined;
    }, 20_000);
    const more = await Promise.all(Array.from({ length: 6 }, (_, i) => client.invoke('work', { n: 1000 + i, ms: 10 }, { timeoutMs: 150_000, target: 'n2' })));
    assertAllAnswered(t, 'addressed to the restarted n2', more);
    assert.ok(more.some((a) => a.body.activation?.node === 'n2'), 'the restarted node served');
  });

  test('restart nats-server mid-load: the daemons reconnect, nothing accepted is lost', async (t) => {
    let restarting: Promise<void> | undefined;
    const answers = await load(client, 120, 8, (done) => {
      if (done === 30 && !restarting) restarting = nats.restart();
    });
    await restarting;
    // a publish refused while the server was down was not accepted (503, the caller retries): everything else has its outcome
    const accepted = answers.filter((a) => a.accepted);
    t.diagnostic(`accepted ${accepted.length} of ${answers.length}`);
    assertAllAnswered(t, 'nats-server restarted during 120 invocations', accepted);
    assert.ok(accepted.length >= 100);
    const st = await until('three nodes up after the restart', async () => {
      const s = await daemons[0]!.client.call<ClusterStatus>('GET', '/v1/cluster');
      return s.nodes.filter((n) => n.state === 'up').length === 3 ? s : undefined;
    }, 20_000);
    assert.equal(st.nats.connected, true);
    // and the cluster still serves through every node's HTTP API
    for (const d of daemons) {
      const r = await d.client.invoke('work', { n: 1, ms: 1 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
  });
});

