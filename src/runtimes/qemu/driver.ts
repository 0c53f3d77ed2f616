// QEMU microVM runtime driver: spawns one qemu-system-x86_64 per VM, talks QMP
// for control (snapshot/restore/quit) and the virtio-serial port's socket for the agent.

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SocketChannel, type ChannelLimits } from '../channel.js';
import { cpuDemandMs } from '../proc-cpu.js';
import type { VmmIsolation, PreparedVmm } from '../jail/isolation.js';
import type { VmCgroup } from '../jail/cgroups.js';
import { composeLaunch, describeLaunch, netnsLayer, pdeathsigLayer, tasksetLayer, type LaunchLayer } from '../jail/launch.js';
import { thpOffLayer } from '../jail/thp.js';
import type {
  Accelerator,
  DriverReport,
  DriverTimings,
  GuestImage,
  MemoryBacking,
  RuntimeDriver,
  SnapshotFiles,
  SnapshotOptions,
  SnapshotResult,
  VmConfig,
  VmExit,
  VmHandle,
} from '../types.js';
import { DeadlineExceededError, VmStartError } from '../types.js';
import { startFailureReason, type StartFailureSigns } from '../start-failure.js';
import { ChannelTimeoutError } from '../channel.js';
import { detectAccelerator, qemuVersion, DEFAULT_QEMU_BINARY, type AccelDecision, type AccelMode } from './accel.js';
import { buildQemuArgs, memoryLayout, pmemRootfs, runFiles, validateVmConfig, type CmdlineOptions } from './cmdline.js';
import { QmpClient, QmpTimeoutError } from './qmp.js';
import { ConsoleSink, readConsoleTail } from './console.js';
import { monoNow } from '../../core/clock.js';
import { ensureDense } from '../ram-file.js';
import { within } from '../../core/bounded-wait.js';

export const QEMU_INSTALL_HINT = 'apt-get install qemu-system-x86';

export interface QemuDriverOptions {
  /** Binary name (looked up in PATH) or absolute path. Default qemu-system-x86_64. */
  qemuBinary?: string;
  log?: (msg: string) => void;
  /** Used by report() (and decideAccelerator()) to say which accelerator will run. */
  accel?: { mode: AccelMode; cacheDir: string; image?: GuestImage };
  /** Deadline for QMP + channel sockets to accept after spawn (default 10 s). */
  connectTimeoutMs?: number;
  /** Deadline for loading a snapshot (default 30 s). */
  restoreTimeoutMs?: number;
  /** How long stop() waits after quit/SIGTERM before SIGKILL (default 1500 ms). */
  stopGraceMs?: number;
  /** QEMU's seccomp sandbox (-sandbox on, obsolete/elevateprivileges/spawn/resourcecontrol denied). Default true. */
  sandbox?: boolean;
  /** TCG's translated-code cache per VM in MiB (QEMU's default: 1 GiB); counted in the VM's memory limit. */
  tcgCodeCacheMiB?: number;
  /** issue 24: the same for a VM restored from a snapshot (default: tcgCodeCacheMiB). */
  tcgCodeCacheRestoreMiB?: number;
  /** issue 24: MALLOC_ARENA_MAX in the VMM's environment (default: unset, glibc's 8 arenas per core). */
  mallocArenaMax?: number;
  /** issue 24: MALLOC_MMAP_THRESHOLD_ (KiB) in the VMM's environment (default: unset, glibc's dynamic threshold). */
  mallocMmapThresholdKiB?: number;
  /** issue 24: the launcher that turns THP off for each VMM (limits.vmmThp 'off', src/runtimes/jail/thp.ts); unset: the host's THP setting. */
  thpOffLauncher?: string;
  /** Bounds on what a guest may send over its channel (DEFAULT_CHANNEL_LIMITS). */
  channelLimits?: Partial<ChannelLimits>;
  /** Per-VMM jail (own uid, mount namespace) and cgroup limits; none when absent. */
  isolation?: VmmIsolation;
  /**
   * Root-side launch layers for one VM, run after it joined its cgroups and
   * before the jail drops privileges (e.g. `ip netns exec NS`). `vmm` is who the
   * VMM will run as (undefined ids: not jailed), e.g. to create a tap device it may open.
   */
  rootLayers?: (cfg: VmConfig, vmm: { uid?: number; gid?: number }) => LaunchLayer[];
  /** Device nodes a VM needs besides the defaults (e.g. /dev/net/tun); made inside its jail. */
  extraDevices?: (cfg: VmConfig) => string[];
  /** issue 9: anonymous guest RAM as a private memfd mapping (4 KiB host pages; CmdlineOptions.privateMemfdRam) */
  privateMemfdRam?: boolean;
  /**
   * Where each VM's console output is kept after it stops (DIR/VMID.log, the
   * tail of at most consoleMaxBytes, appended to across a VM's restores; the
   * newest consoleKeep files stay). Unset: the console dies with the run dir.
   */
  consoleDir?: string;
  consoleKeep?: number;
  consoleMaxBytes?: number;
  /**
   * issue 19: a running VM's console (the guest writes it at will) reaches the daemon through a
   * pipe and is kept in its run dir rotated at this many bytes, the previous file kept: at most
   * twice this on disk per VM (limits.consoleMaxBytes; default 1 MiB).
   */
  consoleRotateBytes?: number;
}

