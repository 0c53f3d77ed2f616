// Dispatcher: takes each request from a Source, creates its activation record,
// hands it to VmPool (whose decision core admits it, queues it, and gives it to
// an instance's Worker), and delivers the outcome to the request's Sink and to
// PerfManager. Each request is followed in its own task, so one slow start never
// holds up the next request. Failures arrive typed and leave typed.

import { randomBytes, randomUUID } from 'node:crypto';
import { Actor, errText, type ActorRef } from '../core/actor.js';
import type { Clock } from '../core/clock.js';
import { failureOf, statusOf, toFaasError, type FailedStart, type Failure } from '../core/failure.js';
import { finishTimings, type ActivationRecord } from '../perf/activation.js';
import type { AcceptResult, PerfMsg } from '../perf/perf-manager.js';
import { FaasError } from '../core/errors.js';
import { withDefaults, type Registry } from '../registry/registry.js';
import type { RuntimeName } from '../runtimes/types.js';
import type { Sink } from '../sinks/types.js';
import type { PoolMsg } from '../vmpool/pool.js';
import type { InvokeOutcome } from '../worker/worker.js';

export interface InvocationRequest {
  fn: string;
  params: unknown;
  /** epoch ms when the Source received it */
  receivedAt: number;
  sink: Sink;
  /** the activation id, when the Source must know it before the outcome (non-blocking invocations) */
  activationId?: string;
  /** `activationId` was chosen by the client (HTTP header X-Activation-Id): refused if some record has it */
  idFromClient?: boolean;
}

export type DispatcherMsg = { kind: 'invoke'; req: InvocationRequest };

export interface DispatcherDeps {
  registry: Registry;
  pool: ActorRef<PoolMsg>;
  perf: ActorRef<PerfMsg>;
  runtime: RuntimeName;
  clock: Clock;
  /** safety net on top of the function's timeout: queueing + start (VmPool answers every request itself) */
  acquireTimeoutMs: number;
  /**
   * Durable acceptance (issue 12, default on): commit an `accepted` record before
   * the work starts, so a daemon killed meanwhile leaves a trace that the next
   * start finishes as `interrupted`. Off only to measure what it costs (bench/).
   */
  recordAcceptance?: boolean;
}

export class Dispatcher extends Actor<DispatcherMsg> {
  private inflight = 0;

  constructor(private readonly deps: DispatcherDeps) {
    super();
  }

  get inFlight(): number {
    return this.inflight;
  }

  protected receive(msg: DispatcherMsg): void {
    this.inflight++;
    this.handle(msg.req)
      .catch((err: unknown) => this.log.error('dispatch failed', { fn: msg.req.fn, err: errText(err) }))
      .finally(() => this.inflight--);
  }

  private async handle(req: InvocationRequest): Promise<void> {
    const rec: ActivationRecord = {
      id: req.activationId ?? randomUUID(),
      traceId: randomBytes(16).toString('hex'),
      function: req.fn,
      functionVersion: 0,
      runtime: this.deps.runtime,
      status: 'success',
      timestamps: { received: req.receivedAt },
      timings: {},
      totalMs: 0,
      logs: [],
    };
    let outcome: InvokeOutcome;
    try {
      const def = this.deps.registry.mustGet(req.fn);
      rec.functionVersion = def.version;
      const accepted = await this.accept(req, rec);
      if (accepted.ok === false && accepted.reason === 'duplicate_id') {
        // the id belongs to another activation: answered without a record, so that one is left as it is
        const failure: Failure = { kind: 'rejected', reason: 'duplicate_id', message: `activation id ${rec.id} is already used by another activation` };
        rec.status = statusOf(failure);
        const e = toFaasError(failure);
        rec.error = { code: e.code, message: e.message };
        rec.timestamps.responseSent = this.deps.clock.now();
        finishTimings(rec);
        req.sink.deliver({ activation: rec, error: e, failure });
        return;
      }
      if (accepted.ok === false) throw new FaasError('internal', `the activation could not be recorded before it started: ${accepted.message}`);
      // the function's default parameters under the invocation's own (OpenWhisk's rule, for every Source)
      const params = withDefaults(def, req.params);
      outcome = await this.deps.pool.ask<InvokeOutcome>(
        (reply) => ({ kind: 'invoke', fn: def, rec, params, reply }),
        this.deps.acquireTimeoutMs + def.timeoutMs,
      );
    } catch (err) {
      outcome = { ok: false, failure: failureOf(err), logs: [] };
    }
    rec.logs = outcome.logs;
    rec.runMs = outcome.runMs;
    if (!outcome.ok && outcome.failure.kind === 'init_failed' && outcome.failure.start) withFailedStart(rec, outcome.failure.start);
    let result: unknown;
    let failure: Failure | undefined;
    if (outcome.ok) result = outcome.result;
    else {
      failure = outcome.failure;
      if (failure.kind === 'application' && failure.result !== undefined) result = failure.result;
      rec.status = statusOf(failure);
      const e = toFaasError(failure);
      rec.error = { code: e.code, message: e.message };
    }
    rec.timestamps.responseSent = this.deps.clock.now();
    finishTimings(rec);
    req.sink.annotate?.(rec);
    // the reply goes out once the record is committed (hardening, issue 12: a kill -9 loses no answered record)
    const deliver = () => req.sink.deliver({ activation: rec, result, error: failure ? toFaasError(failure) : undefined, failure });
    if (this.deps.perf.stopped) deliver();
    else this.deps.perf.tell({ kind: 'activation', record: rec, written: deliver });
  }

  /**
   * Durable acceptance (issue 12): the record, in state `accepted`, is committed
   * (group commit: every acceptance of an event-loop turn shares one transaction)
   * before the request goes to VmPool; its final record replaces it. The Sink
   * hears of it then (a non-blocking Source hands out the id only once it is durable).
   */
  private async accept(req: InvocationRequest, rec: ActivationRecord): Promise<AcceptResult> {
    if (this.deps.recordAcceptance === false || this.deps.perf.stopped) {
      req.sink.accepted?.(rec.id);
      return { ok: true };
    }
    const record: ActivationRecord = { ...rec, status: 'accepted', timestamps: { ...rec.timestamps } };
    const r = await new Promise<AcceptResult>((resolve) => this.deps.perf.tell({ kind: 'accepted', record, unique: req.idFromClient === true, written: resolve }));
    if (r.ok) req.sink.accepted?.(rec.id);
    return r;
  }
}

/** An init failure's record shows the start it waited for: path, VM, its stages, the init's logs. */
function withFailedStart(rec: ActivationRecord, start: FailedStart): void {
  rec.startPath = start.path;
  rec.vmId ??= start.vmId;
  rec.accelerator ??= start.accelerator;
  for (const [stage, t] of Object.entries(start.timestamps)) rec.timestamps[stage as keyof ActivationRecord['timestamps']] ??= t;
  if (rec.logs.length === 0) rec.logs = [...start.logs];
}
