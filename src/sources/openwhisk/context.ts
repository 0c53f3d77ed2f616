// What every group of OpenWhisk routes shares: the dependencies, the service
// (entities, results, invoker, alarms), OpenWhisk's error shape, list paging and
// the JSON schemas of path and query parameters.

import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ActorRef } from '../../core/actor.js';
import type { DispatcherMsg } from '../../dispatcher/dispatcher.js';
import type { ActivationRecord } from '../../perf/activation.js';
import type { PerfMsg } from '../../perf/perf-manager.js';
import type { Db } from '../../registry/db.js';
import type { Registry } from '../../registry/registry.js';
import type { RuntimeName } from '../../runtimes/types.js';
import type { PoolMsg } from '../../vmpool/pool.js';
import type { Finished, Started } from './invoker.js';
import type { OpenWhiskService } from './service.js';
import { blockingHttpStatus, openWhiskStatus } from './status.js';

export interface OpenWhiskOptions {
  /** the one namespace served; `_` in a path means it too */
  namespace: string;
  /** how long a blocking invoke waits before answering 202 with the activation id */
  blockingWaitMs: number;
  /** serve web actions under /api/v1/web (public by OpenWhisk's design: docs/security.md) */
  webActions?: boolean;
}

/** The node's bounds, for GET /api/v1 and …/limits. */
export interface OpenWhiskLimits {
  minMemoryMiB: number;
  maxMemoryMiB: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
  maxInstances: number;
  maxConcurrentInvocations?: number;
  maxBodyBytes: number;
}

export interface OpenWhiskDeps {
  registry: Registry;
  dispatcher: ActorRef<DispatcherMsg>;
  pool: ActorRef<PoolMsg>;
  perf: ActorRef<PerfMsg>;
  db: Db;
  /** the daemon token (the key of OpenWhisk credentials); none: any credentials pass */
  token?: string;
  bodyLimitBytes: number;
  maxCodeBytes: number;
  /** activation records kept (activations.retain): results are kept as long */
  retain: number;
  options: OpenWhiskOptions;
  /** made by the daemon (it runs the alarm source); made here when absent (tests) */
  service?: OpenWhiskService;
  runtime?: RuntimeName;
  actionLimits?: OpenWhiskLimits;
  version?: string;
  /** issue 13: a record this node does not have is looked up in the cluster (an action run on another node) */
  cluster?: { activation(id: string): Promise<ActivationRecord | undefined> };
}

export interface RouteContext {
  deps: OpenWhiskDeps;
  svc: OpenWhiskService;
  /** this node's namespace */
  ns: string;
  subjectOf(req: FastifyRequest): string;
}

export const OPENWHISK_PREFIX = '/api/v1';
export const LIST_DEFAULT = 30;
export const LIST_MAX = 200;
/** the namespace of OpenWhisk's system packages (here: the alarm feeds) */
export const SYSTEM_NAMESPACE = 'whisk.system';

export function errorBody(req: FastifyRequest, message: string): { error: string; code: string } {
  return { error: message, code: String(req.id) };
}

export function page<T>(items: T[], q: { skip?: number; limit?: number }): T[] {
  const skip = q.skip ?? 0;
  const limit = q.limit || LIST_DEFAULT;
  return items.slice(skip, skip + limit);
}

const segment = { type: 'string', maxLength: 256 } as const;
export const nsParams = { type: 'object', properties: { namespace: segment }, required: ['namespace'] } as const;
export const entityParams = { type: 'object', properties: { namespace: segment, name: segment }, required: ['namespace', 'name'] } as const;
export const packagedParams = { type: 'object', properties: { namespace: segment, pkg: segment, name: segment }, required: ['namespace', 'pkg', 'name'] } as const;
export const listQuery = (extra: Record<string, unknown> = {}) =>
  ({
    type: 'object',
    properties: { skip: { type: 'integer', minimum: 0 }, limit: { type: 'integer', minimum: 0, maximum: LIST_MAX }, count: { type: 'boolean' }, ...extra },
  }) as const;
export const overwriteQuery = { type: 'object', properties: { overwrite: { type: 'boolean' } } } as const;

export type NsParams = { namespace: string };
export type EntityParams = NsParams & { name: string; pkg?: string };
export type ListQuery = { skip?: number; limit?: number; count?: boolean };

/** A list route's answer: a page of documents, or `{collection: N}` with count=true. */
export function listed<T>(collection: string, all: T[], q: ListQuery): T[] | Record<string, number> {
  return q.count ? { [collection]: all.length } : page(all, q);
}

/** `key/value` lists (OpenWhisk's parameters and annotations) ⇄ objects. */
export function toObject(list: { key: string; value?: unknown }[] | undefined): Record<string, unknown> | undefined {
  if (!list) return undefined;
  const o: Record<string, unknown> = {};
  for (const { key, value } of list) o[key] = value ?? null;
  return o;
}
export function toList(o: Record<string, unknown>): { key: string; value: unknown }[] {
  return Object.entries(o).map(([key, value]) => ({ key, value }));
}

export const keyValueList = { type: 'array', items: { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1 }, value: {}, init: { type: 'boolean' } } } } as const;

/**
 * Answer an invocation as OpenWhisk's controller does: non-blocking, 202 with the id
 * once it is durably accepted; blocking, the record (200 / 502 / 500), or only its
 * result, or 202 with the id when it runs longer than the blocking wait; a request
 * refused before it ran, the refusal's status in the error shape.
 */
export async function answerInvocation(req: FastifyRequest, reply: FastifyReply, s: Pick<Started, 'id' | 'accepted' | 'done'>, q: { blocking?: boolean; result?: boolean }, blockingWaitMs: number): Promise<unknown> {
  void reply.header('x-openwhisk-activation-id', s.id);
  if (!q.blocking) {
    // issue 12: the id goes out once the acceptance is committed (or the outcome is known)
    await Promise.race([s.accepted, s.done]);
    return reply.status(202).send({ activationId: s.id });
  }
  const f = await waitFor(s.done, blockingWaitMs);
  if (!f) return reply.status(202).send({ activationId: s.id });
  if (f.refused) return reply.status(f.refused.status).send(errorBody(req, f.refused.message));
  return reply.status(blockingHttpStatus(openWhiskStatus(f.record))).send(q.result ? (f.activation.response.result ?? {}) : f.activation);
}

/** The outcome, or undefined once `ms` passed. */
export async function waitFor(done: Promise<Finished>, ms: number): Promise<Finished | undefined> {
  const ac = new AbortController();
  try {
    return await Promise.race([done, sleep(ms, undefined, { signal: ac.signal }).catch(() => undefined)]);
  } finally {
    ac.abort();
  }
}
