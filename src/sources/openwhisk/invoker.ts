// How the OpenWhisk Source runs an action, a sequence or a trigger's rules.
// Every action run goes through the Dispatcher (in a cluster: the broker ingress),
// so it picks its own start path and has its own record. A sequence runs its
// components one after the other, each through the Dispatcher with the previous
// one's result as its input, and stops at the first that fails; its own record
// lists the components' activation ids (OpenWhisk's shape). A trigger invokes the
// action of each of its active rules, non-blocking, and records what it did.
// Records FaaSCell composes (sequence, trigger, feed) are durably accepted first
// when they outlive the request (issue 12), and stored as every other record.

import { randomUUID } from 'node:crypto';
import type { ActorRef } from '../../core/actor.js';
import { FaasError } from '../../core/errors.js';
import type { DispatcherMsg } from '../../dispatcher/dispatcher.js';
import { finishTimings, nowMs, type ActivationRecord, type ActivationStatus } from '../../perf/activation.js';
import type { AcceptResult, PerfMsg } from '../../perf/perf-manager.js';
import type { Registry } from '../../registry/registry.js';
import type { RuntimeName } from '../../runtimes/types.js';
import { CallbackSink } from '../../sinks/callback.js';
import type { InvocationResult } from '../../sinks/types.js';
import { NODE_KIND } from './actions.js';
import type { Entity, OwEntities, Params } from './entities.js';
import { fullyQualified } from './names.js';
import { toOpenWhiskActivation, type OpenWhiskActivation } from './records.js';
import { finalClash, mergeParams, resolveAction, SEQUENCE_LIMIT, SEQUENCE_MESSAGES, type Lookups, type ResolvedAction } from './resolve.js';
import type { ActivationKind, ResultStore, StoredExtra } from './results.js';

export const NOT_FOUND = 'The requested resource does not exist.';
export const PARAMETERS_NOT_ALLOWED = 'Request defines parameters that are not allowed (e.g., reserved properties).';

export interface InvokerDeps {
  registry: Registry;
  entities: OwEntities;
  dispatcher: ActorRef<DispatcherMsg>;
  perf: ActorRef<PerfMsg>;
  results: ResultStore;
  namespace: string;
  runtime: RuntimeName;
}

export interface Call {
  /** FaaSCell's name of the action (`name` or `package/name`, a binding's too) */
  name: string;
  /** the invocation's own parameters */
  params: Params;
  subject: string;
  receivedAt?: number;
  /** the enclosing sequence's activation id (a component: no `final` check, as in OpenWhisk) */
  cause?: string;
  /** how deep in nested sequences (guards the sequence limit at run time too) */
  depth?: number;
  /** the caller fixed it (the activation id a web request announces) */
  id?: string;
}

export interface Finished {
  id: string;
  record: ActivationRecord;
  activation: OpenWhiskActivation;
  /** refused before it ran (queue full, overloaded, deleted): the HTTP error to answer */
  refused?: FaasError;
}

export interface Started {
  id: string;
  /** the action that runs */
  action: ResolvedAction;
  /** the activation is durably accepted (its id may go out) or already finished */
  accepted: Promise<void>;
  done: Promise<Finished>;
}

export const newActivationId = (): string => randomUUID().replace(/-/g, '');

/** A result as the next component's input: an object, else nothing (OpenWhisk passes objects only). */
const asInput = (v: unknown): Params => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Params) : {});

export class OwInvoker {
  readonly lookups: Lookups;

  constructor(private readonly d: InvokerDeps) {
    this.lookups = {
      fn: (n) => d.registry.get(n),
      sequence: (n) => d.entities.get('sequence', n),
      pkg: (n) => d.entities.get('package', n),
      namespace: d.namespace,
    };
  }

  resolve(name: string): ResolvedAction | undefined {
    return resolveAction(name, this.lookups);
  }

  mustResolve(name: string): ResolvedAction {
    const r = this.resolve(name);
    if (!r) throw new FaasError('not_found', NOT_FOUND, 'name');
    return r;
  }

