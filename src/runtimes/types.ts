// The runtime driver interface: everything FaaSCell needs from a VMM.
// One implementation per VMM (runtimes/qemu, runtimes/firecracker). Workers and
// the SnapshotManager only ever see these types.

import type { AgentReady, AgentReply, AgentRequestBody } from './agent-protocol.js';

export type Accelerator = 'kvm' | 'tcg';
export type RuntimeName = 'qemu' | 'firecracker';

/** A built guest image (see src/image). All paths are absolute. */
export interface GuestImage {
  /** Content hash of every input (kernel config and source, initramfs, rootfs, agent). Snapshots are tied to it. */
  version: string;
  dir: string;
  /** Uncompressed kernel (PVH entry point), booted directly with -kernel. */
  kernelPath: string;
  /** 'minimal': built from linux-source with everything built in; 'debian': the generic linux-image (modules in initramfs). */
  kernelKind: 'minimal' | 'debian';
  /** busybox initramfs (cpio.gz) whose /init mounts the root fs and starts the agent. */
  initrdPath: string;
  /** read-only squashfs holding Node.js and the bundled agent, attached as a virtio-blk disk. */
  rootfsPath: string;
  /** Kernel command line the image needs (console, tsc, quiet...). Drivers may append to it. */
  cmdline: string;
  sizes: { kernelBytes: number; initrdBytes: number; rootfsBytes: number };
  /**
   * Root fs format (absent: squashfs). 'erofs': the QEMU driver maps it into guest memory as
   * persistent memory mounted with DAX when the kernel has the 'dax' feature; other VMMs
   * attach it as a virtio-blk disk like the squashfs.
   */
  rootfsFormat?: 'squashfs' | 'erofs';
  /** Optional guest kernel features the VMM may rely on (minimal kernel fragments; absent: none). */
  kernelFeatures?: Array<'tickless' | 'dax' | 'balloon'>;
}

/** Where guest RAM lives. */
export type MemoryBacking =
  | { kind: 'anonymous' }
  /**
   * RAM in a file. share=true: writes go to the file (a snapshot source: after
   * `snapshot` the file *is* the memory image). share=false: a private
   * copy-on-write mapping of the file (a restore that never changes the file).
   */
  | { kind: 'file'; path: string; share: boolean };

/**
 * Where a VM's NIC is connected (src/network): the VMM runs inside `netnsPath`
 * and its virtio-net NIC uses `tap` there. Absent: the NIC has no peer.
 */
export interface VmNetworkAttachment {
  /** network namespace the VMM joins before it starts (e.g. /run/netns/NAME) */
  netnsPath: string;
  /** tap device inside that namespace */
  tap: string;
}

export interface VmConfig {
  /** Unique id; used in file names and logs. */
  vmId: string;
  memoryMiB: number;
  vcpus: number;
  image: GuestImage;
  /** Per-VM directory for sockets, console log and pid file. Created by the driver, removed by stop(). */
  runDir: string;
  accelerator: Accelerator;
  memory: MemoryBacking;
  /** Host CPUs the VMM process is pinned to (empty/undefined: no pinning). */
  cpuAffinity?: number[];
  /** Extra kernel arguments. */
  extraCmdline?: string;
  /** Egress networking (network: egress); absent: the NIC has no peer. */
  network?: VmNetworkAttachment;
  /** issue 18: its cgroup is made with limits.startCpuWeight (true, absent) or with its own weight (false) */
  startCpuWeight?: boolean;
}

/** The files of one snapshot. */
export interface SnapshotFiles {
  /** Device state (a QEMU migration stream / a Firecracker vmstate file). */
  statePath: string;
  /** Guest RAM. For 'shared-memory' it is the RAM file itself; for 'full-stream' it is unused (RAM is in statePath). */
  memoryPath: string;
  kind: 'shared-memory' | 'full-stream';
}

export interface SnapshotOptions {
  /** let the VM run on after the snapshot (drivers without this leave it paused: result.continued is not true) */
  thenContinue?: boolean;
}

export interface SnapshotResult {
  /** time to pause the guest */
  pauseMs: number;
  /** time to save the device state (from the pause) */
  saveMs: number;
  /** thenContinue: time to copy the RAM file (from the pause, alongside the save) */
  copyMs?: number;
  /** thenContinue: from the pause until the guest runs again */
  continueMs?: number;
  /** the VM runs on */
  continued?: boolean;
}

