// FaaSCell's ActivationRecord in OpenWhisk's shape (what `wsk activation get`
// and the openwhisk client read), with FaaSCell's own timings and start path
// added as annotations.

import type { ActivationRecord } from '../../perf/activation.js';
import type { ActivationKind } from './results.js';
import { openWhiskStatus } from './status.js';

export interface KeyValue {
  key: string;
  value: unknown;
}

/** What the OpenWhisk Source knows beyond the record (for activations it started). */
export interface ActivationExtra {
  namespace: string;
  /** the uuid of the caller's credentials */
  subject: string;
  /** OpenWhisk's `kind` of the action */
  kind: string;
  /** the result the action returned, when the OpenWhisk Source saw it */
  result?: unknown;
  /** the action's limits when it ran */
  limits?: { timeout: number; memory: number };
  /** a sequence's or trigger's own record, or a sequence's component (issue 22) */
  extra?: ActivationKind;
}

export interface OpenWhiskActivation {
  namespace: string;
  name: string;
  version: string;
  subject: string;
  activationId: string;
  publish: false;
  start: number;
  end: number;
  duration: number;
  response: { status: string; statusCode: number; success: boolean; result?: unknown };
  logs: string[];
  annotations: KeyValue[];
  /** the enclosing sequence's activation id */
  cause?: string;
}

export const semver = (version: number): string => `0.0.${version}`;

/** OpenWhisk's limits object of an action (logs and concurrency are fixed here). */
export const limitsOf = (l: { timeout: number; memory: number }): Record<string, number> => ({ timeout: l.timeout, memory: l.memory, logs: 10, concurrency: 1 });

/**
 * Times, in epoch ms: `end` when the run finished; `initTime` (cold starts) is the
 * function's own initialisation (agent ready → code loaded); `start` = run start −
 * initTime; `waitTime` = start − received, so a VM's boot or restore counts as
 * waiting, as a container's provisioning does in OpenWhisk; duration = end − start.
 */
export function toOpenWhiskActivation(rec: ActivationRecord, x: ActivationExtra): OpenWhiskActivation {
  const composed = x.extra?.kind;
  if (composed) return composedActivation(rec, x, { ...x.extra, kind: composed });
  const st = openWhiskStatus(rec);
  const t = rec.timestamps;
  const received = t.received ?? 0;
  const initTime = rec.startPath === 'cold' && t.initDone !== undefined && t.agentReady !== undefined ? Math.max(0, t.initDone - t.agentReady) : undefined;
  const end = t.runFinished ?? t.responseSent ?? received;
  const start = t.runStarted !== undefined ? t.runStarted - (initTime ?? 0) : (t.agentReady ?? end);
  const ms = (v: number): number => Math.round(v);
  let result: unknown;
  if (st.statusCode !== 0) result = x.result !== undefined && isErrorResult(x.result) ? x.result : { error: rec.error?.message ?? rec.status };
  else result = x.result;
  const annotations: KeyValue[] = [{ key: 'path', value: `${x.namespace}/${rec.function}` }, { key: 'kind', value: x.kind }];
  if (x.extra?.cause) annotations.push({ key: 'causedBy', value: 'sequence' });
  if (x.limits) annotations.push({ key: 'limits', value: limitsOf(x.limits) });
  annotations.push({ key: 'waitTime', value: ms(Math.max(0, start - received)) });
  if (initTime !== undefined) annotations.push({ key: 'initTime', value: ms(initTime) });
  if (rec.status === 'timeout') annotations.push({ key: 'timeout', value: true });
  // FaaSCell's own view of the same activation
  if (rec.startPath) annotations.push({ key: 'startPath', value: rec.startPath });
  annotations.push({ key: 'faascellStatus', value: rec.status });
  annotations.push({ key: 'totalMs', value: rec.totalMs });
  if (rec.runMs !== undefined) annotations.push({ key: 'runMs', value: rec.runMs });
  if (rec.overheadMs !== undefined) annotations.push({ key: 'overheadMs', value: rec.overheadMs });
  annotations.push({ key: 'timings', value: rec.timings });
  if (rec.accelerator) annotations.push({ key: 'accelerator', value: rec.accelerator });
  if (rec.snapshot) annotations.push({ key: 'snapshot', value: rec.snapshot });
  if (rec.error) annotations.push({ key: 'error', value: rec.error });
  if (rec.node) annotations.push({ key: 'node', value: rec.node }); // issue 13: the cluster node that ran it
  return assemble(rec, x, result, annotations, { start: ms(start), end: ms(end), duration: ms(Math.max(0, end - start)) });
}

