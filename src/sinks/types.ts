// Sinks: where an invocation's outcome goes (an HTTP reply, a file, a broker).

import type { FaasError } from '../core/errors.js';
import type { ActivationRecord } from '../perf/activation.js';

export interface InvocationResult {
  activation: ActivationRecord;
  result?: unknown;
  error?: FaasError;
}

export interface Sink {
  readonly name: string;
  deliver(res: InvocationResult): void;
}
