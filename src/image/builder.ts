// The guest image builder: kernel (minimal or Debian), busybox initramfs with
// our /init, and a read-only squashfs with Node.js and the bundled agent.
// Images live in <cacheDir>/images/<version>/ where version is a hash of every
// input; <cacheDir>/images/current.json names the newest one.

import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile, chmod, truncate } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { GUEST_KERNEL_IP_ARG, GUEST_NET_ARG } from '../network/plan.js';
import type { GuestImage } from '../runtimes/types.js';
import { type CpioEntry, writeCpio } from './cpio.js';
import { compileC, compileCId } from './compile-c.js';
import { type Log, run, runOk, sha256, which } from './exec.js';
import { type Kernel, type KernelFeature, debianKernel, minimalKernel, minimalKernelFailed, minimalKernelId, missingBuildTools } from './kernel.js';
import { projectRoot } from '../core/project-root.js';

/** Bump when the builder's output changes for the same inputs. */
export const BUILDER_VERSION = 1;

export interface ImageBuildOptions {
  cacheDir: string;
  kernel?: 'auto' | 'minimal' | 'debian';
  force?: boolean;
  log?: (line: string) => void;
  /**
   * Root squashfs compression. 'none' (default): Node's 99 MB binary pages in
   * ~0.8 s faster under TCG (no emulated inflate) for a 104 MB instead of 37 MB
   * file that the page cache shares between VMs. 'gzip': smaller (SQUASHFS_ZLIB).
   */
  rootfsCompression?: 'none' | 'gzip';
  /**
   * Guest tuning (issue 9). Each option is part of the image version and, for the
   * minimal kernel, selects a kernel.config fragment (guest/image/kernel-<feature>.config).
   * tickless (default true): NO_HZ_IDLE + HZ=100, an idle VM costs almost no host CPU.
   */
  tickless?: boolean;
  /**
   * 'dax' (default): the root fs is an EROFS image that the QEMU driver maps into guest
   * memory as persistent memory and /init mounts with DAX (no guest page cache copy of
   * Node; its pages are the host page cache's, shared by all VMs). 'squashfs': the
   * previous read-only squashfs on virtio-blk. The Debian kernel always uses squashfs.
   */
  rootfs?: 'dax' | 'squashfs';
  /** Default true: virtio-balloon free page reporting returns memory the guest frees to the host. */
  freePageReporting?: boolean;
  /** Make this image current.json's (default true); benchmarks building a baseline variant pass false. */
  setCurrent?: boolean;
}

/** The guest tuning an image was built with (resolved defaults; see ImageBuildOptions). */
export interface ImageTuning {
  tickless: boolean;
  rootfs: 'dax' | 'squashfs';
  freePageReporting: boolean;
}

export function resolveTuning(opts: Pick<ImageBuildOptions, 'tickless' | 'rootfs' | 'freePageReporting'>): ImageTuning {
  return { tickless: opts.tickless ?? true, rootfs: opts.rootfs ?? 'dax', freePageReporting: opts.freePageReporting ?? true };
}

/** The minimal kernel's features for a tuning. */
export function kernelFeaturesFor(t: ImageTuning): KernelFeature[] {
  const f: KernelFeature[] = [];
  if (t.tickless) f.push('tickless');
  if (t.rootfs === 'dax') f.push('dax');
  if (t.freePageReporting) f.push('balloon');
  return f;
}

export interface ImageManifest extends GuestImage {
  build: {
    builderVersion: number;
    node: string;
    nodeBinary: string;
    kernelId: string;
    busybox: string;
    agentSha256: string;
    rootfsCompression: 'none' | 'gzip';
    tuning?: ImageTuning;
    builtAt: string;
    buildMs: number;
    host: string;
  };
}

