// The OpenWhisk Source: OpenWhisk's REST API (actions and activations under
// /api/v1/namespaces/{namespace}/…) on the daemon's fastify app, next to the
// native API and over the same registry, Dispatcher and activation records.
// Registered as an encapsulated plugin: its own authentication (Basic uuid:key),
// error shape ({error, code}), JSON parser (an empty body is {}) and 404s.
// docs/openwhisk.md describes the routes and what is not supported.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ActorRef } from '../../core/actor.js';
import { FaasError } from '../../core/errors.js';
import type { DispatcherMsg } from '../../dispatcher/dispatcher.js';
import { nowMs, type ActivationRecord } from '../../perf/activation.js';
import type { PerfMsg } from '../../perf/perf-manager.js';
import type { Db } from '../../registry/db.js';
import type { FunctionDef, Registry } from '../../registry/registry.js';
import { CallbackSink } from '../../sinks/callback.js';
import type { InvocationResult } from '../../sinks/types.js';
import type { PoolMsg } from '../../vmpool/pool.js';
import { actionDocument, actionInput, actionPutSchema, checkFinal, kindOf, openWhiskFieldError, type ActionPut } from './actions.js';
import { assertRuntimeHere } from '../../api/server.js';
import type { FunctionRuntime } from '../../runtimes/function-runtime.js';
import { checkAuth } from './auth.js';
import { activationSummary, toOpenWhiskActivation, type OpenWhiskActivation } from './records.js';
import { ResultStore } from './results.js';
import { blockingHttpStatus, openWhiskStatus } from './status.js';

export interface OpenWhiskOptions {
  /** the one namespace served; `_` in a path means it too */
  namespace: string;
  /** how long a blocking invoke waits before answering 202 with the activation id */
  blockingWaitMs: number;
}

export interface OpenWhiskDeps {
  registry: Registry;
  dispatcher: ActorRef<DispatcherMsg>;
  pool: ActorRef<PoolMsg>;
  perf: ActorRef<PerfMsg>;
  db: Db;
  /** the daemon token (the key of OpenWhisk credentials); none: any credentials pass */
  token?: string;
  bodyLimitBytes: number;
  maxCodeBytes: number;
  /** issue 21: the runtimes this node has an image for (a python:3 action needs the Python image) */
  runtimes?: readonly FunctionRuntime[];
  /** activation records kept (activations.retain): results are kept as long */
  retain: number;
  options: OpenWhiskOptions;
}

export const OPENWHISK_PREFIX = '/api/v1';
const LIST_DEFAULT = 30;
const LIST_MAX = 200;
/** how far back list filters (name aside) look: PerfManager hands out at most this many records */
const SCAN_MAX = 10_000;
const NOT_FOUND = 'The requested resource does not exist.';

type NsParams = { namespace: string };
type ActionParams = NsParams & { name: string };
type ActivationParams = NsParams & { id: string };

const nsParams = { type: 'object', properties: { namespace: { type: 'string', maxLength: 256 } }, required: ['namespace'] } as const;
const actionParams = { type: 'object', properties: { namespace: { type: 'string', maxLength: 256 }, name: { type: 'string', maxLength: 256 } }, required: ['namespace', 'name'] } as const;
const activationParams = { type: 'object', properties: { namespace: { type: 'string', maxLength: 256 }, id: { type: 'string', maxLength: 64 } }, required: ['namespace', 'id'] } as const;
const listQuery = (extra: Record<string, unknown> = {}) =>
  ({
    type: 'object',
    properties: { skip: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 0, maximum: LIST_MAX }, count: { type: 'boolean' }, ...extra },
  }) as const;

/** Register the OpenWhisk API under /api/v1 on `app`. */
export async function registerOpenWhiskApi(app: FastifyInstance, deps: OpenWhiskDeps): Promise<void> {
  await app.register((ow, _opts, done) => {
    routes(ow, deps);
    done();
  }, { prefix: OPENWHISK_PREFIX });
}

function errorBody(req: FastifyRequest, message: string): { error: string; code: string } {
  return { error: message, code: String(req.id) };
}

