// The OpenWhisk Source on the real fastify app, with stand-ins for the actors
// behind it (unit tests only: the e2e tests drive the same routes with real VMs).
// Functions answer by their name (a packaged one by the part after its package):
// hello greets, echo… returns its parameters, inc adds 1 to n and appends its name
// to trail, fails throws, slow takes 300 ms, busy is refused.
import { buildApi } from '../../src/api/server.js';
import type { ActorRef, Reply } from '../../src/core/actor.js';
import { FaasError } from '../../src/core/errors.js';
import type { DispatcherMsg } from '../../src/dispatcher/dispatcher.js';
import { finishTimings, type ActivationRecord, type ActivationStatus } from '../../src/perf/activation.js';
import type { PerfMsg } from '../../src/perf/perf-manager.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry, withDefaults } from '../../src/registry/registry.js';
import { OpenWhiskService } from '../../src/sources/openwhisk/service.js';
import type { PoolMsg } from '../../src/vmpool/pool.js';

export const TOKEN = 'a-token-of-sixteen-chars';
export const limits = { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 30000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 2, maxTimeoutMs: 900000, maxInstances: 64 }, maxCodeBytes: 1 << 20 };
export const basic = (user: string, key: string): string => `Basic ${Buffer.from(`${user}:${key}`).toString('base64')}`;
export const AUTH = { authorization: basic('23bc46b1-71f6-4ed5-8c54-816aa4f8c502', TOKEN) };
export const HELLO = { exec: { kind: 'nodejs:default', code: 'function main(p) { return { payload: "Hello " + p.name } }' } };

export function actor<M>(name: string, handle: (m: M) => void): ActorRef<M> {
  return {
    name,
    stopped: false,
    tell: handle,
    ask<T>(build: (r: Reply<T>) => M): Promise<T> {
      return new Promise<T>((resolve, reject) => handle(build({ resolve, reject })));
    },
  };
}

export async function node(token?: string, opts: { blockingWaitMs?: number } = {}) {
  const db = openMemoryDb();
  const registry = new Registry(db, limits);
  const records = new Map<string, ActivationRecord>();
  const perf = actor<PerfMsg>('perf', (m) => {
    if (m.kind === 'activation') {
      records.set(m.record.id, m.record);
      m.written?.();
    } else if (m.kind === 'accepted') m.written({ ok: true });
    else if (m.kind === 'get') m.reply.resolve(records.get(m.id));
    else if (m.kind === 'list') m.reply.resolve([...records.values()].filter((r) => !m.fn || r.function === m.fn).reverse().slice(0, m.limit));
  });
  /** every invocation the Dispatcher got: function and parameters */
  const calls: { fn: string; params: Record<string, unknown> }[] = [];
  const seen: unknown[] = [];
  const dispatcher = actor<DispatcherMsg>('dispatcher', ({ req }) => {
    // as the real Dispatcher: the function's default parameters under the invocation's own
    const def = registry.get(req.fn);
    req = { ...req, params: def ? withDefaults(def, req.params) : req.params };
    seen.push(req.params);
    const p = req.params as Record<string, unknown>;
    calls.push({ fn: req.fn, params: p });
    const t0 = req.receivedAt;
    const rec: ActivationRecord = { id: req.activationId ?? 'native', function: req.fn, functionVersion: def?.version ?? 0, runtime: 'qemu', startPath: 'cold', status: 'success', timestamps: { received: t0 }, timings: {}, totalMs: 0, logs: ['hello from the guest'] };
    req.sink.accepted?.(rec.id);
    const finish = (status: ActivationStatus, result?: unknown, error?: FaasError): void => {
      rec.status = status;
      if (error) rec.error = { code: error.code, message: error.message };
      Object.assign(rec.timestamps, { admitted: t0 + 1, vmmSpawned: t0 + 2, agentReady: t0 + 3000, initDone: t0 + 3200, instanceAssigned: t0 + 3200, runStarted: t0 + 3210, runFinished: t0 + 3260, responseSent: t0 + 3261 });
      rec.runMs = 50;
      finishTimings(rec);
      req.sink.deliver({ activation: rec, result, error });
      perf.tell({ kind: 'activation', record: rec });
    };
    const base = req.fn.slice(req.fn.indexOf('/') + 1);
    if (base === 'hello') finish('success', { payload: `Hello ${String(p.name)}`, greeting: p.greeting });
    else if (base.startsWith('echo')) finish('success', p);
    else if (base === 'inc') finish('success', { n: Number(p.n ?? 0) + 1, trail: [...((p.trail as string[] | undefined) ?? []), req.fn] });
    else if (base === 'fails') finish('application_error', { error: 'boom' }, new FaasError('function_error', 'boom'));
    else if (base === 'slow') setTimeout(() => finish('success', { done: true }), 300);
    else if (base === 'busy') {
      rec.status = 'rejected';
      const e = new FaasError('too_many_requests', `queue of ${req.fn} is full`);
      rec.error = { code: e.code, message: e.message };
      req.sink.deliver({ activation: rec, error: e });
    } else finish('success', { fn: req.fn });
  });
  const pool = actor<PoolMsg>('pool', (m) => {
    if ('reply' in m && m.reply) (m.reply as Reply<void>).resolve();
  });
  const options = { namespace: 'guest', blockingWaitMs: opts.blockingWaitMs ?? 100 };
  const service = new OpenWhiskService({ db, registry, dispatcher, perf, retain: 1000, namespace: 'guest' });
  const app = await buildApi({
    registry,
    dispatcher,
    pool,
    perf,
    bodyLimitBytes: 1 << 20,
    maxCodeBytes: 1 << 20,
    token,
    info: () => ({}),
    openwhisk: { db, retain: 1000, options, service },
  });
  return { app, registry, records, seen, calls, service, db };
}
