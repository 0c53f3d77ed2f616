// Guest kernels. 'minimal': tinyconfig + guest/image/kernel.config built from
// Debian's linux-source tarball (everything built in, boots 2-4x faster under
// TCG). 'debian': the distribution's generic kernel, whose virtio and squashfs
// drivers are modules that the initramfs loads. Both are cached under
// <cacheDir>/kernels/ by the identity of their inputs.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type Log, run, runOk, sha256, which } from './exec.js';
import { processAlive } from '../core/process-alive.js';

export interface Kernel {
  kind: 'minimal' | 'debian';
  /** Extra kernel.config fragments built in (minimal only; see KernelFeature). */
  features: KernelFeature[];
  /** Identity of the kernel's inputs (part of the image version). */
  id: string;
  vmlinuxPath: string;
  /** Modules for the initramfs in load order (debian only). */
  modules: { name: string; path: string }[];
}

/**
 * Optional fragments on top of guest/image/kernel.config (guest/image/kernel-<name>.config):
 * tickless (NO_HZ_IDLE, HZ=100, high-res timers), dax (legacy pmem + FS_DAX + EROFS: the root fs
 * mapped from the host's page cache), balloon (virtio-balloon with free page reporting).
 */
export type KernelFeature = 'tickless' | 'dax' | 'balloon';
export const KERNEL_FEATURES: readonly KernelFeature[] = ['tickless', 'dax', 'balloon'];

/** Features in their canonical order, without duplicates (the order is part of the kernel's identity). */
export function canonicalFeatures(features: readonly KernelFeature[]): KernelFeature[] {
  return KERNEL_FEATURES.filter((f) => features.includes(f));
}

export const LINUX_SOURCE_TARBALL = '/usr/src/linux-source-6.1.tar.xz';
const BUILD_TOOLS = ['make', 'gcc', 'ld', 'flex', 'bison', 'bc', 'tar', 'xz', 'perl'];

/** Tools the minimal kernel build needs that are missing (empty: all there). */
export function missingBuildTools(tarball = LINUX_SOURCE_TARBALL): string[] {
  const missing = BUILD_TOOLS.filter((t) => !which(t));
  if (!existsSync(tarball)) missing.push(tarball);
  return missing;
}

/**
 * The minimal kernel's cache key: config fragment(s) + build recipe + source tarball identity.
 * Without features it is the key kernels had before features existed (their cache entries stay valid).
 */
export async function minimalKernelId(guestImageDir: string, features: readonly KernelFeature[] = [], tarball = LINUX_SOURCE_TARBALL): Promise<string> {
  const st = statSync(tarball);
  const extra: Array<string | Buffer> = [];
  for (const f of canonicalFeatures(features)) extra.push(`\n--${f}--\n`, await readFile(join(guestImageDir, `kernel-${f}.config`)));
  return sha256(
    'minimal-kernel-v1\n',
    await readFile(join(guestImageDir, 'kernel.config')),
    '\n--\n',
    await readFile(join(guestImageDir, 'build-kernel.sh')),
    '\n--\n',
    `${basename(tarball)} ${st.size} ${Math.floor(st.mtimeMs)}`,
    ...extra,
  ).slice(0, 16);
}

/** Returns the cached minimal kernel, or undefined. */
export async function cachedMinimalKernel(cacheDir: string, guestImageDir: string, features: readonly KernelFeature[] = []): Promise<Kernel | undefined> {
  if (!existsSync(LINUX_SOURCE_TARBALL)) return undefined;
  const id = await minimalKernelId(guestImageDir, features);
  const vmlinuxPath = join(cacheDir, 'kernels', id, 'vmlinux');
  return existsSync(vmlinuxPath) ? { kind: 'minimal', id: `minimal-${id}`, features: canonicalFeatures(features), vmlinuxPath, modules: [] } : undefined;
}

export function minimalKernelFailed(cacheDir: string, id: string): boolean {
  return existsSync(join(cacheDir, 'kernels', `${id}.failed`));
}

