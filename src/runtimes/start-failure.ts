// What a failed VM launch says, as a type (VmStartFailureReason), for every
// driver: the decision core acts on it (a deadline keeps the snapshot, a refused
// snapshot is dropped), so it must never depend on a driver's message text.

import type { VmExit, VmStartFailureReason } from './types.js';
import { VmStartError } from './types.js';

export interface StartFailureSigns {
  /** the driver's own deadline errors (QMP, API, channel, migration) */
  isTimeout(e: unknown): boolean;
  /** the VMM answered, and refused the snapshot it was given (e.g. an HTTP 4xx to a snapshot load) */
  refusedSnapshot?(e: unknown): boolean;
}

export function startFailureReason(e: unknown, exit: VmExit | undefined, restoring: boolean, signs: StartFailureSigns): VmStartFailureReason {
  // SIGKILL comes from outside (the OOM killer, an operator): it says nothing about the snapshot
  if (exit?.signal === 'SIGKILL') return 'vmm-exited';
  if (e instanceof VmStartError) return e.reason;
  if (signs.isTimeout(e)) return 'timeout';
  if (restoring && signs.refusedSnapshot?.(e)) return 'snapshot-unusable';
  // a VMM exits (or aborts) when it cannot load the state it was given
  if (exit) return restoring ? 'snapshot-unusable' : 'vmm-exited';
  return 'vmm-failed';
}
