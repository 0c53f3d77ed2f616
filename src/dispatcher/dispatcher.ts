// Dispatcher: takes each request from a Source, asks VmPool for an instance,
// hands the request to that instance's Worker, and delivers the outcome to the
// request's Sink and to PerfManager. Each request is followed in its own task,
// so one slow start never holds up the next request.

import { randomUUID } from 'node:crypto';
import { Actor, errText, type ActorRef } from '../core/actor.js';
import { FaasError } from '../core/errors.js';
import { finishTimings, nowMs, type ActivationRecord, type ActivationStatus } from '../perf/activation.js';
import type { PerfMsg } from '../perf/perf-manager.js';
import type { Registry } from '../registry/registry.js';
import type { RuntimeName } from '../runtimes/types.js';
import type { Sink } from '../sinks/types.js';
import type { Lease, PoolMsg } from '../vmpool/pool.js';
import type { InvokeOutcome } from '../worker/worker.js';

export interface InvocationRequest {
  fn: string;
  params: unknown;
  /** epoch ms when the Source received it */
  receivedAt: number;
  sink: Sink;
  /** The activation id to use, when the Source must know it before the run (OpenWhisk's non-blocking invoke). */
  activationId?: string;
}

export type DispatcherMsg = { kind: 'invoke'; req: InvocationRequest };

export interface DispatcherDeps {
  registry: Registry;
  pool: ActorRef<PoolMsg>;
  perf: ActorRef<PerfMsg>;
  runtime: RuntimeName;
  /** upper bound for waiting on an instance: queue delay + boot time */
  acquireTimeoutMs: number;
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
      .catch((err: unknown) => this.log.error('dispatch failed', { err: errText(err) }))
      .finally(() => this.inflight--);
  }

  private async handle(req: InvocationRequest): Promise<void> {
    const rec: ActivationRecord = {
      id: req.activationId ?? randomUUID(),
      function: req.fn,
      functionVersion: 0,
      runtime: this.deps.runtime,
      status: 'success',
      timestamps: { received: req.receivedAt },
      timings: {},
      totalMs: 0,
      logs: [],
    };
    let result: unknown;
    let error: FaasError | undefined;
    try {
      const def = this.deps.registry.mustGet(req.fn);
      rec.functionVersion = def.version;
      let outcome: InvokeOutcome | undefined;
      // one retry: an idle instance can die between being leased and being used
      for (let attempt = 0; attempt < 2; attempt++) {
        const lease = await this.deps.pool.ask<Lease>((reply) => ({ kind: 'acquire', fn: def, rec, reply }), this.deps.acquireTimeoutMs);
        outcome = await lease.worker.ask<InvokeOutcome>((reply) => ({ kind: 'invoke', req: { rec, params: req.params, fresh: lease.fresh }, reply }), def.timeoutMs + 10_000);
        if (outcome.ok || !/not idle/.test(outcome.error.message)) break;
      }
      if (!outcome) throw new FaasError('internal', 'no outcome');
      rec.logs = outcome.logs;
      rec.runMs = outcome.runMs;
      if (outcome.ok) result = outcome.result;
      else error = outcome.error;
    } catch (err) {
      error = err instanceof FaasError ? err : new FaasError('internal', errText(err));
    }
    if (error) {
      rec.status = statusOf(error);
      rec.error = { code: error.code, message: error.message };
    }
    rec.timestamps.responseSent = nowMs();
    finishTimings(rec);
    req.sink.deliver({ activation: rec, result, error });
    this.deps.perf.tell({ kind: 'activation', record: rec });
  }
}

function statusOf(e: FaasError): ActivationStatus {
  switch (e.code) {
    case 'function_error':
      return 'application_error';
    case 'init_error':
      return 'init_error';
    case 'timeout':
      return 'timeout';
    case 'vm_error':
      return 'vm_error';
    case 'too_many_requests':
    case 'unavailable':
    case 'not_found':
      return 'rejected';
    default:
      return 'internal_error';
  }
}