/** Default of QemuDriverOptions.consoleRotateBytes. */
export const CONSOLE_ROTATE_BYTES = 1024 * 1024;

/** The environment every VMM gets: nothing of the daemon's (tokens, paths). */
export const VMM_ENV: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

/** The TCG code cache of a VM: a restored clone may have a smaller one than a cold boot (the cache is not part of a snapshot). */
export function tcgCodeCacheFor(opts: Pick<QemuDriverOptions, 'tcgCodeCacheMiB' | 'tcgCodeCacheRestoreMiB'>, restored: boolean): number | undefined {
  return restored ? (opts.tcgCodeCacheRestoreMiB ?? opts.tcgCodeCacheMiB) : opts.tcgCodeCacheMiB;
}

/**
 * VMM_ENV, with glibc's malloc tuned when asked: arenas capped (each VMM thread that allocates may otherwise get
 * its own), a fixed mmap threshold (glibc otherwise raises it, and its trim threshold, after a large block is freed).
 */
export function vmmEnv(malloc: { arenaMax?: number; mmapThresholdKiB?: number } = {}): NodeJS.ProcessEnv {
  if (malloc.arenaMax === undefined && malloc.mmapThresholdKiB === undefined) return VMM_ENV;
  return {
    ...VMM_ENV,
    ...(malloc.arenaMax !== undefined ? { MALLOC_ARENA_MAX: String(malloc.arenaMax) } : {}),
    ...(malloc.mmapThresholdKiB !== undefined ? { MALLOC_MMAP_THRESHOLD_: String(malloc.mmapThresholdKiB * 1024) } : {}),
  };
}

/** Migration stream socket in the run dir (QEMU connects to it to save a snapshot). */
export const MIGRATION_SOCKET = 'migrate.sock';
/** The fd a restore's state file is handed to QEMU on (`migrate-incoming fd:3`). */
export const INCOMING_FD = 3;

/** Finds an executable: absolute/relative path as given, otherwise in PATH. */
export function resolveBinary(bin: string): string | undefined {
  const isExec = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (bin.includes('/')) return isExec(bin) ? path.resolve(bin) : undefined;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, bin);
    if (isExec(p)) return p;
  }
  return undefined;
}

export { shellQuote } from '../jail/shell.js';

/**
 * Receives one outgoing migration stream on a unix socket and writes it to
 * `file`. QEMU's sandbox forbids spawning a helper (exec: URIs), and `file:`
 * URIs do not exist in QEMU 7.2; the daemon is the writer instead.
 */
export async function receiveMigration(socketPath: string, file: string): Promise<{ done: Promise<number>; close: () => void }> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer();
  let accepted = false;
  let resolveDone!: (n: number) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<number>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  // a failed migration that never connects must not leave an unhandled rejection
  done.catch(() => undefined);
  server.on('connection', (sock) => {
    if (accepted) {
      sock.destroy();
      return;
    }
    accepted = true;
    server.close();
    const out = fs.createWriteStream(file, { mode: 0o600 });
    let bytes = 0;
    sock.on('data', (d: Buffer) => (bytes += d.length));
    sock.pipe(out);
    sock.on('error', (e) => rejectDone(e));
    out.on('error', (e) => rejectDone(e));
    out.on('close', () => resolveDone(bytes));
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(socketPath, () => {
      server.off('error', rej);
      res();
    });
  });
  // the run dir (0700, the VMM's uid) is what guards the socket; the VMM's uid must be able to connect
  fs.chmodSync(socketPath, 0o666);
  return {
    done,
    close: () => {
      server.close();
      fs.rmSync(socketPath, { force: true });
      if (!accepted) rejectDone(new Error('migration stream never connected'));
    },
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Copies a (sparse) RAM file: only its data extents are read and written, holes stay holes.
 * Node has no SEEK_DATA, so coreutils' cp does it (9.x walks the extents with SEEK_DATA/SEEK_HOLE).
 */
export function copySparse(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('cp', ['--sparse=auto', '--', from, to], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = tail(err + d.toString('utf8'), 2000)));
    p.once('error', reject);
    p.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`cp ${from} ${to}: ${signal ?? `exit code ${code}`}${err ? `: ${err.trim()}` : ''}`))));
  });
}

function tail(s: string, n: number): string {
  return s.length > n ? s.slice(-n) : s;
}

/** The end of a file (a console: with its rotated predecessor), as text. */
function readTail(file: string, n: number): string {
  return readConsoleTail(file, n).toString('utf8');
}

