// FaaSCell's activation statuses as OpenWhisk reports them: the one place that
// decides it, so a new FaaSCell status fails to compile until it is mapped here.

import type { ActivationRecord } from '../../perf/activation.js';

export type OpenWhiskStatusText = 'success' | 'application error' | 'action developer error' | 'whisk internal error';

export interface OpenWhiskStatus {
  /** OpenWhisk's response.status */
  status: OpenWhiskStatusText;
  /** OpenWhisk's statusCode: 0 success, 1 application error, 2 action developer error, 3 whisk internal error */
  statusCode: 0 | 1 | 2 | 3;
}

const SUCCESS: OpenWhiskStatus = { status: 'success', statusCode: 0 };
const APPLICATION: OpenWhiskStatus = { status: 'application error', statusCode: 1 };
const DEVELOPER: OpenWhiskStatus = { status: 'action developer error', statusCode: 2 };
const INTERNAL: OpenWhiskStatus = { status: 'whisk internal error', statusCode: 3 };

/**
 * success → success; application_error (the action threw, rejected or returned
 * {error}) → application error; what the action's code did wrong — init_error,
 * timeout, crashed (it ended its VM during the run), result_too_large — → action
 * developer error, as OpenWhisk counts a failed initialisation, a time-out, an
 * exit or an oversized response; what the platform did wrong — vm_error (the VM
 * never came up), rejected, internal_error, interrupted (the daemon ended while it
 * ran) — → whisk internal error.
 */
export function openWhiskStatus(rec: Pick<ActivationRecord, 'status'>): OpenWhiskStatus {
  const s = rec.status;
  switch (s) {
    case 'success':
      return SUCCESS;
    case 'application_error':
      return APPLICATION;
    case 'init_error':
    case 'timeout':
    case 'crashed':
    case 'result_too_large':
      return DEVELOPER;
    case 'vm_error':
    case 'rejected':
    case 'internal_error':
    case 'interrupted': // the daemon ended while it ran (found at the next start)
    case 'accepted': // in flight: never listed (PerfManager's reads skip it)
      return INTERNAL;
    default: {
      const unmapped: never = s;
      throw new Error(`activation status ${String(unmapped)} has no OpenWhisk mapping`);
    }
  }
}

/** The HTTP status of a blocking invocation's answer, as OpenWhisk's controller picks it. */
export function blockingHttpStatus(st: OpenWhiskStatus): number {
  return st.statusCode === 0 ? 200 : st.statusCode === 3 ? 500 : 502;
}
