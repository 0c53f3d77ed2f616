// BrokerSource: a cluster node's pull from the JetStream work queue.
//
// Two pull loops share one capacity (src/cluster/capacity.ts, asked of VmPool
// before every pull):
//   - the addressed loop pulls this node's own queue (invocations a requester sent
//     here for locality) one at a time, and may take one beyond the capacity: the
//     node said it had the function warm or snapshotted;
//   - the shared loop pulls the shared queue, at most `capacity` at a time.
// Neither pulls while a request waits in one of the node's queues. A forwarder moves
// addressed work to the shared queue when its node is busy for `localityWaitMs`,
// and rescues the queue of a node that is down (its heartbeat stopped), whatever
// that node had pulled and not answered included (redelivered after the ack wait).
// Each pulled invocation goes to the Dispatcher with a BrokerSink; the message is
// acknowledged once its outcome is published (at-least-once). Before that the node
// claims it (issue 18, src/cluster/deadline.ts): one pulled past its queue deadline
// (a redelivery: past its redelivery's) is refused (queue_timeout) instead of run,
// one delivered more than cluster.maxDeliveries times is not run again, one its
// ingress already refused is dropped.

import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { ActorRef } from '../../core/actor.js';
import { FaasError } from '../../core/errors.js';
import { statusOf, toFaasError, type Failure } from '../../core/failure.js';
import type { DispatcherMsg } from '../../dispatcher/dispatcher.js';
import type { ActivationRecord } from '../../perf/activation.js';
import type { Registry } from '../../registry/registry.js';
import { addressedAllowance, pullCapacity, pullState, sharedAllowance, type CapacityView } from '../../cluster/capacity.js';
import { HANDBACK_PAUSE_MS } from '../../cluster/handback.js';
import { claimPulled, type Claims, type HeldClaim, type Pulled } from '../../cluster/claims.js';
import { deadlineMessage, deadlineRetryAfterMs, queueDeadline, redeliveryLoopMessage } from '../../cluster/deadline.js';
import { DEAD_SCAN_TICKS, forwarderEveryMs } from '../../cluster/timing.js';
import { ensureNodeConsumer, type Broker } from '../../cluster/connection.js';
import { BadMessageError, decodeInvocation, encode, outcomeOf, type InvocationMessage } from '../../cluster/messages.js';
import type { BrokerCounters } from '../../cluster/node-status.js';
import type { NodeDirectory } from '../../cluster/nodes.js';
import { publishStored, sleep } from '../../cluster/publish.js';
import { nodeConsumer, nodeOfConsumer, outcomeSubject, SHARED_CONSUMER, sharedSubject } from '../../cluster/subjects.js';
import type { Source } from '../types.js';
import { BrokerSink } from './sink.js';

export interface BrokerSourceDeps {
  broker: Broker;
  node: string;
  dispatcher: ActorRef<DispatcherMsg>;
  registry: Registry;
  /** VmPool's status (what the capacity is computed from) */
  poolStatus: () => Promise<CapacityView>;
  directory: NodeDirectory;
  counters: BrokerCounters;
  /** something changed that the heartbeat should say soon */
  poke?: () => void;
  /** issue 18: who answers each invocation */
  claims: Claims;
  /** issue 18: this node's admission.maxQueueDelayMs (for invocations that do not carry their requester's) */
  maxQueueDelayMs: number;
  /** issue 18: store a record this Source answered itself (a refusal at the queue deadline) */
  record?: (rec: ActivationRecord) => void;
}


/** How long a pulled invocation of a function this node does not know yet waits for the registry to catch up. */
const UNKNOWN_FN_WAIT_MS = 3000;

export class BrokerSource implements Source {
  readonly name = 'broker';
  private running = false;
  private loops: Promise<void>[] = [];
  private inflight = 0;
  private readonly stops = new Set<() => void>();
  private wakers: Array<() => void> = [];
  /** since when the addressed loop could not pull (undefined: it can) */
  private blockedSince: number | undefined;
  private forwarding = false;
  private forwardTimer: NodeJS.Timeout | undefined;
  private deadConsumers: string[] = [];
  private forwarderTicks = 0;
  private pauseSharedUntil = 0;

  constructor(private readonly d: BrokerSourceDeps) {}

  get inFlight(): number {
    return this.inflight;
  }

  /** Capacity now (for the heartbeat). */
  async free(): Promise<number> {
    const s = await this.d.poolStatus();
    return pullCapacity(s, this.inflight, this.d.broker.cfg.maxInFlight, this.d.broker.cfg.pullRule);
  }