/** The record in OpenWhisk's shape from its parts (an action's run, or a record FaaSCell composed). */
function assemble(rec: ActivationRecord, x: ActivationExtra, result: unknown, annotations: KeyValue[], t: { start: number; end: number; duration: number }): OpenWhiskActivation {
  const st = openWhiskStatus(rec);
  const response: OpenWhiskActivation['response'] = { status: st.status, statusCode: st.statusCode, success: st.statusCode === 0 };
  if (result !== undefined) response.result = result;
  return {
    namespace: x.namespace,
    name: baseName(rec.function),
    version: semver(rec.functionVersion),
    subject: x.subject,
    activationId: rec.id,
    publish: false,
    ...t,
    response,
    logs: rec.logs,
    annotations,
    ...(x.extra?.cause ? { cause: x.extra.cause } : {}),
  };
}

/** An action in a package is `package/name` here; OpenWhisk's record names it `name` (its path annotation has the package). */
const baseName = (fn: string): string => fn.slice(fn.indexOf('/') + 1);

/**
 * A record FaaSCell composed (issue 22): a sequence's (its logs are the components'
 * activation ids, its result the last component's, its duration theirs summed), a
 * trigger's (its result the payload fired, its logs one line per rule) or a feed's.
 */
function composedActivation(rec: ActivationRecord, x: ActivationExtra, k: ActivationKind & { kind: NonNullable<ActivationKind['kind']> }): OpenWhiskActivation {
  const st = openWhiskStatus(rec);
  const start = Math.round(rec.timestamps.received ?? 0);
  const end = Math.round(rec.timestamps.responseSent ?? start);
  const annotations: KeyValue[] = [{ key: 'path', value: `${x.namespace}/${rec.function}` }];
  if (k.kind === 'sequence') {
    annotations.push({ key: 'topmost', value: k.topmost === true }, { key: 'kind', value: 'sequence' });
    if (k.cause) annotations.push({ key: 'causedBy', value: 'sequence' });
    if (x.limits) annotations.push({ key: 'limits', value: { timeout: x.limits.timeout, memory: x.limits.memory, logs: 10 } });
  } else annotations.push({ key: 'kind', value: k.kind });
  if (k.scheduledAt !== undefined) annotations.push({ key: 'scheduledAt', value: new Date(k.scheduledAt).toISOString() });
  annotations.push({ key: 'faascellStatus', value: rec.status });
  let result = x.result;
  if (st.statusCode !== 0 && (result === undefined || !isErrorResult(result))) result = { error: rec.error?.message ?? rec.status };
  return assemble(rec, x, result, annotations, { start, end, duration: k.duration ?? Math.max(0, end - start) });
}

/** A list entry without `docs=true`: OpenWhisk's activation summary. */
export function activationSummary(a: OpenWhiskActivation): Record<string, unknown> {
  return {
    namespace: a.namespace,
    name: a.name,
    version: a.version,
    publish: a.publish,
    annotations: a.annotations,
    activationId: a.activationId,
    start: a.start,
    end: a.end,
    duration: a.duration,
    statusCode: a.response.statusCode,
  };
}

function isErrorResult(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'error' in v;
}
