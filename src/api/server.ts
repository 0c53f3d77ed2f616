// The HTTP API (fastify): function CRUD, activations, status, and the HTTP
// Source for invocations (its Sink is the HTTP reply). Every route has a JSON
// schema; every error has the shape {error: {code, message, field?}}.

import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { FaasError } from '../core/errors.js';
import { pinoOf, type Logger } from '../core/logger.js';
import type { ActorRef } from '../core/actor.js';
import type { DispatcherMsg } from '../dispatcher/dispatcher.js';
import type { NetworkMsg, NetworkStatus } from '../network/network-manager.js';
import type { ActivationRecord } from '../perf/activation.js';
import { nowMs } from '../perf/activation.js';
import type { PerfMsg } from '../perf/perf-manager.js';
import { finalClash, type FunctionDef, type Registry } from '../registry/registry.js';
import type { CodeKind } from '../registry/code.js';
import { CallbackSink } from '../sinks/callback.js';
import type { InvocationResult, Sink } from '../sinks/types.js';
import type { PoolMsg, PoolStatus } from '../vmpool/pool.js';
import type { SnapshotMsg, SnapshotRecord } from '../snapshots/types.js';
import type { Db } from '../registry/db.js';
import { OPENWHISK_PREFIX, registerOpenWhiskApi, type OpenWhiskDeps, type OpenWhiskOptions } from '../sources/openwhisk/index.js';
import type { Socket } from 'node:net';
import { API_LIMIT_DEFAULTS } from '../config/schema.js';
import { serverOptions, type HttpLimits } from './http-limits.js';
import { depthField, formatPath, tooDeep } from './json-depth.js';
import { checkCaller } from './request-guard.js';

export interface ApiDeps {
  registry: Registry;
  dispatcher: ActorRef<DispatcherMsg>;
  pool: ActorRef<PoolMsg>;
  perf: ActorRef<PerfMsg>;
  snapshots?: ActorRef<SnapshotMsg>;
  /** set up ahead when an egress function is deployed; reported in /v1/status */
  network?: ActorRef<NetworkMsg>;
  /** invocation bodies */
  bodyLimitBytes: number;
  /** function code (arrives base64-encoded: the deploy route allows for that) */
  maxCodeBytes: number;
  token?: string;
  /** static facts for /v1/status */
  info: () => Record<string, unknown>;
  /** the per-VM limits in force (config + detected cgroup mode) and the VMM isolation, for /v1/status */
  limits?: () => object;
  /** fastify logs through this logger's pino instance (warnings and errors; each request too at debug level) */
  log?: Logger;
  /** paths served without the bearer token (static pages that carry no data) */
  publicPaths?: ReadonlySet<string>;
  /** OpenWhisk's REST API under /api/v1 (a Source of its own; absent: not served) */
  openwhisk?: { db: Db; retain: number; options: OpenWhiskOptions } & Partial<Pick<OpenWhiskDeps, 'service' | 'runtime' | 'actionLimits' | 'version'>>;
  /** issue 13: activations the node does not have are looked up in the cluster */
  cluster?: { activation(id: string): Promise<ActivationRecord | undefined> };
  // ---- issue 19 (secedge): bounded input and clients, who may call (defaults: API_LIMIT_DEFAULTS)
  /** deepest nesting of a JSON body (api.maxJsonDepth) */
  maxJsonDepth?: number;
  /** slow-client timeouts and the connection cap of the TCP listener (the unix socket's are set by HttpSource) */
  http?: HttpLimits;
  /** host names the TCP listener answers besides localhost and IP literals (api.allowedHosts) */
  allowedHosts?: readonly string[];
  /** whether a connection came over the API's unix socket (its Host is not checked) */
  viaUnixSocket?: (socket: Socket) => boolean;
  /** path prefixes any web page may call (public by design): no Origin / Sec-Fetch-Site check there, the Host check stays */
  crossOriginPrefixes?: readonly string[];
}

const errorSchema = {
  type: 'object',
  properties: { error: { type: 'object', additionalProperties: true }, activation: { type: 'object', additionalProperties: true } },
};

const functionBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    code: { type: 'string', description: 'base64 of the code (JS file, zip or tar.gz)' },
    source: { type: 'string', description: 'JavaScript source text (alternative to code)' },
    codeKind: { type: 'string', enum: ['js', 'zip', 'tgz'] },
    entry: { type: 'string', minLength: 1, maxLength: 128 },
    memoryMiB: { type: 'integer' },
    vcpus: { type: 'integer' },
    timeoutMs: { type: 'integer' },
    maxInstances: { type: 'integer' },
    env: { type: 'object', additionalProperties: { type: 'string' } },
    // {mode: 'none' | 'egress', allow: [...]}: checked by the registry, whose errors name the exact field
    network: { type: 'object' },
  },
} as const;

