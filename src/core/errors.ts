// Errors that cross actor boundaries and end up as HTTP answers: each carries a
// stable code, the HTTP status that fits, and the offending field when there is one.

export type ErrorCode =
  | 'bad_request'
  | 'not_found'
  | 'payload_too_large'
  | 'conflict'
  | 'too_many_requests'
  | 'unavailable'
  | 'function_error'
  | 'init_error'
  | 'timeout'
  | 'vm_error'
  | 'function_crashed'
  | 'result_too_large'
  | 'unauthorized'
  /** refused whoever sends it: a foreign Host or a cross-origin browser request (issue 19) */
  | 'forbidden'
  | 'internal'
  /** an activation found unfinished when the daemon started again (issue 12: kill -9 under load) */
  | 'daemon_restarted';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  too_many_requests: 429,
  internal: 500,
  function_error: 502,
  init_error: 502,
  vm_error: 502,
  function_crashed: 502,
  result_too_large: 502,
  unavailable: 503,
  daemon_restarted: 503,
  timeout: 504,
};

export class FaasError extends Error {
  readonly status: number;
  /** for 429/503: when the client may try again (sent as Retry-After) */
  retryAfterMs?: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'FaasError';
    this.status = STATUS[code];
  }
  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return this.field ? { code: this.code, message: this.message, field: this.field } : { code: this.code, message: this.message };
  }
}

export function badRequest(field: string, message: string): FaasError {
  return new FaasError('bad_request', `${field}: ${message}`, field);
}
