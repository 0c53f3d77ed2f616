// Firecracker runtime driver: the second implementation of RuntimeDriver.
//
// One `firecracker --api-sock <runDir>/fc.sock` process per VM, configured over
// its REST API (api.ts). Host<->guest channel: the guest's serial port ttyS0,
// which Firecracker connects to its own stdin/stdout (Firecracker has no
// virtio-console). Why serial rather than vsock: docs/firecracker.md.
//
// Written to Firecracker's documented API; never run against a real
// Firecracker here (no binary, and /dev/kvm on the dev machine is PVM).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { SocketChannel } from '../channel.js';
import type {
  DriverReport,
  DriverTimings,
  GuestChannel,
  RuntimeDriver,
  SnapshotFiles,
  VmConfig,
  VmExit,
  VmHandle,
} from '../types.js';
import { DeadlineExceededError, VmStartError } from '../types.js';
import { startFailureReason, type StartFailureSigns } from '../start-failure.js';
import { FirecrackerApi, FirecrackerApiError } from './api.js';
import { jailedLaunch, type JailedFirecracker, type FirecrackerJailerOptions } from './jailed.js';
import { monoNow } from '../../core/clock.js';

export const API_SOCKET_NAME = 'fc.sock';
export const LOG_FILE_NAME = 'firecracker.log';
export const ROOTFS_DRIVE_ID = 'rootfs';
/** The guest serial device the agent must use under Firecracker (announced on the cmdline as faascell.agent_tty). */
export const AGENT_TTY = 'ttyS0';

export interface FirecrackerDriverOptions {
  /** Binary name (looked up in PATH) or path. Default 'firecracker'. */
  binary?: string;
  log?: (msg: string) => void;
  /** Per-call API timeout (ms), snapshot calls excepted. Default 5000. */
  apiTimeoutMs?: number;
  /** How long to wait for the API socket after spawn (ms). Default 5000. */
  startTimeoutMs?: number;
  /**
   * Guest kernel console log level (the `loglevel=` argument). The kernel console
   * shares ttyS0 with the agent, so a message could land in the middle of a JSON
   * line; the default 1 lets only panics through. Use 7 when debugging a boot.
   */
  kernelLogLevel?: number;
  /** Firecracker's own log level (--level). Default 'Warning'. */
  vmmLogLevel?: 'Error' | 'Warning' | 'Info' | 'Debug' | 'Trace' | 'Off';
  /** Run each Firecracker through its jailer when the jailer binary exists (jailed.ts). */
  jailer?: FirecrackerJailerOptions;
}

const DEFAULT_BINARY = 'firecracker';
const STDERR_TAIL_BYTES = 8 * 1024;
const TERM_GRACE_MS = 2_000;

/**
 * Kernel command line for Firecracker from the image's (QEMU-oriented) one:
 * drops QEMU/TCG-only arguments, sets the console to Firecracker's only UART,
 * makes a guest reboot end the Firecracker process (reboot=k), quiets the
 * kernel console and tells /init which tty the agent must use.
 */
export function firecrackerBootArgs(imageCmdline: string, extra?: string, kernelLogLevel = 1): string {
  const drop = (t: string) =>
    t.startsWith('console=') ||
    t.startsWith('reboot=') ||
    t.startsWith('loglevel=') ||
    // TSC calibration works under real KVM; the fixed TCG value would be wrong.
    t.startsWith('tsc_early_khz=') ||
    t.startsWith('faascell.agent_tty=');
  const kept = imageCmdline.split(/\s+/).filter((t) => t !== '' && !drop(t));
  const add = [`console=${AGENT_TTY}`, 'reboot=k', `loglevel=${kernelLogLevel}`, `faascell.agent_tty=${AGENT_TTY}`];
  if (!kept.some((t) => t.startsWith('panic='))) add.push('panic=1');
  const extraTokens = (extra ?? '').split(/\s+/).filter((t) => t !== '');
  return [...kept, ...add, ...extraTokens].join(' ');
}

/** Firecracker's --id accepts alphanumerics and '-', at most 64 characters. */
export function firecrackerInstanceId(vmId: string): string {
  const id = vmId.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 64);
  return id === '' ? 'faascell-vm' : id;
}