// up to 129: an action inside an OpenWhisk package is the function `package/name` (issue 22)
const nameParam = { type: 'object', properties: { name: { type: 'string', maxLength: 129 } }, required: ['name'] } as const;

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const p = deps.log ? pinoOf(deps.log) : undefined;
  // fastify logs every request at info: shown only when the daemon logs at debug
  const level = !p ? 'silent' : p.isLevelEnabled('debug') ? 'debug' : p.isLevelEnabled('warn') ? 'warn' : p.level;
  const loggerInstance: FastifyBaseLogger | undefined = p?.child({ component: 'api' }, { level });
  const limits: HttpLimits = deps.http ?? API_LIMIT_DEFAULTS;
  const app = Fastify({
    bodyLimit: deps.bodyLimitBytes,
    // issue 19: slow clients are cut off (fastify's own defaults disable both request timeouts)
    http: serverOptions(limits),
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    ...(loggerInstance ? { loggerInstance } : { logger: false }),
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false } },
    // errors fastify raises before routing (a malformed URL, e.g. "/%") get the API's error shape too
    frameworkErrors: (err, _req, reply) => {
      void (reply as FastifyReply).status(400).send({ error: { code: 'bad_request', message: err.message, field: 'url' } });
    },
  });

  app.setErrorHandler((err: FastifyError | FaasError, _req, reply) => {
    if (err instanceof FaasError) return reply.status(err.status).send({ error: err.toJSON() });
    if (err.validation) {
      const v = err.validation[0];
      const field = (v?.instancePath || '').replace(/^\//, '').replace(/\//g, '.') || String((v?.params as { missingProperty?: string } | undefined)?.missingProperty ?? (v?.params as { additionalProperty?: string } | undefined)?.additionalProperty ?? err.validationContext ?? 'body');
      return reply.status(400).send({ error: { code: 'bad_request', message: `${field}: ${v?.message ?? err.message}`, field } });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.status(413).send({ error: { code: 'payload_too_large', message: `request body too large (limit ${deps.bodyLimitBytes} bytes for invocations, api.bodyLimitBytes)`, field: 'body' } });
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply.status(415).send({ error: { code: 'bad_request', message: 'send the body as application/json', field: 'content-type' } });
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return reply.status(400).send({ error: { code: 'bad_request', message: 'empty JSON body', field: 'body' } });
    if (err.statusCode && err.statusCode < 500) return reply.status(err.statusCode).send({ error: { code: 'bad_request', message: err.message, field: 'body' } });
    return reply.status(500).send({ error: { code: 'internal', message: err.message } });
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url}` } }));
  app.server.maxConnections = limits.maxConnections;

  // issue 19: before the token: browsers of other sites and rebound host names are refused whatever they carry
  const allowedHosts = deps.allowedHosts ?? [];
  app.addHook('onRequest', async (req) => {
    const one = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h.join(',') : h);
    const verdict = checkCaller(
      {
        host: one(req.headers.host),
        origin: one(req.headers.origin),
        secFetchSite: one(req.headers['sec-fetch-site']),
        viaUnixSocket: deps.viaUnixSocket?.(req.raw.socket) ?? false,
        crossOriginAllowed: deps.crossOriginPrefixes?.some((p) => req.url.startsWith(p)) ?? false,
      },
      allowedHosts,
    );
    if (!verdict.ok) throw new FaasError('forbidden', `${verdict.field}: ${verdict.reason}`, verdict.field);
  });
  // issue 19: a body nested deeper than api.maxJsonDepth is refused before any handler (or the guest channel) walks it
  const maxDepth = deps.maxJsonDepth ?? API_LIMIT_DEFAULTS.maxJsonDepth;
  app.addHook('preValidation', async (req) => {
    const deep = tooDeep(req.body, maxDepth);
    if (deep) throw new FaasError('bad_request', `${formatPath(deep)}: nested more than ${maxDepth} levels deep (api.maxJsonDepth)`, depthField(deep));
  });

  if (deps.token) {
    const want = Buffer.from(deps.token);
    app.addHook('onRequest', async (req, reply) => {
      if (req.url === '/healthz' || deps.publicPaths?.has(req.url.split('?')[0]!)) return;
      // the OpenWhisk routes check their own credentials (Basic uuid:key, key = this token)
      if (deps.openwhisk && (req.url === OPENWHISK_PREFIX || req.url.startsWith(OPENWHISK_PREFIX + '/') || req.url.startsWith(OPENWHISK_PREFIX + '?'))) return;
      const got = Buffer.from((req.headers.authorization ?? '').replace(/^Bearer /i, ''));
      if (got.length !== want.length || !timingSafeEqual(got, want)) {
        return reply.status(401).send({ error: { code: 'unauthorized', message: 'missing or wrong bearer token' } });
      }
    });
  }

  app.get('/healthz', async () => ({ ok: true }));

  app.put<{ Params: { name: string }; Body: { code?: string; source?: string; codeKind?: CodeKind; entry?: string; memoryMiB?: number; vcpus?: number; timeoutMs?: number; maxInstances?: number; env?: Record<string, string>; network?: unknown } }>(
    '/v1/functions/:name',
    { schema: { params: nameParam, body: functionBody }, bodyLimit: Math.ceil((deps.maxCodeBytes * 4) / 3) + 64 * 1024 },
    async (req, reply) => {
      const b = req.body;
      // issue 22: `package/action` functions are OpenWhisk actions inside packages, made through that API only
      if (req.params.name.includes('/')) throw new FaasError('bad_request', 'name: has no "/" (an action inside an OpenWhisk package is created through the OpenWhisk API)', 'name');
      if ((b.code === undefined) === (b.source === undefined)) throw new FaasError('bad_request', 'code or source: give exactly one of them', b.code === undefined ? 'code' : 'source');
      let code: Buffer;
      if (b.source !== undefined) code = Buffer.from(b.source, 'utf8');
      else {
        if (!/^[A-Za-z0-9+/=\s]*$/.test(b.code!)) throw new FaasError('bad_request', 'code: not base64', 'code');
        code = Buffer.from(b.code!, 'base64');
      }
      const { def, created } = await deps.registry.deploy(req.params.name, { code, codeKind: b.source !== undefined ? 'js' : b.codeKind, entry: b.entry, memoryMiB: b.memoryMiB, vcpus: b.vcpus, timeoutMs: b.timeoutMs, maxInstances: b.maxInstances, env: b.env, network: b.network });
      // VmPool's decision core retires instances and snapshots of an older version
      await deps.pool.ask<void>((r) => ({ kind: 'functionChanged', fn: def.name, def, reply: r }), 10_000);
      await deps.registry.synced(); // in a cluster: the deploy reached the cluster registry
      // network set-up ahead of the first start (docs/network.md)
      if (def.network?.mode === 'egress') deps.network?.tell({ kind: 'prepare' });
      return reply.status(created ? 201 : 200).send(publicDef(def));
    },
  );

  app.get('/v1/functions', async () => ({ functions: deps.registry.list().map(publicDef) }));

  app.get<{ Params: { name: string } }>('/v1/functions/:name', { schema: { params: nameParam } }, async (req) => publicDef(deps.registry.mustGet(req.params.name)));

  app.delete<{ Params: { name: string } }>('/v1/functions/:name', { schema: { params: nameParam } }, async (req, reply) => {
    const name = req.params.name;
    if (!deps.registry.delete(name)) throw new FaasError('not_found', `function ${name} does not exist`, 'name');
    await deps.pool.ask<void>((r) => ({ kind: 'functionChanged', fn: name, def: undefined, reply: r }), 10_000);
    await deps.registry.synced(); // in a cluster: the delete reached the cluster registry
    return reply.status(204).send();
  });

  app.post<{ Params: { name: string } }>('/v1/functions/:name/evict', { schema: { params: nameParam } }, async (req) => {
    deps.registry.mustGet(req.params.name);
    const stopped = await deps.pool.ask<number>((r) => ({ kind: 'evictFunction', fn: req.params.name, reply: r }), 10_000);
    return { stopped };
  });

  // The HTTP Source: an invocation is accepted here and answered by its Sink.
  app.post<{ Params: { name: string }; Body: unknown }>('/v1/functions/:name/invoke', { schema: { params: nameParam } }, async (req, reply) => {
    const receivedAt = nowMs();
    const params = req.body ?? {};
    if (typeof params !== 'object' || Array.isArray(params) || params === null) {
      throw new FaasError('bad_request', 'body: the parameters must be a JSON object', 'body');
    }
    const def = deps.registry.mustGet(req.params.name); // 404 before queueing
    const clash = finalClash(def, params as Record<string, unknown>);
    if (clash.length > 0) throw new FaasError('bad_request', `body: ${clash.join(', ')}: final parameters of the function (annotation final) cannot be set by an invocation`, 'body');
    // issue 12: a client may name the activation, so it can look it up if it loses the connection (after a daemon kill: `interrupted`)
    const chosen = clientActivationId(req.headers['x-activation-id']);
    const res = await new Promise<InvocationResult>((resolve) => {
      const sink: Sink = new CallbackSink(resolve);
      deps.dispatcher.tell({ kind: 'invoke', req: { fn: req.params.name, params, receivedAt, sink, ...(chosen ? { activationId: chosen, idFromClient: true } : {}) } });
    });
    if (res.error) {
      if (res.error.retryAfterMs !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(res.error.retryAfterMs / 1000))));
      return reply.status(res.error.status).send({ error: res.error.toJSON(), activation: res.activation, ...(res.result !== undefined ? { result: res.result } : {}) });
    }
    return reply.status(200).send({ result: res.result, activation: res.activation });
  });

  app.get<{ Querystring: { limit?: number; function?: string } }>(
    '/v1/activations',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 10000 }, function: { type: 'string' } } } } },
    async (req) => {
      const limit = req.query.limit ?? 50;
      const activations = await deps.perf.ask<ActivationRecord[]>((r) => ({ kind: 'list', limit, fn: req.query.function, reply: r }), 10_000);
      return { activations };
    },
  );

  app.get<{ Params: { id: string } }>('/v1/activations/:id', { schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } } }, async (req) => {
    const id = req.params.id;
    const get = (x: string): Promise<ActivationRecord | undefined> => deps.perf.ask<ActivationRecord | undefined>((r) => ({ kind: 'get', id: x, reply: r }), 10_000);
    let a = await get(id);
    // issue 20: a unique prefix (what `faascell activations` prints) names the activation too
    if (!a && id.length >= MIN_ID_PREFIX) {
      const ids = await deps.perf.ask<string[]>((r) => ({ kind: 'idsWithPrefix', prefix: id, limit: 6, reply: r }), 10_000);
      if (ids.length > 1) throw new FaasError('conflict', `activation id prefix ${id} matches ${ids.length > 5 ? 'more than 5' : ids.length} activations (${ids.slice(0, 5).join(', ')}): give more characters`, 'id');
      if (ids.length === 1) a = await get(ids[0]!);
    }
    a ??= await deps.cluster?.activation(id);
    if (!a) throw new FaasError('not_found', `activation ${id} does not exist${id.length < MIN_ID_PREFIX ? ` (a prefix needs at least ${MIN_ID_PREFIX} characters)` : ''}`, 'id');
    return a;
  });

  app.get('/v1/status', { schema: { response: { 500: errorSchema } } }, async () => {
    const pool = await deps.pool.ask<PoolStatus>((r) => ({ kind: 'status', reply: r }), 10_000);
    const snapshots = deps.snapshots ? await deps.snapshots.ask<SnapshotRecord[]>((r) => ({ kind: 'list', reply: r }), 10_000) : [];
    const network = deps.network ? await deps.network.ask<NetworkStatus>((r) => ({ kind: 'status', reply: r }), 10_000) : undefined;
    return { ...deps.info(), ...(deps.limits ? { limits: deps.limits() } : {}), pool, snapshots, ...(network ? { network } : {}) };
  });

  if (deps.openwhisk) await registerOpenWhiskApi(app, { ...deps, ...deps.openwhisk });

  return app;
}

/** The shortest id prefix GET /v1/activations/:id resolves (the CLI prints 8 characters). */
export const MIN_ID_PREFIX = 4;

/** Activation ids a client may choose (header X-Activation-Id): what GET /v1/activations/:id accepts. */
export const CLIENT_ACTIVATION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

function clientActivationId(h: string | string[] | undefined): string | undefined {
  if (h === undefined) return undefined;
  if (typeof h !== 'string' || !CLIENT_ACTIVATION_ID.test(h)) throw new FaasError('bad_request', `x-activation-id: must match ${CLIENT_ACTIVATION_ID.source} (one header)`, 'x-activation-id');
  return h;
}

/** A function as the API shows it: the names of its environment variables, never their values (they may be secrets). */
export type PublicFunctionDef = Omit<FunctionDef, 'env'> & { envNames: string[] };

export function publicDef(d: FunctionDef): PublicFunctionDef {
  const { env, ...rest } = d;
  return { ...rest, envNames: Object.keys(env).sort() };
}
