// Sinks: where an invocation's outcome goes (an HTTP reply, a broker subject, a test's collector).

import type { FaasError } from '../core/errors.js';
import type { Failure } from '../core/failure.js';
import type { ActivationRecord } from '../perf/activation.js';

export interface InvocationResult {
  activation: ActivationRecord;
  /** the function's result; for an application error that returned {error: ...}, that object */
  result?: unknown;
  /** the HTTP-facing error (code, status, message) */
  error?: FaasError;
  /** the typed failure behind `error` */
  failure?: Failure;
}

export interface Sink {
  readonly name: string;
  /** Adds what only this sink knows (e.g. the cluster node) to the record before it is stored. */
  annotate?(rec: ActivationRecord): void;
  /** The activation is durably recorded as accepted and its work starts (issue 12); at most once, before `deliver`. */
  accepted?(activationId: string): void;
  deliver(res: InvocationResult): void;
}
