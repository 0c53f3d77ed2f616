// Packages and package bindings: `/packages/{name}`. A package groups actions
// (`package/name` functions and sequences) and gives them default parameters; a
// binding binds another package of this namespace with parameters of its own.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FaasError } from '../../core/errors.js';
import { entityParams, errorBody, keyValueList, listed, listQuery, nsParams, overwriteQuery, toList, toObject, type EntityParams, type ListQuery, type RouteContext } from './context.js';
import type { BindingRef, Entity, PackageDoc } from './entities.js';
import { NOT_FOUND } from './invoker.js';
import { checkSimpleName, isOwnNamespace, splitActionName } from './names.js';
import { semver } from './records.js';
import { mergeParams } from './resolve.js';

interface PackagePut {
  binding?: { namespace?: string; name?: string };
  parameters?: { key: string; value?: unknown }[];
  annotations?: { key: string; value?: unknown }[];
  publish?: boolean;
  version?: string;
}

const packagePutSchema = {
  type: 'object',
  properties: {
    namespace: { type: 'string' },
    name: { type: 'string' },
    binding: { type: 'object', properties: { namespace: { type: 'string' }, name: { type: 'string' } } },
    parameters: keyValueList,
    annotations: keyValueList,
    publish: { type: 'boolean' },
    version: { type: 'string' },
  },
} as const;

export const PACKAGE_MESSAGES = {
  bindingDoesNotExist: 'Binding references a package that does not exist.',
  packageCannotBecomeBinding: 'Resource is a package and cannot be converted into a binding.',
  bindingCannotReferenceBinding: 'Cannot bind to another package binding.',
} as const;

export function packageRoutes(ow: FastifyInstance, ctx: RouteContext): void {
  const { svc, ns } = ctx;
  const entities = svc.entities;

  /** The actions inside package `name`: functions `name/…` and sequences `name/…`. */
  const actionsIn = (pkg: string): { name: string; version: string; annotations: { key: string; value: unknown }[] }[] => {
    const inPkg = (n: string): boolean => splitActionName(n).pkg === pkg;
    const fns = ctx.deps.registry.list().filter((d) => inPkg(d.name)).map((d) => ({ name: splitActionName(d.name).name, version: semver(d.version), annotations: toList(d.annotations) }));
    const seqs = entities.list('sequence').filter((e) => inPkg(e.name)).map((e) => ({ name: splitActionName(e.name).name, version: semver(e.version), annotations: toList(e.doc.annotations) }));
    return [...fns, ...seqs].sort((a, b) => (a.name < b.name ? -1 : 1));
  };

  const summary = (e: Entity<'package'>): Record<string, unknown> => ({
    namespace: ns,
    name: e.name,
    version: semver(e.version),
    publish: e.doc.publish,
    annotations: toList(e.doc.annotations),
    binding: e.doc.binding ?? {},
    updated: e.updatedAt,
  });

  /** GET: a package with its actions; a binding with its parameters over the bound package's, and the bound package's actions. */
  const full = (e: Entity<'package'>): Record<string, unknown> => {
    const b = e.doc.binding;
    const bound = b && isOwnNamespace(b.namespace, ns) ? entities.get('package', b.name) : undefined;
    return { ...summary(e), parameters: toList(b ? mergeParams(bound?.doc.parameters, e.doc.parameters) : e.doc.parameters), actions: actionsIn(b ? b.name : e.name), feeds: [] };
  };

  const mustGet = (name: string): Entity<'package'> => {
    const e = entities.get('package', name);
    if (!e) throw new FaasError('not_found', NOT_FOUND, 'name');
    return e;
  };

  /** A binding's target: a package (not a binding) of this namespace. */
  const checkBinding = (b: PackagePut['binding']): BindingRef => {
    if (!b || typeof b.name !== 'string' || b.name === '') throw new FaasError('bad_request', 'binding.name: the package to bind is required', 'binding.name');
    const namespace = b.namespace ?? '_';
    if (!isOwnNamespace(namespace, ns)) throw new FaasError('bad_request', `binding.namespace: '${namespace}': this node binds packages of its own namespace '${ns}' only`, 'binding.namespace');
    const target = entities.get('package', b.name);
    if (!target) throw new FaasError('bad_request', `binding: ${PACKAGE_MESSAGES.bindingDoesNotExist} (${b.name})`, 'binding');
    if (target.doc.binding) throw new FaasError('bad_request', `binding: ${PACKAGE_MESSAGES.bindingCannotReferenceBinding} (${b.name})`, 'binding');
    return { namespace: ns, name: b.name };
  };

  ow.get<{ Params: { namespace: string }; Querystring: ListQuery & { public?: boolean } }>(
    '/namespaces/:namespace/packages',
    { schema: { params: nsParams, querystring: listQuery({ public: { type: 'boolean' } }) } },
    async (req) => listed('packages', entities.list('package').map(summary), req.query),
  );

  ow.put<{ Params: EntityParams; Querystring: { overwrite?: boolean }; Body: PackagePut | undefined }>(
    '/namespaces/:namespace/packages/:name',
    { schema: { params: entityParams, querystring: overwriteQuery, body: packagePutSchema } },
    async (req, reply: FastifyReply) => {
      const name = checkSimpleName('name', req.params.name);
      if (name === 'default') throw new FaasError('bad_request', "name: Package name 'default' is reserved.", 'name');
      const body = req.body ?? {};
      const prev = entities.get('package', name);
      if (prev && !req.query.overwrite) return reply.status(409).send(errorBody(req, 'resource already exists'));
      if (prev && !prev.doc.binding && body.binding) return reply.status(409).send(errorBody(req, PACKAGE_MESSAGES.packageCannotBecomeBinding));
      const binding = body.binding ? checkBinding(body.binding) : prev?.doc.binding;
      const annotations = { ...(toObject(body.annotations) ?? prev?.doc.annotations ?? {}) };
      // the controller's own annotation on a binding (clients that list packages read it)
      delete annotations.binding;
      if (binding) annotations.binding = binding;
      const doc: PackageDoc = { parameters: toObject(body.parameters) ?? prev?.doc.parameters ?? {}, annotations, publish: body.publish ?? prev?.doc.publish ?? false };
      if (binding) doc.binding = binding;
      const e = entities.put('package', name, doc);
      await entities.synced();
      return reply.status(200).send(full(e));
    },
  );

  ow.get<{ Params: EntityParams }>('/namespaces/:namespace/packages/:name', { schema: { params: entityParams } }, async (req: FastifyRequest<{ Params: EntityParams }>) => full(mustGet(req.params.name)));

  ow.delete<{ Params: EntityParams }>('/namespaces/:namespace/packages/:name', { schema: { params: entityParams } }, async (req, reply) => {
    const e = mustGet(req.params.name);
    if (!e.doc.binding) {
      // a package may only be deleted once its actions are
      const n = actionsIn(e.name).length;
      if (n > 0) return reply.status(409).send(errorBody(req, `Package not empty (contains ${n} ${n === 1 ? 'entity' : 'entities'})`));
    }
    entities.delete('package', e.name);
    await entities.synced();
    return full(e);
  });
}