/** Build (or reuse) the minimal kernel. Takes ~6.5 min on 2 cores; the build tree is removed afterwards. */
export async function minimalKernel(cacheDir: string, guestImageDir: string, log: Log, force = false, features: readonly KernelFeature[] = []): Promise<Kernel> {
  const feats = canonicalFeatures(features);
  const id = await minimalKernelId(guestImageDir, feats);
  const kernelsDir = join(cacheDir, 'kernels');
  const finalDir = join(kernelsDir, id);
  const vmlinuxPath = join(finalDir, 'vmlinux');
  const result: Kernel = { kind: 'minimal', id: `minimal-${id}`, features: feats, vmlinuxPath, modules: [] };
  if (!force && existsSync(vmlinuxPath)) {
    log(`kernel: minimal ${id} cached (${vmlinuxPath})`);
    return result;
  }
  const missing = missingBuildTools();
  if (missing.length > 0) throw new Error(`cannot build the minimal kernel, missing: ${missing.join(', ')}`);
  await mkdir(kernelsDir, { recursive: true });

  // Someone else (another process) may be building the same kernel: wait for it rather than build twice.
  for (const name of existsSync(kernelsDir) ? readdirSync(kernelsDir) : []) {
    const m = /^\.build-([0-9a-f]+)-(\d+)$/.exec(name);
    if (m && m[1] === id && Number(m[2]) !== process.pid && processAlive(Number(m[2]))) {
      log(`kernel: another process (pid ${m[2]}) is building kernel ${id}, waiting for it`);
      while (processAlive(Number(m[2])) && !existsSync(vmlinuxPath)) await new Promise((r) => setTimeout(r, 2000));
      if (existsSync(vmlinuxPath)) return result;
    } else if (m) {
      await rm(join(kernelsDir, name), { recursive: true, force: true }); // leftover of a dead build
    }
  }

  const work = join(kernelsDir, `.build-${id}-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, 'src'), { recursive: true });
  await mkdir(join(work, 'out'), { recursive: true });
  const t0 = Date.now();
  log(`kernel: building minimal kernel ${id}${feats.length ? ` (+ ${feats.join(', ')})` : ''} from ${LINUX_SOURCE_TARBALL} in ${work} (about 6-7 min on 2 cores)`);
  // One fragment file for build-kernel.sh: kernel.config followed by the features' fragments.
  let fragment = join(guestImageDir, 'kernel.config');
  if (feats.length > 0) {
    fragment = join(work, 'fragment.config');
    const parts = [await readFile(join(guestImageDir, 'kernel.config'), 'utf8')];
    for (const f of feats) parts.push(await readFile(join(guestImageDir, `kernel-${f}.config`), 'utf8'));
    await writeFile(fragment, parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join(''));
  }
  const ticker = setInterval(() => log(`kernel: still building (${Math.round((Date.now() - t0) / 1000)} s)`), 30_000);
  try {
    const jobs = String(Math.max(1, Math.min(2, (await import('node:os')).availableParallelism())));
    await runOk(
      'sh',
      [join(guestImageDir, 'build-kernel.sh'), LINUX_SOURCE_TARBALL, fragment, join(work, 'src'), join(work, 'out', 'vmlinux'), jobs],
      { log, prefix: 'kernel: ' },
    );
    await rm(finalDir, { recursive: true, force: true });
    await rename(join(work, 'out'), finalDir);
    await rm(join(kernelsDir, `${id}.failed`), { force: true });
    log(`kernel: built in ${Math.round((Date.now() - t0) / 1000)} s -> ${vmlinuxPath} (${statSync(vmlinuxPath).size} bytes)`);
    return result;
  } catch (err) {
    await writeFile(join(kernelsDir, `${id}.failed`), `${new Date().toISOString()} ${String(err)}\n`);
    throw err;
  } finally {
    clearInterval(ticker);
    await rm(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Debian's generic kernel

/** Modules /init needs from the generic kernel; their dependencies are added from modules.dep. */
const DEBIAN_MODULES = ['virtio_mmio', 'virtio_console', 'virtio_blk', 'squashfs', 'virtio_net'];

const MAGICS: { name: string; magic: Buffer; cmd: [string, string[]] }[] = [
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), cmd: ['xz', ['-dc', '--single-stream']] },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), cmd: ['zstd', ['-dc']] },
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]), cmd: ['gzip', ['-dc']] },
];

/**
 * Extract the uncompressed ELF vmlinux from a bzImage: find a compressed
 * stream's magic, decompress from there (trailing data is ignored), and keep
 * the first result that is an ELF image.
 */
export async function extractVmlinux(bzImage: Buffer): Promise<{ vmlinux: Buffer; format: string }> {
  for (const m of MAGICS) {
    if (!which(m.cmd[0])) continue;
    let from = 0;
    for (let tries = 0; tries < 16; tries++) {
      const at = bzImage.indexOf(m.magic, from);
      if (at < 0) break;
      from = at + 1;
      const r = await run(m.cmd[0], m.cmd[1], { input: bzImage.subarray(at) });
      if (r.stdout.length > 1_000_000 && r.stdout.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
        return { vmlinux: r.stdout, format: `${m.name}@${at}` };
      }
    }
  }
  throw new Error('no decompressible ELF kernel found in the bzImage');
}

async function latestDebianPackage(): Promise<string | undefined> {
  if (!which('apt-cache')) return undefined;
  const r = await run('apt-cache', ['search', '--names-only', '^linux-image-6\\.1\\.0-[0-9]+-amd64$']);
  if (r.code !== 0) return undefined;
  const names = r.stdout
    .toString('utf8')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => /^linux-image-6\.1\.0-\d+-amd64$/.test(n));
  names.sort((a, b) => Number(/-(\d+)-amd64$/.exec(a)?.[1]) - Number(/-(\d+)-amd64$/.exec(b)?.[1]));
  return names.at(-1);
}

/** Every module file under root: module name (dashes as underscores) -> path. */
async function moduleFiles(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\.ko(\.(xz|zst|gz))?$/.test(e.name)) out.set(e.name.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_'), p);
    }
  };
  await walk(root);
  return out;
}

async function moduleBytes(path: string): Promise<Buffer> {
  // busybox insmod wants plain .ko files: decompress compressed modules here.
  if (path.endsWith('.xz')) return (await runOk('xz', ['-dc', path])).stdout;
  if (path.endsWith('.zst')) return (await runOk('zstd', ['-dc', path])).stdout;
  if (path.endsWith('.gz')) return (await runOk('gzip', ['-dc', path])).stdout;
  return readFile(path);
}

/** A module's dependencies, from the `depends=` entry of its .modinfo section (the package ships no modules.dep). */
function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const list = ko.subarray(at + '\0depends='.length, end).toString('utf8');
  return list ? list.split(',').map((s) => s.replace(/-/g, '_')) : [];
}

/** Load order for `wanted` and their dependencies (dependencies first). */
async function resolveModules(files: Map<string, string>, wanted: string[], builtin: Set<string>): Promise<{ name: string; data: Buffer }[]> {
  const order: { name: string; data: Buffer }[] = [];
  const seen = new Set<string>();
  const visit = async (name: string): Promise<void> => {
    if (seen.has(name)) return;
    seen.add(name);
    const path = files.get(name);
    if (!path) {
      if (builtin.has(name)) return;
      throw new Error(`module ${name} is neither in the package nor built in`);
    }
    const data = await moduleBytes(path);
    for (const d of moduleDepends(data)) await visit(d);
    order.push({ name: `${name}.ko`, data });
  };
  for (const w of wanted) await visit(w);
  return order;
}

async function cachedDebianKernels(kernelsDir: string): Promise<string[]> {
  if (!existsSync(kernelsDir)) return [];
  return (await readdir(kernelsDir))
    .filter((n) => /^debian-linux-image-6\.1\.0-\d+-amd64$/.test(n) && existsSync(join(kernelsDir, n, 'kernel.json')))
    .sort((a, b) => Number(/-(\d+)-amd64$/.exec(a)?.[1]) - Number(/-(\d+)-amd64$/.exec(b)?.[1]));
}

/** A cached extraction made for an older DEBIAN_MODULES list (e.g. without virtio_net) is made again. */
async function hasWantedModules(dir: string): Promise<boolean> {
  const info = JSON.parse(await readFile(join(dir, 'kernel.json'), 'utf8')) as { wanted?: string[] };
  return DEBIAN_MODULES.every((m) => info.wanted?.includes(m));
}

async function loadDebian(dir: string): Promise<Kernel> {
  const info = JSON.parse(await readFile(join(dir, 'kernel.json'), 'utf8')) as { id: string; modules: string[] };
  return {
    kind: 'debian',
    features: [],
    id: info.id,
    vmlinuxPath: join(dir, 'vmlinux'),
    modules: info.modules.map((name) => ({ name, path: join(dir, 'modules', name) })),
  };
}

/** Download (apt-get download, no install) the newest linux-image-6.1.0-*-amd64, extract vmlinux and the needed modules. */
export async function debianKernel(cacheDir: string, log: Log, force = false): Promise<Kernel> {
  const kernelsDir = join(cacheDir, 'kernels');
  const pkg = await latestDebianPackage();
  if (!pkg) {
    const cached = await cachedDebianKernels(kernelsDir);
    if (cached.length > 0) {
      log(`kernel: apt-cache unavailable, using cached ${cached.at(-1)}`);
      return loadDebian(join(kernelsDir, cached.at(-1)!));
    }
    throw new Error('no linux-image-6.1.0-*-amd64 package found (apt-cache search) and none cached');
  }
  const finalDir = join(kernelsDir, `debian-${pkg}`);
  if (!force && existsSync(join(finalDir, 'kernel.json')) && (await hasWantedModules(finalDir))) {
    log(`kernel: debian ${pkg} cached (${finalDir})`);
    return loadDebian(finalDir);
  }
  for (const t of ['apt-get', 'dpkg']) if (!which(t)) throw new Error(`cannot fetch the Debian kernel: ${t} missing`);
  const work = join(kernelsDir, `.debian-${process.pid}-${Date.now()}`);
  await mkdir(join(work, 'x'), { recursive: true });
  try {
    log(`kernel: apt-get download ${pkg}`);
    await runOk('apt-get', ['download', pkg], { cwd: work });
    const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download produced no .deb');
    await runOk('dpkg', ['-x', join(work, deb), join(work, 'x')]);
    const boot = join(work, 'x', 'boot');
    const vmlinuz = (await readdir(boot)).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error(`no vmlinuz in ${deb}`);
    const release = vmlinuz.slice('vmlinuz-'.length);
    const { vmlinux, format } = await extractVmlinux(await readFile(join(boot, vmlinuz)));
    log(`kernel: extracted vmlinux (${vmlinux.length} bytes, ${format} stream) from ${vmlinuz}`);

    const out = join(work, 'out');
    await mkdir(join(out, 'modules'), { recursive: true });
    await writeFile(join(out, 'vmlinux'), vmlinux);
    const modRoot = existsSync(join(work, 'x', 'lib', 'modules', release))
      ? join(work, 'x', 'lib', 'modules', release)
      : join(work, 'x', 'usr', 'lib', 'modules', release);
    const builtinText = existsSync(join(modRoot, 'modules.builtin')) ? await readFile(join(modRoot, 'modules.builtin'), 'utf8') : '';
    const builtin = new Set(
      builtinText
        .split('\n')
        .filter(Boolean)
        .map((l) => basename(l).replace(/\.ko$/, '').replace(/-/g, '_')),
    );
    const mods = await resolveModules(await moduleFiles(modRoot), DEBIAN_MODULES, builtin);
    const names: string[] = [];
    for (const m of mods) {
      await writeFile(join(out, 'modules', m.name), m.data);
      names.push(m.name);
    }
    log(`kernel: modules for the initramfs: ${names.join(' ')}`);
    const id = `debian-${release}-${sha256(vmlinux, names.join(',')).slice(0, 12)}`;
    await writeFile(join(out, 'kernel.json'), `${JSON.stringify({ id, package: pkg, release, modules: names, wanted: DEBIAN_MODULES }, null, 2)}\n`);
    await rm(finalDir, { recursive: true, force: true });
    await rename(out, finalDir);
    return loadDebian(finalDir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