/**
 * Kernel arguments every image needs; `random.trust_cpu=on` avoids Node blocking on the RNG at boot.
 * `tsc=reliable`: under TCG the guest's TSC is QEMU's virtual clock (host time), steady by construction, but a
 * guest starved of host CPU can fail the kernel's TSC checks against jiffies; the kernel then marks the TSC
 * unstable, runs without high-resolution timers and so without nohz, and the idle guest ticks 100 times a
 * second (seen on this host at load 13-15: 100 ticks per guest second for 30 s, `.nohz_mode 0`).
 */
export const BASE_CMDLINE = 'console=ttyS0 reboot=t panic=-1 quiet tsc_early_khz=2400000 tsc=reliable random.trust_cpu=on';
/** The guest's fixed network configuration (the same in every VM, see src/network/plan.ts); /init applies it to eth0. */
export const IMAGE_CMDLINE = `${BASE_CMDLINE} ${GUEST_KERNEL_IP_ARG} ${GUEST_NET_ARG}`;

export function defaultCacheDir(): string {
  return process.env.FAASCELL_CACHE_DIR || join(homedir(), '.cache', 'faascell');
}

/** The project root (where guest/ lives): src/core/project-root.ts, re-exported for the image's users. */
export { projectRoot };

export function imagesDir(cacheDir: string): string {
  return join(cacheDir, 'images');
}

export function toGuestImage(m: ImageManifest, dir: string): GuestImage {
  return {
    version: m.version,
    dir,
    kernelPath: join(dir, basename(m.kernelPath)),
    kernelKind: m.kernelKind,
    initrdPath: join(dir, basename(m.initrdPath)),
    rootfsPath: join(dir, basename(m.rootfsPath)),
    cmdline: m.cmdline,
    sizes: m.sizes,
    ...(m.rootfsFormat ? { rootfsFormat: m.rootfsFormat } : {}),
    ...(m.kernelFeatures ? { kernelFeatures: m.kernelFeatures } : {}),
  };
}

export async function readManifest(dir: string): Promise<ImageManifest | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ImageManifest;
    const img = toGuestImage(m, dir);
    if (![img.kernelPath, img.initrdPath, img.rootfsPath].every((p) => existsSync(p))) return undefined;
    return m;
  } catch {
    return undefined;
  }
}

