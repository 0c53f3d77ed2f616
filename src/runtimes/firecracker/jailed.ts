// One jailed Firecracker: the jailer command, the chroot's layout, moving files
// in and out of it, and removing it (and the VM's cgroups) when the VM is gone.

import fs from 'node:fs/promises';
import type { VmConfig } from '../types.js';
import type { LaunchSpec } from '../jail/launch.js';
import { findBinary, firecrackerInstanceId } from './driver.js';
import { JAILED_API_SOCKET, JAILED_LOG_FILE, jailerCommand, jailLayout, placeInJail, prepareJail, takeFromJail, type JailerConfig } from './jailer.js';

export interface FirecrackerJailerOptions {
  /** Name in PATH or a path. Default 'jailer'. Without the binary Firecracker runs unjailed (logged). */
  binary?: string;
  /** Where jails are built (BASE/firecracker/ID/root). Same file system as the snapshot tiers saves copies. */
  chrootBase: string;
  /** uid and gid of each jailed Firecracker (one uid per VM when `uid` is a function). */
  uid: number | (() => number);
  gid: number;
  releaseUid?: (uid: number) => void;
  cgroupVersion: 1 | 2;
  parentCgroup?: string;
  /** cgroup settings for one VM (file=value). */
  cgroups?: (cfg: VmConfig) => string[];
  /** Directories of one VM's cgroups, removed after it exited. */
  cgroupDirs?: (id: string) => string[];
  netns?: (cfg: VmConfig) => string | undefined;
}

export interface JailedFirecracker {
  apiSocketOnHost: string;
  apiSocketInJail: string;
  logOnHost: string;
  logInJail: string;
  command(firecrackerArgs: string[]): LaunchSpec;
  placeIn(src: string, name: string): Promise<string>;
  takeOut(inJail: string, dest: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** Prepares the jail of one VM, or returns undefined (logged) when the jailer binary is missing. */
export async function jailedLaunch(o: FirecrackerJailerOptions, firecrackerBinary: string, cfg: VmConfig, log: (m: string) => void): Promise<JailedFirecracker | undefined> {
  const jailer = await findBinary(o.binary ?? 'jailer');
  if (!jailer) {
    log(`[${cfg.vmId}] jailer binary '${o.binary ?? 'jailer'}' not found: Firecracker runs unjailed`);
    return undefined;
  }
  const id = firecrackerInstanceId(cfg.vmId);
  const uid = typeof o.uid === 'function' ? o.uid() : o.uid;
  const layout = jailLayout(o.chrootBase, firecrackerBinary, id);
  await prepareJail(layout, uid, o.gid);
  const config: JailerConfig = {
    binary: jailer,
    chrootBase: o.chrootBase,
    uid,
    gid: o.gid,
    cgroupVersion: o.cgroupVersion,
    parentCgroup: o.parentCgroup,
    cgroups: o.cgroups?.(cfg) ?? [],
    netns: o.netns?.(cfg),
  };
  let cleaned = false;
  return {
    apiSocketOnHost: layout.onHost(JAILED_API_SOCKET),
    apiSocketInJail: JAILED_API_SOCKET,
    logOnHost: layout.onHost(JAILED_LOG_FILE),
    logInJail: JAILED_LOG_FILE,
    command: (args) => jailerCommand(id, firecrackerBinary, config, args),
    placeIn: (src, name) => placeInJail(layout, src, name),
    takeOut: (inJail, dest) => takeFromJail(layout, inJail, dest),
    cleanup: async () => {
      if (cleaned) return;
      cleaned = true;
      await fs.rm(layout.jailDir, { recursive: true, force: true });
      for (const d of o.cgroupDirs?.(id) ?? []) await fs.rmdir(d).catch(() => undefined);
      o.releaseUid?.(uid);
    },
  };
}
