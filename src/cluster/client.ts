// A requester outside the daemons: publishes invocations into the cluster's work
// queue and collects their outcomes on a consumer of its own (the tests and the
// benchmark use it; any program can do the same with a NATS client and
// src/cluster/messages.ts). Answers have the shape of the HTTP API's.

import { randomUUID } from 'node:crypto';
import type { InvokeBody } from '../cli/client.js';
import { createLogger, type Logger } from '../core/logger.js';
import { clusterConfigSchema, type ClusterConfig } from './config.js';
import { holdDeadline, Claims } from './claims.js';
import { connectBroker, ensureStreams, openClaims, type Broker } from './connection.js';
import { deadlineMessage, deadlineRetryAfterMs, queueDeadline } from './deadline.js';
import { encode, type InvocationMessage } from './messages.js';
import { OutcomeCollector } from './outcomes.js';
import { publishStored } from './publish.js';
import { nodeSubject, outcomeConsumer, sharedSubject } from './subjects.js';

export interface ClusterInvokeOptions {
  /** give up waiting for the outcome after this long (default 120 s) */
  timeoutMs?: number;
  /** keep retrying the publish this long while NATS is unreachable (default 15 s) */
  publishDeadlineMs?: number;
  /** send it to this node's addressed queue instead of the shared one */
  target?: string;
  /**
   * issue 18: the queue deadline. What no node took within this long of `acceptedAt` is refused (503 queue_timeout):
   * by this client at the deadline, or by a node that pulls it later. Absent: the pulling node's
   * admission.maxQueueDelayMs, enforced only when a node pulls it.
   */
  maxQueueDelayMs?: number;
  /** epoch ms when the caller accepted the request (default now): the queue deadline counts from here */
  acceptedAt?: number;
}

export class ClusterClient {
  readonly requester = `client-${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  private outcomes!: OutcomeCollector;
  private claims!: Claims;

  private constructor(readonly broker: Broker) {}

  static async connect(cfg: Partial<ClusterConfig> & { nats: string | string[] }, log: Logger = createLogger({ level: 'warn' })): Promise<ClusterClient> {
    const c = clusterConfigSchema.parse(cfg);
    const b = await connectBroker(c, 'faascell-client', log);
    const cl = new ClusterClient(b);
    try {
      await ensureStreams(b);
      cl.claims = new Claims(await openClaims(b));
      // a client that vanishes leaves no consumer behind for long
      cl.outcomes = new OutcomeCollector(b, cl.requester, 600_000);
      await cl.outcomes.start();
    } catch (err) {
      await b.nc.close();
      throw err;
    }
    return cl;
  }

  /** `accepted`: JetStream stored the invocation (from then on it gets an outcome); false: the publish failed (503). */
  async invoke(fn: string, params: Record<string, unknown> = {}, o: ClusterInvokeOptions = {}): Promise<{ status: number; body: InvokeBody; id: string; accepted: boolean; retryAfterMs?: number }> {
    const b = this.broker;
    const id = randomUUID();
    const receivedAt = o.acceptedAt ?? Date.now();
    const msg: InvocationMessage = {
      v: 1,
      id,
      fn,
      params,
      receivedAt,
      requester: this.requester,
      ...(o.target ? { target: o.target } : {}),
      redeliveries: 0,
      handbacks: 0,
      ...(o.maxQueueDelayMs !== undefined ? { maxQueueDelayMs: o.maxQueueDelayMs } : {}),
    };
    const wait = this.outcomes.expect(id, o.timeoutMs ?? 120_000);
    const end = Date.now() + (o.publishDeadlineMs ?? 15_000);
    let seq: number;
    try {
      seq = (await publishStored(b.js, o.target ? nodeSubject(b.names, o.target) : sharedSubject(b.names), encode(msg), id, () => Date.now() < end)).seq;
    } catch (err) {
      this.outcomes.cancel(id);
      return { id, accepted: false, status: 503, body: { error: { code: 'unavailable', message: `not accepted by the work queue: ${(err as Error).message}` } } };
    }
    const held = o.maxQueueDelayMs !== undefined ? holdDeadline(this.claims, id, this.requester, queueDeadline(receivedAt, o.maxQueueDelayMs), () => undefined) : undefined;
    const out = await Promise.race([wait, held?.expired ?? wait]);
    held?.cancel();
    if (out === 'expired') {
      this.outcomes.cancel(id);
      b.jsm.streams.deleteMessage(b.names.invokeStream, seq, false).catch(() => undefined);
      const message = deadlineMessage(fn, o.maxQueueDelayMs!, 'ingress');
      return { id, accepted: true, status: 503, body: { error: { code: 'unavailable', message } }, retryAfterMs: deadlineRetryAfterMs(o.maxQueueDelayMs!) };
    }
    if (!out) return { id, accepted: true, status: 504, body: { error: { code: 'timeout', message: `no outcome within ${o.timeoutMs ?? 120_000} ms` } } };
    const body: InvokeBody = { activation: out.activation };
    if (out.result !== undefined) body.result = out.result;
    if (out.error) body.error = { code: out.error.code, message: out.error.message, ...(out.error.field ? { field: out.error.field } : {}) };
    return { id, accepted: true, status: out.error?.status ?? 200, body, ...(out.error?.retryAfterMs !== undefined ? { retryAfterMs: out.error.retryAfterMs } : {}) };
  }

  /** Outcomes that arrived for nobody (a second run's outcome after the first was taken). */
  get unclaimed(): number {
    return this.outcomes.unclaimed;
  }

  async close(): Promise<void> {
    await this.outcomes.stop();
    await this.broker.jsm.consumers.delete(this.broker.names.outcomeStream, outcomeConsumer(this.requester)).catch(() => undefined);
    await this.broker.nc.drain().catch(() => undefined);
  }
}
