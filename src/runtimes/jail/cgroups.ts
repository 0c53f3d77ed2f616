// Per-VM resource limits through cgroups: memory (guest memory plus the VMM's
// own overhead), CPU (a weight, and an optional quota) and pids. Each of the
// three controllers is used from cgroup v2 where the machine offers it there,
// from its v1 hierarchy otherwise (a "hybrid" host mounts v1 controllers next to
// a v2 hierarchy that may hold none of them). Detection and the values written
// are pure functions; CgroupManager does the file operations.
//
// Layout: <daemon's own cgroup, or limits.cgroupParent>/<group>/<vmId> in each
// hierarchy used, <group> being per state directory. A VM's cgroup is removed
// when its VMM has exited; at start the daemon removes what a killed daemon left.
// The daemon process itself (issue 18, limits.daemonCpuWeight) moves into
// <parent>/<group>-daemon in the cpu hierarchy, a sibling of its VMs' group with a
// larger weight: the VMs together weigh one default share (the group's), the daemon
// daemonCpuWeight, so under overload its HTTP server and event loop keep a core's
// worth of turns however many VMMs run. It moves back and removes it at stop (and
// after a failed start) where the kernel lets it: always on v1; on v2 only when it
// came from the root cgroup (daemonMovesBack).

import fs from 'node:fs';
import path from 'node:path';
import { monoNow } from '../../core/clock.js';

export type CgroupVersion = 'v1' | 'v2';
export const CONTROLLERS = ['memory', 'cpu', 'pids'] as const;
export type Controller = (typeof CONTROLLERS)[number];

export interface ControllerPlace {
  version: CgroupVersion;
  /** Where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory or /sys/fs/cgroup. */
  mount: string;
  /** The parent cgroup inside the hierarchy (absolute within it, e.g. "/" or "/system.slice/x.service"). */
  parent: string;
}

export interface CgroupLayout {
  /** v2: every controller used is a v2 one; v1: all v1; hybrid: some of each; none: no limits. */
  mode: 'v2' | 'v1' | 'hybrid' | 'none';
  controllers: Partial<Record<Controller, ControllerPlace>>;
  /** Why a controller or everything is missing. */
  notes: string[];
}

export interface LimitSettings {
  /** Added to the guest memory for the VMM process's own memory (device emulation, TCG code cache...). */
  memoryOverheadMiB: number;
  /** Relative CPU weight, cgroup v2 scale 1..10000 (100 = the default share). */
  cpuWeight: number;
  /**
   * issue 18: the CPU weight while the VM starts (limits.startCpuWeight): its cgroup is made with it and
   * gets cpuWeight once the VM is ready for its first run (VmCgroup.setStartCpuWeight). null/absent: cpuWeight.
   */
  startCpuWeight?: number | null;
  /** Hard cap in host CPUs per vCPU (e.g. 1.0), or null for none. */
  cpuQuotaPerVcpu: number | null;
  /** Most threads/processes the VMM may have. */
  pidsMax: number;
}

export const CPU_PERIOD_US = 100_000;

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** /proc/self/mountinfo → mount points with their type and super options. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const mountPoint = (left[4] ?? '').replace(/\\040/g, ' ');
    out.push({ mountPoint, fsType: right[0] ?? '', superOptions: (right[2] ?? '').split(',') });
  }
  return out;
}

/** /proc/self/cgroup → the v2 path ("0::/x") and each v1 controller's path. */
export function parseProcCgroup(text: string): { v2?: string; v1: Map<string, string> } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') v2 = m[3];
    else for (const c of m[2]!.split(',')) if (c) v1.set(c, m[3]!);
  }
  return { v2, v1 };
}

export type CgroupPreference = 'auto' | 'v2' | 'v1' | 'off';

export interface DetectInput {
  mountinfo: string;
  procSelfCgroup: string;
  /** Contents of cgroup.controllers of a v2 cgroup (mount + path), or undefined when unreadable. */
  v2Controllers: (dir: string) => string | undefined;
  prefer: CgroupPreference;
  /** Parent cgroup to use instead of the daemon's own (same path in every hierarchy). */
  parent?: string;
}

