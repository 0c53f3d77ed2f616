// GET /v1/traffic (issue 23): the node's traffic over a window, from its
// activation store: `format=rows` (JSON, what `faascell trace export` merges in
// cluster mode), `invocations` or `faasrail` (CSV text), `azure` (JSON: the three
// files by name).

import type { FastifyInstance } from 'fastify';
import type { ActorRef } from '../core/actor.js';
import { FaasError } from '../core/errors.js';
import type { PerfMsg } from '../perf/perf-manager.js';
import type { Registry } from '../registry/registry.js';
import { EXPORT_FORMATS, exportFiles, type ExportFormat } from '../traces/export.js';
import { MAX_ROWS, trafficOf } from './store.js';
import { parseWindow, WindowError, type Window } from './window.js';

export interface TrafficDeps {
  perf: ActorRef<PerfMsg>;
  registry: Registry;
}

/** The window of a request's query, as a 400 naming the field when it is wrong. */
export function windowOf(q: { since?: string; until?: string }): Window {
  try {
    return parseWindow(q.since, q.until, Date.now());
  } catch (err) {
    if (err instanceof WindowError) throw new FaasError('bad_request', err.message, err.field);
    throw err;
  }
}

export function registerTrafficRoutes(app: FastifyInstance, deps: TrafficDeps): void {
  app.get<{ Querystring: { since?: string; until?: string; format?: string; limit?: number } }>(
    '/v1/traffic',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { since: { type: 'string' }, until: { type: 'string' }, format: { type: 'string', enum: ['rows', ...EXPORT_FORMATS] }, limit: { type: 'integer', minimum: 1, maximum: MAX_ROWS } },
        },
      },
    },
    async (req, reply) => {
      const w = windowOf(req.query);
      const t = await trafficOf(deps.perf, deps.registry, w, req.query.limit ?? MAX_ROWS);
      if (t.truncated) void reply.header('x-faascell-truncated', 'true');
      const format = req.query.format ?? 'rows';
      if (format === 'rows') return t;
      const files = exportFiles(t, format as ExportFormat);
      if (format === 'azure') return { files };
      return reply.type('text/csv; charset=utf-8').send(Object.values(files)[0]);
    },
  );
}
