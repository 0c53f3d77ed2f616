// GET /v1/whatif and POST /v1/whatif (issue 23): the node's traffic of a window,
// simulated with its live costs and configuration, then with the alternatives
// asked for. GET takes comma-separated lists (policy, memoryMiB, cores: one
// alternative per value); POST takes a JSON body, which may also carry whole
// configurations ({alternatives: [{config: {...}}]}). `format=svg` returns the plot.
//
// The simulation runs in the daemon's process: a window of a busy node (hundreds
// of thousands of invocations) takes about a second; export longer windows and
// simulate them offline (`faascell trace export`, `faascell simulate`).

import type { FastifyInstance } from 'fastify';
import type { ActorRef } from '../core/actor.js';
import { FaasError } from '../core/errors.js';
import { effectiveTiers, type Config } from '../config/schema.js';
import type { FunctionStats } from '../perf/cost-stats.js';
import type { PerfMsg } from '../perf/perf-manager.js';
import { renderSvg } from '../plots/render.js';
import type { Registry } from '../registry/registry.js';
import { trafficOf } from '../traffic/store.js';
import { windowOf } from '../traffic/routes.js';
import { hostCores } from '../vmpool/pool.js';
import { whatIfSpec } from './plot.js';
import { liveProfile } from './profile.js';
import { whatIf, WhatIfInputError, type Alternative, type WhatIfResult } from './whatif.js';

export interface WhatIfDeps {
  perf: ActorRef<PerfMsg>;
  registry: Registry;
  config: Config;
  baseDir: string;
  cpus: number[];
}

export interface WhatIfRequest {
  since?: string;
  until?: string;
  alternatives?: Alternative[];
  cpuModel?: boolean;
}

export async function runWhatIf(deps: WhatIfDeps, req: WhatIfRequest): Promise<WhatIfResult & { vegaLite: unknown }> {
  const w = windowOf(req);
  const traffic = await trafficOf(deps.perf, deps.registry, w);
  const stats = await deps.perf.ask<Record<string, FunctionStats>>((reply) => ({ kind: 'stats', reply }), 10_000);
  const cfg = deps.config;
  const fns = deps.registry.list().map((d) => ({ name: d.name, memoryMiB: d.memoryMiB, maxInstances: d.maxInstances }));
  const profile = liveProfile(stats, fns, {
    cores: hostCores(deps.cpus, cfg.node.cores),
    idleVmCpu: cfg.node.idleVmCpu,
    tiers: effectiveTiers(cfg).map((t) => ({ name: t.name, latencyRank: t.latencyRank, capacityMiB: t.capacityMiB })),
  });
  try {
    const r = await whatIf({ traffic, profile, config: cfg, baseDir: deps.baseDir, alternatives: req.alternatives, cpuModel: req.cpuModel });
    return { ...r, vegaLite: whatIfSpec(r) };
  } catch (err) {
    if (err instanceof WhatIfInputError) throw new FaasError('bad_request', err.message, err.field);
    throw err;
  }
}

const list = (v: string | undefined, field: string, num: boolean): Array<string | number> => {
  if (v === undefined || v === '') return [];
  return v.split(',').map((x) => {
    const t = x.trim();
    if (!num) return t;
    const n = Number(t);
    if (!(n > 0)) throw new FaasError('bad_request', `${field}: a comma-separated list of positive numbers (got '${v}')`, field);
    return n;
  });
};

const alternativeSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { label: { type: 'string', maxLength: 200 }, policy: { type: 'string' }, memoryMiB: { type: 'number', exclusiveMinimum: 0 }, cores: { type: 'number', exclusiveMinimum: 0 }, config: { type: 'object' } },
} as const;

export function registerWhatIfRoutes(app: FastifyInstance, deps: WhatIfDeps): void {
  const reply = async (r: WhatIfResult & { vegaLite: unknown }, format: string | undefined, res: { type(t: string): { send(b: string): unknown } }): Promise<unknown> => {
    if (format === 'svg') return res.type('image/svg+xml').send(await renderSvg(r.vegaLite as Parameters<typeof renderSvg>[0]));
    return r;
  };
  app.get<{ Querystring: { since?: string; until?: string; policy?: string; memoryMiB?: string; cores?: string; cpuModel?: boolean; format?: string } }>(
    '/v1/whatif',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { since: { type: 'string' }, until: { type: 'string' }, policy: { type: 'string' }, memoryMiB: { type: 'string' }, cores: { type: 'string' }, cpuModel: { type: 'boolean' }, format: { type: 'string', enum: ['json', 'svg'] } },
        },
      },
    },
    async (req, res) => {
      const q = req.query;
      const alternatives: Alternative[] = [
        ...list(q.policy, 'policy', false).map((p) => ({ policy: String(p) })),
        ...list(q.memoryMiB, 'memoryMiB', true).map((m) => ({ memoryMiB: Number(m) })),
        ...list(q.cores, 'cores', true).map((c) => ({ cores: Number(c) })),
      ];
      return reply(await runWhatIf(deps, { since: q.since, until: q.until, alternatives, cpuModel: q.cpuModel }), q.format, res);
    },
  );
  app.post<{ Body: WhatIfRequest; Querystring: { format?: string } }>(
    '/v1/whatif',
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { format: { type: 'string', enum: ['json', 'svg'] } } },
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { since: { type: 'string' }, until: { type: 'string' }, cpuModel: { type: 'boolean' }, alternatives: { type: 'array', maxItems: 32, items: alternativeSchema } },
        },
      },
    },
    async (req, res) => reply(await runWhatIf(deps, req.body ?? {}), req.query.format, res),
  );
}
