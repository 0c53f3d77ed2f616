// What travels over the broker: an invocation (requester → a node) and its outcome
// (node → requester), as JSON. Both are checked on receipt: a malformed message is
// answered with a clear error (or dropped when it cannot even name its requester),
// never run.

import { FaasError, type ErrorCode } from '../core/errors.js';
import type { Failure } from '../core/failure.js';
import type { ActivationRecord } from '../perf/activation.js';
import type { InvocationResult } from '../sinks/types.js';

export interface InvocationMessage {
  v: 1;
  /** the activation id: the same on every delivery, so a function run twice sees the same id */
  id: string;
  fn: string;
  params: Record<string, unknown>;
  /** epoch ms when the requester accepted it */
  receivedAt: number;
  /** who accepted it (a node name, or a client's id): the outcome goes to its subject */
  requester: string;
  /** the node the requester chose for locality (absent: the shared queue) */
  target?: string;
  /** redeliveries before this copy (a copy is republished when a node hands work back or rescues a dead node's) */
  redeliveries: number;
  /** times a node pulled it and handed it back (at capacity) */
  handbacks: number;
  /** the node whose addressed queue it was moved out of (busy or down) */
  forwardedFrom?: string;
  /**
   * issue 18: when this copy entered the queues if not at `receivedAt` (a dead node's invocation rescued from its
   * addressed queue waits again from then): the queue deadline counts from here (src/cluster/deadline.ts)
   */
  queuedAt?: number;
  /** issue 18: the requester's admission.maxQueueDelayMs (absent: the pulling node's) */
  maxQueueDelayMs?: number;
}

export interface OutcomeMessage {
  v: 1;
  id: string;
  node: string;
  activation: ActivationRecord;
  result?: unknown;
  error?: { code: ErrorCode; message: string; field?: string; status: number; retryAfterMs?: number };
  failure?: Failure;
}

export class BadMessageError extends Error {
  constructor(
    message: string,
    /** the requester, when the message named one (it can then be answered) */
    readonly requester?: string,
    readonly id?: string,
  ) {
    super(message);
    this.name = 'BadMessageError';
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encode(m: InvocationMessage | OutcomeMessage): Uint8Array {
  return enc.encode(JSON.stringify(m));
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function decodeInvocation(data: Uint8Array): InvocationMessage {
  let m: unknown;
  try {
    m = JSON.parse(dec.decode(data));
  } catch {
    throw new BadMessageError('invocation: not JSON');
  }
  if (!isObj(m)) throw new BadMessageError('invocation: not an object');
  const requester = typeof m.requester === 'string' && /^[A-Za-z0-9_-]+$/.test(m.requester) ? m.requester : undefined;
  const id = typeof m.id === 'string' && m.id.length > 0 && m.id.length <= 64 ? m.id : undefined;
  const bad = (field: string, why: string): never => {
    throw new BadMessageError(`invocation: ${field}: ${why}`, requester, id);
  };
  if (m.v !== 1) bad('v', 'unsupported version');
  if (!id) bad('id', 'must be a string of 1 to 64 characters');
  if (!requester) bad('requester', 'must be a node or client name');
  if (typeof m.fn !== 'string' || m.fn.length === 0) bad('fn', 'must be a function name');
  if (!isObj(m.params)) bad('params', 'must be a JSON object');
  if (typeof m.receivedAt !== 'number' || !Number.isFinite(m.receivedAt)) bad('receivedAt', 'must be epoch milliseconds');
  const count = (k: string): number => {
    const v = m[k] ?? 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad(k, 'must be a count');
    return v as number;
  };
  return {
    v: 1,
    id: id!,
    fn: m.fn as string,
    params: m.params as Record<string, unknown>,
    receivedAt: m.receivedAt as number,
    requester: requester!,
    target: typeof m.target === 'string' ? m.target : undefined,
    redeliveries: count('redeliveries'),
    handbacks: count('handbacks'),
    forwardedFrom: typeof m.forwardedFrom === 'string' ? m.forwardedFrom : undefined,
    queuedAt: optionalTime(m.queuedAt, 'queuedAt', bad),
    maxQueueDelayMs: optionalTime(m.maxQueueDelayMs, 'maxQueueDelayMs', bad),
  };
}

function optionalTime(v: unknown, field: string, bad: (field: string, why: string) => never): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(field, 'must be milliseconds');
  return v;
}

export function decodeOutcome(data: Uint8Array): OutcomeMessage {
  let m: unknown;
  try {
    m = JSON.parse(dec.decode(data));
  } catch {
    throw new BadMessageError('outcome: not JSON');
  }
  if (!isObj(m) || m.v !== 1 || typeof m.id !== 'string' || typeof m.node !== 'string' || !isObj(m.activation)) {
    throw new BadMessageError('outcome: needs v 1, id, node and activation');
  }
  return m as unknown as OutcomeMessage;
}

/** The outcome message of a local result. */
export function outcomeOf(id: string, node: string, res: InvocationResult): OutcomeMessage {
  const e = res.error;
  return {
    v: 1,
    id,
    node,
    activation: res.activation,
    ...(res.result !== undefined ? { result: res.result } : {}),
    ...(e ? { error: { ...e.toJSON(), status: e.status, ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}) } } : {}),
    ...(res.failure ? { failure: res.failure } : {}),
  };
}

/** Back to what a Sink delivers (the HTTP error is rebuilt from its code). */
export function resultOf(o: OutcomeMessage): InvocationResult {
  let error: FaasError | undefined;
  if (o.error) {
    error = new FaasError(o.error.code, o.error.message, o.error.field);
    if (o.error.retryAfterMs !== undefined) error.retryAfterMs = o.error.retryAfterMs;
  }
  return { activation: o.activation, result: o.result, error, failure: o.failure };
}
