// Web actions: `/api/v1/web/{namespace}/{package|default}/{action}[.http|.json|.html|.svg|.text][/path]`.
// Public by OpenWhisk's design (no credentials; docs/security.md): an action is
// served only when annotated `web-export: true`; `require-whisk-auth` makes it
// require the `X-Require-Whisk-Auth` secret (a string or number) or, `true`, the
// caller's OpenWhisk credentials. The request becomes the action's parameters
// (`__ow_method`, `__ow_headers`, `__ow_path`, the query, then a JSON or form body
// merged over it; `raw-http`: `__ow_query` and `__ow_body` instead), and the result
// the HTTP response as the extension says. Each request is an activation with its
// own record. The pure parts (request → parameters, result → response) are here;
// the controller's exact messages are OpenWhisk's.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FaasError } from '../../core/errors.js';
import { nowMs } from '../../perf/activation.js';
import { checkAuth } from './auth.js';
import { errorBody, waitFor, type RouteContext } from './context.js';
import type { Params } from './entities.js';
import { NOT_FOUND, PARAMETERS_NOT_ALLOWED } from './invoker.js';
import { isOwnNamespace } from './names.js';

export const WEB_PREFIX = '/api/v1/web';
export const WEB_MESSAGES = {
  errorProcessingRequest: 'There was an error processing your request.',
  propertyNotFound: 'Response does not include requested property.',
  httpContentTypeError: 'Response type in header did not match generated content type.',
  responseNotReady: 'Response not yet ready.',
  unauthorized: 'The supplied authentication is invalid.',
  invalidMedia: (m: string): string => `Response is not valid '${m}'.`,
} as const;

export type WebExtension = '.http' | '.json' | '.html' | '.svg' | '.text';
const EXTENSIONS: readonly WebExtension[] = ['.http', '.json', '.html', '.svg', '.text'];
const RESERVED = ['__ow_method', '__ow_headers', '__ow_path', '__ow_user', '__ow_query', '__ow_body'];
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH',
  'access-control-allow-headers': 'Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent',
};

/** `hello.json/a/b` → action `hello`, extension `.json`, `__ow_path` `/a/b` (no known extension: `.http`). */
export function splitWebPath(rest: string): { action: string; ext: WebExtension; path: string } {
  const i = rest.indexOf('/');
  const first = i < 0 ? rest : rest.slice(0, i);
  const path = i < 0 ? '' : rest.slice(i);
  const ext = EXTENSIONS.find((e) => first.endsWith(e) && first.length > e.length);
  return ext ? { action: first.slice(0, -ext.length), ext, path } : { action: first, ext: '.http', path };
}

const mediaType = (ct: string | undefined): string => (ct ?? '').split(';')[0]!.trim().toLowerCase();
export const isJsonFamily = (mt: string): boolean => mt === 'application/json' || mt.endsWith('+json');
/** Text media types travel as text, all others as base64 (as OpenWhisk's controller decides, roughly). */
export function isBinaryMedia(mt: string): boolean {
  if (mt === '' || mt.startsWith('text/') || isJsonFamily(mt) || mt.endsWith('+xml')) return false;
  return !['application/xml', 'application/javascript', 'application/x-www-form-urlencoded', 'application/graphql'].includes(mt);
}

export interface WebRequest {
  method: string;
  headers: Record<string, string>;
  /** the raw query string, without `?` */
  query: string;
  contentType?: string;
  body?: Buffer;
  path: string;
  /** the namespace, when the caller authenticated (require-whisk-auth: true) */
  user?: string;
}

/** The action's parameters for a request, or a 400 (a body that is not valid JSON, reserved or final parameters set). */
export function webParameters(r: WebRequest, o: { raw: boolean; protectedKeys: string[] }): Params {
  const meta: Params = { __ow_method: r.method.toLowerCase(), __ow_headers: r.headers, __ow_path: r.path };
  if (r.user !== undefined) meta.__ow_user = r.user;
  const mt = mediaType(r.contentType);
  const body = r.body && r.body.length > 0 ? r.body : undefined;
  if (o.raw) {
    // raw-http: the query unparsed, the body as text or base64 (JSON too, as OpenWhisk does for legacy reasons)
    const text = body === undefined ? '' : isBinaryMedia(mt) || mt === 'application/json' ? body.toString('base64') : body.toString('utf8');
    return { ...meta, __ow_query: r.query, __ow_body: text };
  }
  const query: Params = Object.fromEntries(new URLSearchParams(r.query));
  /** the caller's own fields (a JSON object or form body); an opaque body travels as __ow_body */
  let fields: Params = {};
  let opaque: Params = {};
  if (body !== undefined) {
    if (isJsonFamily(mt)) {
      let v: unknown;
      try {
        v = JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new FaasError('bad_request', `body: not valid JSON: ${(err as Error).message}`, 'body');
      }
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) fields = v as Params;
      else opaque = { __ow_body: v };
    } else if (mt === 'application/x-www-form-urlencoded') fields = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
    else opaque = { __ow_body: isBinaryMedia(mt) ? body.toString('base64') : body.toString('utf8') };
  }
  const forbidden = new Set([...RESERVED, ...o.protectedKeys]);
  const clash = [...new Set([...Object.keys(query), ...Object.keys(fields)])].filter((k) => forbidden.has(k));
  if (clash.length > 0) throw new FaasError('bad_request', `${PARAMETERS_NOT_ALLOWED} (${clash.join(', ')})`, 'body');
  // precedence: query, then body (OpenWhisk's order)
  return { ...meta, ...query, ...fields, ...opaque };
}

