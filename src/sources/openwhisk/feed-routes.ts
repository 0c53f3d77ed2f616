// The built-in `/whisk.system/alarms` package: its feed actions `alarm` (cron),
// `interval` (minutes) and `once` (date) take OpenWhisk's feed lifecycle events
// (CREATE, READ, UPDATE, DELETE with `triggerName`), as `wsk trigger create --feed`
// and the openwhisk client's `feeds` send them, and keep the trigger's alarm in the
// OpenWhisk store, where the alarm source (src/sources/alarms/) fires it. Each call
// is recorded as an activation of the feed action. The caller's `authKey` is not
// kept: FaaSCell fires the trigger itself.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FaasError } from '../../core/errors.js';
import { nowMs } from '../../perf/activation.js';
import { alarmSpec, ALARM_FEEDS, type AlarmFeed } from '../alarms/schedule.js';
import { answerInvocation, errorBody, SYSTEM_NAMESPACE, type EntityParams, type RouteContext } from './context.js';
import type { AlarmDoc, Params } from './entities.js';
import { NOT_FOUND } from './invoker.js';
import { isOwnNamespace, parseQualified } from './names.js';

const PACKAGE = 'alarms';
/** parameters of a lifecycle call that are not the feed's own */
const LIFECYCLE_KEYS = new Set(['lifecycleEvent', 'triggerName', 'authKey']);

const bad = (field: string, message: string): FaasError => new FaasError('bad_request', `${field}: ${message}`, field);

/** The trigger a lifecycle call names (`/namespace/name`), in this node's namespace. */
function triggerOf(v: unknown, ns: string): string {
  if (typeof v !== 'string' || v === '') throw bad('triggerName', 'is required: the trigger to fire (/namespace/name)');
  const q = parseQualified(v, 'triggerName');
  if (!isOwnNamespace(q.namespace, ns) || q.pkg !== undefined) throw bad('triggerName', `'${v}' is not a trigger of namespace '${ns}'`);
  return q.name;
}

function deleteAfterFire(v: unknown): AlarmDoc['deleteAfterFire'] {
  if (v === undefined || v === false || v === 'false') return false;
  if (v === true || v === 'true') return 'trigger';
  if (v === 'rules') return 'rules';
  throw bad('deleteAfterFire', 'must be false, true or "rules"');
}

/** `trigger_payload`: an object (or its JSON text); anything else is passed as {payload}. */
function payloadOf(v: unknown): Params {
  if (v === undefined || v === null || v === '') return {};
  if (typeof v === 'string') {
    try {
      const o = JSON.parse(v) as unknown;
      if (typeof o === 'object' && o !== null && !Array.isArray(o)) return o as Params;
    } catch {
      // plain text
    }
    return { payload: v };
  }
  return typeof v === 'object' && !Array.isArray(v) ? (v as Params) : { payload: v };
}

/** One lifecycle event on the alarm of a trigger: the feed action's result, or a FaasError (its application error). */
async function lifecycle(ctx: RouteContext, feed: AlarmFeed, body: Params): Promise<Params> {
  const { svc, ns } = ctx;
  const event = typeof body.lifecycleEvent === 'string' ? body.lifecycleEvent.toUpperCase() : '';
  const trigger = triggerOf(body.triggerName, ns);
  const params: Params = Object.fromEntries(Object.entries(body).filter(([k]) => !LIFECYCLE_KEYS.has(k)));
  const existing = svc.entities.get('alarm', trigger);
  const now = Date.now();
  const make = (p: Params): AlarmDoc => ({ params: p, spec: alarmSpec(feed, p, now), payload: payloadOf(p.trigger_payload), deleteAfterFire: feed === 'once' ? deleteAfterFire(p.deleteAfterFire) : false });
  switch (event) {
    case 'CREATE': {
      if (!svc.entities.get('trigger', trigger)) throw bad('triggerName', `the trigger '${trigger}' does not exist: create it first`);
      const doc = make(params);
      if (existing) throw new FaasError('conflict', `triggerName: the trigger '${trigger}' already has an alarm (DELETE it first, or UPDATE it)`, 'triggerName');
      svc.entities.put('alarm', trigger, doc);
      await svc.entities.synced();
      return { status: 'success', trigger: `/${ns}/${trigger}` };
    }
    case 'READ': {
      if (!existing) throw new FaasError('not_found', `triggerName: the trigger '${trigger}' has no alarm`, 'triggerName');
      const next = svc.alarms.next(existing);
      return {
        config: { ...existing.doc.params, name: trigger, namespace: ns, feed: `/${SYSTEM_NAMESPACE}/${PACKAGE}/${existing.doc.spec.feed}` },
        status: { active: next !== undefined, dateChanged: existing.updatedAt, dateChangedISO: new Date(existing.updatedAt).toISOString(), nextFiring: next === undefined ? null : new Date(next).toISOString() },
      };
    }
    case 'UPDATE': {
      if (!existing) throw new FaasError('not_found', `triggerName: the trigger '${trigger}' has no alarm`, 'triggerName');
      if (existing.doc.spec.feed !== feed) throw bad('lifecycleEvent', `the trigger's alarm is a '${existing.doc.spec.feed}' feed, not '${feed}'`);
      svc.entities.put('alarm', trigger, make({ ...existing.doc.params, ...params }));
      await svc.entities.synced();
      return { status: 'success' };
    }
    case 'DELETE': {
      if (!existing) throw new FaasError('not_found', `triggerName: the trigger '${trigger}' has no alarm`, 'triggerName');
      svc.entities.delete('alarm', trigger);
      await svc.entities.synced();
      return { status: 'success' };
    }
    default:
      throw bad('lifecycleEvent', `must be CREATE, READ, UPDATE or DELETE (got ${JSON.stringify(body.lifecycleEvent)})`);
  }
}

