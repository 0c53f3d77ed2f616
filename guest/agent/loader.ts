// Loading a function the way OpenWhisk's Node.js runtime accepts it:
//   - CommonJS: `exports.main = ...`, `module.exports = fn`, `module.exports = { main }`
//   - a plain script with a top-level `function main` (no exports at all)
//   - ES modules: `export function main`, `export default fn`, `export default { main }`
//     (.mjs, .js under "type": "module", or a .js whose syntax is ESM — Node 20.19+ detects it)
// `require` inside the package resolves relative to the loaded file (its own node_modules).

import { readFile } from 'node:fs/promises';
import { Module } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';

export type EntryFn = (params: unknown) => unknown;

interface InternalModule {
  filename: string;
  paths: string[];
  loaded: boolean;
  exports: unknown;
  _compile(content: string, filename: string): unknown;
}
interface InternalModuleCtor {
  new (id: string, parent?: unknown): InternalModule;
  _nodeModulePaths(dir: string): string[];
  _cache: Record<string, InternalModule>;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** The "type" of the nearest package.json at or above dir, stopping at root (the function's directory). */
function packageType(dir: string, root: string): string | undefined {
  let d = dir;
  for (;;) {
    const p = join(d, 'package.json');
    if (existsSync(p)) {
      try {
        const pkg = JSON.parse(readFileSync(p, 'utf8')) as { type?: unknown };
        return typeof pkg.type === 'string' ? pkg.type : undefined;
      } catch {
        return undefined;
      }
    }
    if (d === root || dirname(d) === d) return undefined;
    d = dirname(d);
  }
}

function pick(obj: unknown, entry: string): EntryFn | undefined {
  if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) return undefined;
  const v = (obj as Record<string, unknown>)[entry];
  return typeof v === 'function' ? (v as EntryFn) : undefined;
}

function fromEsm(ns: Record<string, unknown>, entry: string): EntryFn | undefined {
  const direct = pick(ns, entry);
  if (direct) return direct;
  const def = ns.default;
  if (entry === 'main' && typeof def === 'function') return def as EntryFn;
  return pick(def, entry);
}

function fromCjs(exp: unknown, entry: string, topLevel: unknown): EntryFn | undefined {
  const named = pick(exp, entry);
  if (named) return named;
  if (entry === 'main' && typeof exp === 'function') return exp as EntryFn;
  // Transpiled ESM (`exports.default = ...`).
  const def = pick(exp, 'default');
  if (def && entry === 'main') return def;
  const nested = exp && typeof exp === 'object' ? pick((exp as Record<string, unknown>).default, entry) : undefined;
  if (nested) return nested;
  return typeof topLevel === 'function' ? (topLevel as EntryFn) : undefined;
}

export class LoadError extends Error {}

async function loadEsm(file: string, entry: string): Promise<EntryFn> {
  const ns = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const fn = fromEsm(ns, entry);
  if (!fn) throw new LoadError(`ES module ${file} does not export a function "${entry}" (named or default)`);
  return fn;
}

/**
 * Load `file` and return its entry function. `root` is the function's directory.
 * Throws LoadError for a missing entry; any other error is the code's own load failure.
 */
export async function loadEntry(file: string, entry: string, root: string): Promise<EntryFn> {
  const ext = extname(file);
  if (ext === '.mjs') return loadEsm(file, entry);
  if (ext !== '.cjs' && packageType(dirname(file), root) === 'module') return loadEsm(file, entry);
  if (ext === '.json' || ext === '.node') throw new LoadError(`cannot use ${ext} file ${file} as the function's main`);

  const source = await readFile(file, 'utf8');
  // Compile as a real CommonJS module (so require, require.cache, import() and stack
  // traces behave normally), with a tail that hands back a top-level `function main`
  // for plain scripts. Module#_compile returns what the module wrapper returns.
  const Ctor = Module as unknown as InternalModuleCtor;
  const mod = new Ctor(file, null);
  mod.filename = file;
  mod.paths = Ctor._nodeModulePaths(dirname(file));
  const tail = IDENT.test(entry) ? `\n;return typeof ${entry} === 'function' ? ${entry} : undefined;` : '';
  const body = source.startsWith('#!') ? `//${source}` : source;
  Ctor._cache[file] = mod;
  let topLevel: unknown;
  try {
    topLevel = mod._compile(body + tail, file);
    mod.loaded = true;
  } catch (err) {
    delete Ctor._cache[file];
    // ESM syntax in a .js file: hand it to the ESM loader (which detects module syntax).
    if (err instanceof SyntaxError && ext !== '.cjs' && looksLikeEsm(err, source)) return loadEsm(file, entry);
    throw err;
  }
  const fn = fromCjs(mod.exports, entry, topLevel);
  if (!fn) {
    throw new LoadError(
      `${file} has no function "${entry}": export it (exports.${entry} = ..., module.exports = ...) or declare it at top level`,
    );
  }
  return fn;
}

function looksLikeEsm(err: SyntaxError, source: string): boolean {
  const m = err.message;
  if (/import statement|Unexpected token 'export'|import\.meta|await is only valid|Unexpected reserved word/.test(m)) return true;
  return /^\s*(import|export)\s/m.test(source);
}
