// Why an invocation produced no result: one discriminated union, created where
// the failure happens (Worker, VmPool, Dispatcher) and carried unchanged to where
// it is decided and answered. Nothing downstream looks at message text: the kind
// (and its fields) is the decision input; the message is for people.

import { FaasError, type ErrorCode } from './errors.js';
import type { ActivationRecord, ActivationStatus, StartPath } from '../perf/activation.js';

/** Why admission or the queue refused a request. */
export type RejectReason =
  /** the function's queue is full (admission queue length) */
  | 'queue_full'
  /** admitted work could not be served within the queueing deadline: refused at once instead */
  | 'overloaded'
  /** waited in the queue past admission.maxQueueDelayMs */
  | 'queue_timeout'
  /** the function was deleted while the request waited */
  | 'deleted'
  | 'not_found'
  | 'shutting_down'
  /** the client chose an activation id (header X-Activation-Id) that another activation already has */
  | 'duplicate_id'
  /** the function's recent starts failed and it backs off: refused at once, with Retry-After (docs/reliability.md) */
  | 'start_backoff'
  /** issue 19: the host could not encode the request for the guest (e.g. parameters nested too deep); the function did not run */
  | 'bad_input';

/**
 * The start whose function init failed (issue 20): the records of the requests that waited
 * for it show that start (path, VM, stages up to the init) and the init's logs, so an init
 * failure reads as the function's failure in a start, not as a request left queued.
 */
export interface FailedStart {
  path: StartPath;
  vmId: string;
  accelerator?: ActivationRecord['accelerator'];
  timestamps: ActivationRecord['timestamps'];
  logs: string[];
}

export type Failure =
  | { kind: 'rejected'; reason: RejectReason; message: string; retryAfterMs?: number }
  /** the function threw, its promise rejected, or it returned {error: ...} (OpenWhisk's application error) */
  | { kind: 'application'; message: string; result?: unknown }
  /** the code could not be loaded, its init threw, or it exited the process during init (exitCode) */
  | { kind: 'init_failed'; message: string; exitCode?: number; /** file:line in the function's code (a syntax error's place) */ location?: string; start?: FailedStart }
  /** the VM never became ready (VMM did not start, guest did not boot, agent never said ready) */
  | { kind: 'boot_failed'; message: string }
  /** the run (or init) went past the function's timeout; the VM was stopped */
  | { kind: 'timeout'; phase: 'init' | 'run'; limitMs: number; message: string }
  /** the VM or its agent ended during the run (process.exit, a crash); exitCode when the agent reported one */
  | { kind: 'crashed'; message: string; exitCode?: number }
  /** the result or the logs are larger than the configured limit */
  | { kind: 'result_too_large'; message: string; bytes: number; limitBytes: number }
  | { kind: 'internal'; message: string }
  /** accepted, then the daemon ended (kill -9, crash) before it finished: found at the next start (issue 12) */
  | { kind: 'interrupted'; reason: 'daemon_restarted'; message: string };

const CODE: Record<Failure['kind'], ErrorCode> = {
  rejected: 'unavailable',
  application: 'function_error',
  init_failed: 'init_error',
  boot_failed: 'vm_error',
  timeout: 'timeout',
  crashed: 'function_crashed',
  result_too_large: 'result_too_large',
  internal: 'internal',
  interrupted: 'daemon_restarted',
};

const REJECT_CODE: Record<RejectReason, ErrorCode> = {
  queue_full: 'too_many_requests',
  overloaded: 'unavailable',
  queue_timeout: 'unavailable',
  deleted: 'not_found',
  not_found: 'not_found',
  shutting_down: 'unavailable',
  duplicate_id: 'conflict',
  start_backoff: 'unavailable',
  bad_input: 'bad_request',
};

/** The HTTP-facing error of a failure (code, status, message). */
export function toFaasError(f: Failure): FaasError {
  const code = f.kind === 'rejected' ? REJECT_CODE[f.reason] : CODE[f.kind];
  const field = f.kind === 'rejected' && (f.reason === 'not_found' || f.reason === 'deleted') ? 'name' : f.kind === 'rejected' && f.reason === 'duplicate_id' ? 'x-activation-id' : f.kind === 'rejected' && f.reason === 'bad_input' ? 'body' : undefined;
  const e = new FaasError(code, f.message, field);
  if (f.kind === 'rejected' && f.retryAfterMs !== undefined) e.retryAfterMs = f.retryAfterMs;
  return e;
}

/** The activation status of a failure (one status per failure class; docs/api.md has the table). */
export function statusOf(f: Failure): ActivationStatus {
  switch (f.kind) {
    case 'rejected':
      return 'rejected';
    case 'application':
      return 'application_error';
    case 'init_failed':
      return 'init_error';
    case 'boot_failed':
      return 'vm_error';
    case 'timeout':
      return 'timeout';
    case 'crashed':
      return 'crashed';
    case 'result_too_large':
      return 'result_too_large';
    case 'internal':
      return 'internal_error';
    case 'interrupted':
      return 'interrupted';
  }
}

/** A FaasError thrown somewhere (registry, API) as a Failure: keeps its code's class. */
export function failureOf(err: unknown): Failure {
  if (err instanceof FaasError) {
    switch (err.code) {
      case 'not_found':
        return { kind: 'rejected', reason: 'not_found', message: err.message };
      case 'too_many_requests':
        return { kind: 'rejected', reason: 'queue_full', message: err.message };
      case 'unavailable':
        return { kind: 'rejected', reason: 'shutting_down', message: err.message };
      default:
        return { kind: 'internal', message: err.message };
    }
  }
  return { kind: 'internal', message: err instanceof Error ? err.message : String(err) };
}
