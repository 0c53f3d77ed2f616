// The cluster (issue 13): the broker, registry sync and lookups against a real nats-server (started by
// the test) with fake pool and dispatcher actors (no VM; test/e2e/cluster.test.ts runs real daemons).
// The pure parts are in test/unit/cluster.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Actor, ActorSystem, type ActorRef } from '../../src/core/actor.js';
import { createLogger } from '../../src/core/logger.js';
import { parseConfig } from '../../src/config/schema.js';
import type { DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import type { PerfMsg } from '../../src/perf/perf-manager.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry, type FunctionDef } from '../../src/registry/registry.js';
import { CallbackSink } from '../../src/sinks/callback.js';
import type { InvocationResult } from '../../src/sinks/types.js';
import type { PoolMsg, PoolStatus } from '../../src/vmpool/pool.js';
import { ClusterClient } from '../../src/cluster/client.js';
import { joinCluster, type ClusterMember } from '../../src/cluster/index.js';
import { sameDef } from '../../src/cluster/registry-sync.js';
import { FaasError } from '../../src/core/errors.js';
import { natsServerMissing, startNatsServer, type NatsServer } from '../cluster-helpers/nats-server.js';
import { inst, status } from '../cluster-helpers/pool-status.js';

const log = createLogger({ level: process.env.TEST_LOG === '1' ? 'debug' : 'silent' });
const limits = { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Behave = 'ok' | 'overloaded' | 'hang';

class FakePool extends Actor<PoolMsg> {
  changed: Array<{ fn: string; def?: FunctionDef }> = [];
  constructor(private readonly st: () => PoolStatus) {
    super();
  }
  protected receive(m: PoolMsg): void {
    if (m.kind === 'status') m.reply.resolve(this.st());
    else if (m.kind === 'functionChanged') {
      this.changed.push({ fn: m.fn, def: m.def });
      m.reply?.resolve();
    }
  }
}

class FakeDispatcher extends Actor<DispatcherMsg> {
  running = 0;
  maxRunning = 0;
  runs: string[] = [];
  constructor(
    private readonly node: string,
    private readonly perf: () => ActorRef<PerfMsg>,
    public behave: Behave,
    private readonly runMs = 30,
  ) {
    super();
  }
  protected receive(m: DispatcherMsg): void {
    const req = m.req;
    const rec: ActivationRecord = { id: req.activationId ?? 'none', function: req.fn, functionVersion: 1, runtime: 'qemu', status: 'success', timestamps: { received: req.receivedAt }, timings: {}, totalMs: 0, logs: [] };
    if (this.behave === 'hang') {
      this.runs.push(rec.id);
      return;
    }
    if (this.behave === 'overloaded') {
      rec.status = 'rejected';
      const f = { kind: 'rejected', reason: 'overloaded', message: 'at capacity' } as const;
      req.sink.deliver({ activation: rec, error: new FaasError('unavailable', f.message), failure: f });
      this.perf().tell({ kind: 'activation', record: rec });
      return;
    }
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.runs.push(rec.id);
    setTimeout(() => {
      this.running--;
      rec.timestamps.responseSent = Date.now();
      req.sink.deliver({ activation: rec, result: { node: this.node, params: req.params } });
      this.perf().tell({ kind: 'activation', record: rec });
    }, this.runMs);
  }
}

class FakePerf extends Actor<PerfMsg> {
  readonly records = new Map<string, ActivationRecord>();
  protected receive(m: PerfMsg): void {
    if (m.kind === 'activation') this.records.set(m.record.id, m.record);
    else if (m.kind === 'get') m.reply.resolve(this.records.get(m.id));
  }
}

interface Node {
  name: string;
  member: ClusterMember;
  registry: Registry;
  pool: FakePool;
  dispatcher: FakeDispatcher;
  ingress: ActorRef<DispatcherMsg>;
  /** the capacity the fake pool reports */
  slots: number;
  idleOf: string[];
  stop(): Promise<void>;
  /** a crash: the NATS connection is gone, nothing acknowledged */
  crash(): Promise<void>;
}

describe('cluster over a real nats-server', { skip: natsServerMissing(), timeout: 120_000 }, () => {
  let nats: NatsServer;
  const dirs: string[] = [];
  const nodes: Node[] = [];
  let seq = 0;
  before(async () => {
    nats = await startNatsServer();
  });
  after(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await nats?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const clusterCfg = (tag: string): Record<string, unknown> => ({
    nats: nats.url,
    subjectPrefix: tag,
    streams: { invocations: `${tag}_INV`, outcomes: `${tag}_OUT` },
    buckets: { functions: `${tag}-fns`, code: `${tag}-code`, nodes: `${tag}-nodes` },
    heartbeatMs: 200,
    nodeTimeoutMs: 1500,
    ackWaitMs: 2000,
    localityWaitMs: 300,
    maxHandbacks: tag.startsWith('h') ? 3 : 5,
    ...(tag.startsWith('l') ? { maxDeliveries: 1 } : {}),
  });

  async function startNode(tag: string, name: string, behave: Behave, registry = new Registry(openMemoryDb(), limits), slots = 1): Promise<Node> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-cluster-unit-'));
    dirs.push(dir);
    // tags d…: a short queue deadline (issue 18)
    const cfg = parseConfig({ stateDir: dir, cluster: { ...clusterCfg(tag), node: name }, ...(tag.startsWith('d') ? { admission: { maxQueueDelayMs: 800 } } : {}) });
    const member = await joinCluster({ cfg, registry, log });
    const system = new ActorSystem(log, () => undefined);
    const node = { slots, idleOf: [] as string[] } as Node;
    // `slots` instances' worth: what runs is busy, the rest could start
    const poolActor = new FakePool(() =>
      status({ startSlots: Math.max(0, node.slots - dispatcherActor.running), busy: dispatcherActor.running, instances: [...node.idleOf.map((f) => inst(f, 'idle')), ...Array.from({ length: dispatcherActor.running }, () => inst('f', 'busy'))] }),
    );
    const perfActor = new FakePerf();
    const perf = system.spawn<PerfMsg>('perf', perfActor);
    const dispatcherActor = new FakeDispatcher(name, () => perf, behave);
    const pool = system.spawn<PoolMsg>('pool', poolActor);
    const dispatcher = system.spawn<DispatcherMsg>('dispatcher', dispatcherActor);
    const { sources, ingress } = member.attach({ system, pool, dispatcher, perf, runtime: 'qemu', accelerator: 'tcg', version: 'test', startedAt: Date.now(), url: () => '' });
    for (const s of sources) await s.start();
    let stopped = false;
    Object.assign(node, {
      name,
      member,
      registry,
      pool: poolActor,
      dispatcher: dispatcherActor,
      ingress,
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const s of sources) await s.stop();
        await member.close();
        await system.shutdown();
      },
      async crash() {
        stopped = true;
        await member.broker.nc.close();
        // what a dead process would not do: its timers and loops end too
        for (const s of sources) await s.stop();
        await system.shutdown();
      },
    });
    nodes.push(node);
    return node;
  }

  async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
      await sleep(50);
    }
  }

  /** Deploys f through `via` and waits until each of `others` has it. */
  async function deployF(via: Node, ...others: Node[]): Promise<void> {
    via.registry.put('f', { code: Buffer.from('x=1') });
    await via.registry.synced();
    for (const n of others) await until(`${n.name} has f`, () => n.registry.get('f') !== undefined);
  }

  const connectClient = (tag: string): Promise<ClusterClient> => ClusterClient.connect({ ...clusterCfg(tag), nats: nats.url });

  test('a deploy through one node reaches all; updates and deletes too; a node that joins later catches up', async () => {
    const tag = `r${++seq}`;
    const a = await startNode(tag, 'a', 'ok');
    const b = await startNode(tag, 'b', 'ok');
    a.registry.put('hello', { code: Buffer.from('module.exports.main = () => ({})'), memoryMiB: 256 });
    await a.registry.synced();
    await until('b has hello', () => b.registry.get('hello') !== undefined);
    assert.ok(sameDef(a.registry.get('hello')!, b.registry.get('hello')!));
    a.registry.put('hello', { code: Buffer.from('module.exports.main = () => ({v: 2})'), memoryMiB: 512 });
    await a.registry.synced();
    await until('b has version 2', () => b.registry.get('hello')?.version === 2);
    assert.equal(b.registry.get('hello')!.memoryMiB, 512);
    assert.match(b.registry.code(b.registry.get('hello')!).files.get('index.js')!.toString(), /v: 2/);
    // the other node's pool was told: its instances and snapshots of version 1 retire
    await until('b pool told', () => b.pool.changed.some((c) => c.fn === 'hello' && c.def?.version === 2));
    b.registry.put('other', { code: Buffer.from('module.exports.main = () => ({})') });
    b.registry.delete('hello');
    await b.registry.synced();
    await until('a lost hello', () => a.registry.get('hello') === undefined);
    await until('a has other', () => a.registry.get('other') !== undefined);
    assert.ok(a.pool.changed.some((c) => c.fn === 'hello' && c.def === undefined));
    // a node joining later, with a function of its own the cluster does not hold
    const late = new Registry(openMemoryDb(), limits);
    late.put('stale', { code: Buffer.from('module.exports.main = () => ({})') });
    const c = await startNode(tag, 'c', 'ok', late);
    assert.deepEqual(c.registry.list().map((d) => d.name), ['other']);
    for (const n of [a, b, c]) await n.stop();
  });

  test('invocations through the shared queue: each node pulls only what it can serve, all are answered', async () => {
    const tag = `s${++seq}`;
    const a = await startNode(tag, 'a', 'ok');
    const b = await startNode(tag, 'b', 'ok');
    await deployF(a, b);
    const client = await connectClient(tag);
    try {
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => client.invoke('f', { i }, { timeoutMs: 20_000 })));
      for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));
      const byNode = new Map<string, number>();
      for (const r of answers) byNode.set(r.body.activation!.node!, (byNode.get(r.body.activation!.node!) ?? 0) + 1);
      assert.deepEqual([...byNode.keys()].sort(), ['a', 'b'], 'both nodes served');
      // capacity 1 each: never more than one at a time on a node
      assert.equal(a.dispatcher.maxRunning, 1);
      assert.equal(b.dispatcher.maxRunning, 1);
      // the same params arrive, and the record says how it came
      assert.deepEqual((answers[3]!.body.result as { params: unknown }).params, { i: 3 });
      assert.equal(answers[0]!.body.activation!.cluster!.via, 'shared');
      assert.equal(answers[0]!.body.activation!.cluster!.requester, client.requester);
      // looked up from any node
      const id = answers[5]!.id;
      const found = await a.member.activation(id);
      assert.equal(found?.id, id);
      assert.equal(await a.member.activation('no-such-id'), undefined);
      // an unknown function is answered, not lost
      const missing = await client.invoke('nope', {}, { timeoutMs: 20_000 });
      assert.equal(missing.status, 404);
    } finally {
      await client.close();
      await a.stop();
      await b.stop();
    }
  });

  test('a node at capacity hands work back; locality sends it to the node that has it warm', async () => {
    const tag = `h${++seq}`;
    const a = await startNode(tag, 'a', 'overloaded');
    const b = await startNode(tag, 'b', 'ok');
    await deployF(a, b);
    const client = await connectClient(tag);
    try {
      const answers = await Promise.all(Array.from({ length: 10 }, () => client.invoke('f', {}, { timeoutMs: 20_000 })));
      for (const r of answers) {
        assert.equal(r.status, 200);
        assert.equal(r.body.activation!.node, 'b');
      }
      assert.ok(a.member.counters.handedBack > 0, 'a handed work back');
      // alone, a node that refuses: past maxHandbacks its refusal is the answer
      b.dispatcher.behave = 'overloaded';
      const refused = await client.invoke('f', {}, { timeoutMs: 20_000 });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.activation!.cluster!.handbacks, 3);
      b.dispatcher.behave = 'ok';
      // locality: b says it has f warm; a's ingress sends a's HTTP invocations there
      a.dispatcher.behave = 'ok';
      b.idleOf = ['f'];
      await until('a sees b warm', () => (a.member.directory.nodes.get('b')?.functions.f?.idle ?? 0) > 0);
      const res = await new Promise<InvocationResult>((resolve) => a.ingress.tell({ kind: 'invoke', req: { fn: 'f', params: { x: 1 }, receivedAt: Date.now(), sink: new CallbackSink(resolve) } }));
      assert.equal(res.error, undefined);
      assert.equal(res.activation.node, 'b');
      assert.equal(res.activation.cluster?.via, 'addressed');
      assert.equal(a.member.counters.targeted, 1);
    } finally {
      await client.close();
      await a.stop();
      await b.stop();
    }
  });

  test('the queue deadline (issue 18): nobody takes it, its ingress refuses it at the deadline; one pulled too late is refused, not run', async () => {
    const tag = `d${++seq}`;
    const a = await startNode(tag, 'a', 'ok');
    a.slots = 0; // a full node: it pulls nothing
    await deployF(a);
    await sleep(2500); // the pull it had open while it had room expires (fetch expires: 2 s)
    const client = await connectClient(tag);
    try {
      const t0 = Date.now();
      const res = await new Promise<InvocationResult>((resolve) => a.ingress.tell({ kind: 'invoke', req: { fn: 'f', params: {}, receivedAt: t0, sink: new CallbackSink(resolve) } }));
      const waited = Date.now() - t0;
      assert.deepEqual(res.failure && { kind: res.failure.kind, reason: res.failure.kind === 'rejected' ? res.failure.reason : undefined }, { kind: 'rejected', reason: 'queue_timeout' });
      assert.equal(res.error?.status, 503);
      assert.ok((res.error?.retryAfterMs ?? 0) > 0, 'Retry-After');
      assert.equal(res.activation.cluster?.expired, 'ingress');
      // answered by the deadline, not by the requester's timeout (the function's timeout + outcomeTimeoutMs)
      assert.ok(waited < a.registry.get('f')!.timeoutMs + a.member.broker.cfg.outcomeTimeoutMs, `${waited} ms`);
      assert.equal(a.member.counters.expired, 1);
      assert.equal((await a.member.activation(res.activation.id))?.cluster?.expired, 'ingress', 'the record is stored');
      // the node can pull again: the refused invocation is not run; one accepted 10 s ago by a requester that held
      // no deadline (as an ingress that died) is refused by the node that pulls it, and not run either
      a.slots = 1;
      const late = await client.invoke('f', {}, { acceptedAt: Date.now() - 10_000, timeoutMs: 20_000 });
      assert.equal(late.status, 503, JSON.stringify(late.body));
      assert.equal(late.body.activation?.cluster?.expired, 'puller');
      assert.deepEqual(a.dispatcher.runs, [], 'nothing past its deadline ran');
      assert.equal(a.member.counters.expired, 2);
      // a client requester holds the deadline too
      a.slots = 0;
      await sleep(2500); // (the open pull expires)
      const held = await client.invoke('f', {}, { maxQueueDelayMs: 300, timeoutMs: 20_000 });
      assert.equal(held.status, 503);
      assert.ok((held.retryAfterMs ?? 0) > 0);
      // within the deadline it runs
      a.slots = 1;
      const ok = await client.invoke('f', {}, { maxQueueDelayMs: 5000, timeoutMs: 20_000 });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(a.dispatcher.runs.length, 1);
      assert.equal(client.unclaimed + a.member.outcomes.unclaimed, 0, 'one answer each');
    } finally {
      await client.close();
      await a.stop();
    }
  });

  test('a redelivery past its deadline (issue 18): its node died holding it; the next puller refuses it once and never runs it', async () => {
    const tag = `d${++seq}`; // admission.maxQueueDelayMs 800, ackWaitMs 2000
    const a = await startNode(tag, 'a', 'ok', undefined, 0); // full (pulls nothing) until the redelivery is past its deadline
    const h = await startNode(tag, 'h', 'hang');
    await deployF(a, h);
    const client = await connectClient(tag);
    try {
      const pending = client.invoke('f', {}, { timeoutMs: 30_000 });
      await until('h took it', () => h.dispatcher.runs.length === 1);
      await sleep(1500); // h keeps it (in-progress acks, its claim renewed) past the accepted deadline
      await h.crash(); // no ack: JetStream redelivers it ackWaitMs after h's last in-progress ack
      await sleep(2000 + 800 + 1000); // ... and its redelivery's deadline (+ 800 ms) passes while a is full
      a.slots = 1;
      const res = await pending;
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.activation?.node, 'a');
      assert.equal(res.body.activation?.cluster?.expired, 'puller');
      assert.equal(res.body.activation?.cluster?.redeliveries, 1);
      assert.match(res.body.error?.message ?? '', /redelivery was taken only after its deadline/);
      assert.deepEqual(a.dispatcher.runs, [], 'the late redelivery was not run');
      assert.equal(a.member.counters.expired, 1);
      // the record follows the answer (answerError stores it once the answer is published)
      await until('the record is stored', async () => (await a.member.activation(res.id))?.cluster?.expired === 'puller', 10_000);
      // refused once: acknowledged (nothing pending or awaiting an ack: never delivered again), one outcome
      const q = await a.member.broker.jsm.consumers.info(a.member.broker.names.invokeStream, 'shared');
      assert.equal(q.num_pending + q.num_ack_pending, 0);
      assert.equal(client.unclaimed, 0, 'one answer');
    } finally {
      await client.close();
      await a.stop();
    }
  });

  test('a redelivery loop ends (issue 18): past cluster.maxDeliveries (1 here) the copy is answered, not run again', async () => {
    const tag = `l${++seq}`;
    const h = await startNode(tag, 'h', 'hang');
    await deployF(h);
    const client = await connectClient(tag);
    try {
      const pending = client.invoke('f', {}, { timeoutMs: 30_000 });
      await until('h took it', () => h.dispatcher.runs.length === 1);
      await h.crash(); // its node died holding it: the second delivery is one too many
      const a = await startNode(tag, 'a', 'ok');
      const res = await pending;
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.activation?.status, 'interrupted');
      assert.equal(res.body.activation?.node, 'a');
      assert.match(res.body.error?.message ?? '', /delivered 2 times, more than cluster\.maxDeliveries \(1\)/);
      assert.deepEqual(a.dispatcher.runs, [], 'not run again');
      assert.equal(a.member.counters.givenUp, 1);
      await a.stop();
    } finally {
      await client.close();
    }
  });

  test('after nats-server restarts: heartbeats, registry changes and invocations flow again, nothing accepted is lost', async () => {
    const tag = `n${++seq}`;
    const a = await startNode(tag, 'a', 'ok');
    const b = await startNode(tag, 'b', 'ok');
    await deployF(a, b);
    const client = await connectClient(tag);
    try {
      const before = Array.from({ length: 10 }, (_, i) => client.invoke('f', { i }, { timeoutMs: 30_000, publishDeadlineMs: 20_000 }));
      await nats.restart();
      const during = Array.from({ length: 10 }, (_, i) => client.invoke('f', { i: 10 + i }, { timeoutMs: 30_000, publishDeadlineMs: 20_000 }));
      const answers = await Promise.all([...before, ...during]);
      for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));
      const seen = a.member.directory.nodes.get('b')!.at;
      await until('a hears b again', () => a.member.directory.nodes.get('b')!.at > seen + 300);
      b.registry.put('g', { code: Buffer.from('y=1') });
      await b.registry.synced();
      await until('a has g', () => a.registry.get('g') !== undefined);
    } finally {
      await client.close();
      await a.stop();
      await b.stop();
    }
  });

  test('a crashed node: what it pulled is redelivered, its addressed queue is rescued', async () => {
    const tag = `k${++seq}`;
    const h = await startNode(tag, 'h', 'hang');
    h.slots = 3;
    await deployF(h);
    const client = await connectClient(tag);
    try {
      const pending = [client.invoke('f', { n: 1 }, { timeoutMs: 30_000 }), client.invoke('f', { n: 2 }, { timeoutMs: 30_000 }), client.invoke('f', { n: 3 }, { timeoutMs: 30_000, target: 'h' })];
      await until('h pulled them', () => h.dispatcher.runs.length === 3);
      await h.crash();
      // addressed work published while h is down
      pending.push(client.invoke('f', { n: 4 }, { timeoutMs: 30_000, target: 'h' }));
      const a = await startNode(tag, 'a', 'ok');
      a.slots = 2;
      const answers = await Promise.all(pending);
      for (const r of answers) {
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.activation!.node, 'a');
      }
      // what a function sees when it runs twice: the same parameters and the same activation id as the first run
      const firstRuns = [...h.dispatcher.runs].sort();
      assert.deepEqual(answers.slice(0, 3).map((r) => r.body.activation!.id).sort(), firstRuns);
      answers.forEach((r, i) => assert.deepEqual((r.body.result as { params: unknown }).params, { n: i + 1 }));
      const red = answers.map((r) => r.body.activation!.cluster!.redeliveries);
      assert.deepEqual(red.slice(0, 3), [1, 1, 1], `three had been delivered to the crashed node: ${JSON.stringify(answers.map((r) => r.body.activation!.cluster))}`);
      // the fourth reached the dead node's queue only: 0, or 1 when the server still handed it to the dead node's last pull
      assert.ok(red[3]! <= 1);
      assert.equal(answers[2]!.body.activation!.cluster!.forwardedFrom, 'h');
      assert.equal(answers[3]!.body.activation!.cluster!.forwardedFrom, 'h');
      await a.stop();
    } finally {
      await client.close();
    }
  });
});