/** POST /namespaces/whisk.system/actions/alarms/{alarm|interval|once}: a feed lifecycle call, recorded as an activation. */
export async function feedAction(req: FastifyRequest<{ Params: EntityParams; Querystring: { blocking?: boolean; result?: boolean }; Body: unknown }>, reply: FastifyReply, ctx: RouteContext): Promise<unknown> {
  const feed = req.params.name as AlarmFeed;
  if (req.params.pkg !== PACKAGE || !ALARM_FEEDS.includes(feed)) return reply.status(404).send(errorBody(req, `${NOT_FOUND} (/${SYSTEM_NAMESPACE} has the feeds ${ALARM_FEEDS.map((f) => `${PACKAGE}/${f}`).join(', ')})`));
  const received = nowMs();
  const body = req.body ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FaasError('bad_request', 'body: the parameters must be a JSON object', 'body');
  let outcome: { result: Params } | { error: FaasError };
  try {
    outcome = { result: await lifecycle(ctx, feed, body as Params) };
  } catch (err) {
    if (!(err instanceof FaasError)) throw err;
    outcome = { error: err };
  }
  const done = ctx.svc.invoker.recordBuiltin(`${PACKAGE}/${feed}`, ctx.subjectOf(req), received, outcome);
  const f = await done;
  return answerInvocation(req, reply, { id: f.id, accepted: Promise.resolve(), done }, req.query, ctx.deps.options.blockingWaitMs);
}

/** The alarms package as OpenWhisk's catalog describes it. */
function alarmsPackage(): Record<string, unknown> {
  const feed = (name: AlarmFeed, params: string[]) => ({ name, version: '0.0.1', annotations: [{ key: 'feed', value: true }, { key: 'parameters', value: params.map((p) => ({ name: p })) }] });
  return {
    namespace: SYSTEM_NAMESPACE,
    name: PACKAGE,
    version: '0.0.1',
    publish: true,
    binding: {},
    annotations: [{ key: 'description', value: 'Alarms and periodic utility (built into FaaSCell)' }],
    parameters: [],
    actions: [],
    feeds: [feed('alarm', ['cron', 'trigger_payload', 'timezone', 'startDate', 'stopDate']), feed('interval', ['minutes', 'trigger_payload', 'startDate', 'stopDate']), feed('once', ['date', 'trigger_payload', 'deleteAfterFire'])],
  };
}

/** GET /namespaces/whisk.system/packages[/alarms]. */
export function systemPackageRoutes(ow: FastifyInstance): void {
  ow.get(`/namespaces/${SYSTEM_NAMESPACE}/packages`, async () => {
    const { feeds: _f, actions: _a, ...summary } = alarmsPackage();
    return [summary];
  });
  ow.get(`/namespaces/${SYSTEM_NAMESPACE}/packages/${PACKAGE}`, async () => alarmsPackage());
}
