// Activations: `/activations` (newest first; summaries unless docs=true) and one
// activation, its result and its logs, in OpenWhisk's shape.

import type { FastifyInstance } from 'fastify';
import { FaasError } from '../../core/errors.js';
import type { ActivationRecord } from '../../perf/activation.js';
import type { ActivationPage, ListedActivation } from '../../perf/activation-store.js';
import { LIST_DEFAULT, listQuery, nsParams, type RouteContext } from './context.js';
import { NOT_FOUND } from './invoker.js';
import { activationSummary, type OpenWhiskActivation } from './records.js';

type ActivationParams = { namespace: string; id: string };
const activationParams = { type: 'object', properties: { namespace: { type: 'string', maxLength: 256 }, id: { type: 'string', maxLength: 64 } }, required: ['namespace', 'id'] } as const;

export function activationRoutes(ow: FastifyInstance, ctx: RouteContext): void {
  const { deps, svc } = ctx;
  const asOpenWhisk = (rec: ListedActivation): OpenWhiskActivation => svc.invoker.view(rec, svc.results.get(rec.id));

  ow.get<{ Params: { namespace: string }; Querystring: { name?: string; skip?: number; limit?: number; count?: boolean; docs?: boolean; since?: number; upto?: number } }>(
    '/namespaces/:namespace/activations',
    { schema: { params: nsParams, querystring: listQuery({ name: { type: 'string', maxLength: 256 }, docs: { type: 'boolean' }, since: { type: 'integer', minimum: 0 }, upto: { type: 'integer', minimum: 0 } }) } },
    async (req) => {
      const q = req.query;
      if (q.count && q.docs) throw new FaasError('bad_request', "docs: the parameter 'docs' is not permitted with 'count'", 'docs');
      // filters, skip and count run in SQL; logs are read only with docs=true (as OpenWhisk lists them), and
      // at most LIST_LOG_BUDGET_BYTES of them per page: the rest get a note (issue 19)
      const filter = { fn: q.name, since: q.since, upto: q.upto };
      if (q.count) return { activations: Math.max(0, (await deps.perf.ask<number>((r) => ({ kind: 'count', filter, reply: r }), 10_000)) - (q.skip ?? 0)) };
      const listed = await deps.perf.ask<ActivationPage>(
        (r) => ({ kind: 'list', query: { ...filter, limit: q.limit || LIST_DEFAULT, skip: q.skip, logs: q.docs === true, pastBudget: 'note' }, reply: r }),
        10_000,
      );
      const acts = listed.records.map(asOpenWhisk);
      return q.docs ? acts : acts.map(activationSummary);
    },
  );

  const getActivation = async (id: string): Promise<OpenWhiskActivation> => {
    const rec = (await deps.perf.ask<ActivationRecord | undefined>((r) => ({ kind: 'get', id, reply: r }), 10_000)) ?? (await deps.cluster?.activation(id));
    if (!rec) throw new FaasError('not_found', NOT_FOUND, 'id');
    return asOpenWhisk(rec);
  };
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id', { schema: { params: activationParams } }, async (req) => getActivation(req.params.id));
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id/result', { schema: { params: activationParams } }, async (req) => (await getActivation(req.params.id)).response);
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id/logs', { schema: { params: activationParams } }, async (req) => ({ logs: (await getActivation(req.params.id)).logs }));
}
