// FaaSCell's ActivationRecord in OpenWhisk's shape (what `wsk activation get`
// and the openwhisk client read), with FaaSCell's own timings and start path
// added as annotations.

import type { ListedActivation } from '../../perf/activation-store.js';
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
export function toOpenWhiskActivation(rec: ListedActivation, x: ActivationExtra): OpenWhiskActivation {
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
  const response: OpenWhiskActivation['response'] = { status: st.status, statusCode: st.statusCode, success: st.statusCode === 0 };
  if (result !== undefined) response.result = result;
  return {
    namespace: x.namespace,
    name: rec.function,
    version: semver(rec.functionVersion),
    subject: x.subject,
    activationId: rec.id,
    publish: false,
    start: ms(start),
    end: ms(end),
    duration: ms(Math.max(0, end - start)),
    response,
    // a list without docs=true reads no logs (issue 19); its summary does not show them either
    logs: rec.logs ?? [],
    annotations,
  };
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