  /**
   * Start an invocation. Throws (before anything runs) for an unknown action or
   * parameters a `final` action protects; otherwise every outcome is a record.
   */
  start(call: Call, action: ResolvedAction = this.mustResolve(call.name)): Started {
    if (call.cause === undefined) {
      const clash = finalClash(action.annotations, action.defaults, call.params);
      if (clash.length > 0) throw new FaasError('bad_request', `body: ${PARAMETERS_NOT_ALLOWED} (${clash.join(', ')}: final parameters of the action)`, 'body');
    }
    // package < binding < action < invocation; the Dispatcher's own merge of the action's defaults then changes nothing
    const params = mergeParams(action.defaults, call.params);
    return action.kind === 'function' ? this.runAction(call, action, params) : this.runSequence(call, action, params);
  }

  private runAction(call: Call, action: ResolvedAction & { kind: 'function' }, params: Params): Started {
    const id = call.id ?? newActivationId();
    const def = action.def;
    const limits = { timeout: def.timeoutMs, memory: def.memoryMiB };
    const extra: ActivationKind | undefined = call.cause ? { cause: call.cause } : undefined;
    let accepted!: () => void;
    const acceptedP = new Promise<void>((r) => (accepted = r));
    const done = new Promise<Finished>((resolve) => {
      const sink = new CallbackSink(
        (res: InvocationResult) => {
          // the result is kept before PerfManager stores the record, so a record found has its result
          const failed = res.error !== undefined;
          const x: StoredExtra = { subject: call.subject, limits, result: res.result !== undefined ? res.result : failed ? { error: res.error!.message } : undefined, extra };
          this.d.results.put(id, x);
          accepted();
          resolve({ id, record: res.activation, activation: this.view(res.activation, x), refused: res.activation.status === 'rejected' ? res.error : undefined });
        },
        () => accepted(),
      );
      this.d.dispatcher.tell({ kind: 'invoke', req: { fn: action.name, params, receivedAt: call.receivedAt ?? nowMs(), sink, activationId: id } });
    });
    return { id, action, accepted: acceptedP, done };
  }

  private runSequence(call: Call, action: ResolvedAction & { kind: 'sequence' }, params: Params): Started {
    const seq = action.entity;
    const id = call.id ?? newActivationId();
    const received = call.receivedAt ?? nowMs();
    const depth = call.depth ?? 0;
    const rec = this.composedRecord(id, seq.name, seq.version, received);
    const accepted = this.accept(rec);
    const done = (async (): Promise<Finished> => {
      await accepted;
      const ids: string[] = [];
      let input = params;
      let duration = 0;
      let memory = 0;
      let last: Finished | undefined;
      let failure: { status: ActivationStatus; message: string; result?: unknown } | undefined;
      for (const c of seq.doc.components) {
        const target = this.resolve(c);
        if (!target) {
          failure = { status: 'application_error', message: `${SEQUENCE_MESSAGES.notFound} (${c})` };
          break;
        }
        if (depth + 1 > SEQUENCE_LIMIT) {
          failure = { status: 'application_error', message: SEQUENCE_MESSAGES.tooLong };
          break;
        }
        const child = this.start({ name: c, params: input, subject: call.subject, cause: id, depth: depth + 1 }, target);
        last = await child.done;
        ids.push(last.id);
        duration += last.activation.duration;
        if (target.kind === 'function') memory = Math.max(memory, target.def.memoryMiB);
        if (!last.activation.response.success) {
          failure = { status: last.record.status, message: last.record.error?.message ?? last.record.status, result: last.activation.response.result };
          break;
        }
        input = asInput(last.activation.response.result);
      }
      rec.logs = ids;
      const result = failure ? (failure.result ?? { error: failure.message }) : last?.activation.response.result;
      if (failure) {
        rec.status = failure.status;
        rec.error = { code: failure.status, message: failure.message };
      }
      const x: StoredExtra = {
        subject: call.subject,
        result,
        limits: { timeout: seq.doc.limits.timeout, memory: memory || seq.doc.limits.memory },
        extra: { kind: 'sequence', topmost: call.cause === undefined, cause: call.cause, duration },
      };
      await this.store(rec, x);
      return { id, record: rec, activation: this.view(rec, x) };
    })();
    // a failed acceptance is answered through `accepted`; a non-blocking caller never awaits `done`
    done.catch(() => undefined);
    return { id, action, accepted, done };
  }

