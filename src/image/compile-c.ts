// One C file compiled with the host's C compiler: the guest helper for the initramfs
// (builder.ts) and the VMMs' THP-off launcher (src/runtimes/jail/thp.ts). The output is
// written under a temporary name and renamed into place, so two processes building the
// same file at once both end with a whole one; a failure is a typed answer (no compiler,
// or the compiler failing with the first line it printed), never an exception.

import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { run, sha256, which } from './exec.js';

export type CompileCFailure = { reason: 'no-compiler'; detail: string } | { reason: 'compile-failed'; detail: string };
export type CompileCResult = { ok: true; path: string; built: boolean } | ({ ok: false } & CompileCFailure);

export interface CompileCOptions {
  /** the C file */
  source: string;
  /** the executable to write */
  out: string;
  /** compiler flags before `-o out source` (e.g. -O2 -s, -static) */
  flags: string[];
  /** the compiler; default cc, else gcc, found in `searchPath` */
  cc?: string;
  /** where to look for cc/gcc; default $PATH */
  searchPath?: string;
}

/** The host's C compiler (cc, else gcc) in `searchPath` (default $PATH); undefined without one. */
export function findCc(searchPath?: string): string | undefined {
  return which('cc', searchPath) ?? which('gcc', searchPath);
}

/** What a build from `sourceText` depends on, for an image's cache key: the source's hash and the compiler found (or no-cc). */
export function compileCId(sourceText: Buffer | string, searchPath?: string): string {
  return `${sha256(sourceText).slice(0, 16)} ${findCc(searchPath) ?? 'no-cc'}`;
}

/** Compiles `source` into `out` (made executable; its directory is created). */
export async function compileC(o: CompileCOptions): Promise<CompileCResult> {
  const cc = o.cc ?? findCc(o.searchPath);
  if (!cc) return { ok: false, reason: 'no-compiler', detail: 'no C compiler (cc or gcc) in PATH: apt-get install gcc' };
  await mkdir(path.dirname(o.out), { recursive: true });
  const tmp = `${o.out}.${process.pid}.tmp`;
  const r = await run(cc, [...o.flags, '-o', tmp, o.source]).catch((e: NodeJS.ErrnoException) => ({ code: null, stderr: `cannot run it: ${e.code ?? e.message}` }));
  if (r.code !== 0) {
    await rm(tmp, { force: true });
    return { ok: false, reason: 'compile-failed', detail: `${cc} exited ${r.code ?? '-'}: ${r.stderr.trim().split('\n')[0] ?? ''}` };
  }
  await chmod(tmp, 0o755);
  await rename(tmp, o.out);
  return { ok: true, path: o.out, built: true };
}

/** `<dir>/<name>-<first 16 hex digits of sha256(tag, source)>`: a new source (or tag) gets a new file. */
export function cachedBinaryPath(dir: string, name: string, tag: string, sourceText: Buffer | string): string {
  return path.join(dir, `${name}-${sha256(tag, sourceText).slice(0, 16)}`);
}

/** The executable at `out`, compiled first only when it is missing (`built` says which). */
export async function ensureCompiledC(o: CompileCOptions): Promise<CompileCResult> {
  if (existsSync(o.out)) return { ok: true, path: o.out, built: false };
  return compileC(o);
}
