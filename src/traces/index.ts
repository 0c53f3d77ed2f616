import { loadAzureTrace, type AzureLoadOptions } from './azure.js';
import { loadFaasrailSpec } from './faasrail.js';
import { loadSlotsSpec } from './slots.js';
import { loadInvocationsTrace } from './invocations.js';
import type { Trace } from './types.js';

export * from './types.js';
export * from './azure.js';
export * from './slots.js';
export * from './faasrail.js';
export * from './expand.js';
export * from './transform.js';
export * from './invocations.js';

/** azure: Azure Functions 2019; faasrail: FaaSRail's specs (and older slots files); slots: FaaSCell's per-slot specs; invocations: FaaSCell's per-invocation traffic file (trace export). */
export type TraceFormat = 'azure' | 'faasrail' | 'slots' | 'invocations';
export const TRACE_FORMATS: readonly TraceFormat[] = ['azure', 'faasrail', 'slots', 'invocations'];

export interface LoadTraceOptions extends AzureLoadOptions {
  /** Slot length (s) of slots and FaaSRail specs. */
  slotSeconds?: number;
}

/** Load a trace of any format. */
export async function loadTrace(p: string, format: TraceFormat, opts: LoadTraceOptions = {}): Promise<Trace> {
  if (format === 'azure') return loadAzureTrace(p, opts);
  if (format === 'faasrail') return loadFaasrailSpec(p, { slotSeconds: opts.slotSeconds });
  if (format === 'slots') return loadSlotsSpec(p, { slotSeconds: opts.slotSeconds });
  if (format === 'invocations') return loadInvocationsTrace(p);
  throw new Error(`unknown trace format '${String(format)}' (${TRACE_FORMATS.join(' | ')})`);
}