export interface WebResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body?: Buffer | string;
}

const jsonResponse = (status: number, v: unknown, headers: Record<string, string | string[]> = {}): WebResponse => ({ status, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(v) });
const failed = (status: number, message: string): WebResponse => jsonResponse(status, { error: message });

function headersOf(v: unknown): Record<string, string | string[]> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('invalid headers');
  const out: Record<string, string | string[]> = {};
  const one = (x: unknown): string => {
    if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') return String(x);
    throw new Error('invalid header');
  };
  for (const [k, x] of Object.entries(v)) out[k.toLowerCase()] = Array.isArray(x) ? x.map(one) : one(x);
  return out;
}

/** The `.http` answer: {statusCode, headers, body}, a base64 body for binary content types. */
function httpResponse(result: unknown): WebResponse {
  try {
    if (typeof result !== 'object' || result === null || Array.isArray(result)) throw new Error('not an object');
    const r = result as Params;
    const headers = headersOf(r.headers);
    let code: number | undefined;
    if (r.statusCode !== undefined) {
      code = typeof r.statusCode === 'string' && /^\d+$/.test(r.statusCode) ? Number(r.statusCode) : (r.statusCode as number);
      if (!Number.isInteger(code) || code < 100 || code > 599) throw new Error('illegal status code');
    }
    const ct = headers['content-type'];
    delete headers['content-type'];
    const mt = mediaType(Array.isArray(ct) ? ct[0] : ct);
    const body = r.body;
    if (body === undefined || body === null || body === '') return { status: code ?? 204, headers };
    if (typeof body !== 'string') {
      // a JSON value: served as JSON (a content type of the JSON family only)
      if (mt !== '' && !isJsonFamily(mt)) return failed(400, WEB_MESSAGES.httpContentTypeError);
      return { status: code ?? 200, headers: { ...headers, 'content-type': mt === '' ? 'application/json' : `${mt}; charset=utf-8` }, body: JSON.stringify(body) };
    }
    const type = mt === '' ? 'text/html' : mt;
    const base64 = /^[A-Za-z0-9+/]+={0,2}$/.test(body) && body.length % 4 === 0;
    if (isBinaryMedia(type) || (isJsonFamily(type) && base64)) {
      if (!base64) return failed(400, WEB_MESSAGES.httpContentTypeError);
      return { status: code ?? 200, headers: { ...headers, 'content-type': type }, body: Buffer.from(body, 'base64') };
    }
    return { status: code ?? 200, headers: { ...headers, 'content-type': `${type}; charset=utf-8` }, body };
  } catch {
    return failed(400, WEB_MESSAGES.invalidMedia('message/http'));
  }
}

/** A projected field of the result (`.html` → body or html, `.svg` → body or svg, `.text` → body or text). */
const field = (result: unknown, name: string): unknown => (typeof result === 'object' && result !== null && !Array.isArray(result) ? ((result as Params).body ?? (result as Params)[name]) : result);

/** The HTTP response for a result (or an application error's `error` value) as the extension says. */
export function webResponse(result: unknown, ext: WebExtension): WebResponse {
  switch (ext) {
    case '.json':
      return typeof result === 'object' && result !== null ? jsonResponse(200, result) : failed(400, WEB_MESSAGES.invalidMedia('application/json'));
    case '.html':
    case '.svg': {
      const v = field(result, ext.slice(1));
      const type = ext === '.html' ? 'text/html; charset=utf-8' : 'image/svg+xml';
      return typeof v === 'string' ? { status: 200, headers: { 'content-type': type }, body: v } : failed(400, WEB_MESSAGES.invalidMedia(ext === '.html' ? 'text/html' : 'image/svg+xml'));
    }
    case '.text': {
      const v = field(result, 'text');
      if (v === undefined) return failed(404, WEB_MESSAGES.propertyNotFound);
      // objects and arrays pretty-printed, a string as it is, numbers, booleans and null as JSON writes them
      const text = typeof v === 'string' ? v : JSON.stringify(v, null, 2);
      return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: text };
    }
    case '.http':
      return httpResponse(result);
  }
}

