// The per-VM jail: a launch layer that starts the VMM in its own mount
// namespace whose root is a private tmpfs holding only what this VM needs
// (the system's /usr read-only, a few device nodes, and this VM's own files:
// kernel, initrd and root fs read-only; its run directory; its RAM file), then
// drops every privilege before exec'ing the VMM:
//
//   unshare -m --propagation private -- sh -c SCRIPT
//     SCRIPT: mount tmpfs; bind the VM's files at their host paths; mknod devices;
//             pivot_root into it; detach the old root; remount / read-only;
//             exec setpriv --reuid U --regid G --groups G --bounding-set -all
//                          --inh-caps -all --nnp --pdeathsig KILL -- VMM ARGS
//
// Files keep their host paths inside the jail, so the VMM's command line is the
// same with or without a jail (and the daemon's reaper still recognises a VMM by
// its run directory in /proc/PID/cmdline). Everything is undone by the kernel
// when the VMM exits: the namespace and its mounts die with their last process.

import path from 'node:path';
import { assertSafePath, shellQuote } from './shell.js';
import type { LaunchLayer, LaunchSpec } from './launch.js';

export interface JailBind {
  /** Host path. Shown at the same path inside the jail. */
  path: string;
  kind: 'file' | 'dir';
  writable: boolean;
}

export interface JailDevice {
  path: string;
  major: number;
  minor: number;
  /** File mode of the node inside the jail, e.g. 0o666; owned by the VMM's uid/gid. */
  mode: number;
}

export interface JailSpec {
  /**
   * An existing directory the jail's root tmpfs is mounted on. The mount exists
   * only inside the VM's own mount namespace, so every VM may use the same one.
   */
  mountPoint: string;
  uid: number;
  gid: number;
  /** Supplementary groups (besides gid). */
  groups: number[];
  /** Host directories shown read-only (the VMM binary and its libraries: /usr). */
  systemDirs: string[];
  /** Symbolic links at the jail's top (merged /usr: lib -> usr/lib ...). */
  symlinks: Array<{ path: string; target: string }>;
  devices: JailDevice[];
  binds: JailBind[];
  /** Size of the root tmpfs (it holds only directories and device nodes). */
  rootSizeKiB?: number;
}

export interface JailTools {
  unshare: string;
  sh: string;
}

export class JailSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JailSpecError';
  }
}

function checkId(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe) throw new JailSpecError(`${what} must be a uid/gid number, got ${v}`);
}

function parentDirs(p: string): string[] {
  const out: string[] = [];
  const parts = p.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) out.push('/' + parts.slice(0, i).join('/'));
  return out;
}

/** Validates a spec: ids, safe absolute paths, no root privileges handed out. */
export function validateJailSpec(spec: JailSpec): void {
  assertSafePath('jail mountPoint', spec.mountPoint);
  checkId('uid', spec.uid);
  checkId('gid', spec.gid);
  for (const g of spec.groups) checkId('group', g);
  if (spec.uid === 0 || spec.gid === 0 || spec.groups.includes(0)) throw new JailSpecError('a jailed VMM must not run as root (uid, gid or group 0)');
  for (const d of spec.systemDirs) assertSafePath('system dir', d);
  for (const b of spec.binds) assertSafePath(`bind ${b.kind}`, b.path);
  for (const s of spec.symlinks) {
    assertSafePath('symlink', s.path);
    if (/[\n\0]/.test(s.target)) throw new JailSpecError(`symlink target ${JSON.stringify(s.target)} contains a newline or NUL`);
  }
  for (const d of spec.devices) {
    assertSafePath('device', d.path);
    if (!d.path.startsWith('/dev/')) throw new JailSpecError(`device ${d.path} must be under /dev`);
    if (!Number.isInteger(d.major) || !Number.isInteger(d.minor) || d.major < 0 || d.minor < 0) throw new JailSpecError(`device ${d.path}: bad major/minor`);
  }
}

