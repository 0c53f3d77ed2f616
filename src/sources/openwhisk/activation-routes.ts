// Activations: `/activations` (newest first; summaries unless docs=true) and one
// activation, its result and its logs, in OpenWhisk's shape.

import type { FastifyInstance } from 'fastify';
import { FaasError } from '../../core/errors.js';
import type { ActivationRecord } from '../../perf/activation.js';
import { LIST_DEFAULT, listQuery, nsParams, page, type RouteContext } from './context.js';
import { NOT_FOUND } from './invoker.js';
import { activationSummary, type OpenWhiskActivation } from './records.js';

/** how far back list filters (name aside) look: PerfManager hands out at most this many records */
const SCAN_MAX = 10_000;

type ActivationParams = { namespace: string; id: string };
const activationParams = { type: 'object', properties: { namespace: { type: 'string', maxLength: 256 }, id: { type: 'string', maxLength: 64 } }, required: ['namespace', 'id'] } as const;

export function activationRoutes(ow: FastifyInstance, ctx: RouteContext): void {
  const { deps, svc } = ctx;
  const asOpenWhisk = (rec: ActivationRecord): OpenWhiskActivation => svc.invoker.view(rec, svc.results.get(rec.id));

  ow.get<{ Params: { namespace: string }; Querystring: { name?: string; skip?: number; limit?: number; count?: boolean; docs?: boolean; since?: number; upto?: number } }>(
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
    const rec = (await deps.perf.ask<ActivationRecord | undefined>((r) => ({ kind: 'get', id, reply: r }), 10_000)) ?? (await deps.cluster?.activation(id));
    if (!rec) throw new FaasError('not_found', NOT_FOUND, 'id');
    return asOpenWhisk(rec);
  };
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id', { schema: { params: activationParams } }, async (req) => getActivation(req.params.id));
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id/result', { schema: { params: activationParams } }, async (req) => (await getActivation(req.params.id)).response);
  ow.get<{ Params: ActivationParams }>('/namespaces/:namespace/activations/:id/logs', { schema: { params: activationParams } }, async (req) => ({ logs: (await getActivation(req.params.id)).logs }));
}
