// Least privilege for each VMM process, driver-independent: which uid it runs
// as, which files it can see (the jail), which cgroups limit it. A driver
// describes what one VM needs (VmmNeeds); prepare() readies the host side
// (ownership of the run directory, the RAM file, the cgroups) and returns the
// launch layers to put around the VMM command, and release() undoes it once
// the VMM has exited.

import fs from 'node:fs';
import path from 'node:path';
import type { CgroupManager, VmCgroup } from './cgroups.js';
import type { UidAllocator, VmmIdentity } from './ids.js';
import { jailLayer, type JailBind, type JailDevice, type JailSpec } from './jail.js';
import { cgroupEnterLayer, type LaunchLayer } from './launch.js';

export interface VmmNeeds {
  vmId: string;
  /** The VM's private directory (sockets, logs, pid file): the VMM's uid owns it. */
  runDir: string;
  memoryMiB: number;
  /** VMM memory beyond memoryMiB and the configured overhead (TCG's code cache). */
  vmmExtraMiB?: number;
  vcpus: number;
  /** issue 18: its cgroup starts with limits.startCpuWeight (true, absent) or its own weight (false) */
  startCpuWeight?: boolean;
  /** The VMM binary (shown read-only if it is outside the system dirs). */
  binary: string;
  /** Files the VMM reads (kernel, initrd, root fs...). */
  readOnly: string[];
  /** Files the VMM opens read-write (guest RAM file); created root:group 0660 when missing. */
  readWrite: string[];
  /** Device nodes it needs, e.g. /dev/kvm. */
  devices: string[];
}

export interface JailOptions {
  identity: VmmIdentity;
  /**
   * An empty directory each VM's private root is mounted on (in the VM's own
   * mount namespace only, so all VMs share it). Outside the run directories.
   */
  mountPoint: string;
  /** Per-VM uids; without it every VMM runs as identity.uid. */
  uids?: UidAllocator;
  /** Extra supplementary groups. */
  groups?: number[];
  /** Read-only system directories (default: /usr) and the top-level links to them. */
  systemDirs?: string[];
  /** Tools run as root to build the jail. */
  tools: { unshare: string; sh: string };
}

export interface IsolationOptions {
  jail?: JailOptions;
  cgroups?: CgroupManager;
}

export interface PreparedVmm {
  /** Root-side layers, outermost first: cgroup entry, then the jail (drops privileges last). */
  readonly cgroupLayer?: LaunchLayer;
  readonly jailLayer?: LaunchLayer;
  readonly uid?: number;
  readonly gid?: number;
  readonly cgroup?: VmCgroup;
  /** After the VMM exited: frees its uid and removes its cgroups. Idempotent. */
  release(): Promise<void>;
}

/** Devices every VMM gets (besides what it asks for): QEMU and glib open these. */
export const BASE_DEVICES = ['/dev/null', '/dev/zero', '/dev/urandom', '/dev/random'];

/** major/minor of a character device, decoded like glibc's gnu_dev_major/minor. */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  const big = BigInt(rdev);
  const major = Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
  const minor = Number((big & 0xffn) | ((big >> 12n) & ~0xffn));
  return { major, minor };
}

function isUnder(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Top-level links of a merged-/usr system (/lib -> usr/lib...), read from the host. */
export function mergedUsrLinks(): Array<{ path: string; target: string }> {
  const out: Array<{ path: string; target: string }> = [];
  for (const name of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    try {
      const target = fs.readlinkSync(`/${name}`);
      out.push({ path: `/${name}`, target });
    } catch {
      // not a link (or absent): not needed for a /usr-only jail
    }
  }
  return out;
}

export class VmmIsolation {
  constructor(private readonly opts: IsolationOptions) {}

  get jailed(): boolean {
    return this.opts.jail !== undefined;
  }

  prepare(needs: VmmNeeds): PreparedVmm {
    let cgroup: VmCgroup | undefined;
    let uid: number | undefined;
    const j = this.opts.jail;
    const release = async () => {
      if (uid !== undefined && j?.uids) j.uids.release(uid);
      uid = undefined;
      const cg = cgroup;
      cgroup = undefined;
      await cg?.remove();
    };
    try {
      if (this.opts.cgroups?.enabled) cgroup = this.opts.cgroups.create(needs.vmId, { memoryMiB: needs.memoryMiB + (needs.vmmExtraMiB ?? 0), vcpus: needs.vcpus }, needs.startCpuWeight !== false);
      const cgroupLayer = cgroup ? cgroupEnterLayer(cgroup.procsFiles()) : undefined;
      if (!j) return { cgroupLayer, cgroup, release };

      uid = j.uids ? j.uids.allocate() : j.identity.uid;
      const gid = j.identity.gid;
      fs.mkdirSync(needs.runDir, { recursive: true, mode: 0o700 });
      fs.chownSync(needs.runDir, uid, gid);
      fs.chmodSync(needs.runDir, 0o700);
      for (const f of needs.readWrite) {
        if (!fs.existsSync(f)) {
          fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
          fs.writeFileSync(f, '', { mode: 0o660 });
        }
        // every clone of a snapshot maps its RAM file, each with its own uid: group access
        const st = fs.statSync(f);
        if (st.gid !== gid) fs.chownSync(f, st.uid, gid);
        if ((st.mode & 0o060) !== 0o060) fs.chmodSync(f, (st.mode & 0o7777) | 0o060);
      }
      const systemDirs = j.systemDirs ?? ['/usr'];
      const binds: JailBind[] = [
        { path: needs.runDir, kind: 'dir', writable: true },
        ...needs.readOnly.map((p): JailBind => ({ path: p, kind: 'file', writable: false })),
        ...needs.readWrite.map((p): JailBind => ({ path: p, kind: 'file', writable: true })),
      ];
      const binary = fs.realpathSync(needs.binary);
      if (!systemDirs.some((d) => isUnder(binary, d))) binds.push({ path: binary, kind: 'file', writable: false });
      const devices: JailDevice[] = [...new Set([...BASE_DEVICES, ...needs.devices])].map((p) => {
        const st = fs.statSync(p);
        if (!st.isCharacterDevice()) throw new Error(`${p} is not a character device`);
        const own = needs.devices.includes(p) && !BASE_DEVICES.includes(p);
        return { path: p, ...deviceNumbers(st.rdev), mode: own ? 0o600 : 0o666 };
      });
      const mountPoint = j.mountPoint;
      fs.mkdirSync(mountPoint, { recursive: true, mode: 0o700 });
      const spec: JailSpec = {
        mountPoint,
        uid,
        gid,
        groups: j.groups ?? [],
        systemDirs,
        symlinks: mergedUsrLinks().filter((l) => systemDirs.some((d) => path.resolve('/', l.target).startsWith(d))),
        devices,
        binds,
      };
      return { cgroupLayer, jailLayer: jailLayer(spec, j.tools), uid, gid, cgroup, release };
    } catch (e) {
      void release().catch(() => undefined);
      throw e;
    }
  }
}
