// The activation record: the unit of observability (as in OpenWhisk). Every
// stage an invocation passes through is stamped, so platform overhead is visible
// to the millisecond.

import type { Accelerator, RuntimeName } from '../runtimes/types.js';
import type { FunctionRuntime } from '../runtimes/function-runtime.js';

export type StartPath = 'cold' | 'warm' | 'restore';

/** Stages in the order an invocation normally passes them; restore adds snapshotLoaded/resumed. */
export const STAGES = [
  'received',
  'queued',
  'admitted',
  'vmmSpawned',
  'vmBooted',
  'agentReady',
  'initDone',
  'snapshotTaken',
  'snapshotLoaded',
  'resumed',
  /** a warm instance is assigned at once; a cold or restored one once it is ready */
  'instanceAssigned',
  'runStarted',
  'runFinished',
  'responseSent',
] as const;
export type Stage = (typeof STAGES)[number];

/** One status per failure class (src/core/failure.ts); docs/api.md maps them to HTTP and to OpenWhisk's. */
export type ActivationStatus =
  | 'success'
  | 'application_error'
  | 'init_error'
  | 'timeout'
  /** the VM failed to boot (the platform's failure) */
  | 'vm_error'
  /** the function crashed its VM during the run (e.g. process.exit) */
  | 'crashed'
  | 'result_too_large'
  | 'rejected'
  | 'internal_error'
  /**
   * Durable acceptance (issue 12): the record written before the work starts; the
   * final record replaces it. Readers never see it (PerfManager's reads skip it).
   */
  | 'accepted'
  /** accepted, then the daemon was killed or crashed before it finished (found at the next start) */
  | 'interrupted';

export interface ActivationRecord {
  id: string;
  function: string;
  functionVersion: number;
  startPath?: StartPath;
  /** the VMM driver that ran it (qemu, firecracker) */
  runtime: RuntimeName;
  /** issue 21: the function's language runtime (absent in records older than it: nodejs20) */
  functionRuntime?: FunctionRuntime;
  accelerator?: Accelerator;
  vmId?: string;
  status: ActivationStatus;
  /** epoch ms of each stage reached */
  timestamps: Partial<Record<Stage, number>>;
  /** ms from `received` to each stage */
  timings: Partial<Record<Stage, number>>;
  totalMs: number;
  /** run time of the function as the guest measured it; when the guest's clock did not advance during a short run (it said 0), the host's runStarted → runFinished, channel round trip included */
  runMs?: number;
  /** totalMs minus the function's own run time: what the platform cost */
  overheadMs?: number;
  /** host CPU the VM used during the run, as a fraction of a core (from the VMM's CPU time) */
  runCpuShare?: number;
  /**
   * issue 18: host CPU the VM asked for during the run, as a fraction of a core: its CPU time plus the time
   * its threads waited for a CPU (/proc schedstat). What a CPU-bound run would take of an idle node.
   */
  runCpuDemand?: number;
  /** issue 18: admission, for a request no idle instance could serve at once */
  admission?: {
    /** the wait the decision core estimated when it arrived (ms; null: unbounded) */
    estimatedWaitMs: number | null;
    /** admitted, then refused at its queueing deadline: the estimate did not hold */
    refusedLate?: boolean;
  };
  /** OpenTelemetry trace id of this activation (32 hex digits) */
  traceId?: string;
  /** the console output of the VM that failed this activation (kept under stateDir/consoles) */
  consoleLogPath?: string;
  /** how the instance was started (for cold/restore): driver steps and guest boot milestones */
  startDetails?: Record<string, number | string>;
  snapshot?: { id: string; tier: string };
  logs: string[];
  error?: { code: string; message: string };
  /** set on a record found still `accepted` when the daemon started again (status `interrupted`) */
  interrupted?: { reason: 'daemon_restarted'; /** epoch ms (wall clock) when the restarted daemon finished it */ detectedAt: number };
  /** the cluster node that ran it (set when it came through the cluster's broker: src/cluster/) */
  node?: string;
  /** how it travelled through the broker */
  cluster?: {
    /** the node (or client) that accepted it and got the outcome */
    requester: string;
    /** epoch ms when the requester accepted it */
    acceptedAt: number;
    /** pulled from the shared queue, or from this node's addressed queue (locality) */
    via: 'shared' | 'addressed';
    /** deliveries of the invocation that ended without an answer before this run (a node died, hung or lost NATS) */
    redeliveries: number;
    /** times a node at capacity handed it back before this run */
    handbacks: number;
    /** moved out of this node's addressed queue (busy or down) */
    forwardedFrom?: string;
    /** issue 18: refused at the broker's queue deadline (queue_timeout) by the ingress (nobody took it) or by the node that pulled it too late */
    expired?: 'ingress' | 'puller';
  };
}

/** Fill `timings` and `totalMs` from `timestamps`. */
export function finishTimings(rec: ActivationRecord): void {
  const t0 = rec.timestamps.received ?? 0;
  const timings: Partial<Record<Stage, number>> = {};
  let last = t0;
  for (const s of STAGES) {
    const v = rec.timestamps[s];
    if (v === undefined) continue;
    timings[s] = round(v - t0);
    last = Math.max(last, v);
  }
  rec.timings = timings;
  rec.totalMs = round(last - t0);
  if (rec.runMs !== undefined) rec.overheadMs = round(rec.totalMs - rec.runMs);
}

export function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Epoch ms with sub-millisecond resolution (performance.now is monotonic within the process). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
