// The OpenWhisk Source: OpenWhisk's REST API (actions, sequences, packages,
// triggers, rules, activations under /api/v1/namespaces/{namespace}/…, the
// /whisk.system/alarms feeds) and its web actions (/api/v1/web/…) on the daemon's
// fastify app, next to the native API and over the same registry, Dispatcher and
// activation records. The authenticated API is an encapsulated plugin: its own
// authentication (Basic uuid:key), error shape ({error, code}), JSON parser (an
// empty body is {}) and 404s. GET /api/v1 and the web actions are public, as in
// OpenWhisk. docs/openwhisk.md describes the routes and what differs.

import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { FaasError } from '../../core/errors.js';
import { actionRoutes } from './action-routes.js';
import { activationRoutes } from './activation-routes.js';
import { checkAuth } from './auth.js';
import { errorBody, OPENWHISK_PREFIX, SYSTEM_NAMESPACE, type NsParams, type OpenWhiskDeps, type RouteContext } from './context.js';
import { systemPackageRoutes } from './feed-routes.js';
import { apiInfo, infoRoutes } from './info-routes.js';
import { NOT_FOUND } from './invoker.js';
import { packageRoutes } from './package-routes.js';
import { OpenWhiskService } from './service.js';
import { triggerRoutes } from './trigger-routes.js';
import { registerWebActions } from './web.js';

export { OPENWHISK_PREFIX, type OpenWhiskDeps, type OpenWhiskLimits, type OpenWhiskOptions } from './context.js';

/** Register the OpenWhisk API under /api/v1 on `app`. */
export async function registerOpenWhiskApi(app: FastifyInstance, deps: OpenWhiskDeps): Promise<OpenWhiskService> {
  const svc = deps.service ?? new OpenWhiskService({ db: deps.db, registry: deps.registry, dispatcher: deps.dispatcher, perf: deps.perf, retain: deps.retain, namespace: deps.options.namespace, runtime: deps.runtime });
  const subjects = new WeakMap<FastifyRequest, string>();
  const ctx: RouteContext = { deps, svc, ns: deps.options.namespace, subjectOf: (req) => subjects.get(req) ?? deps.options.namespace };
  await app.register(
    (ow, _opts, done) => {
      authenticated(ow, ctx, subjects);
      done();
    },
    { prefix: OPENWHISK_PREFIX },
  );
  // public: what the API is (OpenWhisk answers it without credentials), and the web actions
  app.get(OPENWHISK_PREFIX, async () => apiInfo(deps));
  if (deps.options.webActions !== false) await registerWebActions(app, ctx);
  return svc;
}

function authenticated(ow: FastifyInstance, ctx: RouteContext, subjects: WeakMap<FastifyRequest, string>): void {
  const { deps } = ctx;
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
  ow.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody(req, `${NOT_FOUND} (${req.method} ${req.url})`)));

  ow.addHook('onRequest', async (req, reply) => {
    const a = checkAuth(req.headers.authorization, deps.token, ctx.ns);
    if (!a.ok) return reply.status(401).send(errorBody(req, `The supplied authentication is invalid: ${a.reason}.`));
    subjects.set(req, a.subject);
  });
  // one namespace: `_` or its name; any other is not this caller's (whisk.system: its alarm feeds are invoked)
  ow.addHook('preHandler', async (req, reply) => {
    const ns = (req.params as Partial<NsParams> | undefined)?.namespace;
    if (ns === undefined || ns === '_' || ns === ctx.ns) return;
    if (ns === SYSTEM_NAMESPACE && req.method === 'POST' && req.url.includes('/actions/')) return;
    return reply.status(403).send(errorBody(req, `The supplied authentication is not authorized to access this resource (namespace '${ns}'; this node serves '${ctx.ns}').`));
  });

  infoRoutes(ow, ctx);
  systemPackageRoutes(ow);
  actionRoutes(ow, ctx);
  packageRoutes(ow, ctx);
  triggerRoutes(ow, ctx);
  activationRoutes(ow, ctx);
}
