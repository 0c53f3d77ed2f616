// Function code artifacts: a single JS file, a zip, or a gzipped tarball with a
// package.json `main`; for Python functions (issue 21) a single .py file, or an
// archive whose __main__.py is the action (as OpenWhisk's). Unpacked on the host (where bad archives are rejected
// at deploy time with a 400) into the file map the guest agent receives.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { unzipSync } from 'fflate';
import { badRequest } from '../core/errors.js';
import type { CodeFiles } from '../runtimes/agent-protocol.js';
import { SINGLE_FILE_MAIN, type FunctionRuntime } from '../runtimes/function-runtime.js';

/** js / py: a single source file (JavaScript, Python); zip, tgz: an archive. */
export type CodeKind = 'js' | 'py' | 'zip' | 'tgz';

export interface UnpackedCode {
  files: Map<string, Buffer>;
  /** relative path of the module to load */
  main: string;
  totalBytes: number;
}

const MAX_FILES = 10_000;

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Guess the kind from the first bytes (zip: PK\x03\x04, gzip: 1f 8b), else source text in the runtime's language. */
export function sniffCodeKind(buf: Buffer, runtime: FunctionRuntime = 'nodejs20'): CodeKind {
  if (buf.length >= 4 && buf.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'tgz';
  return runtime === 'python3' ? 'py' : 'js';
}

export function unpackCode(kind: CodeKind, buf: Buffer, maxBytes: number, runtime: FunctionRuntime = 'nodejs20'): UnpackedCode {
  const files = new Map<string, Buffer>();
  let total = 0;
  const add = (name: string, data: Buffer): void => {
    const rel = safeRelative(name);
    if (rel === undefined) return;
    total += data.length;
    if (total > maxBytes) throw badRequest('code', `unpacked code exceeds ${maxBytes} bytes`);
    if (files.size >= MAX_FILES) throw badRequest('code', `more than ${MAX_FILES} files`);
    files.set(rel, data);
  };
  if (kind === 'js' || kind === 'py') {
    if (buf.includes(0)) throw badRequest('code', `a single-file function must be ${kind === 'py' ? 'Python' : 'JavaScript'} text (found NUL bytes)`);
    const main = SINGLE_FILE_MAIN[kind === 'py' ? 'python3' : 'nodejs20'];
    add(main, buf);
    return { files, main, totalBytes: total };
  }
  if (kind === 'zip') {
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(new Uint8Array(buf));
    } catch (err) {
      throw badRequest('code', `not a valid zip archive: ${(err as Error).message}`);
    }
    for (const [name, data] of Object.entries(entries)) if (!name.endsWith('/')) add(name, Buffer.from(data));
  } else {
    let tar: Buffer;
    try {
      tar = gunzipSync(buf, { maxOutputLength: maxBytes + 1024 * 1024 });
    } catch (err) {
      throw badRequest('code', `not a valid gzip stream: ${(err as Error).message}`);
    }
    for (const e of readTar(tar)) add(e.name, e.data);
  }
  stripCommonPrefix(files, runtime);
  return { files, main: runtime === 'python3' ? pythonMain(files) : resolveMain(files), totalBytes: total };
}

export function toCodeFiles(u: UnpackedCode): CodeFiles {
  const out: CodeFiles = {};
  for (const [k, v] of u.files) out[k] = v.toString('base64');
  return out;
}

function safeRelative(name: string): string | undefined {
  const n = name.replace(/\\/g, '/');
  if (n.startsWith('/') || /^[a-zA-Z]:/.test(n)) throw badRequest('code', `archive entry with an absolute path: ${name}`);
  const norm = path.posix.normalize(n);
  if (norm === '..' || norm.startsWith('../')) throw badRequest('code', `archive entry escapes the archive: ${name}`);
  if (norm === '.' || norm === '') return undefined;
  return norm;
}

/** npm pack puts everything under package/; many zips have one top folder. Strip a single common top folder. */
function stripCommonPrefix(files: Map<string, Buffer>, runtime: FunctionRuntime): void {
  if (files.has('package.json') || files.has(SINGLE_FILE_MAIN[runtime])) return;
  const tops = new Set([...files.keys()].map((k) => k.split('/')[0]));
  if (tops.size !== 1) return;
  const [top] = [...tops];
  if (![...files.keys()].every((k) => k.startsWith(top + '/'))) return;
  const entries = [...files.entries()];
  files.clear();
  for (const [k, v] of entries) files.set(k.slice(top!.length + 1), v);
}

/** A Python archive's action is its __main__.py (OpenWhisk's rule for zip actions). */
function pythonMain(files: Map<string, Buffer>): string {
  if (!files.has('__main__.py')) throw badRequest('code', 'a python3 archive needs a __main__.py at its top (the action OpenWhisk runs)');
  return '__main__.py';
}

function resolveMain(files: Map<string, Buffer>): string {
  const pkg = files.get('package.json');
  let main = 'index.js';
  if (pkg) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(pkg.toString('utf8'));
    } catch {
      throw badRequest('code', 'package.json is not valid JSON');
    }
    const m = (parsed as { main?: unknown }).main;
    if (m !== undefined) {
      if (typeof m !== 'string') throw badRequest('code', 'package.json "main" must be a string');
      main = path.posix.normalize(m.replace(/^\.\//, ''));
    }
  }
  for (const candidate of [main, `${main}.js`, `${main}.mjs`, `${main}.cjs`, `${main}/index.js`]) {
    if (files.has(candidate)) return candidate;
  }
  throw badRequest('code', `the archive has no ${main} (package.json "main" or index.js)`);
}

interface TarEntry {
  name: string;
  data: Buffer;
}

/** Minimal ustar/pax reader: regular files only, long names via pax `path` or GNU 'L' records. */
function readTar(tar: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, l: number): string => h.subarray(a, a + l).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12).trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw badRequest('code', 'corrupt tar header');
    const type = str(156, 1) || '0';
    const prefix = str(345, 155);
    let name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const dataStart = off + 512;
    const data = tar.subarray(dataStart, dataStart + size);
    if (dataStart + size > tar.length) throw badRequest('code', 'truncated tar archive');
    off = dataStart + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m) longName = m[1];
      continue;
    }
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (type === 'g') continue;
    if (longName) {
      name = longName;
      longName = undefined;
    }
    if (type === '0' || type === '\0' || type === '7') out.push({ name, data: Buffer.from(data) });
  }
  return out;
}