/** Resolves a binary: a name containing '/' is taken as a path, otherwise searched in PATH. */
export async function findBinary(nameOrPath: string, envPath = process.env.PATH ?? ''): Promise<string | undefined> {
  const isExec = async (p: string) => {
    try {
      const st = await fs.stat(p);
      if (!st.isFile()) return false;
      await fs.access(p, fsc.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (nameOrPath.includes('/')) {
    const p = path.resolve(nameOrPath);
    return (await isExec(p)) ? p : undefined;
  }
  for (const dir of envPath.split(':')) {
    if (dir === '') continue;
    const p = path.join(dir, nameOrPath);
    if (await isExec(p)) return p;
  }
  return undefined;
}

function execText(file: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(err.message, { cause: err }));
      else resolve({ stdout, stderr });
    });
  });
}

/** Parses Rss/Pss (kB) out of /proc/PID/smaps_rollup text. */
export function parseSmapsRollup(text: string): { rssKiB: number; pssKiB: number } {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m?.[1] !== undefined ? Number(m[1]) : 0;
  };
  return { rssKiB: field('Rss'), pssKiB: field('Pss') };
}

/** KVM facts that decide whether Firecracker can run at all. */
export async function probeKvm(): Promise<{ ok: boolean; problems: string[]; note: string }> {
  const problems: string[] = [];
  let kvmRw = false;
  try {
    await fs.access('/dev/kvm', fsc.R_OK | fsc.W_OK);
    kvmRw = true;
  } catch (e) {
    problems.push(`/dev/kvm is not usable (${(e as NodeJS.ErrnoException).code ?? String(e)}); Firecracker needs KVM`);
  }
  let hwVirt = false;
  try {
    const cpuinfo = await fs.readFile('/proc/cpuinfo', 'utf8');
    hwVirt = /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
    if (!hwVirt) problems.push('the CPU shows no vmx/svm flag: no hardware virtualization (VT-x/AMD-V) for KVM');
  } catch {
    problems.push('cannot read /proc/cpuinfo to check for VT-x/AMD-V');
  }
  let pvm = false;
  try {
    await fs.access('/sys/module/kvm_pvm');
    pvm = true;
    problems.push('/dev/kvm is served by PVM (kvm_pvm), which runs only PVM-enabled guest kernels; Firecracker needs VT-x/AMD-V KVM');
  } catch {
    // not PVM: fine
  }
  const ok = kvmRw && hwVirt && !pvm;
  return {
    ok,
    problems,
    note: ok ? 'KVM with hardware virtualization is available' : 'Firecracker needs real KVM (/dev/kvm backed by VT-x/AMD-V); it has no software emulation',
  };
}

/** The guest serial port as one duplex stream: Firecracker's stdout (guest->host) and stdin (host->guest). */
function serialStream(child: ChildProcess): Duplex {
  if (!child.stdout || !child.stdin) throw new Error('firecracker spawned without stdio pipes');
  return Duplex.from({ readable: child.stdout, writable: child.stdin });
}

interface Spawned {
  /** Set when Firecracker runs jailed: API paths are inside its chroot. */
  jail?: JailedFirecracker;
  child: ChildProcess;
  pid: number;
  api: FirecrackerApi;
  exited: Promise<VmExit>;
  exitInfo: () => VmExit | undefined;
  stderrTail: () => string;
}

export class FirecrackerVm implements VmHandle {
  readonly accelerator = 'kvm' as const;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly vmId: string,
    readonly pid: number,
    readonly channel: GuestChannel,
    readonly timings: DriverTimings,
    readonly exited: Promise<VmExit>,
    readonly api: FirecrackerApi,
    private readonly runDir: string,
    private readonly child: ChildProcess,
    private readonly exitInfo: () => VmExit | undefined,
    private readonly jail?: JailedFirecracker,
  ) {}

  async snapshot(target: SnapshotFiles): Promise<{ pauseMs: number; saveMs: number }> {
    const files = firecrackerSnapshotFiles(target);
    await fs.mkdir(path.dirname(files.statePath), { recursive: true });
    await fs.mkdir(path.dirname(files.memoryPath), { recursive: true });
    const t0 = monoNow();
    await this.api.pause();
    const t1 = monoNow();
    if (this.jail) {
      // a jailed Firecracker writes inside its chroot; the files are moved out afterwards
      await this.api.createSnapshot({ snapshot_type: 'Full', snapshot_path: '/snapshot/state', mem_file_path: '/snapshot/mem' });
      await this.jail.takeOut('/snapshot/state', files.statePath);
      await this.jail.takeOut('/snapshot/mem', files.memoryPath);
    } else {
      await this.api.createSnapshot({ snapshot_type: 'Full', snapshot_path: files.statePath, mem_file_path: files.memoryPath });
    }
    const t2 = monoNow();
    this.timings.snapshotPaused = t1;
    this.timings.snapshotSaved = t2;
    return { pauseMs: t1 - t0, saveMs: t2 - t1 };
  }

  /** Resumes a paused VM (not part of VmHandle; the contract says a snapshotted VM is stopped). */
  async resume(): Promise<void> {
    await this.api.resume();
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.channel.close();
    await terminate(this.child, this.exited, this.exitInfo);
    await this.jail?.cleanup();
    await fs.rm(this.runDir, { recursive: true, force: true });
  }

  async memoryUsage(): Promise<{ rssKiB: number; pssKiB: number }> {
    return parseSmapsRollup(await fs.readFile(`/proc/${this.pid}/smaps_rollup`, 'utf8'));
  }
}

