// A requester outside the daemons: publishes invocations into the cluster's work
// queue and collects their outcomes on a consumer of its own (the tests and the
// benchmark use it; any program can do the same with a NATS client and
// src/cluster/messages.ts). Answers have the shape of the HTTP API's.

import { randomUUID } from 'node:crypto';
import type { InvokeBody } from '../cli/client.js';
import { createLogger, type Logger } from '../core/logger.js';
import { clusterConfigSchema, type ClusterConfig } from './config.js';
import { connectBroker, ensureStreams, type Broker } from './connection.js';
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
}

export class ClusterClient {
  readonly requester = `client-${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  private outcomes!: OutcomeCollector;

  private constructor(readonly broker: Broker) {}

  static async connect(cfg: Partial<ClusterConfig> & { nats: string | string[] }, log: Logger = createLogger({ level: 'warn' })): Promise<ClusterClient> {
    const c = clusterConfigSchema.parse(cfg);
    const b = await connectBroker(c, 'faascell-client', log);
    const cl = new ClusterClient(b);
    try {
      await ensureStreams(b);
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
  async invoke(fn: string, params: Record<string, unknown> = {}, o: ClusterInvokeOptions = {}): Promise<{ status: number; body: InvokeBody; id: string; accepted: boolean }> {
    const b = this.broker;
    const id = randomUUID();
    const msg: InvocationMessage = { v: 1, id, fn, params, receivedAt: Date.now(), requester: this.requester, ...(o.target ? { target: o.target } : {}), redeliveries: 0, handbacks: 0 };
    const wait = this.outcomes.expect(id, o.timeoutMs ?? 120_000);
    const end = Date.now() + (o.publishDeadlineMs ?? 15_000);
    try {
      await publishStored(b.js, o.target ? nodeSubject(b.names, o.target) : sharedSubject(b.names), encode(msg), id, () => Date.now() < end);
    } catch (err) {
      this.outcomes.cancel(id);
      return { id, accepted: false, status: 503, body: { error: { code: 'unavailable', message: `not accepted by the work queue: ${(err as Error).message}` } } };
    }
    const out = await wait;
    if (!out) return { id, accepted: true, status: 504, body: { error: { code: 'timeout', message: `no outcome within ${o.timeoutMs ?? 120_000} ms` } } };
    const body: InvokeBody = { activation: out.activation };
    if (out.result !== undefined) body.result = out.result;
    if (out.error) body.error = { code: out.error.code, message: out.error.message, ...(out.error.field ? { field: out.error.field } : {}) };
    return { id, accepted: true, status: out.error?.status ?? 200, body };
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