/** The current image if one has been built, without building anything (currentFile: another runtime's, issue 21). */
export async function findImage(cacheDir: string, currentFile = 'current.json'): Promise<GuestImage | undefined> {
  try {
    const cur = JSON.parse(await readFile(join(imagesDir(cacheDir), currentFile), 'utf8')) as { version?: string };
    if (typeof cur.version !== 'string') return undefined;
    const dir = join(imagesDir(cacheDir), cur.version);
    const m = await readManifest(dir);
    return m ? toGuestImage(m, dir) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keep the current image, the ones current.json and current-<runtime>.json name, and the five
 * newest others (a daemon or benchmark still running may use an older one or a variant; its
 * snapshots are tied to it), delete the rest: each is ~120 MB (a Python image's root fs is a
 * hard link to its cached copy, src/image/python.ts).
 */
export async function pruneImages(cacheDir: string, current: string, log: Log, keep = 6): Promise<void> {
  let names: string[];
  // the images current.json and current-<runtime>.json name are kept too (a variant built with setCurrent: false is not one)
  const named = new Set<string>();
  try {
    for (const f of readdirSync(imagesDir(cacheDir)).filter((n) => /^current(-[a-z0-9]+)?\.json$/.test(n))) {
      try {
        const v = (JSON.parse(readFileSync(join(imagesDir(cacheDir), f), 'utf8')) as { version?: string }).version;
        if (typeof v === 'string') named.add(v);
      } catch {
        /* half-written or foreign: names nothing */
      }
    }
  } catch {
    return;
  }
  try {
    names = readdirSync(imagesDir(cacheDir)).filter((n) => /^[0-9a-f]{16}$/.test(n) && n !== current && !named.has(n));
  } catch {
    return;
  }
  const byAge = names.map((n) => ({ n, t: statSync(join(imagesDir(cacheDir), n)).mtimeMs })).sort((a, b) => b.t - a.t);
  for (const { n } of byAge.slice(keep - 1)) {
    await rm(join(imagesDir(cacheDir), n), { recursive: true, force: true });
    log(`removed old image ${n}`);
  }
}

// ---------------------------------------------------------------------------
// Inputs

/** The agent bundled as an ES module (agent.mjs) or as CommonJS (agent.cjs: Node starts it without its ESM loader). */
async function agentBundle(root: string, log: Log, format: 'esm' | 'cjs' = 'esm'): Promise<Buffer> {
  const entry = join(root, 'guest', 'agent', 'agent.ts');
  const dist = join(root, 'guest', 'agent', 'dist', format === 'esm' ? 'agent.mjs' : 'agent.cjs');
  if (existsSync(entry)) {
    // Bundle from source when esbuild is around, so an image never carries a stale agent.
    try {
      const esbuild = await import('esbuild');
      const r = await esbuild.build({
        entryPoints: [entry],
        bundle: true,
        platform: 'node',
        format,
        target: 'node20',
        write: false,
        legalComments: 'none',
        logLevel: 'silent',
      });
      const out = r.outputFiles[0];
      if (out) return Buffer.from(out.contents);
    } catch (err) {
      if (!existsSync(dist)) throw err;
      log(`agent: bundling from source failed (${String(err).split('\n')[0]}), using ${dist}`);
    }
  }
  if (!existsSync(dist)) throw new Error(`agent bundle missing: run npm run build (${dist})`);
  return readFile(dist);
}

function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) return false;
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (buf.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  return true;
}

export async function findBusybox(): Promise<{ path: string; data: Buffer; applets: string[] }> {
  const candidates = [process.env.FAASCELL_BUSYBOX, '/bin/busybox', '/usr/bin/busybox', which('busybox')].filter(
    (p): p is string => typeof p === 'string' && existsSync(p),
  );
  for (const p of candidates) {
    const data = await readFile(p);
    if (!isStaticElf(data)) continue;
    const r = await run(p, ['--list']);
    const applets = r.stdout
      .toString('utf8')
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => /^[a-z0-9_.[-]+$/i.test(s) && s !== 'busybox');
    if (r.code === 0 && applets.length > 10) return { path: p, data, applets };
  }
  throw new Error('no statically linked busybox found (apt-get install busybox-static)');
}

/** Node's shared libraries (from ldd): soname -> real path, plus the dynamic loader. */
async function nodeLibraries(nodePath: string): Promise<{ libs: Map<string, string>; loader: string }> {
  const r = await runOk('ldd', [nodePath]);
  const libs = new Map<string, string>();
  let loader: string | undefined;
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const m = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(/.exec(line);
    if (m) libs.set(basename(m[1]!), realpathSync(m[2]!));
    const l = /^\s*(\/\S*ld-linux[^\s]*)\s+\(/.exec(line);
    if (l) loader = realpathSync(l[1]!);
  }
  if (!loader) throw new Error(`ldd ${nodePath}: no dynamic loader found`);
  return { libs, loader };
}

// ---------------------------------------------------------------------------

export async function chooseKernel(opts: ImageBuildOptions, root: string, log: Log, features: KernelFeature[]): Promise<Kernel> {
  const guestImageDir = join(root, 'guest', 'image');
  const want = opts.kernel ?? 'auto';
  if (want === 'debian') return debianKernel(opts.cacheDir, log, opts.force);
  if (want === 'minimal') return minimalKernel(opts.cacheDir, guestImageDir, log, opts.force, features);
  const missing = missingBuildTools();
  if (missing.length > 0) {
    log(`kernel: auto -> debian (cannot build the minimal kernel, missing ${missing.join(', ')})`);
    return debianKernel(opts.cacheDir, log, opts.force);
  }
  const id = await minimalKernelId(guestImageDir, features);
  if (!opts.force && minimalKernelFailed(opts.cacheDir, id)) {
    log(`kernel: auto -> debian (the minimal kernel build ${id} failed before; force a rebuild with kernel=minimal)`);
    return debianKernel(opts.cacheDir, log);
  }
  try {
    return await minimalKernel(opts.cacheDir, guestImageDir, log, opts.force, features);
  } catch (err) {
    log(`kernel: minimal kernel build failed (${String(err).slice(0, 500)}); falling back to debian`);
    return debianKernel(opts.cacheDir, log);
  }
}

/**
 * The kind of kernel chooseKernel will return, without building anything: the Python root fs's format
 * depends on it and is built before the kernel (issue 21). 'minimal' may still end 'debian' if its build fails.
 */
export async function plannedKernelKind(opts: ImageBuildOptions, root: string, features: KernelFeature[]): Promise<'minimal' | 'debian'> {
  const want = opts.kernel ?? 'auto';
  if (want !== 'auto') return want;
  if (missingBuildTools().length > 0) return 'debian';
  return !opts.force && minimalKernelFailed(opts.cacheDir, await minimalKernelId(join(root, 'guest', 'image'), features)) ? 'debian' : 'minimal';
}

/** The guest helper's C source. */
export function helperSourcePath(root: string): string {
  return join(root, 'guest', 'image', 'faascell-helper.c');
}

/** Compile guest/image/faascell-helper.c statically; undefined when no C compiler (the agent then falls back to busybox). */
export async function buildHelper(root: string, work: string, log: Log): Promise<Buffer | undefined> {
  const r = await compileC({ source: helperSourcePath(root), out: join(work, 'faascell-helper'), flags: ['-static', '-O2', '-s'] });
  if (!r.ok) {
    if (r.reason === 'no-compiler') log('image: no C compiler, faascell-helper skipped (clock set to whole seconds by busybox date)');
    else log(`image: faascell-helper did not compile (${r.detail}); using the busybox fallback`);
    return undefined;
  }
  return readFile(r.path);
}

/** extra: more entries (the Python image's agent, issue 21); none for the Node image, whose initramfs is unchanged. */
export function initramfs(busybox: { data: Buffer; applets: string[] }, initScript: Buffer, kernel: Kernel, modules: Buffer[], helper: Buffer | undefined, extra: CpioEntry[] = []): Buffer {
  const entries: CpioEntry[] = [];
  // etc: /init writes the guest's resolv.conf there without forking a mkdir (networking)
  for (const d of ['bin', 'sbin', 'dev', 'proc', 'sys', 'tmp', 'rootfs', 'lib', 'etc']) entries.push({ type: 'dir', path: d });
  // The kernel opens /dev/console for /init's stdio before devtmpfs is mounted.
  entries.push({ type: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  entries.push({ type: 'file', path: 'bin/busybox', data: busybox.data, mode: 0o755 });
  // Applet links at build time: `busybox --install` at every boot costs time under TCG.
  for (const a of busybox.applets) entries.push({ type: 'symlink', path: `bin/${a}`, target: 'busybox' });
  entries.push({ type: 'symlink', path: 'sbin/init', target: '../init' });
  entries.push({ type: 'file', path: 'init', data: initScript, mode: 0o755 });
  if (helper) entries.push({ type: 'file', path: 'bin/faascell-helper', data: helper, mode: 0o755 });
  if (kernel.modules.length > 0) {
    entries.push({ type: 'dir', path: 'lib/modules' });
    kernel.modules.forEach((m, i) => entries.push({ type: 'file', path: `lib/modules/${m.name}`, data: modules[i]!, mode: 0o644 }));
    entries.push({ type: 'file', path: 'lib/modules/load', data: Buffer.from(`${kernel.modules.map((m) => m.name).join('\n')}\n`) });
  }
  entries.push(...extra);
  return gzipSync(writeCpio(entries), { level: 9 });
}

/**
 * EROFS image for the DAX root: uncompressed, no inline tails (an inline file is not
 * DAX-mapped by the 6.1 kernel), no xattrs, fixed times; padded to a 2 MiB multiple because
 * it becomes a guest memory range (a memory backend's size, and memmap= granularity).
 */
export async function erofs(staging: string, out: string): Promise<void> {
  await runOk('mkfs.erofs', ['-E', 'noinline_data', '-x', '-1', '-T', '0', '--all-root', '-U', '00000000-0000-0000-0000-000000000000', '--quiet', out, staging]);
  const size = statSync(out).size;
  const padded = Math.ceil(size / PMEM_ALIGN) * PMEM_ALIGN;
  if (padded !== size) await truncate(out, padded);
}

/** Granularity of the persistent-memory root fs range (memory sections are hot-added in 2 MiB subsections). */
export const PMEM_ALIGN = 2 * 1024 * 1024;

export async function squashfs(staging: string, out: string, compression: 'none' | 'gzip'): Promise<void> {
  if (!which('mksquashfs')) throw new Error('mksquashfs missing (apt-get install squashfs-tools)');
  // gzip because the minimal kernel has SQUASHFS_ZLIB only. Fixed times keep the image reproducible.
  const comp = compression === 'gzip' ? ['-comp', 'gzip'] : ['-noI', '-noD', '-noF', '-noX'];
  await runOk('mksquashfs', [staging, out, ...comp, '-noappend', '-all-root', '-no-xattrs', '-quiet', '-no-progress', '-mkfs-time', '0', '-all-time', '0']);
}

/** Build the guest image, or return the cached one when nothing changed. */
export async function buildImage(opts: ImageBuildOptions): Promise<GuestImage & { buildMs: number; cached: boolean }> {
  const t0 = Date.now();
  const log: Log = opts.log ?? (() => undefined);
  const root = projectRoot();
  const cacheDir = opts.cacheDir;
  await mkdir(imagesDir(cacheDir), { recursive: true });

  const wanted = resolveTuning(opts);
  if (wanted.rootfs === 'dax' && !which('mkfs.erofs')) {
    log('image: mkfs.erofs missing (apt-get install erofs-utils): root fs falls back to squashfs on virtio-blk');
    wanted.rootfs = 'squashfs';
  }
  const kernel = await chooseKernel(opts, root, log, kernelFeaturesFor(wanted));
  // Debian's kernel has none of the minimal kernel's features: the image is the plain squashfs one.
  const tuning: ImageTuning = kernel.kind === 'minimal' ? wanted : { tickless: false, rootfs: 'squashfs', freePageReporting: false };
  const rootfsFormat = tuning.rootfs === 'dax' ? 'erofs' : 'squashfs';
  const rootfsFile = rootfsFormat === 'erofs' ? 'rootfs.erofs' : 'rootfs.sqfs';
  const initScript = await readFile(join(root, 'guest', 'image', 'init'));
  const agent = await agentBundle(root, log);
  const agentCjs = await agentBundle(root, log, 'cjs');
  const busybox = await findBusybox();
  const nodePath = realpathSync(process.execPath);
  const nodeStat = statSync(nodePath);
  const nodeId = `${process.version} ${nodePath} ${nodeStat.size} ${Math.floor(nodeStat.mtimeMs)}`;
  const busyboxId = `${busybox.path} ${sha256(busybox.data).slice(0, 16)}`;
  const agentSha = sha256(agent, '\n--cjs--\n', agentCjs);
  const helperId = compileCId(await readFile(helperSourcePath(root)));
  // /init mounts /dev/vda (or the driver's pmem) with this file system type, and starts the
  // CommonJS bundle of the agent (~100 ms sooner under TCG than the ES module: no ESM loader);
  // IMAGE_CMDLINE carries the guest's fixed network configuration (networking)
  const cmdline = [IMAGE_CMDLINE, ...(rootfsFormat === 'erofs' ? ['faascell.rootfstype=erofs'] : []), 'faascell.agent=cjs'].join(' ');
  const rootfsCompression = opts.rootfsCompression ?? 'none';
  const version = sha256(
    JSON.stringify({ builder: BUILDER_VERSION, kernel: kernel.id, init: sha256(initScript), agent: agentSha, node: nodeId, busybox: busyboxId, helper: helperId, cmdline, rootfsCompression, tuning }),
  ).slice(0, 16);
  const dir = join(imagesDir(cacheDir), version);

  const target: ImageTarget = { cacheDir, version, dir, currentFile: 'current.json', setCurrent: opts.setCurrent !== false, force: opts.force === true, log, t0 };
  const cached = await cachedImage(target);
  if (cached) return cached;

  log(`image: building ${version} (kernel ${kernel.id}, node ${process.version}, agent ${agentSha.slice(0, 12)})`);
  return buildImageDir(target, async (work) => {
    const { modules, helper } = await bootFiles(work, kernel, root, log);
    await writeFile(join(work, 'initrd.cpio.gz'), initramfs(busybox, initScript, kernel, modules, helper));
    log(
      `image: initramfs with busybox (${busybox.applets.length} applets)${helper ? ', faascell-helper' : ''}${kernel.modules.length ? ` and ${kernel.modules.length} modules` : ''}`,
    );

    // Root fs: node + its libraries + the agent.
    const staging = join(work, 'rootfs');
    for (const d of ['bin', 'lib', 'lib64', 'agent']) await mkdir(join(staging, d), { recursive: true });
    await copyFile(nodePath, join(staging, 'bin', 'node'));
    const { libs, loader } = await nodeLibraries(nodePath);
    for (const [soname, real] of libs) await copyFile(real, join(staging, 'lib', soname));
    await copyFile(loader, join(staging, 'lib64', 'ld-linux-x86-64.so.2'));
    await writeFile(join(staging, 'agent', 'agent.mjs'), agent);
    await writeFile(join(staging, 'agent', 'agent.cjs'), agentCjs);
    await writeFile(join(staging, 'agent', 'package.json'), '{"type":"module"}\n');
    for (const f of ['bin/node', 'lib64/ld-linux-x86-64.so.2']) await chmod(join(staging, f), 0o755);
    if (rootfsFormat === 'erofs') {
      log(`image: erofs (DAX root) with node ${process.version} and ${libs.size} libraries`);
      await erofs(staging, join(work, rootfsFile));
    } else {
      log(`image: squashfs (${rootfsCompression}) with node ${process.version} and ${libs.size} libraries`);
      await squashfs(staging, join(work, rootfsFile), rootfsCompression);
    }
    await rm(staging, { recursive: true, force: true });
    return imageManifest(target, work, kernel, rootfsFile, rootfsFormat, cmdline, {
      node: process.version,
      nodeBinary: nodePath,
      kernelId: kernel.id,
      busybox: busyboxId,
      agentSha256: agentSha,
      rootfsCompression,
      tuning,
    });
  });
}

// ---------------------------------------------------------------------------
// Steps every image shares (the Node image above, the Python image in python.ts)

/** An image directory to find or make: where it goes and which current*.json names it. */
export interface ImageTarget {
  cacheDir: string;
  version: string;
  dir: string;
  /** current.json (the Node image), current-python3.json (issue 21) */
  currentFile: string;
  setCurrent: boolean;
  force: boolean;
  log: Log;
  /** when the build began (buildMs) */
  t0: number;
}

async function markCurrent(t: ImageTarget): Promise<void> {
  if (!t.setCurrent) return;
  const tmp = join(imagesDir(t.cacheDir), `.${t.currentFile.replace(/\.json$/, '')}-${process.pid}.json`);
  await writeFile(tmp, `${JSON.stringify({ version: t.version, dir: t.dir, updatedAt: new Date().toISOString() }, null, 2)}\n`);
  await rename(tmp, join(imagesDir(t.cacheDir), t.currentFile));
}

/** The image if it is built already (unless forced); it becomes the current one. */
export async function cachedImage(t: ImageTarget): Promise<(GuestImage & { buildMs: number; cached: boolean }) | undefined> {
  if (t.force) return undefined;
  const m = await readManifest(t.dir);
  if (!m) return undefined;
  await markCurrent(t);
  t.log(`image ${t.version} is up to date (${t.dir})`);
  return { ...toGuestImage(m, t.dir), buildMs: Date.now() - t.t0, cached: true };
}

/** Kernel (copied: a kernel cache cleanup cannot break the image), its modules, and the helper for the initramfs. */
export async function bootFiles(work: string, kernel: Kernel, root: string, log: Log): Promise<{ modules: Buffer[]; helper: Buffer | undefined }> {
  await copyFile(kernel.vmlinuxPath, join(work, 'vmlinux'));
  const modules = await Promise.all(kernel.modules.map((m) => readFile(m.path)));
  const helper = await buildHelper(root, work, log);
  await rm(join(work, 'faascell-helper'), { force: true });
  return { modules, helper };
}

/** The manifest of an image whose files are in `work` (sizes read there, paths in its final directory). */
export function imageManifest(
  t: ImageTarget,
  work: string,
  kernel: Kernel,
  rootfsFile: string,
  rootfsFormat: 'erofs' | 'squashfs',
  cmdline: string,
  build: Omit<ImageManifest['build'], 'builderVersion' | 'builtAt' | 'buildMs' | 'host'>,
): ImageManifest {
  return {
    version: t.version,
    dir: t.dir,
    kernelPath: join(t.dir, 'vmlinux'),
    kernelKind: kernel.kind,
    initrdPath: join(t.dir, 'initrd.cpio.gz'),
    rootfsPath: join(t.dir, rootfsFile),
    cmdline,
    sizes: {
      kernelBytes: statSync(join(work, 'vmlinux')).size,
      initrdBytes: statSync(join(work, 'initrd.cpio.gz')).size,
      rootfsBytes: statSync(join(work, rootfsFile)).size,
    },
    rootfsFormat,
    kernelFeatures: kernel.features,
    build: { builderVersion: BUILDER_VERSION, ...build, builtAt: new Date().toISOString(), buildMs: Date.now() - t.t0, host: `${process.platform}-${process.arch}` },
  };
}

/**
 * Makes the image in a private work directory (`fill` writes its files and returns its manifest),
 * then moves it in: another process may have finished the same version meanwhile (VMs may already
 * use it), and then theirs is kept; otherwise a broken leftover is replaced.
 */
export async function buildImageDir(t: ImageTarget, fill: (work: string) => Promise<ImageManifest>): Promise<GuestImage & { buildMs: number; cached: boolean }> {
  const work = join(imagesDir(t.cacheDir), `.build-${t.version}-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const manifest = await fill(work);
    await writeFile(join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    // every jailed VMM (its own uid) reads these through read-only binds: readable whatever the
    // builder's umask (the daemon runs with 077, issue 19); nothing in them is secret
    for (const e of await readdir(work, { withFileTypes: true })) await chmod(join(work, e.name), e.isDirectory() ? 0o755 : 0o644);
    await chmod(work, 0o755);
    const theirs = await readManifest(t.dir);
    if (theirs && !t.force) {
      await rm(work, { recursive: true, force: true });
      await markCurrent(t);
      t.log(`image ${t.version} was built concurrently by another process; using it`);
      return { ...toGuestImage(theirs, t.dir), buildMs: Date.now() - t.t0, cached: true };
    }
    await rm(t.dir, { recursive: true, force: true });
    await rename(work, t.dir);
    await markCurrent(t);
    await pruneImages(t.cacheDir, t.version, t.log);
    const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
    const { sizes } = manifest;
    t.log(`image ${t.version} ready in ${t.dir}: kernel ${mb(sizes.kernelBytes)} (${manifest.kernelKind}), initrd ${mb(sizes.initrdBytes)}, rootfs ${mb(sizes.rootfsBytes)}, ${manifest.build.buildMs} ms`);
    return { ...toGuestImage(manifest, t.dir), buildMs: manifest.build.buildMs, cached: false };
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}

/** Read an image's manifest (build info included). */
export function readImageManifest(dir: string): ImageManifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ImageManifest;
}
