// Function code artifacts: a single JS file, a zip, or a gzipped tarball with a
// package.json `main`. Unpacked on the host (where bad archives are rejected
// at deploy time with a 400) into the file map the guest agent receives.
//
// Archives are untrusted (issue 19: a 1 MB zip holding a 1 GiB entry). Nothing is
// inflated before the declared sizes are checked against the budget, and every
// inflation is bounded: a zip entry may not inflate past its declared size, a gzip
// stream not past the budget. The unpacking itself is one generator of inflate
// steps, driven either synchronously (the registry re-reading a stored, already
// checked archive) or on libuv's thread pool (a deploy: the event loop keeps
// answering meanwhile).

import { createHash } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { badRequest } from '../core/errors.js';
import type { CodeFiles } from '../runtimes/agent-protocol.js';

export type CodeKind = 'js' | 'zip' | 'tgz';

export interface UnpackedCode {
  files: Map<string, Buffer>;
  /** relative path of the module to load */
  main: string;
  totalBytes: number;
}

const MAX_FILES = 10_000;
/** tar's own bytes besides the files' contents: a 512-byte header per entry plus padding */
const TAR_OVERHEAD_PER_FILE = 1024;

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Guess the kind from the first bytes (zip: PK\x03\x04, gzip: 1f 8b), else JavaScript text. */
export function sniffCodeKind(buf: Buffer): CodeKind {
  if (buf.length >= 4 && buf.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'tgz';
  return 'js';
}

/** One bounded inflation the unpacker needs: `data` must inflate to at most `maxBytes`. */
export interface InflateStep {
  format: 'deflate-raw' | 'gzip';
  data: Buffer;
  maxBytes: number;
  /** the archive entry (zip) or 'the gzip stream', for error messages */
  what: string;
}

/** Unpack synchronously (stored code the registry checked when it was deployed; tests). */
export function unpackCode(kind: CodeKind, buf: Buffer, maxBytes: number): UnpackedCode {
  const steps = unpackSteps(kind, buf, maxBytes);
  let r = steps.next();
  while (!r.done) r = steps.next(inflateSync(r.value));
  return r.value;
}

/** Unpack with every inflation on the thread pool: what a deploy uses. */
export async function unpackCodeAsync(kind: CodeKind, buf: Buffer, maxBytes: number): Promise<UnpackedCode> {
  const steps = unpackSteps(kind, buf, maxBytes);
  let r = steps.next();
  while (!r.done) r = steps.next(await inflateAsync(r.value));
  return r.value;
}

const inflateRawAsync = promisify(zlib.inflateRaw);
const gunzipAsync = promisify(zlib.gunzip);

// zlib stops as soon as the output passes maxOutputLength (it inflates chunk by chunk), so
// neither memory nor time grows with what a bomb would inflate to.
function inflateSync(s: InflateStep): Buffer {
  try {
    const opts = { maxOutputLength: Math.max(1, s.maxBytes) };
    return s.format === 'gzip' ? zlib.gunzipSync(s.data, opts) : zlib.inflateRawSync(s.data, opts);
  } catch (err) {
    throw inflateError(s, err);
  }
}

async function inflateAsync(s: InflateStep): Promise<Buffer> {
  try {
    const opts = { maxOutputLength: Math.max(1, s.maxBytes) };
    return await (s.format === 'gzip' ? gunzipAsync(s.data, opts) : inflateRawAsync(s.data, opts));
  } catch (err) {
    throw inflateError(s, err);
  }
}

function inflateError(s: InflateStep, err: unknown): Error {
  if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return badRequest('code', `${s.what} inflates to more than ${s.maxBytes} bytes`);
  return badRequest('code', s.format === 'gzip' ? `not a valid gzip stream: ${(err as Error).message}` : `not a valid zip archive: ${s.what}: ${(err as Error).message}`);
}

/** The unpacking, yielding each inflation it needs and receiving its output (exported for its unit test). */
export function* unpackSteps(kind: CodeKind, buf: Buffer, maxBytes: number): Generator<InflateStep, UnpackedCode, Buffer> {
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
  if (kind === 'js') {
    if (buf.includes(0)) throw badRequest('code', 'a single-file function must be JavaScript text (found NUL bytes)');
    add('index.js', buf);
    return { files, main: 'index.js', totalBytes: total };
  }
  if (kind === 'zip') {
    // every entry and its declared size first, from the central directory: a bomb is refused before any byte is inflated
    const entries = readZipDirectory(buf).filter((e) => !e.name.endsWith('/'));
    if (entries.length > MAX_FILES) throw badRequest('code', `more than ${MAX_FILES} files`);
    const declared = entries.reduce((n, e) => n + e.size, 0);
    if (declared > maxBytes) throw badRequest('code', `the archive declares ${declared} bytes unpacked, more than ${maxBytes}`);
    for (const e of entries) {
      safeRelative(e.name); // a path that escapes is refused before its data is touched
      const raw = zipEntryData(buf, e);
      // an entry may not inflate past what it declares (a lying header ends there, not at the bomb's size)
      const data = e.method === 0 ? raw : yield { format: 'deflate-raw', data: raw, maxBytes: e.size, what: `entry ${e.name}` };
      if (data.length !== e.size) throw badRequest('code', `not a valid zip archive: entry ${e.name} is ${data.length} bytes, its header says ${e.size}`);
      add(e.name, data);
    }
  } else {
    if (buf.length < 18) throw badRequest('code', 'not a valid gzip stream: too short');
    const tarBudget = maxBytes + MAX_FILES * TAR_OVERHEAD_PER_FILE;
    // gzip's trailer declares the (last member's) size modulo 2^32: a bomb that says so is refused at once
    const isize = buf.readUInt32LE(buf.length - 4);
    if (isize > tarBudget) throw badRequest('code', `the gzip stream declares ${isize} bytes unpacked, more than ${tarBudget}`);
    const tar = yield { format: 'gzip', data: buf, maxBytes: tarBudget, what: 'the gzip stream' };
    for (const e of readTar(tar)) add(e.name, e.data);
  }
  stripCommonPrefix(files);
  return { files, main: resolveMain(files), totalBytes: total };
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
function stripCommonPrefix(files: Map<string, Buffer>): void {
  if (files.has('package.json') || files.has('index.js')) return;
  const tops = new Set([...files.keys()].map((k) => k.split('/')[0]));
  if (tops.size !== 1) return;
  const [top] = [...tops];
  if (![...files.keys()].every((k) => k.startsWith(top + '/'))) return;
  const entries = [...files.entries()];
  files.clear();
  for (const [k, v] of entries) files.set(k.slice(top!.length + 1), v);
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

// ---- zip: the central directory (APPNOTE.TXT 4.3.12-4.3.16)
// Our own reader, not fflate's: fflate's unzipSync inflates every entry in one synchronous call
// (the finding), and its streaming Unzip reads local headers, whose sizes a writer may leave
// out; the central directory gives every entry's declared size before anything is inflated,
// and node:zlib inflates with a hard output bound.

interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate */
  method: number;
  compressedSize: number;
  /** declared unpacked size */
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const CDH_SIG = 0x02014b50;
const LFH_SIG = 0x04034b50;

function zipError(message: string): Error {
  return badRequest('code', `not a valid zip archive: ${message}`);
}

function readZipDirectory(buf: Buffer): ZipEntry[] {
  // the end-of-central-directory record: 22 bytes plus a comment of at most 65535
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw zipError('no end of central directory record');
  const disk = buf.readUInt16LE(eocd + 4);
  const count = buf.readUInt16LE(eocd + 10);
  const cdSize = buf.readUInt32LE(eocd + 12);
  const cdOffset = buf.readUInt32LE(eocd + 16);
  if (disk !== 0 || buf.readUInt16LE(eocd + 6) !== 0) throw zipError('multi-volume archives are not supported');
  if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff) throw zipError('zip64 archives are not supported');
  if (cdOffset + cdSize > eocd) throw zipError('the central directory lies outside the archive');
  const entries: ZipEntry[] = [];
  let off = cdOffset;
  for (let i = 0; i < count; i++) {
    if (off + 46 > eocd || buf.readUInt32LE(off) !== CDH_SIG) throw zipError(`central directory entry ${i} is corrupt`);
    const flags = buf.readUInt16LE(off + 8);
    const method = buf.readUInt16LE(off + 10);
    const compressedSize = buf.readUInt32LE(off + 20);
    const size = buf.readUInt32LE(off + 24);
    const nameLen = buf.readUInt16LE(off + 28);
    const extraLen = buf.readUInt16LE(off + 30);
    const commentLen = buf.readUInt16LE(off + 32);
    const localHeaderOffset = buf.readUInt32LE(off + 42);
    if (off + 46 + nameLen > eocd) throw zipError(`central directory entry ${i} is corrupt`);
    // bit 11: the name is UTF-8; otherwise CP437, read as latin1 (ASCII names read the same)
    const name = buf.subarray(off + 46, off + 46 + nameLen).toString(flags & 0x800 ? 'utf8' : 'latin1');
    if (flags & 0x1) throw zipError(`entry ${name} is encrypted`);
    if (method !== 0 && method !== 8) throw zipError(`entry ${name} uses compression method ${method} (only stored and deflate are supported)`);
    if (method === 0 && compressedSize !== size) throw zipError(`stored entry ${name} has different packed and unpacked sizes`);
    if (compressedSize === 0xffffffff || size === 0xffffffff || localHeaderOffset === 0xffffffff) throw zipError('zip64 archives are not supported');
    entries.push({ name, method, compressedSize, size, localHeaderOffset });
    off += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** An entry's packed bytes, found through its local header. */
function zipEntryData(buf: Buffer, e: ZipEntry): Buffer {
  const h = e.localHeaderOffset;
  if (h + 30 > buf.length || buf.readUInt32LE(h) !== LFH_SIG) throw zipError(`entry ${e.name}: local header missing`);
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  if (start + e.compressedSize > buf.length) throw zipError(`entry ${e.name} is truncated`);
  return buf.subarray(start, start + e.compressedSize);
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