function routes(ow: FastifyInstance, deps: OpenWhiskDeps): void {
  const { registry, options } = deps;
  const results = new ResultStore(deps.db, deps.retain);
  const subjects = new WeakMap<FastifyRequest, string>();

  // An empty JSON body is an empty object (curl -X POST without -d; clients that send no parameters).
  ow.removeContentTypeParser('application/json');
  ow.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new FaasError('bad_request', `body: not valid JSON: ${(err as Error).message}`, 'body'), undefined);
    }
  });

  ow.setErrorHandler((err: FastifyError | FaasError, req, reply) => {
    if (err instanceof FaasError) return reply.status(err.status).send(errorBody(req, err.message));
    if (err.validation) {
      const v = err.validation[0];
      const params = v?.params as { missingProperty?: string } | undefined;
      const at = (v?.instancePath || '').replace(/^\//, '').replace(/\//g, '.');
      const field = [err.validationContext === 'body' ? at : at || err.validationContext, params?.missingProperty].filter(Boolean).join('.') || 'body';
      return reply.status(400).send(errorBody(req, `${field}: ${v?.message ?? err.message}`));
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.status(413).send(errorBody(req, `request body too large (limit ${reply.request.routeOptions.bodyLimit ?? deps.bodyLimitBytes} bytes)`));
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply.status(415).send(errorBody(req, 'send the body as application/json'));
    if (err.statusCode && err.statusCode < 500) return reply.status(err.statusCode).send(errorBody(req, err.message));
    return reply.status(500).send(errorBody(req, err.message));
  });
  ow.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody(req, `${NOT_FOUND} (FaaSCell serves actions and activations only: ${req.method} ${req.url})`)));

  ow.addHook('onRequest', async (req, reply) => {
    const a = checkAuth(req.headers.authorization, deps.token, options.namespace);
    if (!a.ok) return reply.status(401).send(errorBody(req, `The supplied authentication is invalid: ${a.reason}.`));
    subjects.set(req, a.subject);
  });
  // one namespace: `_` or its name; any other is not this caller's
  ow.addHook('preHandler', async (req, reply) => {
    const ns = (req.params as Partial<NsParams> | undefined)?.namespace;
    if (ns !== undefined && ns !== '_' && ns !== options.namespace) {
      return reply.status(403).send(errorBody(req, `The supplied authentication is not authorized to access this resource (namespace '${ns}'; this node serves '${options.namespace}').`));
    }
  });

  const subjectOf = (req: FastifyRequest): string => subjects.get(req) ?? options.namespace;
  const mustGet = (name: string): FunctionDef => {
    const d = registry.get(name);
    if (!d) throw new FaasError('not_found', NOT_FOUND, 'name');
    return d;
  };
  const page = <T>(items: T[], q: { skip?: number; limit?: number }): T[] => {
    const skip = q.skip ?? 0;
    const limit = q.limit || LIST_DEFAULT;
    return items.slice(skip, skip + limit);
  };
  const asOpenWhisk = (rec: ActivationRecord): OpenWhiskActivation => {
    const x = results.get(rec.id);
    const def = x ? undefined : registry.get(rec.function);
    return toOpenWhiskActivation(rec, {
      namespace: options.namespace,
      subject: x?.subject ?? options.namespace,
      kind: kindOf({ runtime: rec.functionRuntime ?? 'nodejs20' }),
      result: x?.result,
      limits: x?.limits ?? (def ? { timeout: def.timeoutMs, memory: def.memoryMiB } : undefined),
    });
  };

  ow.get('/namespaces', async () => [options.namespace]);

  // Collections FaaSCell does not have are empty (so `wsk list` works); their entities do not exist.
  for (const c of ['packages', 'triggers', 'rules']) ow.get(`/namespaces/:namespace/${c}`, { schema: { params: nsParams } }, async () => []);

  ow.get<{ Params: NsParams; Querystring: { skip?: number; limit?: number; count?: boolean } }>(
    '/namespaces/:namespace/actions',
    { schema: { params: nsParams, querystring: listQuery() } },
    async (req) => {
      const all = registry.list();
      if (req.query.count) return { actions: all.length };
      return page(all, req.query).map((d) => actionDocument(d, options.namespace));
    },
  );

  ow.put<{ Params: ActionParams; Querystring: { overwrite?: boolean }; Body: ActionPut | undefined }>(
    '/namespaces/:namespace/actions/:name',
    {
      schema: { params: actionParams, querystring: { type: 'object', properties: { overwrite: { type: 'boolean' } } }, body: actionPutSchema },
      bodyLimit: Math.ceil((deps.maxCodeBytes * 4) / 3) + 64 * 1024,
    },
    async (req, reply) => {
      const name = req.params.name;
      const existing = registry.get(name);
      if (existing && !req.query.overwrite) return reply.status(409).send(errorBody(req, 'resource already exists'));
      const src = existing ? registry.source(name) : undefined;
      let def: FunctionDef;
      try {
        const input = actionInput(req.body ?? {}, existing && src ? { def: existing, code: src.code, kind: src.kind } : undefined);
        assertRuntimeHere(input.runtime, deps.runtimes, 'exec.kind');
        def = registry.put(name, input).def;
      } catch (err) {
        throw err instanceof FaasError ? openWhiskFieldError(err) : err;
      }
      // VmPool's decision core retires instances and snapshots of an older version
      await deps.pool.ask<void>((r) => ({ kind: 'functionChanged', fn: def.name, def, reply: r }), 10_000);
      await registry.synced(); // issue 13: in a cluster, the deploy reached the cluster registry
      return reply.status(200).send(actionDocument(def, options.namespace));
    },
  );

  ow.get<{ Params: ActionParams; Querystring: { code?: boolean } }>(
    '/namespaces/:namespace/actions/:name',
    { schema: { params: actionParams, querystring: { type: 'object', properties: { code: { type: 'boolean' } } } } },
    async (req) => {
      const def = mustGet(req.params.name);
      return actionDocument(def, options.namespace, req.query.code === false ? undefined : registry.source(def.name));
    },
  );

  ow.delete<{ Params: ActionParams }>('/namespaces/:namespace/actions/:name', { schema: { params: actionParams } }, async (req) => {
    const def = mustGet(req.params.name);
    const doc = actionDocument(def, options.namespace);
    registry.delete(def.name);
    await deps.pool.ask<void>((r) => ({ kind: 'functionChanged', fn: def.name, def: undefined, reply: r }), 10_000);
    await registry.synced(); // issue 13: in a cluster, the delete reached the cluster registry
    return doc;
  });

  ow.post<{ Params: ActionParams; Querystring: { blocking?: boolean; result?: boolean }; Body: unknown }>(
    '/namespaces/:namespace/actions/:name',
    { schema: { params: actionParams, querystring: { type: 'object', properties: { blocking: { type: 'boolean' }, result: { type: 'boolean' }, timeout: { type: 'integer' } } } }, bodyLimit: deps.bodyLimitBytes },
    async (req, reply) => invoke(req, reply),
  );

  async function invoke(req: FastifyRequest<{ Params: ActionParams; Querystring: { blocking?: boolean; result?: boolean }; Body: unknown }>, reply: FastifyReply): Promise<unknown> {
    const receivedAt = nowMs();
    const def = mustGet(req.params.name);
    const own = req.body ?? {};
    if (typeof own !== 'object' || own === null || Array.isArray(own)) throw new FaasError('bad_request', 'body: the parameters must be a JSON object', 'body');
    checkFinal(def, own as Record<string, unknown>);
    // the Dispatcher merges the action's default parameters under these
    const params = own;
    const id = randomUUID().replace(/-/g, '');
    const subject = subjectOf(req);
    const limits = { timeout: def.timeoutMs, memory: def.memoryMiB };
    let accepted!: () => void;
    const durable = new Promise<void>((r) => (accepted = r));
    const done = new Promise<InvocationResult>((resolve) => {
      const sink = new CallbackSink(
        (res) => {
          // the result is kept before PerfManager stores the record, so a record found has its result
          const failed = res.error !== undefined;
          results.put(id, { subject, limits, result: res.result !== undefined ? res.result : failed ? { error: res.error!.message } : undefined });
          resolve(res);
        },
        () => accepted(),
      );
      deps.dispatcher.tell({ kind: 'invoke', req: { fn: def.name, params, receivedAt, sink, activationId: id } });
    });
    void reply.header('x-openwhisk-activation-id', id);
    // issue 12: the id goes out once the acceptance is committed (or the outcome is known): a kill after that leaves a record
    if (!req.query.blocking) {
      await Promise.race([durable, done]);
      return reply.status(202).send({ activationId: id });
    }
    const ac = new AbortController();
    const res = await Promise.race([done, sleep(options.blockingWaitMs, undefined, { signal: ac.signal }).catch(() => undefined)]);
    ac.abort();
    // still running after the blocking wait: answered as OpenWhisk does, with the id to poll
    if (!res) return reply.status(202).send({ activationId: id });
    if (res.activation.status === 'rejected' && res.error) return reply.status(res.error.status).send(errorBody(req, res.error.message));
    const act = toOpenWhiskActivation(res.activation, { namespace: options.namespace, subject, kind: kindOf(def), result: results.get(id)?.result, limits });
    return reply.status(blockingHttpStatus(openWhiskStatus(res.activation))).send(req.query.result ? (act.response.result ?? {}) : act);
  }

  // Packaged actions: FaaSCell has no packages.
  ow.all('/namespaces/:namespace/actions/:pkg/:name', async (req, reply) =>
    reply.status(req.method === 'PUT' ? 400 : 404).send(errorBody(req, req.method === 'PUT' ? 'name: FaaSCell has no packages; an action name is a simple name' : `${NOT_FOUND} (FaaSCell has no packages)`)),
  );

  ow.get<{ Params: NsParams; Querystring: { name?: string; skip?: number; limit?: number; count?: boolean; docs?: boolean; since?: number; upto?: number } }>(
    '/namespaces/:namespace/activations',
    { schema: { params: nsParams, querystring: listQuery({ name: { type: 'string', maxLength: 256 }, docs: { type: 'boolean' }, since: { type: 'integer', minimum: 0 }, upto: { type: 'integer', minimum: 0 } }) } },
    async (req) => {
      const q = req.query;
      if (q.count && q.docs) throw new FaasError('bad_request', "docs: the parameter 'docs' is not permitted with 'count'", 'docs');
      const filtered = q.since !== undefined || q.upto !== undefined || q.count;
      const want = filtered ? SCAN_MAX : Math.min(SCAN_MAX, (q.skip ?? 0) + (q.limit || LIST_DEFAULT));
      let recs = await deps.perf.ask<ActivationRecord[]>((r) => ({ kind: 'list', limit: want, fn: q.name, reply: r }), 10_000);
      const at = (r: ActivationRecord): number => r.timestamps.received ?? 0;
      if (q.since !== undefined) recs = recs.filter((r) => at(r) >= q.since!);
      if (q.upto !== undefined) recs = recs.filter((r) => at(r) <= q.upto!);
      if (q.count) return { activations: Math.max(0, recs.length - (q.skip ?? 0)) };
      const acts = page(recs, q).map(asOpenWhisk);
      return q.docs ? acts : acts.map(activationSummary);
    },
  );

  const getActivation = async (id: string): Promise<OpenWhiskActivation> => {
    const rec = await deps.perf.ask<ActivationRecord | undefined>((r) => ({ kind: 'get', id, reply: r }), 10_000);
    if (!rec) throw new FaasError('not_found', NOT_FOUND, 'id');
    return asOpenWhisk(rec);
  };
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id', { schema: { params: activationParams } }, async (req) => getActivation(req.params.id));
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id/result', { schema: { params: activationParams } }, async (req) => (await getActivation(req.params.id)).response);
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id/logs', { schema: { params: activationParams } }, async (req) => ({ logs: (await getActivation(req.params.id)).logs }));
}
