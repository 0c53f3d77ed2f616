// The small routes tools call: GET /api/v1 (what the API is and its limits, public
// as in OpenWhisk), GET /namespaces and GET /namespaces/{namespace}/limits.

import type { FastifyInstance } from 'fastify';
import { NODE_KIND } from './actions.js';
import { nsParams, type OpenWhiskDeps, type RouteContext } from './context.js';
import { SEQUENCE_LIMIT } from './resolve.js';

const limitsOf = (d: OpenWhiskDeps): NonNullable<OpenWhiskDeps['actionLimits']> =>
  d.actionLimits ?? { minMemoryMiB: 128, maxMemoryMiB: 4096, minTimeoutMs: 100, maxTimeoutMs: 900_000, maxInstances: 64, maxBodyBytes: d.bodyLimitBytes };

/** GET /api/v1 (registered without authentication). */
export function apiInfo(d: OpenWhiskDeps): Record<string, unknown> {
  const l = limitsOf(d);
  return {
    description: 'OpenWhisk API (served by FaaSCell)',
    api_paths: ['/api/v1'],
    api_version: '1.0.0',
    api_version_path: 'v1',
    build: d.version ?? 'unknown',
    buildno: d.version ?? 'unknown',
    runtimes: { nodejs: [{ kind: NODE_KIND, default: true, deprecated: false, attached: false, requireMain: false }] },
    limits: {
      sequence_length: SEQUENCE_LIMIT,
      min_action_duration: l.minTimeoutMs,
      max_action_duration: l.maxTimeoutMs,
      min_action_memory: l.minMemoryMiB * 1048576,
      max_action_memory: l.maxMemoryMiB * 1048576,
      min_action_logs: 0,
      max_action_logs: 10 * 1048576,
      ...(l.maxConcurrentInvocations ? { concurrent_actions: l.maxConcurrentInvocations } : {}),
    },
  };
}

export function infoRoutes(ow: FastifyInstance, ctx: RouteContext): void {
  ow.get('/namespaces', async () => [ctx.ns]);
  // OpenWhisk's namespace limits; FaaSCell has no per-minute throttles, so those keys are absent
  ow.get('/namespaces/:namespace/limits', { schema: { params: nsParams } }, async () => {
    const l = limitsOf(ctx.deps);
    return {
      ...(l.maxConcurrentInvocations ? { concurrentInvocations: l.maxConcurrentInvocations } : {}),
      minActionMemory: l.minMemoryMiB * 1048576,
      maxActionMemory: l.maxMemoryMiB * 1048576,
      minActionTimeout: l.minTimeoutMs,
      maxActionTimeout: l.maxTimeoutMs,
      minActionLogs: 0,
      maxActionLogs: 10 * 1048576,
      maxActionInstances: l.maxInstances,
      maxParameterSize: l.maxBodyBytes,
      sequenceLength: SEQUENCE_LIMIT,
    };
  });
}