/** Host-side end of the host-guest channel to the agent. */
export interface GuestChannel {
  /** Resolves with the agent's unsolicited ready message (already received ones resolve at once). */
  ready(timeoutMs: number): Promise<AgentReady>;
  /** Send one request and wait for the reply with the same id. Rejects on timeout or when the channel closes. */
  request(req: AgentRequestBody, timeoutMs: number): Promise<AgentReply>;
  close(): void;
  /** Resolves when the channel is closed (VM gone, agent died, or close()). */
  readonly closed: Promise<void>;
}

export interface VmExit {
  code: number | null;
  signal: string | null;
}

/** Epoch-ms timestamps of the steps a driver took; keys are driver-defined, e.g. vmmSpawned, channelConnected, stateLoaded, resumed. */
export type DriverTimings = Record<string, number>;

export interface VmHandle {
  readonly vmId: string;
  readonly pid: number;
  readonly accelerator: Accelerator;
  readonly channel: GuestChannel;
  readonly timings: DriverTimings;
  /** Resolves once the VMM process has exited, for whatever reason. */
  readonly exited: Promise<VmExit>;
  /**
   * The guest's console output. While the VM runs it may still be in the run
   * directory; a driver with a console directory keeps a bounded copy there
   * (this path) once the VM is stopped. Undefined when the driver has none.
   */
  readonly consoleLogPath?: string;
  /**
   * Pause the guest and save a snapshot. Afterwards the VM stays paused and
   * must be stopped: with shared-memory snapshots its RAM file is the snapshot.
   * With `thenContinue` a driver that can (result.continued) leaves the snapshot
   * frozen at the pause and lets this VM run on, its later writes not reaching it.
   */
  snapshot(target: SnapshotFiles, opts?: SnapshotOptions): Promise<SnapshotResult>;
  /** Idempotent. Kills exactly this VMM process (TERM, then KILL) and removes runDir. */
  stop(): Promise<void>;
  /** Host memory of the VMM process (from /proc/PID/smaps_rollup). */
  memoryUsage(): Promise<{ rssKiB: number; pssKiB: number }>;
  /** Host CPU time the VMM process used so far (ms, all threads), when the driver can tell. */
  cpuMs?(): number | undefined;
  /**
   * issue 19: cap the VMM's host CPU at `capCpus` (an idle VM: guest code that keeps running after
   * its result gets no more than this), or lift the cap (null: the VM's own limits again). False
   * when the driver cannot (no cpu cgroup); never throws.
   */
  setCpuCap?(capCpus: number | null): boolean;
  /**
   * issue 18: the VMM's CPU weight while the VM starts (true: limits.startCpuWeight) or after (false: its
   * own weight). False when the driver cannot (no cpu cgroup, no start weight); never throws.
   */
  setStartCpuWeight?(starting: boolean): boolean;
  /** Host CPU time plus runqueue wait of the VMM process so far (ms, all threads): what it asked of the CPU. */
  cpuDemandMs?(): number | undefined;
}

export interface DriverReport {
  runtime: RuntimeName;
  available: boolean;
  binary?: string;
  version?: string;
  /** Accelerator this driver will use, and why. */
  accelerator?: Accelerator;
  acceleratorReason?: string;
  problems: string[];
}

export interface RuntimeDriver {
  readonly name: RuntimeName;
  /** its VMs honour snapshot(…, { thenContinue: true }) (else a cold start continues from a restore of its snapshot) */
  readonly snapshotContinues?: boolean;
  /** Boot a fresh VM. Resolves once the VMM runs and the channel is connected; wait for channel.ready() for the agent. */
  boot(cfg: VmConfig): Promise<VmHandle>;
  /** Start a VM from a snapshot taken with the same VM shape and image. Resolves once the guest runs again. */
  restore(cfg: VmConfig, snapshot: SnapshotFiles): Promise<VmHandle>;
  /** What `faascell doctor` prints. */
  report(): Promise<DriverReport>;
}

/** Why a VMM could not be started or restored: callers decide on `reason`, never on the message. */
export type VmStartFailureReason =
  /** a deadline passed (sockets, migration, agent): on an overloaded host this says nothing about the VM or snapshot */
  | 'timeout'
  /** the snapshot's files are missing, of the wrong shape, or QEMU refused to load them */
  | 'snapshot-unusable'
  /** the VMM process exited during the start */
  | 'vmm-exited'
  /** anything else (cannot spawn, QMP error) */
  | 'vmm-failed';

export class VmStartError extends Error {
  constructor(
    readonly op: 'boot' | 'restore',
    readonly reason: VmStartFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'VmStartError';
  }
}

/** An operation on a VM ran out of time (socket connect, migration). */
export class DeadlineExceededError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineExceededError';
  }
}
