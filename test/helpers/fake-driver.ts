// A RuntimeDriver that runs no VM: an in-process stand-in for unit tests of the
// pool, worker and dispatcher logic ONLY (and for the conformance test, on a
// virtual clock). End-to-end tests use the real QEMU driver.
import { EventEmitter } from 'node:events';
import { realClock, type Clock } from '../../src/core/clock.js';
import type { AgentReady, AgentReply, AgentRequestBody } from '../../src/runtimes/agent-protocol.js';
import { ChannelClosedError } from '../../src/runtimes/channel.js';
import type { StartFault } from '../../src/sim/faults.js';
import { VmStartError, type DriverReport, type GuestChannel, type GuestImage, type RuntimeDriver, type SnapshotFiles, type VmConfig, type VmExit, type VmHandle } from '../../src/runtimes/types.js';

export interface FakeBehaviour {
  /** QEMU start → agent ready */
  bootMs?: number;
  /** init request */
  initMs?: number;
  /** run request, unless params.ms says otherwise */
  runMs?: number;
  /** the VM never comes up */
  failBoot?: boolean;
  /** init answers with a failure */
  failInit?: boolean;
  /** restore (driver part) */
  restoreMs?: number;
  /** a restored VM's resync answers after this long (failing if the VM was stopped meanwhile) */
  resyncMs?: number;
  /** a restored VM's agent refuses the resync */
  failResync?: boolean;
  /** the driver refuses to restore: the snapshot is unusable */
  brokenSnapshot?: boolean;
  /** snapshot (pause + save) */
  snapshotMs?: number;
  /** a cold start continuing from its own snapshot: restore + resync (default: restoreMs, resyncMs) */
  ownRestoreMs?: number;
  /** taking the snapshot fails (after snapshotMs) */
  failSnapshot?: boolean;
}

export const fakeImage: GuestImage = {
  version: 'fake-1',
  dir: '/nonexistent',
  kernelPath: '/nonexistent/vmlinux',
  kernelKind: 'minimal',
  initrdPath: '/nonexistent/initrd',
  rootfsPath: '/nonexistent/rootfs',
  cmdline: '',
  sizes: { kernelBytes: 0, initrdBytes: 0, rootfsBytes: 0 },
};

/** params a fake run understands: crash (VM exits), hang (never answers), throw (application error), ms (run time) */
class FakeVm implements VmHandle {
  readonly accelerator = 'tcg' as const;
  readonly pid = 0;
  readonly timings: Record<string, number>;
  readonly channel: GuestChannel;
  readonly exited: Promise<VmExit>;
  private exit!: (e: VmExit) => void;
  stopped = false;
  /** issue 9 seam: the requests this VM's agent got (op, and whether a run carried a resync) */
  readonly ops: string[] = [];
  private inited = false;
  readonly events = new EventEmitter();

  constructor(
    readonly vmId: string,
    private readonly b: FakeBehaviour,
    restored: boolean,
    private readonly clock: Clock,
  ) {
    this.timings = { vmmSpawned: clock.now() };
    this.exited = new Promise((r) => (this.exit = r));
    this.inited = restored;
    const closed = this.exited.then(() => undefined);
    const closedErr = () => new ChannelClosedError('guest channel closed (fake VM stopped)');
    // like a real channel: a pending request fails as soon as the VM is gone
    const wait = (ms: number): Promise<void> =>
      // no timer for 0 ms (setTimeout clamps to 1 ms): the warm-path microbenchmark measures the daemon, not the timer
      ms <= 0 ? Promise.resolve() : Promise.race([clock.sleep(ms), this.exited.then(() => Promise.reject(closedErr()))]);
    this.channel = {
      ready: async (): Promise<AgentReady> => {
        await wait(b.bootMs ?? 5);
        if (b.failBoot) throw new Error('boot failed (fake)');
        if (this.stopped) throw closedErr();
        return { type: 'ready', agentVersion: 'fake', node: process.version, uptimeMs: { init: 1, agentStart: 2, ready: 3 } };
      },
      request: async (req: AgentRequestBody): Promise<AgentReply> => {
        if (this.stopped) throw closedErr();
        this.ops.push(req.op === 'run' && req.resync ? 'run+resync' : req.op);
        if (req.op === 'init') {
          if (b.initMs) await wait(b.initMs);
          if (this.stopped) throw closedErr();
          if (b.failInit) return { id: 0, ok: false, error: { kind: 'init', message: 'init failed (fake)' } };
          this.inited = true;
          return { id: 0, ok: true };
        }
        if (req.op === 'run') {
          const p = (req.params ?? {}) as Record<string, unknown>;
          if (p.hang) return this.exited.then(() => Promise.reject(closedErr()));
          // issue 9 seam: a run carrying a resync the agent refuses (the function does not run)
          if (req.resync && b.failResync) return { id: 0, ok: false, error: { kind: 'state', message: 'resync refused (fake)' } };
          if (p.crash) {
            this.exit({ code: 0, signal: null });
            throw closedErr();
          }
          const ms = typeof p.ms === 'number' ? p.ms : (b.runMs ?? 1);
          await wait(ms);
          if (p.throw) return { id: 0, ok: false, error: { kind: 'application', message: JSON.stringify(p.throw) }, logs: ['before throw'] };
          if (p.result !== undefined) return { id: 0, ok: true, result: p.result, logs: [], durationMs: ms };
          return { id: 0, ok: true, result: { echo: p, inited: this.inited }, logs: ['ran'], durationMs: ms };
        }
        if (req.op === 'resync') {
          await wait(b.resyncMs ?? 0);
          if (this.stopped) throw closedErr();
          if (b.failResync) return { id: 0, ok: false, error: { kind: 'state', message: 'resync refused (fake)' } };
        }
        return { id: 0, ok: true };
      },
      close: () => undefined,
      closed,
    };
  }
  async snapshot(): Promise<{ pauseMs: number; saveMs: number }> {
    if (this.b.snapshotMs) await this.clock.sleep(this.b.snapshotMs);
    if (this.b.failSnapshot) throw new Error('snapshot failed (fake)');
    return { pauseMs: 1, saveMs: 1 };
  }
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.exit({ code: null, signal: 'SIGTERM' });
  }
  async memoryUsage(): Promise<{ rssKiB: number; pssKiB: number }> {
    return { rssKiB: 1, pssKiB: 1 };
  }
}

