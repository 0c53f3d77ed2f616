// ClusterIngress: what a cluster node's APIs (native HTTP, OpenWhisk) hand their
// invocations to instead of the local Dispatcher. It takes the same message, chooses
// where the invocation goes first (locality), publishes it into the work queue, and
// delivers the outcome that comes back (from whichever node ran it) to the
// request's Sink. The activation id is fixed here, before publishing: every run of
// the invocation, on any node, has this id. It also holds the invocation's queue
// deadline (issue 18, src/cluster/deadline.ts): if no node claimed it by then, it
// claims it `expired` and answers 503 queue_timeout itself.

import { randomUUID } from 'node:crypto';
import { Actor, errText } from '../core/actor.js';
import { FaasError } from '../core/errors.js';
import { toFaasError, type Failure } from '../core/failure.js';
import type { DispatcherMsg, InvocationRequest } from '../dispatcher/dispatcher.js';
import type { ActivationRecord } from '../perf/activation.js';
import type { Registry } from '../registry/registry.js';
import type { RuntimeName } from '../runtimes/types.js';
import { holdDeadline, type Claims } from './claims.js';
import type { Broker } from './connection.js';
import { deadlineMessage, deadlineRetryAfterMs, queueDeadline } from './deadline.js';
import type { LocalityBook } from './locality.js';
import { encode, resultOf, type InvocationMessage } from './messages.js';
import type { BrokerCounters } from './node-status.js';
import type { NodeDirectory } from './nodes.js';
import type { OutcomeCollector } from './outcomes.js';
import { publishStored } from './publish.js';
import { nodeSubject, sharedSubject } from './subjects.js';

export interface IngressDeps {
  broker: Broker;
  node: string;
  registry: Registry;
  outcomes: OutcomeCollector;
  directory: NodeDirectory;
  book: LocalityBook;
  counters: BrokerCounters;
  runtime: RuntimeName;
  /** issue 18: who answers each invocation */
  claims: Claims;
  /** issue 18: admission.maxQueueDelayMs: what waits in the cluster's queues longer is refused */
  maxQueueDelayMs: number;
  /** issue 18: store a record this node answered itself (a refusal at the queue deadline) */
  record?: (rec: ActivationRecord) => void;
}

/** How long an invocation may take to be stored in the work queue (NATS restarting) before it is refused. */
const PUBLISH_DEADLINE_MS = 15_000;

export class ClusterIngress extends Actor<DispatcherMsg> {
  constructor(private readonly d: IngressDeps) {
    super();
  }

  protected receive(msg: DispatcherMsg): void {
    this.handle(msg.req).catch((err: unknown) => this.log.error('cluster ingress failed', { err: errText(err) }));
  }

  private async handle(req: InvocationRequest): Promise<void> {
    const d = this.d;
    const id = req.activationId ?? randomUUID();
    const def = d.registry.get(req.fn);
    if (!def) return this.fail(req, id, { kind: 'rejected', reason: 'not_found', message: `function ${req.fn} does not exist` });
    const now = Date.now();
    const place = d.broker.cfg.locality ? d.book.choose(req.fn, d.directory.nodes.values(), now, { self: d.node, nodeTimeoutMs: d.broker.cfg.nodeTimeoutMs }) : ({ kind: 'shared' } as const);
    const msg: InvocationMessage = {
      v: 1,
      id,
      fn: req.fn,
      params: req.params as Record<string, unknown>,
      receivedAt: req.receivedAt,
      requester: d.node,
      ...(place.kind === 'node' ? { target: place.node } : {}),
      redeliveries: 0,
      handbacks: 0,
      maxQueueDelayMs: d.maxQueueDelayMs,
    };
    const waitMs = def.timeoutMs + d.broker.cfg.outcomeTimeoutMs;
    const outcome = d.outcomes.expect(id, waitMs);
    const subject = place.kind === 'node' ? nodeSubject(d.broker.names, place.node) : sharedSubject(d.broker.names);
    const end = Date.now() + PUBLISH_DEADLINE_MS;
    let seq: number;
    try {
      seq = (await publishStored(d.broker.js, subject, encode(msg), id, () => Date.now() < end)).seq;
    } catch (err) {
      d.outcomes.cancel(id);
      return this.fail(req, id, { kind: 'rejected', reason: 'shutting_down', message: `the cluster's work queue is unreachable (NATS: ${(err as Error).message}); try again` });
    }
    d.counters.accepted++;
    req.sink.accepted?.(id); // inflight (issue 12): stored in JetStream, a non-blocking Source may hand out the id
    if (place.kind === 'node') {
      d.counters.targeted++;
      d.book.book(place.node, req.fn, now);
    }
    const deadline = queueDeadline(req.receivedAt, d.maxQueueDelayMs);
    const held = holdDeadline(d.claims, id, d.node, deadline, (err) => this.log.warn('cluster: queue deadline not enforced (claims unreachable)', { id, err: errText(err) }));
    const o = await Promise.race([outcome, held.expired]);
    held.cancel();
    if (o === 'expired') {
      d.outcomes.cancel(id);
      d.counters.expired++;
      // nobody will pull it now (a puller finds the claim and drops it): out of the queue at once, if it is still there
      d.broker.jsm.streams.deleteMessage(d.broker.names.invokeStream, seq, false).catch(() => undefined);
      const cluster = { requester: d.node, acceptedAt: req.receivedAt, via: place.kind === 'node' ? ('addressed' as const) : ('shared' as const), redeliveries: 0, handbacks: 0, expired: 'ingress' as const };
      const rec = this.answer(req, id, { kind: 'rejected', reason: 'queue_timeout', message: deadlineMessage(req.fn, d.maxQueueDelayMs, 'ingress'), retryAfterMs: deadlineRetryAfterMs(d.maxQueueDelayMs) }, { node: d.node, cluster });
      d.record?.(rec);
      return;
    }
    if (!o) {
      return this.fail(req, id, { kind: 'timeout', phase: 'run', limitMs: waitMs, message: `no outcome from the cluster within ${waitMs} ms (the function's timeout + cluster.outcomeTimeoutMs); look it up later by its activation id ${id}` });
    }
    req.sink.deliver(resultOf(o));
  }

  private fail(req: InvocationRequest, id: string, failure: Failure): void {
    this.answer(req, id, failure);
  }

  /** Answer the request with a failure; its record. */
  private answer(req: InvocationRequest, id: string, failure: Failure, extra: Pick<ActivationRecord, 'node' | 'cluster'> = {}): ActivationRecord {
    const now = Date.now();
    const e: FaasError = toFaasError(failure);
    const rec: ActivationRecord = {
      id,
      function: req.fn,
      functionVersion: this.d.registry.get(req.fn)?.version ?? 0,
      runtime: this.d.runtime,
      status: failure.kind === 'timeout' ? 'timeout' : 'rejected',
      timestamps: { received: req.receivedAt, responseSent: now },
      timings: { received: 0, responseSent: Math.round((now - req.receivedAt) * 100) / 100 },
      totalMs: Math.round((now - req.receivedAt) * 100) / 100,
      logs: [],
      error: { code: e.code, message: e.message },
      ...extra,
    };
    req.sink.deliver({ activation: rec, error: e, failure });
    return rec;
  }
}
