// Loading user policies: `{ policy: 'module', module: './my-policy.js', options }`.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Rng } from './types.js';

export type PolicyFamily = 'keepAlive' | 'eviction' | 'selection' | 'placement' | 'admission';

/** Methods each family's objects must have. */
const REQUIRED: Record<PolicyFamily, readonly string[]> = {
  keepAlive: ['onInvocation', 'onIdle'],
  eviction: ['selectVictims'],
  selection: ['select'],
  placement: ['place'],
  admission: ['admit'],
};
const OPTIONAL: Record<PolicyFamily, readonly string[]> = {
  keepAlive: ['priority', 'onEvict', 'onStop'],
  eviction: [],
  selection: [],
  placement: [],
  admission: [],
};

/** Second argument handed to a user factory / constructor. */
export interface PolicyModuleContext {
  rng: Rng;
  baseDir: string;
  /** The config key, e.g. "policies.keepAlive". */
  key: string;
}

export class PolicyModuleError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'PolicyModuleError';
  }
}

function resolveSpecifier(spec: string, baseDir: string): string {
  if (spec.startsWith('file:')) return spec;
  if (spec.startsWith('.') || path.isAbsolute(spec)) return pathToFileURL(path.resolve(baseDir, spec)).href;
  // A package name: resolve it from the config's directory first (its node_modules),
  // then let import() try from FaaSCell's own location.
  try {
    const req = createRequire(path.join(baseDir, '__faascell_config__.js'));
    return pathToFileURL(req.resolve(spec)).href;
  } catch {
    return spec;
  }
}

function isClass(f: unknown): boolean {
  return typeof f === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(f));
}

const TS_MODULE = /\.(c|m)?ts$/;
let tsLoader: Promise<void> | undefined;

/**
 * tsx's loaders, registered once per process when a TypeScript policy module is first loaded: the
 * ESM hooks, and the CommonJS ones (a .ts file outside a "type": "module" package is CommonJS to tsx).
 */
function registerTypeScript(): Promise<void> {
  return (tsLoader ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    esm.register();
    cjs.register();
  }));
}

/**
 * The daemon runs compiled JavaScript (dist/): Node cannot import a TypeScript module by itself
 * (ERR_UNKNOWN_FILE_EXTENSION), so tsx's loader is registered then, and only then (under tsx
 * already, as in the tests, the first import succeeds).
 */
async function importModule(url: string, spec: string): Promise<Record<string, unknown>> {
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    if (!TS_MODULE.test(spec) || (err as NodeJS.ErrnoException).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
    await registerTypeScript();
    // a query of its own: the loader remembers the failed import of the plain URL
    return (await import(`${url}${url.includes('?') ? '&' : '?'}tsx`)) as Record<string, unknown>;
  }
}

/**
 * Import a user policy module and build the policy: the default export (or a
 * named `createPolicy`) is a factory `(options, ctx) => policy | Promise<policy>`,
 * a class `new (options, ctx)`, or a ready policy object. The result must have
 * the family's methods; every failure names the config key.
 */
export async function loadPolicyModule<T>(
  family: PolicyFamily,
  key: string,
  spec: string,
  options: Record<string, unknown>,
  ctx: { rng: Rng; baseDir: string },
): Promise<T> {
  const url = resolveSpecifier(spec, ctx.baseDir);
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(url, spec);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const hint = TS_MODULE.test(spec) ? ' (a TypeScript module loads through tsx, a dev dependency: is it installed? Or use .js/.mjs)' : '';
    throw new PolicyModuleError(key, `cannot import policy module '${spec}' (from ${ctx.baseDir}): ${msg}${hint}`);
  }
  let exported = mod.default ?? mod.createPolicy;
  // an ES module transpiled to CommonJS (tsx, outside a "type": "module" package): its exports object
  if (exported !== null && typeof exported === 'object' && (exported as { __esModule?: unknown }).__esModule === true) {
    const cjs = exported as Record<string, unknown>;
    exported = cjs.default ?? cjs.createPolicy;
  }
  if (exported === undefined || exported === null) {
    throw new PolicyModuleError(key, `module '${spec}' has no default export (a factory, a class or a policy object)`);
  }
  const fullCtx: PolicyModuleContext = { rng: ctx.rng, baseDir: ctx.baseDir, key };
  let policy: unknown;
  try {
    if (typeof exported === 'function') {
      if (isClass(exported)) {
        policy = new (exported as new (o: unknown, c: unknown) => unknown)(options, fullCtx);
      } else {
        policy = await (exported as (o: unknown, c: unknown) => unknown)(options, fullCtx);
      }
    } else {
      policy = exported;
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new PolicyModuleError(key, `policy module '${spec}' failed to build the policy: ${msg}`);
  }
  validatePolicy(family, key, spec, policy);
  return policy as T;
}

export function validatePolicy(family: PolicyFamily, key: string, spec: string, policy: unknown): void {
  if (typeof policy !== 'object' || policy === null) {
    throw new PolicyModuleError(key, `policy module '${spec}' produced ${policy === null ? 'null' : typeof policy}, not a ${family} policy object`);
  }
  const obj = policy as Record<string, unknown>;
  const missing = REQUIRED[family].filter((m) => typeof obj[m] !== 'function');
  if (missing.length > 0) {
    throw new PolicyModuleError(
      key,
      `policy module '${spec}' is not a ${family} policy: missing method(s) ${missing.join(', ')} (needs ${REQUIRED[family].join(', ')})`,
    );
  }
  const wrong = OPTIONAL[family].filter((m) => obj[m] !== undefined && typeof obj[m] !== 'function');
  if (wrong.length > 0) throw new PolicyModuleError(key, `policy module '${spec}': ${wrong.join(', ')} must be method(s)`);
  if (typeof obj.name !== 'string') {
    try {
      Object.defineProperty(obj, 'name', { value: `module:${path.basename(spec)}`, enumerable: true });
    } catch {
      throw new PolicyModuleError(key, `policy module '${spec}': the policy has no string 'name'`);
    }
  }
}
