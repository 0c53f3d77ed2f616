// Triggers (`/triggers/{name}`: create, get, delete, fire) and rules
// (`/rules/{name}`: trigger → action, active or inactive). Firing a trigger invokes
// the action of each of its active rules, non-blocking, and records a trigger
// activation listing them; with no active rule it answers 204 and records nothing
// (OpenWhisk's behaviour).

import type { FastifyInstance, FastifyReply } from 'fastify';
import { FaasError } from '../../core/errors.js';
import { entityParams, errorBody, keyValueList, listed, listQuery, nsParams, overwriteQuery, toList, toObject, type EntityParams, type ListQuery, type RouteContext } from './context.js';
import type { Entity, RuleDoc, RuleStatus } from './entities.js';
import { NOT_FOUND } from './invoker.js';
import { checkSimpleName, entityNamespace, isOwnNamespace, localActionName, parseQualified, splitActionName } from './names.js';
import { semver } from './records.js';

interface TriggerPut {
  parameters?: { key: string; value?: unknown }[];
  annotations?: { key: string; value?: unknown }[];
  limits?: Record<string, unknown>;
  publish?: boolean;
  version?: string;
}

interface RulePut {
  trigger?: string;
  action?: string;
  annotations?: { key: string; value?: unknown }[];
  publish?: boolean;
  version?: string;
  status?: string;
}

const common = { namespace: { type: 'string' }, name: { type: 'string' }, annotations: keyValueList, publish: { type: 'boolean' }, version: { type: 'string' } };
const triggerPutSchema = { type: 'object', properties: { ...common, parameters: keyValueList, limits: { type: 'object' } } } as const;
const rulePutSchema = { type: 'object', properties: { ...common, trigger: { type: 'string' }, action: { type: 'string' }, status: { type: 'string' } } } as const;

