import { loadAzureTrace, type AzureLoadOptions } from './azure.js';
import { loadFaasrailSpec } from './faasrail.js';
import type { Trace } from './types.js';

export * from './types.js';
export * from './azure.js';
export * from './faasrail.js';
export * from './expand.js';
export * from './transform.js';

export type TraceFormat = 'azure' | 'faasrail';

export interface LoadTraceOptions extends AzureLoadOptions {
  /** FaaSRail slot length (s). */
  slotSeconds?: number;
}

/** Load a trace of either format. */
export async function loadTrace(p: string, format: TraceFormat, opts: LoadTraceOptions = {}): Promise<Trace> {
  if (format === 'azure') return loadAzureTrace(p, opts);
  if (format === 'faasrail') return loadFaasrailSpec(p, { slotSeconds: opts.slotSeconds });
  throw new Error(`unknown trace format '${String(format)}' (azure | faasrail)`);
}