/** Decides, per controller, which hierarchy to use. Pure. */
export function detectCgroups(inp: DetectInput): CgroupLayout {
  const notes: string[] = [];
  if (inp.prefer === 'off') return { mode: 'none', controllers: {}, notes: ['limits.cgroup is off'] };
  const mounts = parseMountinfo(inp.mountinfo);
  const self = parseProcCgroup(inp.procSelfCgroup);
  const v2Mount = mounts.find((m) => m.fsType === 'cgroup2')?.mountPoint;
  const v2Parent = inp.parent ?? self.v2;
  const v2Available = new Set<string>();
  if (v2Mount && v2Parent !== undefined) {
    const text = inp.v2Controllers(path.join(v2Mount, v2Parent).replace(/(.)\/+$/, '$1'));
    for (const c of (text ?? '').split(/\s+/)) if (c) v2Available.add(c);
  }
  const controllers: Partial<Record<Controller, ControllerPlace>> = {};
  for (const c of CONTROLLERS) {
    if (inp.prefer !== 'v1' && v2Mount && v2Parent !== undefined && v2Available.has(c)) {
      controllers[c] = { version: 'v2', mount: v2Mount, parent: v2Parent };
      continue;
    }
    if (inp.prefer !== 'v2') {
      const m = mounts.find((e) => e.fsType === 'cgroup' && e.superOptions.includes(c));
      const parent = inp.parent ?? self.v1.get(c);
      if (m && parent !== undefined) {
        controllers[c] = { version: 'v1', mount: m.mountPoint, parent };
        continue;
      }
    }
    notes.push(`no usable ${c} controller${inp.prefer === 'auto' ? '' : ` in cgroup ${inp.prefer}`}`);
  }
  const versions = new Set(Object.values(controllers).map((p) => p.version));
  const mode = versions.size === 0 ? 'none' : versions.size === 2 ? 'hybrid' : versions.has('v2') ? 'v2' : 'v1';
  return { mode, controllers, notes };
}

/** Reads the running system's cgroup facts and decides. */
export function detectHostCgroups(prefer: CgroupPreference, parent?: string): CgroupLayout {
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return undefined;
    }
  };
  return detectCgroups({
    mountinfo: read('/proc/self/mountinfo') ?? '',
    procSelfCgroup: read('/proc/self/cgroup') ?? '',
    v2Controllers: (dir) => read(path.join(dir, 'cgroup.controllers')),
    prefer,
    parent,
  });
}

export interface LimitFile {
  file: string;
  value: string;
  /** Written only when the kernel offers the file (e.g. swap accounting). */
  optional?: boolean;
}

/** Memory limit of one VM in bytes. */
export function memoryLimitBytes(memoryMiB: number, s: LimitSettings): number {
  return (memoryMiB + s.memoryOverheadMiB) * 1024 * 1024;
}

/** v2 weight (1..10000, default 100) → v1 shares (2..262144, default 1024). */
export function weightToShares(weight: number): number {
  return Math.min(262_144, Math.max(2, Math.round((weight * 1024) / 100)));
}

/** A VM's CPU quota per period in µs from its configured quota per vCPU (null: none). */
export function busyQuotaUs(vm: { vcpus: number }, s: LimitSettings): number | null {
  return s.cpuQuotaPerVcpu === null ? null : Math.max(1000, Math.round(s.cpuQuotaPerVcpu * vm.vcpus * CPU_PERIOD_US));
}

/**
 * The file that caps a VM's CPU at `quotaUs` per CPU_PERIOD_US (null: no cap), written on its own
 * while the VM runs (issue 19: an idle VM's cap goes on and off with each run). Pure.
 */
export function cpuCapFile(version: CgroupVersion, quotaUs: number | null): LimitFile {
  return version === 'v2' ? { file: 'cpu.max', value: `${quotaUs ?? 'max'} ${CPU_PERIOD_US}` } : { file: 'cpu.cfs_quota_us', value: String(quotaUs ?? -1) };
}

/** The files (in write order) that put one VM's limits on one controller. Pure. */
export function limitFiles(c: Controller, version: CgroupVersion, vm: { memoryMiB: number; vcpus: number }, s: LimitSettings): LimitFile[] {
  const quotaUs = busyQuotaUs(vm, s);
  // a VM's cgroup is made for its start: it begins with the start weight (issue 18)
  const weight = cpuWeightFile(version, s.startCpuWeight ?? s.cpuWeight);
  const mem = String(memoryLimitBytes(vm.memoryMiB, s));
  if (version === 'v2') {
    switch (c) {
      case 'memory':
        return [
          { file: 'memory.max', value: mem },
          // no swap: a VM's memory must not silently spill to disk past its limit
          { file: 'memory.swap.max', value: '0', optional: true },
        ];
      case 'cpu':
        return [weight, cpuCapFile('v2', quotaUs)];
      case 'pids':
        return [{ file: 'pids.max', value: String(s.pidsMax) }];
    }
  }
  switch (c) {
    case 'memory':
      return [
        { file: 'memory.limit_in_bytes', value: mem },
        // memory+swap: must be >= limit_in_bytes, so written after it
        { file: 'memory.memsw.limit_in_bytes', value: mem, optional: true },
      ];
    case 'cpu':
      return [weight, { file: 'cpu.cfs_period_us', value: String(CPU_PERIOD_US) }, cpuCapFile('v1', quotaUs)];
    case 'pids':
      return [{ file: 'pids.max', value: String(s.pidsMax) }];
  }
}

