// A RuntimeDriver that runs no VM: an in-process stand-in for unit tests of the
// pool, worker and dispatcher logic ONLY. End-to-end tests use the real QEMU driver.
import { EventEmitter } from 'node:events';
import type { AgentReady, AgentReply, AgentRequestBody } from '../../src/runtimes/agent-protocol.js';
import type { DriverReport, GuestChannel, GuestImage, RuntimeDriver, SnapshotFiles, VmConfig, VmExit, VmHandle } from '../../src/runtimes/types.js';

export interface FakeBehaviour {
  bootMs?: number;
  runMs?: number;
  /** params.crash → the VM exits during the run; params.hang → never answers */
  failBoot?: boolean;
  /** a restored VM's resync answers after this long (failing if the VM was stopped meanwhile) */
  resyncMs?: number;
  /** a restored VM's agent refuses the resync */
  failResync?: boolean;
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

class FakeVm implements VmHandle {
  readonly accelerator = 'tcg' as const;
  readonly pid = 0;
  readonly timings: Record<string, number> = { vmmSpawned: Date.now() };
  readonly channel: GuestChannel;
  readonly exited: Promise<VmExit>;
  private exit!: (e: VmExit) => void;
  stopped = false;
  private inited = false;
  readonly events = new EventEmitter();

  constructor(
    readonly vmId: string,
    private readonly b: FakeBehaviour,
    restored: boolean,
  ) {
    this.exited = new Promise((r) => (this.exit = r));
    this.inited = restored;
    const closed = this.exited.then(() => undefined);
    this.channel = {
      ready: async (): Promise<AgentReady> => {
        await sleep(b.bootMs ?? 5);
        if (b.failBoot) throw new Error('boot failed (fake)');
        return { type: 'ready', agentVersion: 'fake', node: process.version, uptimeMs: { init: 1, agentStart: 2, ready: 3 } };
      },
      request: async (req: AgentRequestBody): Promise<AgentReply> => {
        if (this.stopped) throw new Error('channel closed');
        if (req.op === 'init') {
          this.inited = true;
          return { id: 0, ok: true };
        }
        if (req.op === 'run') {
          const p = req.params as Record<string, unknown>;
          if (p.hang) return new Promise(() => undefined);
          if (p.crash) {
            this.exit({ code: 0, signal: null });
            throw new Error('channel closed');
          }
          await sleep(b.runMs ?? 1);
          if (p.throw) return { id: 0, ok: false, error: { kind: 'application', message: JSON.stringify(p.throw) }, logs: ['before throw'] };
          return { id: 0, ok: true, result: { echo: p, inited: this.inited }, logs: ['ran'], durationMs: b.runMs ?? 1 };
        }
        if (req.op === 'resync') {
          await sleep(b.resyncMs ?? 0);
          if (this.stopped) throw new Error('guest channel closed (closed by host)');
          if (b.failResync) return { id: 0, ok: false, error: { kind: 'state', message: 'resync refused (fake)' } };
        }
        return { id: 0, ok: true };
      },
      close: () => undefined,
      closed,
    };
  }
  async snapshot(): Promise<{ pauseMs: number; saveMs: number }> {
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
  constructor(public behaviour: FakeBehaviour = {}) {}
  async boot(cfg: VmConfig): Promise<VmHandle> {
    this.boots++;
    const vm = new FakeVm(cfg.vmId, this.behaviour, false);
    this.vms.push(vm);
    return vm;
  }
  async restore(cfg: VmConfig, _s: SnapshotFiles): Promise<VmHandle> {
    this.restores++;
    const vm = new FakeVm(cfg.vmId, this.behaviour, true);
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