  async start(): Promise<void> {
    const b = this.d.broker;
    await ensureNodeConsumer(b, this.d.node);
    const shared = await b.js.consumers.get(b.names.invokeStream, SHARED_CONSUMER);
    const own = await b.js.consumers.get(b.names.invokeStream, nodeConsumer(this.d.node));
    this.running = true;
    this.loops = [this.pullLoop(own, 'addressed'), this.pullLoop(shared, 'shared')];
    this.forwardTimer = setInterval(() => void this.forwardTick(), forwarderEveryMs(b.cfg.localityWaitMs));
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.forwardTimer);
    for (const s of this.stops) s();
    this.wake();
    await Promise.all(this.loops);
  }

  /** Resolves once every pulled invocation was settled (or after `timeoutMs`): the connection may close then. */
  async drained(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.inflight > 0 && Date.now() < end) await this.waitChange(100);
  }

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private waitChange(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.wakers.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }

  /** How many this loop may pull now. */
  private async allowance(via: 'shared' | 'addressed'): Promise<number> {
    const s = pullState(await this.d.poolStatus());
    const max = this.d.broker.cfg.maxInFlight;
    if (via === 'shared') return Date.now() < this.pauseSharedUntil ? 0 : sharedAllowance(s, this.inflight, max, this.d.broker.cfg.pullRule);
    return addressedAllowance(s, this.inflight, max, this.d.broker.cfg.pullRule);
  }

  private async pullLoop(c: Consumer, via: 'shared' | 'addressed'): Promise<void> {
    const log = this.d.broker.log;
    while (this.running && !this.d.broker.nc.isClosed()) {
      let n: number;
      try {
        n = await this.allowance(via);
      } catch (err) {
        log.warn('broker: no pool status', { err: (err as Error).message });
        await this.waitChange(500);
        continue;
      }
      if (via === 'addressed') this.blockedSince = n > 0 ? undefined : (this.blockedSince ?? Date.now());
      if (n <= 0) {
        await this.waitChange(50);
        continue;
      }
      try {
        const it = await c.fetch({ max_messages: n, expires: 2000 });
        const stop = (): void => it.stop();
        this.stops.add(stop);
        try {
          for await (const m of it) this.take(m, via);
        } finally {
          this.stops.delete(stop);
        }
      } catch (err) {
        if (this.running) {
          log.debug('broker: pull failed; again', { via, err: (err as Error).message });
          await sleep(250);
        }
      }
    }
  }

  private take(m: JsMsg, via: 'shared' | 'addressed'): void {
    const d = this.d;
    const b = d.broker;
    d.counters.pulled++;
    if (!this.running) {
      // pulled while stopping: back to the queue at once
      m.nak();
      return;
    }
    let inv: InvocationMessage;
    try {
      inv = decodeInvocation(m.data);
    } catch (err) {
      const e = err as BadMessageError;
      b.log.warn('broker: malformed invocation', { err: e.message });
      if (e.requester && e.id) void this.answerError(m, e.requester, e.id, new FaasError('bad_request', e.message, 'message'));
      else m.term(e.message);
      return;
    }
    const redeliveries = inv.redeliveries + (m.info.deliveryCount - 1);
    if (m.info.deliveryCount > 1) d.counters.redelivered++;
    this.inflight++;
    void this.claimThenDispatch(m, inv, via, redeliveries);
  }

  /** issue 18: claim the invocation; run it, refuse it (past its queue deadline), give it up (a redelivery loop) or drop it (answered by someone else). */
  private async claimThenDispatch(m: JsMsg, inv: InvocationMessage, via: 'shared' | 'addressed', redeliveries: number): Promise<void> {
    const d = this.d;
    const cfg = d.broker.cfg;
    const delayMs = inv.maxQueueDelayMs ?? d.maxQueueDelayMs;
    const deadline = queueDeadline(inv.queuedAt ?? inv.receivedAt, delayMs);
    const copy = { deadline, redelivered: m.info.deliveryCount > 1, ackWaitMs: cfg.ackWaitMs, maxQueueDelayMs: delayMs, deliveries: redeliveries + 1, maxDeliveries: cfg.maxDeliveries };
    let pulled: Pulled;
    try {
      pulled = await claimPulled(d.claims, inv.id, d.node, Date.now(), copy);
    } catch (err) {
      if (copy.deliveries > copy.maxDeliveries) {
        // a redelivery loop ends here even without a claim (a second answer would be dropped as a duplicate outcome)
        d.broker.log.warn('broker: invocation given up without a claim', { id: inv.id, err: (err as Error).message });
        return this.answerWithoutRun(m, inv, via, redeliveries, 'give_up', delayMs);
      }
      // the claims bucket is unreachable (or contended): leave the invocation to a later delivery, not run unclaimed
      d.broker.log.warn('broker: invocation not claimed; it is delivered again later', { id: inv.id, err: (err as Error).message });
      m.nak(1000);
      return this.settledHere();
    }
    if (pulled.then === 'run') return this.dispatch(m, inv, via, redeliveries, deadline, pulled.held);
    if (pulled.then === 'drop') {
      // its ingress (or another puller) answered it
      m.ack();
      return this.settledHere();
    }
    return this.answerWithoutRun(m, inv, via, redeliveries, pulled.then, delayMs);
  }

  private settledHere(): void {
    this.inflight--;
    this.wake();
  }

  /**
   * Pulled past its queue deadline (or its redelivery's) and nobody answered it: the refusal is the answer (its ingress
   * may be gone); or delivered more than cluster.maxDeliveries times: that failure is the answer.
   */
  private async answerWithoutRun(m: JsMsg, inv: InvocationMessage, via: 'shared' | 'addressed', redeliveries: number, why: 'refuse' | 'give_up', delayMs: number): Promise<void> {
    const d = this.d;
    const redelivered = m.info.deliveryCount > 1;
    const failure: Failure =
      why === 'refuse'
        ? { kind: 'rejected', reason: 'queue_timeout', message: deadlineMessage(inv.fn, delayMs, redelivered ? 'redelivery' : 'puller'), retryAfterMs: deadlineRetryAfterMs(delayMs) }
        : { kind: 'interrupted', reason: 'daemon_restarted', message: redeliveryLoopMessage(inv.fn, redeliveries + 1, d.broker.cfg.maxDeliveries) };
    if (why === 'refuse') d.counters.expired++;
    else d.counters.givenUp++;
    this.settledHere();
    const cluster = { requester: inv.requester, acceptedAt: inv.receivedAt, via, redeliveries, handbacks: inv.handbacks, ...(inv.forwardedFrom ? { forwardedFrom: inv.forwardedFrom } : {}), ...(why === 'refuse' ? { expired: 'puller' as const } : {}) };
    const rec = await this.answerError(m, inv.requester, inv.id, toFaasError(failure), inv.fn, { received: inv.receivedAt, cluster, version: d.registry.get(inv.fn)?.version ?? 0, status: statusOf(failure) });
    if (rec) d.record?.(rec);
  }

  private async dispatch(m: JsMsg, inv: InvocationMessage, via: 'shared' | 'addressed', redeliveries: number, deadline: number, held: HeldClaim): Promise<void> {
    const d = this.d;
    const b = d.broker;
    // a deploy through another node may reach this node's registry a moment later
    for (let waited = 0; !d.registry.get(inv.fn) && waited < UNKNOWN_FN_WAIT_MS; waited += 100) await sleep(100);
    if (!d.registry.get(inv.fn)) {
      this.inflight--;
      this.wake();
      await this.answerError(m, inv.requester, inv.id, new FaasError('not_found', `function ${inv.fn} does not exist`, 'name'), inv.fn);
      return;
    }
    const sink = new BrokerSink(
      m,
      inv,
      { via, redeliveries, acceptedAt: inv.receivedAt, deadline },
      {
        node: d.node,
        maxHandbacks: b.cfg.maxHandbacks,
        publish: async (subject, data, msgID) => {
          await publishStored(b.js, subject, data, msgID, () => this.running || b.nc.isClosed() === false);
        },
        outcomeSubject: (r) => outcomeSubject(b.names, r),
        sharedSubject: sharedSubject(b.names),
        releaseClaim: (id) => d.claims.release(id),
        stillHeld: () => held.renew(Date.now()),
        settled: (how) => {
          this.inflight--;
          if (how === 'answered') d.counters.answered++;
          else if (how === 'handedBack') {
            d.counters.handedBack++;
            // it refused what it pulled: leave the shared queue to the others a moment
            this.pauseSharedUntil = Date.now() + HANDBACK_PAUSE_MS;
          }
          this.wake();
          d.poke?.();
        },
        closed: () => b.nc.isClosed(),
        onError: (err, i) => b.log.error('broker: outcome not published; the invocation will be redelivered', { id: i.id, err: (err as Error).message }),
      },
      b.cfg.ackWaitMs,
    );
    d.dispatcher.tell({ kind: 'invoke', req: { fn: inv.fn, params: inv.params, receivedAt: Date.now(), sink, activationId: inv.id } });
  }

  /** Answer without running (the record, once the answer is published; undefined when it could not be). */
  private async answerError(
    m: JsMsg,
    requester: string,
    id: string,
    e: FaasError,
    fn = '',
    o: { received?: number; cluster?: ActivationRecord['cluster']; version?: number; status?: ActivationRecord['status'] } = {},
  ): Promise<ActivationRecord | undefined> {
    const b = this.d.broker;
    const now = Date.now();
    const received = o.received ?? now;
    const totalMs = Math.round((now - received) * 100) / 100;
    const rec: ActivationRecord = {
      id,
      function: fn,
      functionVersion: o.version ?? 0,
      runtime: 'qemu',
      status: o.status ?? 'rejected',
      timestamps: { received, responseSent: now },
      timings: { received: 0, responseSent: totalMs },
      totalMs,
      logs: [],
      error: e.toJSON(),
      node: this.d.node,
      ...(o.cluster ? { cluster: o.cluster } : {}),
    };
    try {
      await publishStored(b.js, outcomeSubject(b.names, requester), encode(outcomeOf(id, this.d.node, { activation: rec, error: e })), `out:${id}`, () => this.running);
      m.ack();
      return rec;
    } catch {
      m.term('malformed and could not be answered');
      return undefined;
    }
  }

  // ---- forwarding addressed work -------------------------------------------

  private async forwardTick(): Promise<void> {
    if (this.forwarding || !this.running) return;
    this.forwarding = true;
    try {
      const b = this.d.broker;
      const now = Date.now();
      if (this.blockedSince !== undefined && now - this.blockedSince >= b.cfg.localityWaitMs) await this.forward(nodeConsumer(this.d.node), 'busy');
      // every ~2 s: which nodes have an addressed queue and no live heartbeat
      if (this.forwarderTicks++ % DEAD_SCAN_TICKS === 0) {
        const dead: string[] = [];
        for await (const ci of b.jsm.consumers.list(b.names.invokeStream)) {
          const node = nodeOfConsumer(ci.name);
          if (!node || node === this.d.node) continue;
          const hb = this.d.directory.nodes.get(node);
          if (!hb || now - hb.at > b.cfg.nodeTimeoutMs) dead.push(ci.name);
        }
        this.deadConsumers = dead;
      }
      for (const name of this.deadConsumers) {
        const node = nodeOfConsumer(name)!;
        const hb = this.d.directory.nodes.get(node);
        if (hb && now - hb.at <= b.cfg.nodeTimeoutMs) continue; // came back
        await this.forward(name, 'down');
      }
    } catch (err) {
      this.d.broker.log.debug('broker: forwarding failed', { err: (err as Error).message });
    } finally {
      this.forwarding = false;
    }
  }

  /** Move what waits in an addressed queue to the shared one. */
  private async forward(consumer: string, why: 'busy' | 'down'): Promise<void> {
    const b = this.d.broker;
    const info = await b.jsm.consumers.info(b.names.invokeStream, consumer);
    const waiting = info.num_pending + (why === 'down' ? info.num_ack_pending : 0);
    if (waiting <= 0) return;
    const c = await b.js.consumers.get(b.names.invokeStream, consumer);
    const it = await c.fetch({ max_messages: Math.min(64, waiting), expires: 1000 });
    const from = nodeOfConsumer(consumer)!;
    for await (const m of it) {
      let inv: InvocationMessage;
      try {
        inv = decodeInvocation(m.data);
      } catch (err) {
        m.term((err as Error).message);
        continue;
      }
      // a copy the dead node had pulled waits again from now, as a redelivered one (issue 18: its queue deadline)
      const rescued = why === 'down' && m.info.deliveryCount > 1;
      const copy: InvocationMessage = { ...inv, target: undefined, forwardedFrom: from, redeliveries: inv.redeliveries + (m.info.deliveryCount - 1), ...(rescued ? { queuedAt: Date.now() } : {}) };
      await publishStored(b.js, sharedSubject(b.names), encode(copy), `${inv.id}:f:${m.seq}`, () => this.running);
      m.ack();
      this.d.counters.forwarded++;
      b.log.info('broker: addressed invocation moved to the shared queue', { id: inv.id, from, why, redeliveries: copy.redeliveries });
    }
  }
}