/** The daemon's own cgroup, beside its VMs' group (same parent). */
export function daemonCgroupName(group: string): string {
  return `${group}-daemon`;
}

/** The file that gives a cgroup its CPU weight (v2 weight 1..10000; v1 shares). Pure. */
export function cpuWeightFile(version: CgroupVersion, weight: number): LimitFile {
  return version === 'v2' ? { file: 'cpu.weight', value: String(Math.round(weight)) } : { file: 'cpu.shares', value: String(weightToShares(weight)) };
}

/** The file that gives the daemon's cgroup its CPU weight. Pure. */
export const daemonWeightFile = cpuWeightFile;

/**
 * Whether the daemon can go back to the cgroup it came from (`originPath`, within the hierarchy) at stop. v1: always.
 * v2: only to the root cgroup. placeDaemon enabled cpu in the origin's cgroup.subtree_control (and the VMs' group
 * enables memory and pids there), and a non-root v2 cgroup that distributes controllers to its children, with a
 * populated child (the daemon's own cgroup, until it leaves), takes no process: the kernel's "no internal process"
 * constraint (Documentation/admin-guide/cgroup-v2.rst; the write to cgroup.procs fails with EBUSY). The root cgroup
 * is exempt. So on v2 the daemon stays in `<group>-daemon` until it exits; the next start reuses that directory (a
 * systemd unit with Delegate= removes its subtree when it stops). Pure.
 */
export function daemonMovesBack(version: CgroupVersion, originPath: string): boolean {
  return version === 'v1' || originPath === '/';
}

/** The daemon's own cgroup in the cpu hierarchy while it is placed there. */
export interface DaemonCgroup {
  dir: string;
  /** the cgroup directory it came from (it goes back there at stop when `movesBack`) */
  origin: string;
  weight: number;
  /** daemonMovesBack: whether it can go back there (v1; v2 from the root cgroup) */
  movesBack: boolean;
}

export class CgroupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CgroupError';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One VM's cgroups (one directory per hierarchy used). */
export class VmCgroup {
  constructor(
    readonly vmId: string,
    /** controller → directory */
    readonly dirs: Partial<Record<Controller, string>>,
    /** its cpu controller's version, and the quota it runs with (limits.cpuQuota; null: none) */
    readonly cpu?: { version: CgroupVersion; busyQuotaUs: number | null },
    /** issue 18: its weight while it starts and after (limits.startCpuWeight); absent: one weight throughout */
    readonly weights?: { start: number; normal: number },
  ) {}

  /**
   * issue 18: the VM's CPU weight while it starts (true) or after (false). One small write, applied by the
   * kernel at once. False when there is no cpu controller or no start weight (nothing to switch).
   */
  setStartCpuWeight(starting: boolean): boolean {
    const dir = this.dirs.cpu;
    if (!dir || !this.cpu || !this.weights) return false;
    const f = cpuWeightFile(this.cpu.version, starting ? this.weights.start : this.weights.normal);
    fs.writeFileSync(path.join(dir, f.file), f.value);
    return true;
  }

  /**
   * Cap the VM's CPU at `capCpus` host CPUs (issue 19: an idle VM), or give it back its own quota
   * (null). A never-larger cap than its own. One small write to the cgroup file system: the
   * kernel applies it (and lifts a throttle) at once. False when there is no cpu controller.
   */
  setCpuCap(capCpus: number | null): boolean {
    const dir = this.dirs.cpu;
    if (!dir || !this.cpu) return false;
    const own = this.cpu.busyQuotaUs;
    let quotaUs = own;
    if (capCpus !== null) {
      const cap = Math.max(1000, Math.round(capCpus * CPU_PERIOD_US));
      quotaUs = own === null ? cap : Math.min(own, cap);
    }
    const f = cpuCapFile(this.cpu.version, quotaUs);
    fs.writeFileSync(path.join(dir, f.file), f.value);
    return true;
  }

  /** Distinct directories (a v2 directory serves all its controllers). */
  get directories(): string[] {
    return [...new Set(Object.values(this.dirs))];
  }

  /** cgroup.procs files the launch layer writes the VMM's pid into. */
  procsFiles(): string[] {
    return this.directories.map((d) => path.join(d, 'cgroup.procs'));
  }