/** The /bin/sh script run as root inside the new mount namespace. Pure: unit-tested. */
export function jailScript(spec: JailSpec): string {
  validateJailSpec(spec);
  const q = shellQuote;
  const R = spec.mountPoint.replace(/\/+$/, '');
  const inRoot = (p: string) => q(R + p);
  // the daemon's umask is 077 (issue 19): the jail's directories must stay traversable by the VMM's uid
  const lines: string[] = ['set -eu', 'umask 022'];
  // no nodev: the device nodes below live on this tmpfs; it is read-only before the VMM starts
  lines.push(`mount -t tmpfs -o size=${spec.rootSizeKiB ?? 1024}k,mode=0755,nosuid faascell-jail ${q(R)}`);
  const dirs = new Set<string>(['/dev', '/.old-root']);
  for (const d of spec.systemDirs) {
    for (const p of parentDirs(d)) dirs.add(p);
    dirs.add(d);
  }
  for (const b of spec.binds) {
    for (const p of parentDirs(b.path)) dirs.add(p);
    if (b.kind === 'dir') dirs.add(b.path);
  }
  for (const d of spec.devices) for (const p of parentDirs(d.path)) dirs.add(p);
  lines.push(`mkdir -p ${[...dirs].sort().map(inRoot).join(' ')}`);
  for (const d of spec.systemDirs) lines.push(`mount --bind -o ro ${q(d)} ${inRoot(d)}`);
  // every exec below costs about a millisecond on each VM start: batched where the tool allows
  // umount finds mounts through /proc/self/mountinfo: /proc points into the old root until that is detached
  const links = [...spec.symlinks, { path: '/proc', target: '.old-root/proc' }];
  // links named after their target's last component go in one `ln` (ln -s T1 T2 … DIR)
  const batch = links.filter((l) => l.path === '/' + path.posix.basename(l.target));
  if (batch.length > 0) lines.push(`ln -s ${batch.map((l) => q(l.target)).join(' ')} ${q(R + '/')}`);
  for (const l of links.filter((x) => !batch.includes(x))) lines.push(`ln -s ${q(l.target)} ${inRoot(l.path)}`);
  for (const d of spec.devices) lines.push(`mknod -m ${d.mode.toString(8).padStart(4, '0')} ${inRoot(d.path)} c ${d.major} ${d.minor}`);
  // a node only the VMM may open (e.g. /dev/kvm, mode 0600) belongs to its uid
  const owned = spec.devices.filter((d) => (d.mode & 0o006) === 0).map((d) => inRoot(d.path));
  if (owned.length > 0) lines.push(`chown ${spec.uid}:${spec.gid} ${owned.join(' ')}`);
  const files = spec.binds.filter((b) => b.kind === 'file');
  if (files.length > 0) lines.push(`touch ${files.map((b) => inRoot(b.path)).join(' ')}`);
  for (const b of spec.binds) lines.push(`mount --bind${b.writable ? '' : ' -o ro'} ${q(b.path)} ${inRoot(b.path)}`);
  // pivot_root rather than chroot: afterwards no mount of the host is left in this namespace
  // rm -d: only an empty directory (the detached old root) and the /proc link, never recursively
  lines.push(`cd ${q(R)}`, 'pivot_root . .old-root', 'cd /', 'umount -l /.old-root', 'rm -d /.old-root /proc', 'mount -o remount,ro,nosuid /');
  const groups = [spec.gid, ...spec.groups.filter((g) => g !== spec.gid)].join(',');
  lines.push(
    `exec setpriv --reuid ${spec.uid} --regid ${spec.gid} --groups ${groups} --bounding-set -all --inh-caps -all --no-new-privs --pdeathsig KILL -- "$@"`,
  );
  return lines.join('\n');
}

/**
 * The jail as a launch layer. The inner command must be reachable inside the
 * jail at the same path (the VMM binary under a system dir or bound).
 */
export function jailLayer(spec: JailSpec, tools: JailTools): LaunchLayer {
  const script = jailScript(spec);
  return {
    name: 'jail',
    wrap: (inner: LaunchSpec): LaunchSpec => ({
      cmd: tools.unshare,
      argv: ['--mount', '--propagation', 'private', '--', tools.sh, '-c', script, 'faascell-jail', inner.cmd, ...inner.argv],
    }),
  };
}