/** Whether the request may run the action (require-whisk-auth); undefined: the action does not ask. */
export function webAuthorized(annotation: unknown, headers: Record<string, string | string[] | undefined>, token: string | undefined, namespace: string): { ok: boolean; user?: string } {
  if (annotation === undefined || annotation === false) return { ok: true };
  const h = (n: string): string | undefined => {
    const v = headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  if (typeof annotation === 'string' || typeof annotation === 'number') return { ok: h('x-require-whisk-auth') === String(annotation) };
  if (annotation === true) {
    const auth = h('authorization');
    if (!auth) return { ok: false };
    const a = checkAuth(auth, token, namespace);
    return a.ok ? { ok: true, user: namespace } : { ok: false };
  }
  return { ok: false };
}

/** Register the web action routes (their own plugin: no credentials, any body). */
export async function registerWebActions(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  await app.register(
    (web, _opts, done) => {
      web.removeAllContentTypeParsers();
      web.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.deps.bodyLimitBytes }, (_req, body, next) => next(null, body));
      web.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
        if (err instanceof FaasError) return reply.status(err.status).send(errorBody(req, err.message));
        if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.status(413).send(errorBody(req, `request body too large (limit ${ctx.deps.bodyLimitBytes} bytes)`));
        return reply.status(err.statusCode && err.statusCode < 500 ? err.statusCode : 500).send(errorBody(req, err.message));
      });
      web.route({ method: [...METHODS], url: '/:namespace/:pkg/*', exposeHeadRoute: false, handler: (req, reply) => serve(req as FastifyRequest<{ Params: WebParams }>, reply, ctx) });
      // a path without namespace, package and action names no web action (and asks for no credentials)
      web.route({ method: [...METHODS], url: '/*', exposeHeadRoute: false, handler: (req, reply) => reply.status(404).send(errorBody(req, NOT_FOUND)) });
      done();
    },
    { prefix: WEB_PREFIX },
  );
}

type WebParams = { namespace: string; pkg: string; '*': string };

async function serve(req: FastifyRequest<{ Params: WebParams }>, reply: FastifyReply, ctx: RouteContext): Promise<unknown> {
  const { svc, ns } = ctx;
  const received = nowMs();
  const { namespace, pkg } = req.params;
  const { action, ext, path } = splitWebPath(req.params['*'] ?? '');
  const name = pkg === 'default' ? action : `${pkg}/${action}`;
  const target = isOwnNamespace(namespace, ns) && action !== '' ? svc.invoker.resolve(name) : undefined;
  if (!target || target.annotations['web-export'] !== true) return reply.status(404).send(errorBody(req, NOT_FOUND));
  const a = target.annotations;
  if (a['web-custom-options'] !== true) {
    void reply.headers(CORS);
    if (req.method === 'OPTIONS') return reply.status(200).send();
  }
  const auth = req.method === 'OPTIONS' && a['web-custom-options'] === true ? { ok: true } : webAuthorized(a['require-whisk-auth'], req.headers, ctx.deps.token, ns);
  if (!auth.ok) return reply.status(401).send(errorBody(req, WEB_MESSAGES.unauthorized));
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(', ') : (v ?? '')]));
  const q = req.url.indexOf('?');
  const params = webParameters(
    { method: req.method, headers, query: q < 0 ? '' : req.url.slice(q + 1), contentType: req.headers['content-type'], body: Buffer.isBuffer(req.body) ? req.body : undefined, path, user: 'user' in auth ? auth.user : undefined },
    { raw: a['raw-http'] === true, protectedKeys: a.final === true ? Object.keys(target.defaults) : [] },
  );
  // the request's parameters were checked above; `final` protects the defaults (the invoker checks them again)
  const s = svc.invoker.start({ name, params, subject: ns, receivedAt: received }, target);
  void reply.header('x-openwhisk-activation-id', s.id);
  const f = await waitFor(s.done, ctx.deps.options.blockingWaitMs);
  if (!f) return reply.status(202).send(errorBody(req, WEB_MESSAGES.responseNotReady));
  if (f.refused) return reply.status(f.refused.status).send(errorBody(req, f.refused.message));
  const r = f.activation.response;
  let out: WebResponse;
  if (r.success) out = webResponse(r.result ?? {}, ext);
  else if (r.statusCode === 1) {
    // an application error: its `error` value, answered as the extension says
    const err = typeof r.result === 'object' && r.result !== null ? (r.result as Params).error : undefined;
    out = err === undefined ? failed(404, WEB_MESSAGES.propertyNotFound) : webResponse(err, ext);
  } else out = failed(400, WEB_MESSAGES.errorProcessingRequest);
  if (out.body === undefined) return reply.status(out.status).headers(out.headers).send();
  if (out.headers['content-type'] === 'application/json' && out.status >= 400) return reply.status(out.status).send({ ...(JSON.parse(String(out.body)) as object), code: String(req.id) });
  return reply.status(out.status).headers(out.headers).send(out.body);
}
