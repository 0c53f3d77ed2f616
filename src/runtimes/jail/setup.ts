// Turns the daemon's `jail` and `limits` settings into a VmmIsolation: looks up
// the VMM user and its uid block, detects the cgroup hierarchies, removes the
// cgroups a killed daemon left, and reports what is in force for /v1/status.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CgroupManager, CONTROLLERS, detectHostCgroups, limitFiles, type CgroupLayout, type CgroupPreference, type CgroupStatus, type DaemonCgroup, type LimitSettings } from './cgroups.js';
import type { FirecrackerJailerOptions } from '../firecracker/jailed.js';
import { lookupUser, readSubUids, UidAllocator, type IdRange } from './ids.js';
import { VmmIsolation } from './isolation.js';
import type { Logger } from '../../core/logger.js';

export interface IsolationConfig {
  stateDir: string;
  jail: { enabled: boolean | 'auto'; user: string; uidRange?: IdRange; seccomp: boolean };
  limits: {
    cgroup: CgroupPreference;
    cgroupParent?: string;
    memoryOverheadMiB: number;
    cpuWeight: number;
    /** issue 18: a VM's CPU weight while it starts ('off' or absent: cpuWeight throughout) */
    startCpuWeight?: number | 'off';
    /** issue 18: the daemon's own CPU weight beside its VMs ('off': it stays in its cgroup) */
    daemonCpuWeight?: number | 'off';
    cpuQuota: number | null;
    pidsMax: number;
  };
}

export interface LimitsStatus {
  cgroup: CgroupStatus;
  memoryOverheadMiB: number;
  cpuWeight: number;
  /** host CPUs per vCPU, null: no quota */
  cpuQuotaPerVcpu: number | null;
  pidsMax: number;
  /** issue 18: the daemon's own cgroup (cpu hierarchy) and weight; null: it stays where it was started */
  daemonCgroup: { path: string; weight: number } | null;
}

export interface IsolationReport {
  jailed: boolean;
  /** why the VMMs are not jailed, when they are not */
  reason?: string;
  user?: string;
  uids?: 'per-vm' | 'shared';
  uidRange?: IdRange;
  seccomp: boolean;
}

export interface IsolationSetup {
  vmm: VmmIsolation;
  seccomp: boolean;
  limits(): LimitsStatus;
  isolation(): IsolationReport;
  /** Removes this daemon's (now empty) cgroup group directories. */
  shutdown(): Promise<void>;
  /** The group every jailed VMM runs in (owner of what they must open, e.g. taps); undefined when not jailed. */
  vmmGroup: number | undefined;
  /** The same identity, uids and limits for Firecracker's jailer; undefined when VMMs are not jailed. */
  firecrackerJailer(chrootBase: string): FirecrackerJailerOptions | undefined;
}

/**
 * Run the rest of a daemon's start after its isolation set-up; if it fails, undo the set-up (issue 18: the daemon
 * moves back to its own cgroup and removes its `<group>-daemon` directory and its VMs' empty group, only those of
 * this state directory) and rethrow the start's error.
 */
export async function undoIsolationIfFails<T>(isolation: Pick<IsolationSetup, 'shutdown'>, start: () => Promise<T>, log: Pick<Logger, 'warn'>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    await isolation.shutdown().catch((e: unknown) => log.warn('the isolation set-up of a failed start stays', { err: (e as Error).message }));
    throw err;
  }
}

export class IsolationConfigError extends Error {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
    this.name = 'IsolationConfigError';
  }
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** What setupIsolation reads of the host (unit tests: a fake cgroup tree in a temporary directory, no root). */
export interface IsolationHost {
  root(): boolean;
  detectCgroups(prefer: CgroupPreference, parent?: string): CgroupLayout;
  /** prefixes every cgroup path (CgroupManager's fsRoot) */
  fsRoot: string;
  /** /proc/self/cgroup */
  procSelfCgroup(): string;
}

const THIS_HOST: IsolationHost = { root: isRoot, detectCgroups: detectHostCgroups, fsRoot: '', procSelfCgroup: () => fs.readFileSync('/proc/self/cgroup', 'utf8') };

export function cgroupGroupName(stateDir: string): string {
  return `faascell-${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`;
}