/** TERM, then KILL after a grace period; resolves once the process is gone. */
async function terminate(child: ChildProcess, exited: Promise<VmExit>, exitInfo: () => VmExit | undefined): Promise<void> {
  if (exitInfo()) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), TERM_GRACE_MS)));
  const first = await Promise.race([exited, graceOver]);
  clearTimeout(timer);
  if (first === 'timeout' && !exitInfo()) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Firecracker always writes two files (device state + full guest memory). For a
 * 'full-stream' target, which has no memory file of its own, the memory goes
 * next to the state file; restore derives the same name.
 */
export function firecrackerSnapshotFiles(s: SnapshotFiles): { statePath: string; memoryPath: string } {
  const statePath = path.resolve(s.statePath);
  const memoryPath = s.kind === 'full-stream' || s.memoryPath === '' ? `${statePath}.mem` : path.resolve(s.memoryPath);
  return { statePath, memoryPath };
}

export class FirecrackerDriver implements RuntimeDriver {
  readonly name = 'firecracker' as const;
  private readonly binaryName: string;
  private readonly log: (msg: string) => void;

  constructor(private readonly opts: FirecrackerDriverOptions = {}) {
    this.binaryName = opts.binary ?? DEFAULT_BINARY;
    this.log = opts.log ?? (() => {});
  }

  async boot(cfg: VmConfig): Promise<VmHandle> {
    this.checkConfig(cfg, 'boot');
    if (cfg.memory.kind === 'file') {
      // Firecracker boots with anonymous memory only; its snapshots write the memory file themselves.
      this.log(`[${cfg.vmId}] firecracker ignores memory backing file ${cfg.memory.path}: guest RAM is anonymous`);
    }
    const timings: DriverTimings = {};
    const sp = await this.spawnVmm(cfg, timings, 'boot');
    try {
      const { api } = sp;
      const place = (src: string, name: string) => (sp.jail ? sp.jail.placeIn(src, name) : Promise.resolve(src));
      await api.putBootSource({
        kernel_image_path: await place(cfg.image.kernelPath, 'vmlinux'),
        initrd_path: await place(cfg.image.initrdPath, 'initrd'),
        boot_args: firecrackerBootArgs(cfg.image.cmdline, cfg.extraCmdline, this.opts.kernelLogLevel),
      });
      // Not the root device: the initramfs /init mounts the squashfs itself
      // (is_root_device would make Firecracker append root=/dev/vda).
      await api.putDrive({ drive_id: ROOTFS_DRIVE_ID, path_on_host: await place(cfg.image.rootfsPath, 'rootfs'), is_root_device: false, is_read_only: true });
      await api.putMachineConfig({ vcpu_count: cfg.vcpus, mem_size_mib: cfg.memoryMiB, smt: false });
      // Host-guest channel: the serial port on stdio needs no API call.
      timings.configured = monoNow();
      await api.instanceStart();
      timings.instanceStarted = monoNow();
      return this.makeHandle(cfg, sp, timings);
    } catch (e) {
      throw await this.abort(cfg, sp, e, 'boot');
    }
  }