  /**
   * Fire a trigger: each active rule's action is invoked non-blocking with the
   * trigger's parameters under the payload. Undefined when no rule is active
   * (OpenWhisk answers 204 and records nothing); otherwise the trigger's activation
   * id, once its record (one log line per rule) is stored.
   */
  async fire(trigger: Entity<'trigger'>, payload: Params, subject: string, scheduledAt?: number): Promise<string | undefined> {
    const rules = this.d.entities.list('rule').filter((r) => r.doc.trigger === trigger.name && r.doc.status === 'active');
    if (rules.length === 0) return undefined;
    const received = nowMs();
    const args = mergeParams(trigger.doc.parameters, payload);
    const lines = await Promise.all(
      rules.map(async (r) => {
        const line = { rule: fullyQualified(r.name, this.d.namespace), action: fullyQualified(r.doc.action, this.d.namespace) };
        try {
          const s = this.start({ name: r.doc.action, params: args, subject });
          await s.accepted;
          return { ...line, statusCode: 0, success: true, activationId: s.id };
        } catch (err) {
          return { ...line, statusCode: 1, success: false, error: err instanceof FaasError ? err.message : String(err) };
        }
      }),
    );
    const rec = this.composedRecord(newActivationId(), trigger.name, trigger.version, received);
    rec.logs = lines.map((l) => JSON.stringify(l));
    await this.store(rec, { subject, result: payload, limits: { timeout: 0, memory: 0 }, extra: { kind: 'trigger', ...(scheduledAt !== undefined ? { scheduledAt } : {}) } });
    return rec.id;
  }

  /** Record a built-in action's run (the alarm feed's lifecycle calls): success with `result`, or the error. */
  async recordBuiltin(name: string, subject: string, received: number, outcome: { result: Params } | { error: FaasError }): Promise<Finished> {
    const rec = this.composedRecord(newActivationId(), name, 1, received);
    if ('error' in outcome) {
      rec.status = 'application_error';
      rec.error = { code: outcome.error.code, message: outcome.error.message };
    }
    const x: StoredExtra = { subject, result: 'error' in outcome ? { error: outcome.error.message } : outcome.result, limits: { timeout: 0, memory: 0 }, extra: { kind: 'feed' } };
    await this.store(rec, x);
    return { id: rec.id, record: rec, activation: this.view(rec, x) };
  }

  /** A record in OpenWhisk's shape with what this Source kept beside it. */
  view(rec: ActivationRecord, x: StoredExtra | undefined): OpenWhiskActivation {
    const def = x ? undefined : this.d.registry.get(rec.function);
    return toOpenWhiskActivation(rec, {
      namespace: this.d.namespace,
      subject: x?.subject ?? this.d.namespace,
      kind: NODE_KIND,
      result: x?.result,
      limits: x?.limits ?? (def ? { timeout: def.timeoutMs, memory: def.memoryMiB } : undefined),
      extra: x?.extra,
    });
  }

  private composedRecord(id: string, name: string, version: number, received: number): ActivationRecord {
    return { id, traceId: randomUUID().replace(/-/g, ''), function: name, functionVersion: version, runtime: this.d.runtime, status: 'success', timestamps: { received }, timings: {}, totalMs: 0, logs: [] };
  }

  /** Durable acceptance of a composed record (issue 12): a daemon killed meanwhile leaves it `interrupted`. */
  private async accept(rec: ActivationRecord): Promise<void> {
    if (this.d.perf.stopped) return;
    const r = await new Promise<AcceptResult>((resolve) => this.d.perf.tell({ kind: 'accepted', record: { ...rec, status: 'accepted', timestamps: { ...rec.timestamps } }, written: resolve }));
    if (!r.ok) throw new FaasError('internal', `the activation could not be recorded before it started: ${r.reason === 'store_failed' ? r.message : r.reason}`);
  }

  /** Store a composed record with its result; resolves once it is committed. */
  private async store(rec: ActivationRecord, x: StoredExtra): Promise<void> {
    rec.timestamps.responseSent = nowMs();
    finishTimings(rec);
    this.d.results.put(rec.id, x);
    if (this.d.perf.stopped) return;
    await new Promise<void>((resolve) => this.d.perf.tell({ kind: 'activation', record: rec, written: resolve }));
  }
}
