// Actions: `/actions/{name}` and `/actions/{package}/{name}`. An action with code is
// a FaaSCell function (`package/name` inside a package); a sequence is an entity of
// the OpenWhisk store whose components are checked when it is created.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FaasError } from '../../core/errors.js';
import { nowMs } from '../../perf/activation.js';
import type { FunctionDef } from '../../registry/registry.js';
import { actionDocument, actionInput, actionPutSchema, openWhiskFieldError, sequenceDocument, sequenceInput, type ActionPut } from './actions.js';
import { answerInvocation, entityParams, errorBody, listed, listQuery, overwriteQuery, packagedParams, SYSTEM_NAMESPACE, type EntityParams, type ListQuery, type RouteContext } from './context.js';
import { feedAction } from './feed-routes.js';
import { NOT_FOUND } from './invoker.js';
import { checkSimpleName } from './names.js';
import { checkSequence } from './resolve.js';

type InvokeQuery = { blocking?: boolean; result?: boolean };

/** FaaSCell's name of the action a path names (`package/name` inside a package). */
export const actionNameOf = (p: EntityParams): string => (p.pkg === undefined ? p.name : `${p.pkg}/${p.name}`);

export function actionRoutes(ow: FastifyInstance, ctx: RouteContext): void {
  const { deps, svc, ns } = ctx;
  const { registry } = deps;
  const entities = svc.entities;

  /** Every action: functions and sequences, by name. */
  const allActions = (): Record<string, unknown>[] => {
    const docs: [string, Record<string, unknown>][] = [
      ...registry.list().map((d): [string, Record<string, unknown>] => [d.name, actionDocument(d, ns)]),
      ...entities.list('sequence').map((e): [string, Record<string, unknown>] => [e.name, sequenceDocument(e, ns)]),
    ];
    return docs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, d]) => d);
  };

  ow.get<{ Params: { namespace: string }; Querystring: ListQuery }>('/namespaces/:namespace/actions', { schema: { querystring: listQuery() } }, async (req) => listed('actions', allActions(), req.query));

  const retire = async (def: FunctionDef | undefined, name: string): Promise<void> => {
    // VmPool's decision core retires instances and snapshots of an older version (or of a deleted function)
    await deps.pool.ask<void>((r) => ({ kind: 'functionChanged', fn: name, def, reply: r }), 10_000);
    await registry.synced(); // issue 13: in a cluster, the change reached the cluster registry
  };

  const put = async (req: FastifyRequest<{ Params: EntityParams; Querystring: { overwrite?: boolean }; Body: ActionPut | undefined }>, reply: FastifyReply): Promise<unknown> => {
    const p = req.params;
    checkSimpleName('name', p.name);
    if (p.pkg !== undefined) {
      checkSimpleName('name', p.pkg);
      const pkg = entities.get('package', p.pkg);
      if (!pkg) throw new FaasError('bad_request', `name: the package '${p.pkg}' does not exist (create it first: PUT …/packages/${p.pkg})`, 'name');
      if (pkg.doc.binding) throw new FaasError('bad_request', `name: '${p.pkg}' is a package binding: Operation not permitted on package binding.`, 'name');
    }
    const name = actionNameOf(p);
    const body = req.body ?? {};
    const fn = registry.get(name);
    const seq = entities.get('sequence', name);
    if ((fn || seq) && !req.query.overwrite) return reply.status(409).send(errorBody(req, 'resource already exists'));
    const asSequence = body.exec ? body.exec.kind === 'sequence' : seq !== undefined;
    if (asSequence) {
      const doc = sequenceInput(body, ns, registry.defaults(), seq?.doc);
      checkSequence(name, doc.components, svc.invoker.lookups);
      if (fn) {
        // an action with code becomes a sequence: the function goes
        registry.delete(name);
        await retire(undefined, name);
      }
      const e = entities.put('sequence', name, doc);
      await entities.synced();
      return reply.status(200).send(sequenceDocument(e, ns));
    }
    let def: FunctionDef;
    try {
      const src = fn ? registry.source(name) : undefined;
      const input = actionInput(body, fn && src ? { def: fn, code: src.code, kind: src.kind } : undefined);
      if (seq) entities.delete('sequence', name); // a sequence becomes an action with code
      // issue 19: the archive is unpacked off the event loop, its declared sizes checked first
      def = (await registry.deploy(name, input)).def;
    } catch (err) {
      throw err instanceof FaasError ? openWhiskFieldError(err) : err;
    }
    await retire(def, def.name);
    await entities.synced();
    return reply.status(200).send(actionDocument(def, ns));
  };

  const get = async (req: FastifyRequest<{ Params: EntityParams; Querystring: { code?: boolean } }>): Promise<unknown> => {
    const name = actionNameOf(req.params);
    const def = registry.get(name);
    if (def) return actionDocument(def, ns, req.query.code === false ? undefined : registry.source(def.name));
    const seq = entities.get('sequence', name);
    if (seq) return sequenceDocument(seq, ns);
    throw new FaasError('not_found', NOT_FOUND, 'name');
  };

  const del = async (req: FastifyRequest<{ Params: EntityParams }>): Promise<unknown> => {
    const name = actionNameOf(req.params);
    const def = registry.get(name);
    if (def) {
      const doc = actionDocument(def, ns);
      registry.delete(name);
      await retire(undefined, name);
      return doc;
    }
    const seq = entities.get('sequence', name);
    if (!seq) throw new FaasError('not_found', NOT_FOUND, 'name');
    entities.delete('sequence', name);
    await entities.synced();
    return sequenceDocument(seq, ns);
  };

  const invoke = async (req: FastifyRequest<{ Params: EntityParams; Querystring: InvokeQuery; Body: unknown }>, reply: FastifyReply): Promise<unknown> => {
    if (req.params.namespace === SYSTEM_NAMESPACE) return feedAction(req, reply, ctx);
    const receivedAt = nowMs();
    const own = req.body ?? {};
    if (typeof own !== 'object' || own === null || Array.isArray(own)) throw new FaasError('bad_request', 'body: the parameters must be a JSON object', 'body');
    const s = svc.invoker.start({ name: actionNameOf(req.params), params: own as Record<string, unknown>, subject: ctx.subjectOf(req), receivedAt });
    return answerInvocation(req, reply, s, req.query, deps.options.blockingWaitMs);
  };

  const putOpts = {
    schema: { querystring: overwriteQuery, body: actionPutSchema },
    bodyLimit: Math.ceil((deps.maxCodeBytes * 4) / 3) + 64 * 1024,
  };
  const invokeOpts = {
    schema: { querystring: { type: 'object', properties: { blocking: { type: 'boolean' }, result: { type: 'boolean' }, timeout: { type: 'integer' } } } },
    bodyLimit: deps.bodyLimitBytes,
  };
  const getQuery = { type: 'object', properties: { code: { type: 'boolean' } } } as const;
  for (const [url, params] of [
    ['/namespaces/:namespace/actions/:name', entityParams],
    ['/namespaces/:namespace/actions/:pkg/:name', packagedParams],
  ] as const) {
    ow.put(url, { ...putOpts, schema: { ...putOpts.schema, params } }, put);
    ow.get(url, { schema: { params, querystring: getQuery } }, get);
    ow.delete(url, { schema: { params } }, del);
    ow.post(url, { ...invokeOpts, schema: { ...invokeOpts.schema, params } }, invoke);
  }
}