export class FakeDriver implements RuntimeDriver {
  readonly name = 'qemu' as const;
  readonly vms: FakeVm[] = [];
  boots = 0;
  restores = 0;
  /**
   * Fault injection (src/sim/faults.ts): the fault of the start whose VM this is, failing as a real VM
   * would at `afterMs` after the start began (boot: the agent never says ready; init: the function's init
   * fails; snapshot: saving it fails; restore-broken / restore-slow: the driver's restore throws a typed
   * VmStartError; resync: the clone's first run refuses the resync it carries).
   */
  faultFor?: (vmId: string) => StartFault | undefined;
  constructor(
    public behaviour: FakeBehaviour = {},
    private readonly clock: Clock = realClock,
  ) {}
  async boot(cfg: VmConfig): Promise<VmHandle> {
    this.boots++;
    const fault = this.faultFor?.(cfg.vmId);
    // a VMM that cannot even be spawned (jail, cgroup, binary): the driver throws at once
    if (fault?.kind === 'boot' && fault.afterMs === 0) throw new VmStartError('boot', 'vmm-failed', 'VMM could not be started (fake fault)');
    const vm = new FakeVm(cfg.vmId, this.bootBehaviour(fault), false, this.clock);
    this.vms.push(vm);
    return vm;
  }
  private bootBehaviour(f: StartFault | undefined): FakeBehaviour {
    const b = this.behaviour;
    if (!f) return b;
    const boot = b.bootMs ?? 5;
    switch (f.kind) {
      case 'boot':
        return { ...b, failBoot: true, bootMs: f.afterMs };
      case 'init':
        return { ...b, failInit: true, initMs: Math.max(0, f.afterMs - boot) };
      case 'snapshot':
        return { ...b, failSnapshot: true, snapshotMs: Math.max(0, f.afterMs - boot - (b.initMs ?? 0)) };
      default:
        return b;
    }
  }
  async restore(cfg: VmConfig, _s: SnapshotFiles): Promise<VmHandle> {
    this.restores++;
    const b = this.behaviour;
    // a VM restoring the snapshot it has just taken (a cold start's last step)
    const own = this.vms.some((v) => v.vmId === cfg.vmId);
    const fault = own ? undefined : this.faultFor?.(cfg.vmId);
    if (fault?.kind === 'restore-broken' || fault?.kind === 'restore-slow') {
      await this.clock.sleep(fault.afterMs);
      throw fault.kind === 'restore-broken'
        ? new VmStartError('restore', 'snapshot-unusable', 'snapshot unusable (fake fault)')
        : new VmStartError('restore', 'timeout', 'restore did not finish in time (fake fault)');
    }
    const ms = own && b.ownRestoreMs !== undefined ? b.ownRestoreMs : b.restoreMs;
    if (ms) await this.clock.sleep(ms);
    if (b.brokenSnapshot) throw new VmStartError('restore', 'snapshot-unusable', 'snapshot unusable (fake)');
    const vb = fault?.kind === 'resync' ? { ...b, failResync: true } : b;
    const vm = new FakeVm(cfg.vmId, own && b.ownRestoreMs !== undefined ? { ...vb, resyncMs: 0 } : vb, true, this.clock);
    this.vms.push(vm);
    return vm;
  }
  async report(): Promise<DriverReport> {
    return { runtime: 'qemu', available: true, problems: [] };
  }
  live(): number {
    return this.vms.filter((v) => !v.stopped).length;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
