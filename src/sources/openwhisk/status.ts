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
 * success → success; application_error (the action threw, rejected or returned an
 * error) → application error; init_error and timeout → action developer error (as
 * OpenWhisk counts a failed initialisation or a time-out); vm_error → action
 * developer error once the guest agent was up and the action's code was loading or
 * running (the VM died under the action), whisk internal error before (the VM never
 * came up); rejected and internal_error → whisk internal error.
 */
export function openWhiskStatus(rec: Pick<ActivationRecord, 'status' | 'timestamps'>): OpenWhiskStatus {
  const s = rec.status;
  switch (s) {
    case 'success':
      return SUCCESS;
    case 'application_error':
      return APPLICATION;
    case 'init_error':
    case 'timeout':
      return DEVELOPER;
    case 'vm_error':
      return rec.timestamps.agentReady !== undefined || rec.timestamps.runStarted !== undefined ? DEVELOPER : INTERNAL;
    case 'rejected':
    case 'internal_error':
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
