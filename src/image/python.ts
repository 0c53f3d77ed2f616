// The Python guest image (issue 21): the Node image's kernel, busybox initramfs
// and read-only DAX root technique (builder.ts), with a root fs made of Debian's
// own packages: python3 and the scientific stack FunctionBench's workloads need.
// Their dependency closure is resolved by apt (as if installing into an empty
// system), taken from the host's apt cache or fetched with `apt-get download`,
// unpacked a package per core (`dpkg-deb --fsys-tarfile | tar -x`; no package script
// runs) without what no function uses (documentation, headers, static libraries,
// compilers, test suites, GL drivers; PRUNED) and compiled to bytecode once: the
// root is read-only, so a guest could never cache a .pyc itself. The root fs needs
// no kernel and is built first (the set-up builds it while the kernel compiles).
//
// Two caches, so that a change of the agent or /init costs a second, not a
// rebuild: the root fs in <cacheDir>/rootfs/python3-<id>.erofs (id: the closure
// with versions and this file's recipe) and the image in <cacheDir>/images/<version>/
// (version: kernel, /init, agent, helper, busybox, root fs id), whose rootfs is a
// hard link to the cached one. images/current-python3.json names the newest.

import { spawn } from 'node:child_process';
import { existsSync, linkSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { GuestImage } from '../runtimes/types.js';
import {
  bootFiles,
  BUILDER_VERSION,
  buildImageDir,
  cachedImage,
  chooseKernel,
  erofs,
  findBusybox,
  findImage,
  helperSourcePath,
  IMAGE_CMDLINE,
  imageManifest,
  imagesDir,
  initramfs,
  kernelFeaturesFor,
  plannedKernelKind,
  projectRoot,
  resolveTuning,
  squashfs,
  type ImageBuildOptions,
  type ImageManifest,
  type ImageTarget,
  type ImageTuning,
} from './builder.js';
import type { CpioEntry } from './cpio.js';
import { compileCId } from './compile-c.js';
import { type Log, run, runOk, sha256, which } from './exec.js';

/** What a Python function can import (Debian 12 names): FunctionBench's stack. */
export const PYTHON_PACKAGES = [
  'python3',
  'python3-numpy',
  'python3-pil',
  'python3-sklearn',
  'python3-scipy',
  'python3-pandas',
  'python3-opencv',
  'python3-torch',
  'python3-chameleon',
  'python3-pyaes',
] as const;

/** Bump when the root fs recipe below changes for the same packages (2: the GL drivers, LLVM, perl, gcc's programs and PyTorch's test programs pruned too). */
const ROOTFS_RECIPE = 2;

/**
 * Paths no function needs at run time (relative to the root; `*` matches any characters, `/` included,
 * and a directory goes with everything below it): documentation, translations, C headers, static
 * libraries, compilers (scipy's pythran pulls gcc in: its back ends and programs), test suites and
 * PyTorch's C++ test programs; Mesa's GL drivers (OpenCV pulls libGL in; libGL loads a driver only to
 * make a GL context, which a guest without a display never does) with LLVM and z3, which only those
 * drivers link; perl (nothing a Python function imports runs it). Checked: no other library of the
 * closure links libLLVM, libz3 or libperl (readelf), and FunctionBench's Python functions run on the
 * pruned tree (bench/runs/2026-12-07-python-image-build.md).
 */
const PRUNED = [
  'usr/share/doc',
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/lintian',
  'usr/share/bug',
  'usr/include',
  'usr/lib/gcc',
  'usr/lib/libtorch-test',
  'usr/lib/python3/dist-packages/*/tests',
  '*.a',
  'usr/bin/*-12',
  'usr/lib/python3/dist-packages/torch/bin/test_*',
  'usr/lib/python3/dist-packages/torch/bin/*Test',
  'usr/lib/python3/dist-packages/torch/bin/tutorial_*',
  'usr/lib/x86_64-linux-gnu/dri',
  'usr/lib/x86_64-linux-gnu/libLLVM-*',
  'usr/lib/x86_64-linux-gnu/libz3.so*',
  'usr/lib/x86_64-linux-gnu/perl',
  'usr/lib/x86_64-linux-gnu/perl-base',
  'usr/lib/x86_64-linux-gnu/libperl.so*',
  'usr/share/perl',
  'usr/bin/perl*',
];
/** PRUNED as one regular expression over a path relative to the root. */
const PRUNED_RE = new RegExp(`^(${PRUNED.map((g) => g.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')).join('|')})$`);
/**
 * PRUNED as tar exclusions (anchored at the data tar's `./`; in exclusions tar's `*` matches `/` and a
 * directory's exclusion covers what is below it): unpacking never writes what would be pruned (more than
 * a quarter of the 2 GiB). prune() still walks the tree afterwards and finds nothing left.
 */
export const TAR_EXCLUDES = ['--anchored', '--wildcards', ...PRUNED.map((g) => `--exclude=./${g}`)];

/** The host's own apt cache: packages `apt-get install` fetched there (the set-up's host tools share many with the closure). */
const HOST_APT_ARCHIVES = '/var/cache/apt/archives';

/**
 * Links `update-alternatives` makes when these libraries are installed (dpkg-deb -x runs no
 * script): numpy, scipy and PyTorch link libblas.so.3 / liblapack.so.3, which OpenBLAS provides.
 */
const LIBRARY_ALTERNATIVES: Record<string, string> = {
  'usr/lib/x86_64-linux-gnu/libblas.so.3': 'openblas-pthread/libblas.so.3',
  'usr/lib/x86_64-linux-gnu/liblapack.so.3': 'openblas-pthread/liblapack.so.3',
  'usr/lib/x86_64-linux-gnu/libopenblas.so.0': 'openblas-pthread/libopenblas.so.0',
};

/** Where /init mounts things into the root (guest/image/start-python-agent.sh). */
const MOUNT_POINTS = ['dev', 'proc', 'sys', 'tmp', 'opt/faascell'];
const BOUND_FILES = ['etc/resolv.conf', 'etc/hosts', 'etc/nsswitch.conf'];

/** The line of the Node image's /init where its agent start begins: the Python image's /init replaces what follows. */
export const INIT_AGENT_MARKER = '# --- agent start options (issue 9) ---';

export interface DebPackage {
  name: string;
  arch: string;
  version: string;
}

export interface PythonImageOptions extends Omit<ImageBuildOptions, 'rootfsCompression'> {
  /**
   * 'always' (default): build what is missing, a minute or more the first time (downloads ~400 MB of
   * packages). 'if-cached': only when the root fs is cached (an agent or /init change costs a
   * second); otherwise undefined.
   */
  build?: 'always' | 'if-cached';
  /**
   * Build (or find) only the root fs, in the format of the kernel the builder expects to pick, and stop
   * before the kernel (undefined is returned): the set-up runs this beside the Node image's build, so that
   * only that build ever compiles the kernel.
   */
  rootfsOnly?: boolean;
}

export interface PythonImageManifest extends ImageManifest {
  python: { packages: string[]; closure: number; rootfsId: string; resolveMs?: number; rootfsBuildMs?: number; rootfsBuildPhases?: RootfsBuildPhases };
}

// ---------------------------------------------------------------------------
// The package closure

/** The apt package lists in force (names, sizes, times): a resolution is valid as long as they are. */
function aptListsStamp(): string {
  const dir = '/var/lib/apt/lists';
  try {
    return readdirSync(dir)
      .filter((n) => /_Packages(\.[a-z0-9]+)?$/.test(n))
      .sort()
      .map((n) => {
        const st = statSync(join(dir, n));
        return `${n} ${st.size} ${Math.floor(st.mtimeMs)}`;
      })
      .join('\n');
  } catch {
    return 'no apt lists';
  }
}

/** Parses `apt-get -s install` output: one `Inst NAME (VERSION ORIGIN [ARCH])` line per package. */
export function parseAptSimulation(text: string): DebPackage[] {
  const out: DebPackage[] = [];
  for (const line of text.split('\n')) {
    const m = /^Inst (\S+) \((\S+) [^[]*\[([a-z0-9]+)\]\)/.exec(line);
    if (m) out.push({ name: m[1]!, version: m[2]!, arch: m[3]! });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The closure of `packages` as apt resolves it into an empty system (cached while the apt lists stay the same). */
async function resolveClosure(cacheDir: string, packages: readonly string[], log: Log): Promise<DebPackage[]> {
  const key = sha256(JSON.stringify(packages), aptListsStamp()).slice(0, 16);
  const file = join(cacheDir, 'rootfs', `closure-${key}.json`);
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as DebPackage[];
  if (!which('apt-get')) throw new Error('the Python image is built from Debian packages: apt-get is needed (a Debian or Ubuntu host)');
  log(`python image: resolving the dependency closure of ${packages.join(' ')}`);
  // an empty dpkg status: apt resolves every dependency down to libc, as for a fresh system
  const r = await runOk('apt-get', ['-o', 'Dir::State::status=/dev/null', '-o', 'Debug::NoLocking=1', '-o', 'APT::Get::Show-Versions=1', 'install', '-s', '--no-install-recommends', ...packages]);
  const closure = parseAptSimulation(r.stdout.toString('utf8'));
  if (closure.length === 0) throw new Error(`apt-get found none of ${packages.join(' ')}: run apt-get update`);
  await mkdir(join(cacheDir, 'rootfs'), { recursive: true });
  await writeFile(file, `${JSON.stringify(closure, null, 1)}\n`);
  return closure;
}

/** apt-get download's file name (an epoch's ':' is written %3a). */
export function debFileName(p: DebPackage): string {
  return `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.arch}.deb`;
}

/**
 * The closure's .deb files in debDir: first those the host's apt cache already holds (apt checked
 * them when it fetched them; linked, or copied across file systems), then one `apt-get download` for
 * the rest (apt fetches them over one pipelined connection per host; a call per batch would rebuild
 * apt's package cache each time: this host's apt keeps none).
 */
async function downloadDebs(debDir: string, closure: DebPackage[], log: Log): Promise<{ fromHostCache: number; downloaded: number; downloadedBytes: number }> {
  await mkdir(debDir, { recursive: true });
  let missing = closure.filter((p) => !existsSync(join(debDir, debFileName(p))));
  let fromHostCache = 0;
  for (const p of missing) {
    const host = join(HOST_APT_ARCHIVES, debFileName(p));
    if (!existsSync(host)) continue;
    try {
      linkSync(host, join(debDir, debFileName(p)));
    } catch {
      await copyFile(host, join(debDir, debFileName(p)));
    }
    fromHostCache++;
  }
  missing = missing.filter((p) => !existsSync(join(debDir, debFileName(p))));
  if (fromHostCache > 0) log(`python image: ${fromHostCache} packages taken from ${HOST_APT_ARCHIVES}`);
  if (missing.length === 0) return { fromHostCache, downloaded: 0, downloadedBytes: 0 };
  log(`python image: apt-get download ${missing.length} packages into ${debDir}`);
  for (let i = 0; i < missing.length; i += 1000) {
    const batch = missing.slice(i, i + 1000).map((p) => `${p.name}:${p.arch}=${p.version}`);
    await runOk('apt-get', ['download', ...batch], { cwd: debDir });
  }
  const still = missing.filter((p) => !existsSync(join(debDir, debFileName(p))));
  if (still.length > 0) throw new Error(`apt-get download did not fetch ${still.map(debFileName).join(', ')}`);
  const downloadedBytes = missing.reduce((n, p) => n + statSync(join(debDir, debFileName(p))).size, 0);
  return { fromHostCache, downloaded: missing.length, downloadedBytes };
}

/**
 * `dpkg-deb -x` minus the pruned paths: the package's data tar piped into tar with TAR_EXCLUDES
 * (dpkg-deb -x runs the same `tar -x -p`). No two packages of the closure ship the same file, so
 * the packages unpack concurrently into one tree with the same result in any order.
 */
function unpackDeb(deb: string, staging: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const source = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '-p', '--warning=no-timestamp', '-C', staging, ...TAR_EXCLUDES, '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    const codes: (number | null)[] = [];
    for (const child of [source, tar]) {
      child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-1500)));
      child.on('error', reject);
      child.on('close', (code) => {
        codes.push(code);
        if (codes.length < 2) return;
        if (codes.every((c) => c === 0)) resolve();
        else reject(new Error(`unpacking ${deb} failed (dpkg-deb --fsys-tarfile | tar -x: exit ${codes.join(', ')}): ${stderr.trim()}`));
      });
    }
    source.stdout.pipe(tar.stdin);
    tar.stdin.on('error', () => undefined); // tar exited early: its exit code says why
  });
}

