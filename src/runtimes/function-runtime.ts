// The language a function is written in (issue 21): which guest image its VM
// boots and which agent runs its code. Not to be confused with RuntimeName
// (types.ts), the VMM that runs the VM (qemu, firecracker).

import { FaasError } from '../core/errors.js';

export const FUNCTION_RUNTIMES = ['nodejs20', 'python3'] as const;
export type FunctionRuntime = (typeof FUNCTION_RUNTIMES)[number];

/** A function deployed without one is Node.js. */
export const DEFAULT_FUNCTION_RUNTIME: FunctionRuntime = 'nodejs20';

export function isFunctionRuntime(v: unknown): v is FunctionRuntime {
  return typeof v === 'string' && (FUNCTION_RUNTIMES as readonly string[]).includes(v);
}

/** The file a single-file function's code is stored as (its main). */
export const SINGLE_FILE_MAIN: Record<FunctionRuntime, string> = { nodejs20: 'index.js', python3: '__main__.py' };

/**
 * A deploy of a runtime this node has no guest image for is refused (503, naming `field`)
 * before anything is stored; an unknown name is left to the registry (400).
 */
export function assertRuntimeHere(runtime: unknown, here: readonly FunctionRuntime[] | undefined, field = 'runtime'): void {
  if (!isFunctionRuntime(runtime) || (here ?? [DEFAULT_FUNCTION_RUNTIME]).includes(runtime)) return;
  throw new FaasError('unavailable', `${field}: this node has no ${runtime} guest image (faascell image build --runtime ${runtime}, docs/python.md)`, field);
}