export function triggerRoutes(ow: FastifyInstance, ctx: RouteContext): void {
  const { svc, ns } = ctx;
  const entities = svc.entities;
  const must = <K extends 'trigger' | 'rule'>(kind: K, name: string): Entity<K> => {
    const e = entities.get(kind, name);
    if (!e) throw new FaasError('not_found', NOT_FOUND, 'name');
    return e;
  };
  /** A rule's status: inactive while its trigger does not exist (as OpenWhisk reports it). */
  const statusOf = (r: Entity<'rule'>): RuleStatus => (entities.get('trigger', r.doc.trigger) ? r.doc.status : 'inactive');

  const triggerDoc = (e: Entity<'trigger'>): Record<string, unknown> => {
    const rules: Record<string, unknown> = {};
    for (const r of entities.list('rule')) {
      if (r.doc.trigger !== e.name) continue;
      rules[`${ns}/${r.name}`] = { action: { name: splitActionName(r.doc.action).name, path: entityNamespace(r.doc.action, ns) }, status: r.doc.status };
    }
    return { namespace: ns, name: e.name, version: semver(e.version), publish: e.doc.publish, annotations: toList(e.doc.annotations), parameters: toList(e.doc.parameters), limits: {}, rules, updated: e.updatedAt };
  };
  const ruleDoc = (e: Entity<'rule'>): Record<string, unknown> => ({
    namespace: ns,
    name: e.name,
    version: semver(e.version),
    publish: e.doc.publish,
    annotations: toList(e.doc.annotations),
    status: statusOf(e),
    trigger: { name: e.doc.trigger, path: ns },
    action: { name: splitActionName(e.doc.action).name, path: entityNamespace(e.doc.action, ns) },
    updated: e.updatedAt,
  });

  // triggers

  ow.get<{ Params: { namespace: string }; Querystring: ListQuery }>('/namespaces/:namespace/triggers', { schema: { params: nsParams, querystring: listQuery() } }, async (req) =>
    listed('triggers', entities.list('trigger').map(triggerDoc), req.query),
  );

  ow.put<{ Params: EntityParams; Querystring: { overwrite?: boolean }; Body: TriggerPut | undefined }>(
    '/namespaces/:namespace/triggers/:name',
    { schema: { params: entityParams, querystring: overwriteQuery, body: triggerPutSchema } },
    async (req, reply: FastifyReply) => {
      const name = checkSimpleName('name', req.params.name);
      const prev = entities.get('trigger', name);
      if (prev && !req.query.overwrite) return reply.status(409).send(errorBody(req, 'resource already exists'));
      const body = req.body ?? {};
      const feed = toObject(body.annotations)?.feed;
      if (feed !== undefined && (typeof feed !== 'string' || !/^\/?[^/]+(\/[^/]+){0,2}$/.test(feed))) throw new FaasError('bad_request', 'annotations: Feed name is not valid', 'annotations');
      const e = entities.put('trigger', name, {
        parameters: toObject(body.parameters) ?? prev?.doc.parameters ?? {},
        annotations: toObject(body.annotations) ?? prev?.doc.annotations ?? {},
        publish: body.publish ?? prev?.doc.publish ?? false,
      });
      await entities.synced();
      return reply.status(200).send(triggerDoc(e));
    },
  );

  ow.get<{ Params: EntityParams }>('/namespaces/:namespace/triggers/:name', { schema: { params: entityParams } }, async (req) => triggerDoc(must('trigger', req.params.name)));

  ow.delete<{ Params: EntityParams }>('/namespaces/:namespace/triggers/:name', { schema: { params: entityParams } }, async (req) => {
    const e = must('trigger', req.params.name);
    const doc = triggerDoc(e);
    // its alarm goes with it (OpenWhisk's CLI deletes the feed; here the feed lives in the same daemon)
    await svc.deleteTrigger(e.name, false);
    return doc;
  });

  ow.post<{ Params: EntityParams; Body: unknown }>('/namespaces/:namespace/triggers/:name', { schema: { params: entityParams }, bodyLimit: ctx.deps.bodyLimitBytes }, async (req, reply) => {
    const e = must('trigger', req.params.name);
    const payload = req.body ?? {};
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new FaasError('bad_request', 'body: the payload must be a JSON object', 'body');
    const id = await svc.invoker.fire(e, payload as Record<string, unknown>, ctx.subjectOf(req));
    if (id === undefined) return reply.status(204).send();
    void reply.header('x-openwhisk-activation-id', id);
    return reply.status(202).send({ activationId: id });
  });

  // rules

  /** The trigger a rule names: a simple name of this namespace that exists. */
  const ruleTrigger = (v: string): string => {
    const q = parseQualified(v, 'trigger');
    if (!isOwnNamespace(q.namespace, ns) || q.pkg !== undefined) throw new FaasError('bad_request', `trigger: '${v}' is not a trigger of namespace '${ns}'`, 'trigger');
    if (!entities.get('trigger', q.name)) throw new FaasError('bad_request', `trigger: trigger /${ns}/${q.name} does not exist`, 'trigger');
    return q.name;
  };
  const ruleAction = (v: string): string => {
    const name = localActionName(v, ns, 'action');
    if (!svc.invoker.resolve(name)) throw new FaasError('bad_request', `action: action /${ns}/${name} does not exist`, 'action');
    return name;
  };

  ow.get<{ Params: { namespace: string }; Querystring: ListQuery }>('/namespaces/:namespace/rules', { schema: { params: nsParams, querystring: listQuery() } }, async (req) =>
    listed('rules', entities.list('rule').map(ruleDoc), req.query),
  );

  ow.put<{ Params: EntityParams; Querystring: { overwrite?: boolean }; Body: RulePut | undefined }>(
    '/namespaces/:namespace/rules/:name',
    { schema: { params: entityParams, querystring: overwriteQuery, body: rulePutSchema } },
    async (req, reply: FastifyReply) => {
      const name = checkSimpleName('name', req.params.name);
      const prev = entities.get('rule', name);
      if (prev && !req.query.overwrite) return reply.status(409).send(errorBody(req, 'resource already exists'));
      const body = req.body ?? {};
      if (!prev && (!body.trigger || !body.action)) throw new FaasError('bad_request', 'trigger: rule requires a valid trigger and a valid action', body.trigger ? 'action' : 'trigger');
      const doc: RuleDoc = {
        trigger: body.trigger ? ruleTrigger(body.trigger) : prev!.doc.trigger,
        action: body.action ? ruleAction(body.action) : prev!.doc.action,
        // a new rule is active; an update keeps the status
        status: prev?.doc.status ?? 'active',
        annotations: toObject(body.annotations) ?? prev?.doc.annotations ?? {},
        publish: body.publish ?? prev?.doc.publish ?? false,
      };
      const e = entities.put('rule', name, doc);
      await entities.synced();
      return reply.status(200).send(ruleDoc(e));
    },
  );

  ow.get<{ Params: EntityParams }>('/namespaces/:namespace/rules/:name', { schema: { params: entityParams } }, async (req) => ruleDoc(must('rule', req.params.name)));

  ow.delete<{ Params: EntityParams }>('/namespaces/:namespace/rules/:name', { schema: { params: entityParams } }, async (req) => {
    const e = must('rule', req.params.name);
    entities.delete('rule', e.name);
    await entities.synced();
    return { ...ruleDoc(e), status: 'inactive' };
  });

  // enable / disable: {status: active | inactive}
  ow.post<{ Params: EntityParams; Body: { status?: unknown } | undefined }>('/namespaces/:namespace/rules/:name', { schema: { params: entityParams } }, async (req, reply) => {
    const e = must('rule', req.params.name);
    const status = req.body?.status;
    if (status !== 'active' && status !== 'inactive') throw new FaasError('bad_request', `status: must be "active" or "inactive" (got ${JSON.stringify(status)})`, 'status');
    if (!entities.get('trigger', e.doc.trigger)) return reply.status(404).send(errorBody(req, 'Only rules with existing triggers can be activated'));
    const updated = e.doc.status === status ? e : entities.put('rule', e.name, { ...e.doc, status });
    await entities.synced();
    return ruleDoc(updated);
  });
}