/** Runs `task` over `items`, `limit` at a time (a few workers pulling from one queue); after a failure no new task starts, and the first error is thrown once the running ones end. */
async function eachConcurrently<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (errors.length === 0 && next < items.length) {
      try {
        await task(items[next++]!);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (errors.length > 0) throw errors[0];
}

// ---------------------------------------------------------------------------
// The root fs

function walk(root: string, dir: string, visit: (rel: string, isDir: boolean) => boolean): void {
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    const isDir = e.isDirectory();
    if (visit(rel, isDir) && isDir) walk(root, rel, visit);
  }
}

/** Whether a path relative to the root is one PRUNED names (a directory's contents go with it). */
export function isPruned(rel: string): boolean {
  return PRUNED_RE.test(rel);
}

/** Removes what no function needs (PRUNED); returns the bytes removed. */
async function prune(staging: string): Promise<number> {
  const doomed: string[] = [];
  walk(staging, '', (rel, isDir) => {
    if (isPruned(rel)) {
      doomed.push(rel);
      return false;
    }
    return isDir;
  });
  let bytes = 0;
  for (const rel of doomed) {
    bytes += treeBytes(join(staging, rel));
    await rm(join(staging, rel), { recursive: true, force: true });
  }
  return bytes;
}

function treeBytes(p: string): number {
  const st = lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((n, e) => n + treeBytes(join(p, e)), 0);
}

