// Firecracker's jailer (its own uid/gid, chroot via pivot_root in a new mount
// namespace, cgroups, optional network namespace), used by the Firecracker
// driver when the jailer binary exists. Written to the jailer's documented
// interface (docs/jailer.md of Firecracker v1.x); the command line and file
// placement are unit-tested, never run against a real jailer here (no binary,
// no usable KVM on the development machine).
//
//   jailer --id ID --exec-file FC --uid U --gid G --chroot-base-dir BASE
//          --cgroup-version 1|2 [--parent-cgroup P] [--cgroup file=value]...
//          [--netns PATH] -- FIRECRACKER ARGS
//
// The jail is BASE/<basename of FC>/ID/root. Everything the VM uses through
// the API (kernel, initrd, root fs, snapshot files) must be inside it: the
// driver hard-links (or copies) them in and refers to them by jail paths.

import fs from 'node:fs/promises';
import path from 'node:path';
import type { LaunchSpec } from '../jail/launch.js';

export interface JailerConfig {
  binary: string;
  chrootBase: string;
  uid: number;
  gid: number;
  cgroupVersion: 1 | 2;
  /** cgroup path (relative to each hierarchy's root) the VM cgroups are created under. */
  parentCgroup?: string;
  /** `file=value` settings written to the VM's cgroup, e.g. memory.max=... */
  cgroups: string[];
  /** A network namespace to join (path of its handle, e.g. /var/run/netns/NS). */
  netns?: string;
}

/** API socket path inside the jail (Firecracker's default). */
export const JAILED_API_SOCKET = '/run/firecracker.socket';
export const JAILED_LOG_FILE = '/firecracker.log';

export interface JailLayout {
  /** BASE/<exec name>/ID: removed when the VM is gone. */
  jailDir: string;
  /** jailDir/root: "/" for the jailed Firecracker. */
  chrootDir: string;
  /** Host path of a path inside the jail. */
  onHost(inJail: string): string;
}

export class JailerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JailerConfigError';
  }
}

/** The jailer requires an id of alphanumerics and '-', at most 64 characters; and an exec file named *firecracker*. */
export function jailLayout(chrootBase: string, firecrackerBinary: string, id: string): JailLayout {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw new JailerConfigError(`jailer id must be 1-64 characters of [A-Za-z0-9-], got "${id}"`);
  const execName = path.basename(firecrackerBinary);
  if (!execName.includes('firecracker')) throw new JailerConfigError(`the jailer only runs an exec file whose name contains "firecracker", got ${execName}`);
  const jailDir = path.join(path.resolve(chrootBase), execName, id);
  const chrootDir = path.join(jailDir, 'root');
  return {
    jailDir,
    chrootDir,
    onHost: (inJail) => {
      const rel = path.posix.normalize('/' + inJail);
      if (rel.split('/').includes('..')) throw new JailerConfigError(`jail path ${inJail} leaves the jail`);
      return path.join(chrootDir, rel);
    },
  };
}

/** The command that starts Firecracker through the jailer. Pure. */
export function jailerCommand(id: string, firecrackerBinary: string, cfg: JailerConfig, firecrackerArgs: string[]): LaunchSpec {
  if (cfg.uid === 0 || cfg.gid === 0) throw new JailerConfigError('the jailed Firecracker must not run as root');
  for (const c of cfg.cgroups) if (!/^[a-z_]+\.[a-z_.]+=\S+$/.test(c)) throw new JailerConfigError(`bad cgroup setting "${c}" (expected file=value)`);
  jailLayout(cfg.chrootBase, firecrackerBinary, id);
  const argv = [
    '--id',
    id,
    '--exec-file',
    firecrackerBinary,
    '--uid',
    String(cfg.uid),
    '--gid',
    String(cfg.gid),
    '--chroot-base-dir',
    path.resolve(cfg.chrootBase),
    '--cgroup-version',
    String(cfg.cgroupVersion),
  ];
  if (cfg.parentCgroup) argv.push('--parent-cgroup', cfg.parentCgroup.replace(/^\/+/, ''));
  for (const c of cfg.cgroups) argv.push('--cgroup', c);
  if (cfg.netns) argv.push('--netns', cfg.netns);
  // the jailer passes --id itself; everything after -- goes to Firecracker
  argv.push('--', ...firecrackerArgs.filter((a, i, all) => a !== '--id' && all[i - 1] !== '--id'));
  return { cmd: cfg.binary, argv };
}

/**
 * Puts a host file into the jail under `name`: a hard link when both are on one
 * file system (the file keeps its owner and mode: it must be readable by the
 * jailed uid, as the guest image is), a copy otherwise. Returns its jail path.
 */
export async function placeInJail(layout: JailLayout, src: string, name: string): Promise<string> {
  const inJail = '/' + name.replace(/^\/+/, '');
  const dest = layout.onHost(inJail);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.rm(dest, { force: true });
  try {
    await fs.link(src, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await fs.copyFile(src, dest);
  }
  return inJail;
}

/** Moves a file the jailed Firecracker wrote out of the jail to `dest` (rename, or copy across file systems). */
export async function takeFromJail(layout: JailLayout, inJail: string, dest: string): Promise<void> {
  const src = layout.onHost(inJail);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  try {
    await fs.rename(src, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await fs.copyFile(src, dest);
    await fs.rm(src, { force: true });
  }
  await fs.chown(dest, 0, 0).catch(() => undefined);
}

/** Creates the jail's directories the jailed Firecracker writes to (its API socket dir, its log). */
export async function prepareJail(layout: JailLayout, uid: number, gid: number): Promise<void> {
  await fs.rm(layout.jailDir, { recursive: true, force: true }); // a stale jail of the same id
  for (const d of ['/run', '/snapshot']) {
    await fs.mkdir(layout.onHost(d), { recursive: true });
    await fs.chown(layout.onHost(d), uid, gid);
  }
  await fs.writeFile(layout.onHost(JAILED_LOG_FILE), '');
  await fs.chown(layout.onHost(JAILED_LOG_FILE), uid, gid);
}