function findTool(name: string): string | undefined {
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    const p = `${dir}/${name}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

export async function setupIsolation(c: IsolationConfig, log: Pick<Logger, 'warn' | 'info'>, host: IsolationHost = THIS_HOST): Promise<IsolationSetup> {
  // ---- jail
  let jailReason: string | undefined;
  let identity = undefined as ReturnType<typeof lookupUser>;
  let uids: UidAllocator | undefined;
  const tools = { unshare: findTool('unshare'), sh: '/bin/sh' };
  const tryJail = c.jail.enabled !== false;
  if (!tryJail) jailReason = 'jail.enabled is false';
  else if (!host.root()) jailReason = 'the daemon does not run as root (it cannot change uid or mount)';
  else if (!tools.unshare || !findTool('setpriv') || !findTool('pivot_root')) jailReason = 'util-linux tools (unshare, setpriv, pivot_root) are missing';
  else {
    identity = lookupUser(c.jail.user);
    if (!identity) jailReason = `user ${c.jail.user} does not exist (scripts/setup.sh creates it)`;
    else if (identity.uid === 0 || identity.gid === 0) jailReason = `user ${c.jail.user} is root`;
  }
  if (jailReason && c.jail.enabled === true) throw new IsolationConfigError(`jail.enabled is true but the VMMs cannot be jailed: ${jailReason}`, 'jail.enabled');
  if (jailReason) {
    identity = undefined;
    if (tryJail) log.warn('VMMs run unjailed', { reason: jailReason });
  } else if (identity) {
    const range = c.jail.uidRange ?? readSubUids(identity.user, identity.uid);
    if (range) uids = new UidAllocator(range);
    else log.warn('no uid block for the VMM user in /etc/subuid: every VMM shares one uid', { user: identity.user });
  }

  // ---- cgroups
  const settings: LimitSettings = {
    memoryOverheadMiB: c.limits.memoryOverheadMiB,
    cpuWeight: c.limits.cpuWeight,
    startCpuWeight: c.limits.startCpuWeight === undefined || c.limits.startCpuWeight === 'off' ? null : c.limits.startCpuWeight,
    cpuQuotaPerVcpu: c.limits.cpuQuota,
    pidsMax: c.limits.pidsMax,
  };
  let layout = host.detectCgroups(c.limits.cgroup, c.limits.cgroupParent);
  if (layout.mode !== 'none' && !host.root()) {
    layout = { mode: 'none', controllers: {}, notes: [...layout.notes, 'the daemon does not run as root: no per-VM cgroups'] };
  }
  if (c.limits.cgroup !== 'off' && c.limits.cgroup !== 'auto' && layout.mode === 'none') {
    throw new IsolationConfigError(`limits.cgroup is ${c.limits.cgroup} but no controller is usable there: ${layout.notes.join('; ')}`, 'limits.cgroup');
  }
  const cgroups = new CgroupManager(layout, cgroupGroupName(c.stateDir), settings, host.fsRoot);
  if (cgroups.enabled) {
    const reaped = await cgroups.reap();
    if (reaped.cgroups > 0) log.warn('removed VM cgroups left by a previous daemon', { ...reaped });
  } else if (c.limits.cgroup !== 'off') {
    log.warn('no per-VM cgroup limits', { notes: layout.notes });
  }
  // issue 18: the daemon beside its VMs' group, with a larger CPU weight
  let daemonCg: DaemonCgroup | undefined;
  const daemonWeight = c.limits.daemonCpuWeight ?? 'off';
  if (cgroups.enabled && daemonWeight !== 'off') {
    try {
      daemonCg = cgroups.placeDaemon(daemonWeight, host.procSelfCgroup());
    } catch (err) {
      log.warn('the daemon keeps its cgroup (limits.daemonCpuWeight not applied)', { err: (err as Error).message });
    }
  }
  log.info('VMM isolation', { jailed: !!identity, uids: uids ? 'per-vm' : identity ? 'shared' : undefined, cgroups: layout.mode, seccomp: c.jail.seccomp, daemonCgroup: daemonCg?.dir });

  const vmm = new VmmIsolation({
    jail: identity && tools.unshare ? { identity, uids, mountPoint: path.join(c.stateDir, 'jail-root'), tools: { unshare: tools.unshare, sh: tools.sh } } : undefined,
    cgroups: cgroups.enabled ? cgroups : undefined,
  });
  return {
    vmm,
    seccomp: c.jail.seccomp,
    limits: () => ({ cgroup: cgroups.status(), ...settings, daemonCgroup: daemonCg ? { path: daemonCg.dir, weight: daemonCg.weight } : null }),
    isolation: () => ({
      jailed: !!identity,
      reason: jailReason,
      user: identity?.user,
      uids: identity ? (uids ? 'per-vm' : 'shared') : undefined,
      uidRange: uids?.range,
      seccomp: c.jail.seccomp,
    }),
    shutdown: async () => {
      if (daemonCg) {
        await cgroups.releaseDaemon(daemonCg).catch((err: unknown) => log.warn('the daemon cgroup stays', { err: (err as Error).message }));
        daemonCg = undefined;
      }
      if (cgroups.enabled) await cgroups.removeGroup();
    },
    vmmGroup: identity && tools.unshare ? identity.gid : undefined,
    firecrackerJailer: (chrootBase) => {
      if (!identity) return undefined;
      const id = identity;
      // the jailer takes one parent path for every hierarchy: the group, at each hierarchy's root
      const version = layout.mode === 'v2' ? 2 : 1;
      const usable = CONTROLLERS.filter((c) => layout.controllers[c]?.version === (version === 2 ? 'v2' : 'v1'));
      return {
        chrootBase,
        uid: () => uids?.allocate() ?? id.uid,
        releaseUid: (u) => uids?.release(u),
        gid: id.gid,
        cgroupVersion: version,
        parentCgroup: cgroups.enabled ? cgroups.group : undefined,
        cgroups: (cfg) =>
          cgroups.enabled
            ? usable.flatMap((c) => limitFiles(c, version === 2 ? 'v2' : 'v1', { memoryMiB: cfg.memoryMiB, vcpus: cfg.vcpus }, settings).filter((f) => !f.optional).map((f) => `${f.file}=${f.value}`))
            : [],
        cgroupDirs: (vmId) => [...new Set(usable.map((c) => path.join(layout.controllers[c]!.mount, cgroups.group, vmId)))],
      };
    },
  };
}