  /** Removes the directories; waits a little while the last task is still leaving. */
  async remove(waitMs = 2000): Promise<void> {
    await removeCgroupDirs(this.directories, waitMs);
  }
}

async function removeCgroupDirs(dirs: string[], waitMs: number): Promise<void> {
  const deadline = monoNow() + waitMs;
  for (const d of dirs) {
    for (;;) {
      try {
        fs.rmdirSync(d);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code === 'EBUSY' && monoNow() < deadline) {
          await sleep(20);
          continue;
        }
        throw new CgroupError(`cannot remove cgroup ${d}: ${(e as Error).message}`, { cause: e });
      }
    }
  }
}

export interface CgroupStatus {
  mode: CgroupLayout['mode'];
  controllers: Partial<Record<Controller, { version: CgroupVersion; path: string }>>;
  notes: string[];
}

/**
 * Creates, fills and removes the per-VM cgroups of one daemon (one `group`).
 * `fsRoot` prefixes every path (unit tests use a temporary directory).
 */
export class CgroupManager {
  private groupReady = false;

  constructor(
    readonly layout: CgroupLayout,
    readonly group: string,
    readonly settings: LimitSettings,
    private readonly fsRoot = '',
  ) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(group)) throw new CgroupError(`bad cgroup group name ${JSON.stringify(group)}`);
  }

  get enabled(): boolean {
    return this.layout.mode !== 'none';
  }

  /** The group's directory in the hierarchy of controller `c`. */
  groupDir(c: Controller): string | undefined {
    const p = this.layout.controllers[c];
    return p ? path.join(this.fsRoot + p.mount, p.parent, this.group) : undefined;
  }

  private ensureGroup(): void {
    if (this.groupReady) return;
    for (const c of CONTROLLERS) {
      const p = this.layout.controllers[c];
      const dir = this.groupDir(c);
      if (!p || !dir) continue;
      fs.mkdirSync(dir, { recursive: true });
      if (p.version === 'v2') {
        // a v2 controller reaches a child only when each parent enables it for its children
        const parentDir = path.join(this.fsRoot + p.mount, p.parent);
        this.enableV2(parentDir, c);
        this.enableV2(dir, c);
      }
    }
    this.groupReady = true;
  }

  private enableV2(dir: string, c: Controller): void {
    const f = path.join(dir, 'cgroup.subtree_control');
    try {
      const cur = fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
      if (cur.split(/\s+/).includes(c)) return;
      fs.writeFileSync(f, `+${c}`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const hint =
        code === 'EBUSY'
          ? ': that cgroup holds processes (cgroup v2 allows controllers only for cgroups without them); set limits.cgroupParent to a delegated cgroup without processes'
          : '';
      throw new CgroupError(`cannot enable the ${c} controller in ${dir}${hint} (${(e as Error).message})`, { cause: e });
    }
  }

  /** Creates the VM's cgroups and writes its limits; startWeighted false: its own CPU weight from the start (issue 18). */
  create(vmId: string, vm: { memoryMiB: number; vcpus: number }, startWeighted = true): VmCgroup {
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(vmId)) throw new CgroupError(`bad vmId for a cgroup: ${JSON.stringify(vmId)}`);
    this.ensureGroup();
    const dirs: Partial<Record<Controller, string>> = {};
    for (const c of CONTROLLERS) {
      const p = this.layout.controllers[c];
      const g = this.groupDir(c);
      if (!p || !g) continue;
      const dir = path.join(g, vmId);
      if (!fs.existsSync(dir)) fs.mkdirSync(dir);
      dirs[c] = dir;
      for (const lf of limitFiles(c, p.version, vm, startWeighted ? this.settings : { ...this.settings, startCpuWeight: null })) {
        const f = path.join(dir, lf.file);
        if (lf.optional && !fs.existsSync(f)) continue;
        try {
          fs.writeFileSync(f, lf.value);
        } catch (e) {
          throw new CgroupError(`cannot set ${f} = ${lf.value}: ${(e as Error).message}`, { cause: e });
        }
      }
    }
    const cpu = this.layout.controllers.cpu;
    const start = this.settings.startCpuWeight;
    const weights = cpu && start !== undefined && start !== null ? { start, normal: this.settings.cpuWeight } : undefined;
    return new VmCgroup(vmId, dirs, cpu ? { version: cpu.version, busyQuotaUs: busyQuotaUs(vm, this.settings) } : undefined, weights);
  }

  /**
   * Removes the VM cgroups a killed daemon of this group left behind: kills
   * whatever still runs in them (only VMMs are ever put there), then removes them.
   */
  async reap(exclude: ReadonlySet<string> = new Set()): Promise<{ cgroups: number; killed: number }> {
    let cgroups = 0;
    let killed = 0;
    const seen = new Set<string>();
    for (const c of CONTROLLERS) {
      const g = this.groupDir(c);
      if (!g || seen.has(g)) continue;
      seen.add(g);
      let names: string[];
      try {
        names = fs.readdirSync(g, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
      } catch {
        continue;
      }
      for (const name of names) {
        if (exclude.has(name)) continue;
        const dir = path.join(g, name);
        killed += killCgroupProcs(dir);
        try {
          await removeCgroupDirs([dir], 2000);
          cgroups++;
        } catch {
          // still busy: the next start tries again
        }
      }
    }
    return { cgroups, killed };
  }

  /** Removes the group directories once every VM cgroup in them is gone (daemon shutdown). */
  async removeGroup(): Promise<void> {
    const dirs = [...new Set(CONTROLLERS.map((c) => this.groupDir(c)).filter((d): d is string => d !== undefined))];
    try {
      await removeCgroupDirs(dirs, 2000);
    } catch {
      // a VM cgroup is still there (a VMM that would not die): the next start reaps it
    }
    this.groupReady = false;
  }

  /**
   * Move this daemon (`pid`, all its threads) into its own cgroup beside its VMs' group, with CPU weight `weight`
   * (issue 18). Only the cpu hierarchy; undefined without a cpu controller. `procSelfCgroup`: /proc/self/cgroup
   * (where it goes back at stop). On v2 the process moves first: the parent may then enable the controller for its
   * children (a v2 cgroup with processes cannot).
   */
  placeDaemon(weight: number, procSelfCgroup: string, pid = process.pid): DaemonCgroup | undefined {
    const p = this.layout.controllers.cpu;
    if (!p) return undefined;
    const self = parseProcCgroup(procSelfCgroup);
    const originPath = p.version === 'v2' ? self.v2 : self.v1.get('cpu');
    if (originPath === undefined) throw new CgroupError(`cannot tell the daemon's own cpu cgroup from /proc/self/cgroup`);
    const parentDir = path.join(this.fsRoot + p.mount, p.parent);
    const dir = path.join(parentDir, daemonCgroupName(this.group));
    const origin = path.join(this.fsRoot + p.mount, originPath);
    const write = (f: string, v: string): void => {
      try {
        fs.writeFileSync(f, v);
      } catch (e) {
        throw new CgroupError(`cannot set ${f} = ${v}: ${(e as Error).message}`, { cause: e });
      }
    };
    fs.mkdirSync(dir, { recursive: true });
    write(path.join(dir, 'cgroup.procs'), String(pid));
    try {
      if (p.version === 'v2') this.enableV2(parentDir, 'cpu');
      const wf = daemonWeightFile(p.version, weight);
      write(path.join(dir, wf.file), wf.value);
    } catch (e) {
      // not placed after all: back where it was, nothing left behind
      try {
        fs.writeFileSync(path.join(origin, 'cgroup.procs'), String(pid));
        fs.rmdirSync(dir);
      } catch {
        // the next start reuses the directory
      }
      throw e;
    }
    return { dir, origin, weight, movesBack: daemonMovesBack(p.version, originPath) };
  }

  /**
   * Move the daemon back where it came from and remove its cgroup (daemon shutdown, or a start that failed after the
   * placement). False when the kernel would refuse the move (v2, daemonMovesBack): it stays until it exits.
   */
  async releaseDaemon(d: DaemonCgroup, pid = process.pid): Promise<boolean> {
    if (!d.movesBack) return false;
    try {
      fs.writeFileSync(path.join(d.origin, 'cgroup.procs'), String(pid));
    } catch (e) {
      throw new CgroupError(`cannot move the daemon back to ${d.origin}: ${(e as Error).message}`, { cause: e });
    }
    // a child process the daemon started that still runs keeps it: the next start reuses it
    await removeCgroupDirs([d.dir], 500).catch(() => undefined);
    return true;
  }

  status(): CgroupStatus {
    const controllers: CgroupStatus['controllers'] = {};
    for (const c of CONTROLLERS) {
      const p = this.layout.controllers[c];
      const g = this.groupDir(c);
      if (p && g) controllers[c] = { version: p.version, path: g };
    }
    return { mode: this.layout.mode, controllers, notes: this.layout.notes };
  }
}

function killCgroupProcs(dir: string): number {
  let n = 0;
  let text = '';
  try {
    text = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8');
  } catch {
    return 0;
  }
  for (const s of text.split('\n')) {
    const pid = Number(s.trim());
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
      n++;
    } catch {
      // already gone
    }
  }
  return n;
}