  async restore(cfg: VmConfig, snapshot: SnapshotFiles): Promise<VmHandle> {
    this.checkConfig(cfg, 'restore');
    const files = firecrackerSnapshotFiles(snapshot);
    for (const f of [files.statePath, files.memoryPath]) {
      await fs.access(f, fsc.R_OK).catch(() => {
        throw new VmStartError('restore', 'snapshot-unusable', `restore ${cfg.vmId}: snapshot file ${f} is missing or unreadable`);
      });
    }
    const timings: DriverTimings = {};
    const sp = await this.spawnVmm(cfg, timings, 'restore');
    try {
      // The File backend maps the memory file MAP_PRIVATE: the restored guest's
      // writes never reach the file, so one snapshot serves any number of restores.
      await sp.api.loadSnapshot({
        snapshot_path: sp.jail ? await sp.jail.placeIn(files.statePath, 'snapshot/state') : files.statePath,
        mem_backend: { backend_type: 'File', backend_path: sp.jail ? await sp.jail.placeIn(files.memoryPath, 'snapshot/mem') : files.memoryPath },
        resume_vm: true,
      });
      // resume_vm: loaded and resumed in one call, so both stamps coincide.
      timings.stateLoaded = monoNow();
      timings.resumed = timings.stateLoaded;
      return this.makeHandle(cfg, sp, timings);
    } catch (e) {
      throw await this.abort(cfg, sp, e, 'restore');
    }
  }

  async report(): Promise<DriverReport> {
    const problems: string[] = [];
    const report: DriverReport = { runtime: 'firecracker', available: false, problems, accelerator: 'kvm' };
    const bin = await findBinary(this.binaryName);
    if (!bin) {
      if (this.binaryName.includes('/')) {
        const inPath = await findBinary(DEFAULT_BINARY);
        problems.push(
          `firecracker binary not found at ${path.resolve(this.binaryName)} (configured path)` +
            (inPath ? `; there is one in PATH at ${inPath}` : '; none in PATH either'),
        );
      } else {
        problems.push(`firecracker binary '${this.binaryName}' not found in PATH (${process.env.PATH ?? ''}); set the runtime's binary path in the config`);
      }
    } else {
      report.binary = bin;
      try {
        const { stdout, stderr } = await execText(bin, ['--version'], 5_000);
        const first = (stdout || stderr).split('\n').find((l) => l.trim() !== '');
        if (first) report.version = first.trim();
      } catch (e) {
        problems.push(`${bin} --version failed: ${(e as Error).message}`);
      }
    }
    const kvm = await probeKvm();
    problems.push(...kvm.problems);
    report.acceleratorReason = `always kvm: ${kvm.note}`;
    report.available = bin !== undefined && report.version !== undefined && kvm.ok;
    return report;
  }

  private checkConfig(cfg: VmConfig, op: 'boot' | 'restore'): void {
    if (cfg.accelerator !== 'kvm') {
      throw new VmStartError(op, 'vmm-failed', `firecracker runs only on KVM (asked for accelerator '${cfg.accelerator}')`);
    }
    if (cfg.network) throw new VmStartError(op, 'vmm-failed', 'network: egress is not supported with the firecracker driver yet (use runtime.driver qemu)');
  }