/** Delete all but the `keep` most recently modified .log files of `dir`. */
export function pruneOldest(dir: string, keep: number): void {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => {
      const p = path.join(dir, f);
      try {
        return { p, t: fs.statSync(p).mtimeMs };
      } catch {
        return undefined;
      }
    })
    .filter((x): x is { p: string; t: number } => x !== undefined)
    .sort((a, b) => b.t - a.t);
  for (const f of files.slice(keep)) fs.rmSync(f.p, { force: true });
}

interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
  'total-time'?: number;
  ram?: { transferred?: number };
}

// Never leave an orphan: if Node exits (normally or via process.exit), SIGKILL every VMM
// still running. One hook for all drivers (a hook per driver would trip the
// MaxListeners warning in tests that create many). Signals that kill Node without
// running 'exit' handlers (SIGINT/SIGTERM with no handler) must be turned into
// process.exit() by the CLI for this to run.
const allLiveVmms = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of allLiveVmms) {
      try {
        p.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export class QemuVm implements VmHandle {
  readonly timings: DriverTimings;
  readonly exited: Promise<VmExit>;
  channel!: SocketChannel;
  qmp!: QmpClient;
  exitInfo: VmExit | undefined;
  stderrTail = '';
  /** Host-side isolation state (uid, cgroups) released once the VMM has exited. */
  released: Promise<void> = Promise.resolve();
  /** where this VM's RAM lives (set by the driver at launch) */
  memory: MemoryBacking = { kind: 'anonymous' };
  /**
   * The root fs is a shared, read-only memory backend (pmem): every migration must skip
   * shared RAM (x-ignore-shared), full-stream ones too, or QEMU would stream the image into
   * the snapshot and write it back into a read-only mapping on restore.
   */
  sharedRootfs = false;
  private stopping: Promise<void> | undefined;
  /** resolves once the console pipe is drained and its file closed (issue 19) */
  private consoleDone: Promise<void> = Promise.resolve();
  /** its cgroups (the CPU cap of an idle VM, issue 19); none without isolation */
  cgroup: VmCgroup | undefined;

  constructor(
    readonly vmId: string,
    readonly accelerator: Accelerator,
    readonly proc: ChildProcess,
    readonly runDir: string,
    private readonly driver: QemuDriver,
    timings: DriverTimings,
  ) {
    this.timings = timings;
    this.exited = new Promise<VmExit>((resolve) => {
      const done = (e: VmExit) => {
        if (this.exitInfo) return;
        this.exitInfo = e;
        this.timings.exited = monoNow();
        this.driver.forget(this.proc);
        resolve(e);
      };
      proc.once('exit', (code, signal) => done({ code, signal }));
      // spawn failure (ENOENT...): no 'exit' follows
      proc.once('error', () => {
        if (proc.pid === undefined) done({ code: null, signal: null });
      });
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderrTail = tail(this.stderrTail + d.toString('utf8'), 8192);
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** The guest's console arrives on QEMU's stdout (`-serial stdio`): kept by `sink`, rotated. */
  attachConsole(sink: ConsoleSink): void {
    const out = this.proc.stdout;
    if (!out) return;
    let failed = false;
    out.on('data', (d: Buffer) => {
      try {
        sink.write(d);
      } catch (e) {
        // a full disk must not take the VM down: the console is dropped, said once
        if (!failed) this.driver.log(`qemu ${this.vmId}: console output dropped: ${(e as Error).message}`);
        failed = true;
      }
    });
    this.consoleDone = new Promise<void>((resolve) =>
      out.once('close', () => {
        sink.close();
        resolve();
      }),
    );
  }

  get consoleLogPath(): string {
    return this.driver.keptConsolePath(this.vmId) ?? runFiles(this.runDir).consoleLog;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** Why the VM is unusable, for connect aborts and error messages. */
  deadReason(): string | undefined {
    if (!this.exitInfo) return undefined;
    const how = this.exitInfo.signal ?? `code ${this.exitInfo.code}`;
    return `qemu exited (${how})${this.stderrTail.trim() ? `: ${tail(this.stderrTail.trim(), 500)}` : ''}`;
  }

  diagnostics(withStderr = true): string {
    const parts: string[] = [];
    if (withStderr && this.stderrTail.trim()) parts.push(`qemu stderr: ${tail(this.stderrTail.trim(), 1000)}`);
    const con = readTail(runFiles(this.runDir).consoleLog, 1500).trim();
    if (con) parts.push(`console tail: ${con}`);
    return parts.join('\n');
  }

  /** Saves the paused VM's migration stream to `statePath` through a unix socket (no exec: QEMU's sandbox forbids spawning). */
  private async saveState(statePath: string): Promise<void> {
    const rx = await receiveMigration(path.join(this.runDir, MIGRATION_SOCKET), statePath);
    try {
      await this.qmp.execute('migrate', { uri: `unix:${path.join(this.runDir, MIGRATION_SOCKET)}` });
      await this.waitMigration(120_000);
      // QEMU reports completion once it has sent everything; the file is complete once written
      await within(rx.done, 30_000, (): never => {
        throw new Error('snapshot state file not written within 30 s');
      });
    } finally {
      rx.close();
    }
  }

  async snapshot(target: SnapshotFiles, opts: SnapshotOptions = {}): Promise<SnapshotResult> {
    if (!this.alive) throw new Error(`snapshot ${this.vmId}: ${this.deadReason()}`);
    if (opts.thenContinue) return this.snapshotAndContinue(target);
    const caps: Array<{ capability: string; state: boolean }> = [{ capability: 'events', state: true }];
    if (target.kind === 'shared-memory' || this.sharedRootfs) caps.push({ capability: 'x-ignore-shared', state: true });
    await this.qmp.execute('migrate-set-capabilities', { capabilities: caps });
    fs.mkdirSync(path.dirname(target.statePath), { recursive: true });
    const t0 = performance.now();
    await this.qmp.execute('stop');
    const t1 = performance.now();
    this.timings.snapshotPaused = monoNow();
    await this.saveState(target.statePath);
    const t2 = performance.now();
    this.timings.snapshotSaved = monoNow();
    // query-migrate says "completed" a moment before the run state leaves
    // finish-migrate: report the snapshot done only once the VM is settled
    for (let i = 0; i < 200; i++) {
      const st = await this.qmp.execute<{ status: string }>('query-status');
      if (st.status !== 'finish-migrate') break;
      await new Promise((r) => setTimeout(r, 5));
    }
    return { pauseMs: t1 - t0, saveMs: t2 - t1 };
  }

  /**
   * Snapshot, then let this VM run on (snapshots.coldSnapshot: copy). While the guest is
   * paused the device state is saved and, for a shared-memory snapshot, the RAM file this
   * VM runs on is copied (sparse) next to the snapshot and renamed over the snapshot's RAM
   * path: the snapshot gets the copy, frozen at the pause, and this VM keeps writing to its
   * own (now unlinked) file, which the kernel frees when QEMU exits. A full-stream snapshot
   * already holds the RAM in its state file, so nothing is copied. Then `cont`.
   */
  private async snapshotAndContinue(target: SnapshotFiles): Promise<SnapshotResult> {
    const shared = target.kind === 'shared-memory';
    if (shared && (this.memory.kind !== 'file' || !this.memory.share || path.resolve(this.memory.path) !== path.resolve(target.memoryPath))) {
      throw new Error(`snapshot ${this.vmId}: a shared-memory snapshot needs the VM to run on its RAM file ${target.memoryPath} (share=on)`);
    }
    const caps: Array<{ capability: string; state: boolean }> = [{ capability: 'events', state: true }];
    if (shared || this.sharedRootfs) caps.push({ capability: 'x-ignore-shared', state: true });
    await this.qmp.execute('migrate-set-capabilities', { capabilities: caps });
    fs.mkdirSync(path.dirname(target.statePath), { recursive: true });
    const t0 = performance.now();
    await this.qmp.execute('stop');
    const t1 = performance.now();
    this.timings.snapshotPaused = monoNow();
    // the paused guest writes no RAM, and saving the device state only reads it: copy and save at once
    const tmp = `${target.memoryPath}.copy-${process.pid}-${this.pid}`;
    let copyMs = 0;
    const copy = shared
      ? copySparse(target.memoryPath, tmp).then(() => {
          fs.renameSync(tmp, target.memoryPath);
          copyMs = performance.now() - t1;
        })
      : Promise.resolve();
    try {
      const [saved, copied] = await Promise.allSettled([
        this.saveState(target.statePath).then(() => performance.now()),
        copy,
      ]);
      if (saved.status === 'rejected') throw saved.reason;
      if (copied.status === 'rejected') throw copied.reason;
      this.timings.snapshotSaved = monoNow();
      // completed: QEMU is in postmigrate (its disks handed over); cont takes them back and runs
      for (let i = 0; i < 200; i++) {
        const st = await this.qmp.execute<{ status: string }>('query-status');
        if (st.status !== 'finish-migrate') break;
        await sleep(5);
      }
      await this.qmp.execute('cont');
      const t3 = performance.now();
      this.timings.snapshotContinued = monoNow();
      return { pauseMs: t1 - t0, saveMs: saved.value - t1, copyMs, continueMs: t3 - t1, continued: true };
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /**
   * Resolves when the current (outgoing or incoming) migration has completed.
   * Polls query-migrate (the status persists, so nothing can be missed); a
   * MIGRATION event (the `events` capability) cuts the wait short.
   */
  async waitMigration(timeoutMs: number): Promise<MigrationInfo> {
    const deadline = monoNow() + timeoutMs;
    let wake: (() => void) | undefined;
    const onMigration = () => wake?.();
    this.qmp.on('event:MIGRATION', onMigration);
    try {
      let pollEvery = 1;
      for (;;) {
        const info = await this.qmp.execute<MigrationInfo>('query-migrate');
        if (info.status === 'completed') return info;
        if (info.status === 'failed' || info.status === 'cancelled') {
          throw new VmStartError('restore', 'snapshot-unusable', `migration ${info.status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}`);
        }
        if (!this.alive) throw new Error(`migration: ${this.deadReason()}`);
        if (monoNow() > deadline) throw new DeadlineExceededError(`migration did not complete within ${timeoutMs} ms (status ${info.status ?? 'none'})`);
        await Promise.race([sleep(pollEvery), new Promise<void>((r) => (wake = r))]);
        wake = undefined;
        pollEvery = Math.min(pollEvery * 2, 25);
      }
    } finally {
      this.qmp.off('event:MIGRATION', onMigration);
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const grace = this.driver.stopGraceMs;
    if (this.alive) {
      let asked = false;
      if (this.qmp?.isOpen) {
        try {
          await this.qmp.execute('quit', undefined, { timeoutMs: Math.min(grace, 1000) });
          asked = true;
        } catch {
          // connection dropped while quitting, or QEMU is wedged: signals below
        }
      }
      if (!asked && this.alive) this.proc.kill('SIGTERM');
      const exitedInTime = await within(this.exited.then(() => true), grace, () => false);
      if (!exitedInTime && this.alive) {
        this.driver.log(`qemu ${this.vmId} (pid ${this.pid}) did not exit after ${grace} ms; SIGKILL`);
        this.proc.kill('SIGKILL');
      }
      await this.exited;
    }
    this.qmp?.close();
    this.channel?.close();
    // the console's last bytes before the kept copy is made (the pipe closes when QEMU is gone)
    await within(this.consoleDone, 1000, () => undefined);
    await this.released;
    this.driver.keepConsole(this.vmId, runFiles(this.runDir).consoleLog);
    fs.rmSync(this.runDir, { recursive: true, force: true });
  }

  async memoryUsage(): Promise<{ rssKiB: number; pssKiB: number }> {
    if (!this.alive) throw new Error(`memoryUsage ${this.vmId}: ${this.deadReason()}`);
    const text = await fs.promises.readFile(`/proc/${this.pid}/smaps_rollup`, 'utf8');
    const field = (name: string) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    return { rssKiB: field('Rss'), pssKiB: field('Pss') };
  }

  setCpuCap(capCpus: number | null): boolean {
    return this.writeCgroup('its CPU cap', (cg) => cg.setCpuCap(capCpus));
  }

  setStartCpuWeight(starting: boolean): boolean {
    return this.writeCgroup('its CPU weight', (cg) => cg.setStartCpuWeight(starting));
  }

  /** One write to the VMM's cgroup at run time; false when there is none or the VMM is gone. */
  private writeCgroup(what: string, write: (cg: NonNullable<typeof this.cgroup>) => boolean): boolean {
    if (!this.cgroup || !this.alive) return false;
    try {
      return write(this.cgroup);
    } catch (e) {
      // the cgroup went with the VMM (it exited meanwhile): nothing left to write
      this.driver.log(`qemu ${this.vmId}: cannot set ${what}: ${(e as Error).message}`);
      return false;
    }
  }

  /** utime + stime of the whole process from /proc/PID/stat (clock ticks, 10 ms each here). */
  cpuMs(): number | undefined {
    if (!this.alive) return undefined;
    try {
      const stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'latin1');
      // fields after the parenthesised command: state is field 3, utime 14, stime 15
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
    } catch {
      return undefined;
    }
  }

  cpuDemandMs(): number | undefined {
    return this.alive ? cpuDemandMs(this.pid) : undefined;
  }
}

/** USER_HZ: 100 on every Linux/x86 build (sysconf(_SC_CLK_TCK) is not reachable from Node). */
const CLK_TCK = 100;

/** QEMU's deadline errors (start-failure.ts classifies a failed launch; QEMU exits when it cannot load a state). */
const QEMU_SIGNS: StartFailureSigns = {
  isTimeout: (e) => e instanceof DeadlineExceededError || e instanceof QmpTimeoutError || e instanceof ChannelTimeoutError,
};

export class QemuDriver implements RuntimeDriver {
  readonly name = 'qemu' as const;
  readonly snapshotContinues = true;
  readonly binary: string;
  readonly stopGraceMs: number;
  private readonly connectTimeoutMs: number;
  private readonly restoreTimeoutMs: number;
  private readonly logFn: (msg: string) => void;
  private readonly live = new Set<ChildProcess>();
  private accelDecision: AccelDecision | undefined;
  private keptConsoles = 0;

  constructor(private readonly opts: QemuDriverOptions = {}) {
    this.binary = opts.qemuBinary ?? DEFAULT_QEMU_BINARY;
    this.logFn = opts.log ?? (() => undefined);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.restoreTimeoutMs = opts.restoreTimeoutMs ?? 30_000;
    this.stopGraceMs = opts.stopGraceMs ?? 1500;
  }

  log(msg: string): void {
    this.logFn(msg);
  }

  /** Number of VMM processes this driver spawned that are still running. */
  get liveCount(): number {
    return this.live.size;
  }

  forget(p: ChildProcess): void {
    this.live.delete(p);
    allLiveVmms.delete(p);
  }

  private track(p: ChildProcess): void {
    this.live.add(p);
    allLiveVmms.add(p);
    installExitHook();
  }

  /** Runs (or returns the cached) accelerator detection for `image`; stored for report(). */
  async decideAccelerator(image: GuestImage): Promise<AccelDecision> {
    // same default as the image cache: $FAASCELL_CACHE_DIR or ~/.cache/faascell
    const a = this.opts.accel ?? { mode: 'auto' as const, cacheDir: process.env.FAASCELL_CACHE_DIR || path.join(os.homedir(), '.cache', 'faascell') };
    this.accelDecision = await detectAccelerator({ image, cacheDir: a.cacheDir, mode: a.mode, log: this.logFn, qemuBinary: this.binary });
    return this.accelDecision;
  }

  async boot(cfg: VmConfig): Promise<QemuVm> {
    return this.launch(cfg, {});
  }

  async restore(cfg: VmConfig, snapshot: SnapshotFiles): Promise<QemuVm> {
    for (const [what, p] of [
      ['state file', snapshot.statePath],
      ...(snapshot.kind === 'shared-memory' ? [['memory file', snapshot.memoryPath]] : []),
    ] as Array<[string, string]>) {
      if (!fs.existsSync(p)) throw new VmStartError('restore', 'snapshot-unusable', `restore ${cfg.vmId}: snapshot ${what} ${p} does not exist`);
    }
    if (snapshot.kind === 'shared-memory') {
      const size = fs.statSync(snapshot.memoryPath).size;
      // with a pmem root fs the RAM file holds the main part of guest RAM only (memoryLayout)
      const want = memoryLayout(cfg).mainMiB;
      if (size !== want * 1024 * 1024) {
        throw new VmStartError('restore', 'snapshot-unusable', `restore ${cfg.vmId}: memory file ${snapshot.memoryPath} is ${size} bytes, the VM's RAM file is ${want} MiB (snapshot taken with another VM shape?)`);
      }
      // issue 19: never map a sparse RAM file on tmpfs privately (a fault in a hole allocates in the file and
      // charges this clone twice); the SnapshotManager fills the holes right after the commit, a restore that
      // comes first fills the rest (one stat(2) otherwise)
      try {
        await ensureDense(snapshot.memoryPath);
      } catch (e) {
        throw new VmStartError('restore', 'snapshot-unusable', `restore ${cfg.vmId}: the holes of memory file ${snapshot.memoryPath} could not be filled: ${(e as Error).message}`, { cause: e });
      }
    }
    const opts: CmdlineOptions = { incoming: true };
    // A private CoW mapping: a shared one would write the clone's changes into the snapshot.
    if (snapshot.kind === 'shared-memory') opts.memory = { kind: 'file', path: snapshot.memoryPath, share: false };
    return this.launch(cfg, opts, snapshot);
  }

  private async launch(cfg: VmConfig, cmdOpts: CmdlineOptions, snapshot?: SnapshotFiles): Promise<QemuVm> {
    const timings: DriverTimings = { start: monoNow() };
    validateVmConfig(cfg);
    // issue 19: the serial console comes to the daemon (a pipe), which keeps it rotated (ConsoleSink)
    const tcgCodeCacheMiB = tcgCodeCacheFor(this.opts, snapshot !== undefined);
    const args = buildQemuArgs(cfg, { sandbox: this.opts.sandbox ?? true, tcgCodeCacheMiB, ...(this.opts.privateMemfdRam ? { privateMemfdRam: true } : {}), serial: 'stdio', ...cmdOpts });
    const bin = resolveBinary(this.binary);
    if (!bin) throw new Error(`${this.binary} not found (install it with: ${QEMU_INSTALL_HINT})`);
    fs.mkdirSync(cfg.runDir, { recursive: true, mode: 0o700 });
    const files = runFiles(cfg.runDir);
    // stale sockets from a crashed run would make connect() hit a dead socket
    for (const f of [files.qmpSocket, files.channelSocket, files.pidFile]) fs.rmSync(f, { force: true });
    const consoleSink = new ConsoleSink(files.consoleLog, this.opts.consoleRotateBytes ?? CONSOLE_ROTATE_BYTES);

    const memory = cmdOpts.memory ?? cfg.memory;
    let prepared: PreparedVmm | undefined;
    let stateFd: number | undefined;
    let proc: ChildProcess;
    try {
      prepared = this.opts.isolation?.prepare({
        vmId: cfg.vmId,
        runDir: cfg.runDir,
        memoryMiB: cfg.memoryMiB,
        // the code cache grows with the guest's code: part of what the VMM may use
        vmmExtraMiB: cfg.accelerator === 'tcg' ? (tcgCodeCacheMiB ?? 1024) : 0,
        vcpus: cfg.vcpus,
        startCpuWeight: cfg.startCpuWeight,
        binary: bin,
        readOnly: [cfg.image.kernelPath, cfg.image.initrdPath, cfg.image.rootfsPath],
        // QEMU 7.2 opens a RAM file read-write even for a private (share=off) mapping
        readWrite: memory.kind === 'file' ? [memory.path] : [],
        // a networked VM opens its tap through /dev/net/tun (the tap belongs to the VMMs' group)
        devices: [...(cfg.accelerator === 'kvm' ? ['/dev/kvm'] : []), ...(cfg.network ? ['/dev/net/tun'] : []), ...(this.opts.extraDevices?.(cfg) ?? [])],
      });
      timings.isolationPrepared = monoNow();
      const layers: LaunchLayer[] = [];
      if (cfg.cpuAffinity && cfg.cpuAffinity.length > 0) {
        // taskset execs the rest (same pid), so every thread QEMU creates inherits the mask
        const taskset = resolveBinary('taskset');
        if (!taskset) throw new Error('cpuAffinity requested but taskset is not installed (apt-get install util-linux)');
        layers.push(tasksetLayer(taskset, cfg.cpuAffinity));
      }
      // The kernel kills the VMM when the daemon dies, even by SIGKILL (no exit hook runs then).
      // Set first so no window is left; the jail sets it again after changing uid (which clears it).
      const setpriv = resolveBinary('setpriv');
      if (setpriv) layers.push(pdeathsigLayer(setpriv));
      else this.logFn(`qemu ${cfg.vmId}: setpriv (util-linux) not found: a SIGKILLed daemon would leave this VMM running until the next start reaps it`);
      // issue 24: before the cgroup and the jail: the flag is inherited and kept across their execs
      if (this.opts.thpOffLauncher) layers.push(thpOffLayer(this.opts.thpOffLauncher));
      if (prepared?.cgroupLayer) layers.push(prepared.cgroupLayer);
      // still root here: network namespaces and the like (added by other modules)
      layers.push(...(this.opts.rootLayers?.(cfg, { uid: prepared?.uid, gid: prepared?.gid }) ?? []));
      // Egress networking (src/network): QEMU runs inside the VM's network namespace to reach its
      // tap; joining it needs root, so it comes before the jail drops every privilege.
      if (cfg.network) {
        const nsenter = resolveBinary('nsenter');
        if (!nsenter) throw new Error(`qemu ${cfg.vmId}: network: nsenter not found (apt-get install util-linux)`);
        layers.push(netnsLayer(nsenter, cfg.network.netnsPath));
      }
      // drops every privilege: always the innermost layer
      if (prepared?.jailLayer) layers.push(prepared.jailLayer);
      const launch = composeLaunch({ cmd: bin, argv: args }, layers);
      const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
      if (snapshot) {
        // the state file reaches QEMU as an inherited fd (`migrate-incoming fd:3`): no helper process
        stateFd = fs.openSync(snapshot.statePath, 'r');
        stdio[INCOMING_FD] = stateFd;
      }
      this.logFn(`qemu ${cfg.vmId}: ${describeLaunch(launch)}`);
      proc = spawn(launch.cmd, launch.argv, { stdio, detached: false, env: vmmEnv({ arenaMax: this.opts.mallocArenaMax, mmapThresholdKiB: this.opts.mallocMmapThresholdKiB }) });
    } catch (e) {
      if (stateFd !== undefined) fs.closeSync(stateFd);
      await prepared?.release();
      throw e;
    }
    if (stateFd !== undefined) fs.closeSync(stateFd);
    const vm = new QemuVm(cfg.vmId, cfg.accelerator, proc, cfg.runDir, this, timings);
    vm.attachConsole(consoleSink);
    vm.cgroup = prepared?.cgroup;
    if (prepared) {
      const p = prepared;
      vm.released = vm.exited.then(() => p.release()).catch((e: unknown) => this.logFn(`qemu ${cfg.vmId}: releasing its isolation failed: ${(e as Error).message}`));
    }
    vm.memory = cmdOpts.memory ?? cfg.memory;
    vm.sharedRootfs = pmemRootfs(cfg) !== undefined;
    if (proc.pid === undefined) {
      const err = await new Promise<Error>((r) => proc.once('error', r));
      await vm.released;
      fs.rmSync(cfg.runDir, { recursive: true, force: true });
      throw new Error(`cannot start ${bin}: ${err.message}`);
    }
    this.track(proc);
    timings.vmmSpawned = monoNow();

    try {
      const abort = () => vm.deadReason();
      const qmpP = QmpClient.connect(files.qmpSocket, { timeoutMs: this.connectTimeoutMs, abort }).then((q) => {
        timings.qmpConnected = monoNow();
        return q;
      });
      const chanP = SocketChannel.connect(files.channelSocket, this.connectTimeoutMs, {
        abort,
        log: this.logFn,
        limits: this.opts.channelLimits,
        // a guest that breaks the protocol loses its VM (and nothing else): the owner sees it exit
        onViolation: (err) => {
          this.logFn(`qemu ${cfg.vmId}: stopping the VM: ${err.message}`);
          void vm.stop();
        },
      }).then((c) => {
        timings.channelConnected = monoNow();
        return c;
      });
      const [qr, cr] = await Promise.allSettled([qmpP, chanP]);
      if (qr.status === 'fulfilled') vm.qmp = qr.value;
      if (cr.status === 'fulfilled') vm.channel = cr.value;
      if (qr.status === 'rejected') throw qr.reason;
      if (cr.status === 'rejected') throw cr.reason;

      if (snapshot) {
        const caps: Array<{ capability: string; state: boolean }> = [{ capability: 'events', state: true }];
        if (snapshot.kind === 'shared-memory' || vm.sharedRootfs) caps.push({ capability: 'x-ignore-shared', state: true });
        await vm.qmp.execute('migrate-set-capabilities', { capabilities: caps });
        await vm.qmp.execute('migrate-incoming', { uri: `fd:${INCOMING_FD}` });
        await vm.waitMigration(this.restoreTimeoutMs);
        timings.stateLoaded = monoNow();
        // Without -S QEMU autostarts after an incoming migration; cont makes it explicit either way.
        const st = await vm.qmp.execute<{ running: boolean; status: string }>('query-status');
        if (!st.running) await vm.qmp.execute('cont');
        timings.resumed = monoNow();
      }
    } catch (e) {
      // let QEMU finish writing its error, then tear everything down
      await Promise.race([vm.exited, sleep(50)]);
      const dead = vm.deadReason();
      const diag = vm.diagnostics(!dead);
      const copyDir = this.keepFailedRunDir(cfg.runDir);
      await vm.stop();
      const what = snapshot ? 'restore' : 'boot';
      // If QEMU died, its own message is the real cause; the socket error is a consequence.
      const msg = dead ? `${dead} [${(e as Error).message}]` : (e as Error).message;
      throw new VmStartError(what, startFailureReason(e, vm.exitInfo, snapshot !== undefined, QEMU_SIGNS), `${what} ${cfg.vmId} failed: ${msg}${diag ? `\n${diag}` : ''}${copyDir ? `\n(console log kept in ${copyDir})` : ''}`, {
        cause: e,
      });
    }
    return vm;
  }

  keptConsolePath(vmId: string): string | undefined {
    return this.opts.consoleDir ? path.join(this.opts.consoleDir, `${vmId}.log`) : undefined;
  }

  /** Append the tail of a stopped VM's console to its kept log, bounded in size; prune old logs now and then. */
  keepConsole(vmId: string, consoleLog: string): void {
    const dest = this.keptConsolePath(vmId);
    if (!dest) return;
    const max = this.opts.consoleMaxBytes ?? 64 * 1024;
    const keep = this.opts.consoleKeep ?? 200;
    try {
      if (keep === 0) return;
      fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
      const add = readTail(consoleLog, max);
      fs.appendFileSync(dest, add, { mode: 0o600 });
      if (fs.statSync(dest).size > max) fs.writeFileSync(dest, readTail(dest, max));
      if (++this.keptConsoles % 20 === 1) pruneOldest(path.dirname(dest), keep);
    } catch (err) {
      this.logFn(`qemu ${vmId}: could not keep its console log: ${(err as Error).message}`);
    }
  }

  /** Keeps console.log of a failed boot next to the run dir for diagnostics (runDir itself is removed); at most one rotation's worth. */
  private keepFailedRunDir(runDir: string): string | undefined {
    const log = runFiles(runDir).consoleLog;
    try {
      const tailBytes = readConsoleTail(log, this.opts.consoleRotateBytes ?? CONSOLE_ROTATE_BYTES);
      if (tailBytes.length === 0) return undefined;
      const dest = `${runDir.replace(/\/+$/, '')}.failed-console.log`;
      fs.writeFileSync(dest, tailBytes, { mode: 0o600 });
      return dest;
    } catch {
      return undefined;
    }
  }

  async report(): Promise<DriverReport> {
    const problems: string[] = [];
    const bin = resolveBinary(this.binary);
    if (!bin) {
      problems.push(`${this.binary} not found in PATH; install it with: ${QEMU_INSTALL_HINT}`);
      return { runtime: 'qemu', available: false, problems };
    }
    const r: DriverReport = { runtime: 'qemu', available: true, binary: bin, problems };
    try {
      r.version = await qemuVersion(bin);
    } catch (e) {
      r.available = false;
      problems.push(`${bin} --version failed: ${(e as Error).message}`);
      return r;
    }
    const a = this.opts.accel;
    try {
      if (this.accelDecision) {
        r.accelerator = this.accelDecision.accelerator;
        r.acceleratorReason = this.accelDecision.reason + (this.accelDecision.cached ? ' (cached)' : '');
      } else if (a && (a.image || a.mode !== 'auto')) {
        const d = a.image
          ? await this.decideAccelerator(a.image)
          : await detectAccelerator({ image: undefined as unknown as GuestImage, cacheDir: a.cacheDir, mode: a.mode });
        r.accelerator = d.accelerator;
        r.acceleratorReason = d.reason + (d.cached ? ' (cached)' : '');
      } else {
        r.acceleratorReason = 'not determined yet: needs a built guest image to probe KVM';
      }
    } catch (e) {
      problems.push(`accelerator: ${(e as Error).message}`);
    }
    return r;
  }
}