/** The staging tree's own python, run on the host through the tree's dynamic loader. */
function stagedPython(staging: string, args: string[]): [string, string[]] {
  const libs = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu'].map((d) => join(staging, d)).join(':');
  return [join(staging, 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'), ['--library-path', libs, join(staging, 'usr/bin/python3'), '-E', '-s', ...args]];
}

/**
 * Bytecode for the standard library and every package, with the guest's paths in it (-s/-p)
 * and `unchecked-hash` validation: the image's files all have time 0, so timestamp-checked
 * .pyc files would never match and every import would compile again in every VM.
 */
async function compileBytecode(staging: string, log: Log): Promise<void> {
  const dirs = ['usr/lib/python3.11', 'usr/lib/python3/dist-packages'].map((d) => join(staging, d));
  const [cmd, args] = stagedPython(staging, ['-m', 'compileall', '-q', '-j', '0', '--invalidation-mode', 'unchecked-hash', '-s', staging, '-p', '/', ...dirs]);
  const r = await run(cmd, args);
  // files meant for other Python versions (lib2to3 test data, Python 2 leftovers) do not compile: expected
  if (r.code !== 0) log(`python image: compileall left some files uncompiled (${r.stderr.trim().split('\n').slice(-1)[0] ?? `exit ${r.code}`})`);
}

/** The root fs's id: the closure with versions and the recipe (what is pruned, linked, compiled). */
function rootfsIdOf(closure: DebPackage[], format: 'erofs' | 'squashfs'): string {
  return sha256(
    JSON.stringify({ recipe: ROOTFS_RECIPE, format, closure: closure.map((p) => `${p.name}:${p.arch}=${p.version}`), pruned: PRUNED, alternatives: LIBRARY_ALTERNATIVES, mounts: [MOUNT_POINTS, BOUND_FILES] }),
  ).slice(0, 16);
}

/** CPU time (user + system, ms) of this process's finished children: fields 16-17 of /proc/self/stat (clock ticks, 100 a second on Linux); NaN elsewhere. */
function childCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Where a root fs build spends its time (ms per step; the manifest keeps them, docs/python.md "Build cost"). */
export interface RootfsBuildPhases {
  download: number;
  unpack: number;
  prune: number;
  compile: number;
  mkfs: number;
  /** CPU time (user + system) of the commands each step ran (Linux: /proc/self/stat), ms */
  cpu?: { download: number; unpack: number; compile: number; mkfs: number };
  /** packages linked from the host's apt cache / downloaded, and the bytes downloaded */
  fromHostCache: number;
  downloaded: number;
  downloadedBytes: number;
}

async function buildRootfs(cacheDir: string, closure: DebPackage[], format: 'erofs' | 'squashfs', out: string, log: Log): Promise<{ ms: number; phases: RootfsBuildPhases }> {
  const t0 = Date.now();
  let t = t0;
  const lap = (): number => {
    const now = Date.now();
    const ms = now - t;
    t = now;
    return ms;
  };
  let c = childCpuMs();
  const cpuLap = (): number => {
    const now = childCpuMs();
    const ms = now - c;
    c = now;
    return ms;
  };
  if (!which('dpkg-deb')) throw new Error('dpkg-deb missing (a Debian or Ubuntu host)');
  const debDir = join(cacheDir, 'debs');
  const fetched = await downloadDebs(debDir, closure, log);
  const download = lap();
  const cpuDownload = cpuLap();
  const staging = `${out}.staging-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    // one package per core: each is a dpkg-deb (xz inflating) and a tar (writing) process
    const jobs = availableParallelism();
    log(`python image: unpacking ${closure.length} packages, ${jobs} at a time`);
    await eachConcurrently(closure, jobs, (p) => unpackDeb(join(debDir, debFileName(p)), staging));
    const unpack = lap();
    const cpuUnpack = cpuLap();
    const pruned = await prune(staging);
    if (pruned > 0) log(`python image: pruned ${(pruned / 1048576).toFixed(0)} MiB more than the unpacking excluded`);
    for (const [link, target] of Object.entries(LIBRARY_ALTERNATIVES)) {
      if (!existsSync(join(staging, link, '..', target))) throw new Error(`python image: ${target} (for ${link}) is not in the packages`);
      await rm(join(staging, link), { force: true });
      await symlink(target, join(staging, link));
    }
    for (const d of MOUNT_POINTS) await mkdir(join(staging, d), { recursive: true });
    await chmod(join(staging, 'tmp'), 0o1777);
    for (const f of BOUND_FILES) if (!existsSync(join(staging, f))) await writeFile(join(staging, f), '');
    const prunePhase = lap();
    log('python image: compiling bytecode');
    await compileBytecode(staging, log);
    const compile = lap();
    const cpuCompile = cpuLap();
    const tmpOut = `${out}.${process.pid}`;
    log(`python image: ${format} root fs`);
    if (format === 'erofs') await erofs(staging, tmpOut);
    else await squashfs(staging, tmpOut, 'none');
    await rename(tmpOut, out);
    const mkfs = lap();
    const cpu = Number.isNaN(c) ? undefined : { download: cpuDownload, unpack: cpuUnpack, compile: cpuCompile, mkfs: cpuLap() };
    const phases: RootfsBuildPhases = { download, unpack, prune: prunePhase, compile, mkfs, ...(cpu ? { cpu } : {}), ...fetched };
    const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    log(
      `python image: root fs in ${s(Date.now() - t0)}: download ${s(download)} (${fetched.downloaded} packages, ${(fetched.downloadedBytes / 1048576).toFixed(0)} MiB; ${fetched.fromHostCache} from the host's apt cache), unpack ${s(unpack)}, prune ${s(prunePhase)}, bytecode ${s(compile)}, ${format} ${s(mkfs)}${cpu ? `; CPU of the commands: download ${s(cpu.download)}, unpack ${s(cpu.unpack)}, bytecode ${s(cpu.compile)}, ${format} ${s(cpu.mkfs)}` : ''}`,
    );
    return { ms: Date.now() - t0, phases };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Keep the two newest cached Python root fs files (an image names one; a rebuild makes another). */
async function pruneRootfsCache(dir: string, keep: string): Promise<void> {
  const files = readdirSync(dir)
    .filter((n) => /^python3-[0-9a-f]{16}\.(erofs|sqfs)$/.test(n) && join(dir, n) !== keep)
    .map((n) => ({ n, t: statSync(join(dir, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of files.slice(1)) await rm(join(dir, n), { force: true });
}

// ---------------------------------------------------------------------------
// The image

/** The agent's files (guest/agent-python): path below /opt/faascell -> content. */
async function agentFiles(root: string): Promise<Map<string, Buffer>> {
  const base = join(root, 'guest', 'agent-python');
  const out = new Map<string, Buffer>();
  const add = async (dir: string): Promise<void> => {
    for (const e of readdirSync(join(base, dir), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory() && e.name !== '__pycache__') await add(rel);
      else if (e.isFile() && e.name.endsWith('.py')) out.set(rel, await readFile(join(base, rel)));
    }
  };
  await add('');
  return out;
}

/** The Python image's /init: the Node image's boot up to its agent start, then the Python agent's start. */
export function pythonInit(nodeInit: string, pythonStart: string): string {
  const at = nodeInit.indexOf(INIT_AGENT_MARKER);
  if (at < 0) throw new Error(`guest/image/init has no line "${INIT_AGENT_MARKER}": the Python image's /init is built from the part before it`);
  return `${nodeInit.slice(0, at)}${pythonStart}`;
}

const CURRENT = 'current-python3.json';

/** The current Python image if one has been built, without building anything. */
export function findPythonImage(cacheDir: string): Promise<GuestImage | undefined> {
  return findImage(cacheDir, CURRENT);
}

/** Build the Python guest image, or return the cached one when nothing changed (undefined: 'if-cached' and no root fs yet). */
export async function buildPythonImage(opts: PythonImageOptions): Promise<(GuestImage & { buildMs: number; cached: boolean }) | undefined> {
  const t0 = Date.now();
  const log: Log = opts.log ?? (() => undefined);
  const root = projectRoot();
  const cacheDir = opts.cacheDir;
  await mkdir(imagesDir(cacheDir), { recursive: true });
  const wanted = resolveTuning(opts);
  if (wanted.rootfs === 'dax' && !which('mkfs.erofs')) wanted.rootfs = 'squashfs';
  const formatWith = (kind: 'minimal' | 'debian'): 'erofs' | 'squashfs' => (kind === 'minimal' && wanted.rootfs === 'dax' ? 'erofs' : 'squashfs');
  const rootfsDir = join(cacheDir, 'rootfs');
  const tResolve = Date.now();
  const closure = await resolveClosure(cacheDir, PYTHON_PACKAGES, log);
  const resolveMs = Date.now() - tResolve;
  let rootfsBuild: { ms: number; phases: RootfsBuildPhases } | undefined;
  /** The cached root fs in `format`, built first if missing (undefined: 'if-cached' and none). */
  const rootfsIn = async (format: 'erofs' | 'squashfs'): Promise<{ id: string; file: string } | undefined> => {
    const id = rootfsIdOf(closure, format);
    const file = join(rootfsDir, `python3-${id}.${format === 'erofs' ? 'erofs' : 'sqfs'}`);
    if (existsSync(file) && !(opts.force && !rootfsBuild)) return { id, file };
    if (opts.build === 'if-cached') return undefined;
    log(`python image: building the root fs ${id} (${closure.length} Debian packages; a minute or more)`);
    rootfsBuild = await buildRootfs(cacheDir, closure, format, file, log);
    await pruneRootfsCache(rootfsDir, file);
    return { id, file };
  };
  // The root fs first: it needs no kernel, so the set-up builds it while the Node image's kernel compiles
  // (scripts/setup.sh). Its format follows the kernel chooseKernel will pick; should that kernel fail to
  // build, the other format is built after it.
  const planned = await rootfsIn(formatWith(await plannedKernelKind(opts, root, kernelFeaturesFor(wanted))));
  if (!planned || opts.rootfsOnly) return undefined;
  const kernel = await chooseKernel(opts, root, log, kernelFeaturesFor(wanted));
  const tuning: ImageTuning = kernel.kind === 'minimal' ? wanted : { tickless: false, rootfs: 'squashfs', freePageReporting: false };
  const format = formatWith(kernel.kind);
  const rootfsFile = format === 'erofs' ? 'rootfs.erofs' : 'rootfs.sqfs';
  const rootfs = await rootfsIn(format);
  if (!rootfs) return undefined;
  const { id: rootfsId, file: cachedRootfs } = rootfs;

  const init = Buffer.from(pythonInit(await readFile(join(root, 'guest', 'image', 'init'), 'utf8'), await readFile(join(root, 'guest', 'image', 'start-python-agent.sh'), 'utf8')));
  const agent = await agentFiles(root);
  const agentSha = sha256(...[...agent].flatMap(([k, v]) => [k, '\0', v, '\0']));
  const busybox = await findBusybox();
  const busyboxId = `${busybox.path} ${sha256(busybox.data).slice(0, 16)}`;
  const helperId = compileCId(await readFile(helperSourcePath(root)));
  const cmdline = [IMAGE_CMDLINE, ...(format === 'erofs' ? ['faascell.rootfstype=erofs'] : [])].join(' ');
  const version = sha256(
    JSON.stringify({ runtime: 'python3', builder: BUILDER_VERSION, kernel: kernel.id, init: sha256(init), agent: agentSha, busybox: busyboxId, helper: helperId, cmdline, rootfs: rootfsId, tuning }),
  ).slice(0, 16);
  const target: ImageTarget = { cacheDir, version, dir: join(imagesDir(cacheDir), version), currentFile: CURRENT, setCurrent: opts.setCurrent !== false, force: opts.force === true, log, t0 };
  const cached = await cachedImage(target);
  if (cached) return cached;

  log(`python image: building ${version} (kernel ${kernel.id}, root fs ${rootfsId}, agent ${agentSha.slice(0, 12)})`);
  return buildImageDir(target, async (work) => {
    const { modules, helper } = await bootFiles(work, kernel, root, log);
    // the agent in the initramfs: /init mounts it read-only on the root fs's /opt/faascell
    const extra: CpioEntry[] = [{ type: 'dir', path: 'opt' }, { type: 'dir', path: 'opt/faascell' }];
    for (const rel of new Set([...agent.keys()].flatMap((k) => k.split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/'))))) extra.push({ type: 'dir', path: `opt/faascell/${rel}` });
    for (const [rel, data] of agent) extra.push({ type: 'file', path: `opt/faascell/${rel}`, data, mode: 0o644 });
    await writeFile(join(work, 'initrd.cpio.gz'), initramfs(busybox, init, kernel, modules, helper, extra));
    // the root fs: a hard link to the cached one (an image directory must hold its files), a copy across file systems
    try {
      linkSync(cachedRootfs, join(work, rootfsFile));
    } catch {
      await copyFile(cachedRootfs, join(work, rootfsFile));
    }
    const manifest: PythonImageManifest = {
      ...imageManifest(target, work, kernel, rootfsFile, format, cmdline, { node: '', nodeBinary: '', kernelId: kernel.id, busybox: busyboxId, agentSha256: agentSha, rootfsCompression: 'none', tuning }),
      python: { packages: [...PYTHON_PACKAGES], closure: closure.length, rootfsId, resolveMs, ...(rootfsBuild ? { rootfsBuildMs: rootfsBuild.ms, rootfsBuildPhases: rootfsBuild.phases } : {}) },
    };
    return manifest;
  });
}