  private async spawnVmm(cfg: VmConfig, timings: DriverTimings, op: 'boot' | 'restore'): Promise<Spawned> {
    const bin = await findBinary(this.binaryName);
    if (!bin) throw new VmStartError(op, 'vmm-failed', `firecracker binary '${this.binaryName}' not found (PATH or configured path)`);
    const runDir = path.resolve(cfg.runDir);
    await fs.mkdir(runDir, { recursive: true });
    const jail = this.opts.jailer ? await jailedLaunch(this.opts.jailer, bin, cfg, this.log) : undefined;
    const sock = jail ? jail.apiSocketOnHost : path.join(runDir, API_SOCKET_NAME);
    // Firecracker refuses to start when the API socket path already exists.
    await fs.rm(sock, { force: true });
    const logPath = jail ? jail.logOnHost : path.join(runDir, LOG_FILE_NAME);
    // The logger wants an existing file (or fifo); logging to it keeps stdout for the guest serial port only.
    if (!jail) await fs.writeFile(logPath, '');
    const fcArgs = [
      '--api-sock',
      jail ? jail.apiSocketInJail : sock,
      '--id',
      firecrackerInstanceId(cfg.vmId),
      '--log-path',
      jail ? jail.logInJail : logPath,
      '--level',
      this.opts.vmmLogLevel ?? 'Warning',
    ];
    let file = bin;
    let args = fcArgs;
    if (jail) {
      const l = jail.command(fcArgs);
      file = l.cmd;
      args = l.argv;
    }
    if (cfg.cpuAffinity && cfg.cpuAffinity.length > 0) {
      // taskset execs firecracker in place, so the pid stays the VMM's.
      args = ['-c', cfg.cpuAffinity.join(','), file, ...args];
      file = 'taskset';
    }
    const child = spawn(file, args, { cwd: runDir, stdio: ['pipe', 'pipe', 'pipe'] });
    let exitInfo: VmExit | undefined;
    let spawnError: Error | undefined;
    const exited = new Promise<VmExit>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        resolve(exitInfo);
      });
      child.once('error', (e) => {
        spawnError = e;
        // A spawn failure never emits 'exit'.
        if (child.pid === undefined) {
          exitInfo = { code: null, signal: null };
          resolve(exitInfo);
        }
      });
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      stderr = (stderr + d).slice(-STDERR_TAIL_BYTES);
      for (const line of d.split('\n')) if (line.trim() !== '') this.log(`[${cfg.vmId}] firecracker: ${line}`);
    });
    const api = new FirecrackerApi(sock, { timeoutMs: this.opts.apiTimeoutMs });
    const sp: Spawned = { jail, child, pid: child.pid ?? -1, api, exited, exitInfo: () => exitInfo, stderrTail: () => stderr.trim() };
    timings.vmmSpawned = monoNow();
    try {
      await api.waitReady(this.opts.startTimeoutMs ?? 5_000, {
        abort: () =>
          spawnError
            ? `spawn failed: ${spawnError.message}`
            : exitInfo
              ? `firecracker exited (code ${exitInfo.code}, signal ${exitInfo.signal})${stderr ? `: ${stderr.trim()}` : ''}`
              : undefined,
      });
    } catch (e) {
      throw await this.abort(cfg, sp, e, op);
    }
    timings.apiReady = monoNow();
    return sp;
  }

  private makeHandle(cfg: VmConfig, sp: Spawned, timings: DriverTimings): FirecrackerVm {
    // TODO(channel.ts): SocketChannel is typed for net.Socket but only uses the
    // Duplex surface (data/error/close, write, destroy; setNoDelay is optional).
    const channel = new SocketChannel(serialStream(sp.child) as unknown as net.Socket, {
      log: (m) => this.log(`[${cfg.vmId}] ${m}`),
    });
    timings.channelConnected = monoNow();
    // 'close' (not 'exit'): stdout is drained by then, so a last reply is not lost.
    // The duplex alone would stay half-open after the VMM dies.
    sp.child.once('close', () => channel.close());
    void sp.exited.then(() => {
      timings.exited = monoNow();
    });
    return new FirecrackerVm(cfg.vmId, sp.pid, channel, timings, sp.exited, sp.api, path.resolve(cfg.runDir), sp.child, sp.exitInfo, sp.jail);
  }

  /**
   * Kills a half-started VMM, removes its runDir, and returns the error to throw: a typed VmStartError
   * (a deadline, a refused snapshot, a VMM that died: the core decides on the type), with Firecracker's stderr.
   */
  private async abort(cfg: VmConfig, sp: Spawned, e: unknown, op: 'boot' | 'restore'): Promise<VmStartError> {
    // classified before the kill below: an exit that we cause says nothing
    const reason = startFailureReason(e, sp.exitInfo(), op === 'restore', FIRECRACKER_SIGNS);
    await terminate(sp.child, sp.exited, sp.exitInfo);
    sp.child.stdin?.destroy();
    sp.child.stdout?.destroy();
    const runDir = path.resolve(cfg.runDir);
    // With --log-path, Firecracker's own errors (e.g. opening /dev/kvm) go to the log file, not stderr.
    const vmmLog = (await fs.readFile(sp.jail ? sp.jail.logOnHost : path.join(runDir, LOG_FILE_NAME), 'utf8').catch(() => '')).trim().slice(-2048);
    await sp.jail?.cleanup();
    await fs.rm(runDir, { recursive: true, force: true });
    const msg = e instanceof Error ? e.message : String(e);
    const tail = sp.stderrTail();
    let text = `firecracker ${cfg.vmId}: ${msg}`;
    if (tail && !msg.includes(tail)) text += ` (stderr: ${tail})`;
    if (vmmLog) text += ` (firecracker log: ${vmmLog})`;
    return new VmStartError(op, reason, text, { cause: e });
  }
}

/** Firecracker's deadline errors and its refusal of a snapshot (an HTTP error answer to the snapshot load). */
const FIRECRACKER_SIGNS: StartFailureSigns = {
  isTimeout: (e) => e instanceof DeadlineExceededError || (e instanceof FirecrackerApiError && e.code === 'ETIMEDOUT'),
  refusedSnapshot: (e) => e instanceof FirecrackerApiError && e.statusCode !== undefined && e.path === '/snapshot/load',
};
