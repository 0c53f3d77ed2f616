// Worker: owns one microVM through a runtime driver, as an explicit state
// machine (instance-state.ts) whose mailbox never waits on I/O. Long steps (boot,
// init, snapshot, restore, run, stop) run as tasks that report back to the
// Worker as messages; each state accepts only the messages listed for it in
// HANDLERS, so a stop that arrives while booting or running is handled by that
// state (kill the VM; the step in flight then fails and is settled) instead of
// waiting for the step. The Worker tells VmPool what happened (ready, run done,
// snapshot taken, gone with a typed failure); VmPool's decision core decides what
// follows. Failures are typed (src/core/failure.ts), never recognised by text.

import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { Actor, errText, type ActorRef, type Reply } from '../core/actor.js';
import type { Clock } from '../core/clock.js';
import type { FailedStart, Failure } from '../core/failure.js';
import { describeInitError } from './init-error.js';
import type { NetworkMsg, VmEndpoints } from '../network/network-manager.js';
import { type ActivationRecord, type StartPath } from '../perf/activation.js';
import type { FunctionDef, Registry } from '../registry/registry.js';
import { toCodeFiles } from '../registry/code.js';
import type { AgentReady, AgentReply, ResyncFields } from '../runtimes/agent-protocol.js';
import { ChannelClosedError, ChannelEncodeError, ChannelTimeoutError, isGuestProtocolFault } from '../runtimes/channel.js';
import { DeadlineExceededError, VmStartError, type Accelerator, type GuestImage, type MemoryBacking, type RuntimeDriver, type VmConfig, type VmHandle } from '../runtimes/types.js';
import type { SnapshotMsg, SnapshotRef } from '../snapshots/types.js';
import { loadWorkingSet, prefetchWorkingSet, recordWorkingSet, saveWorkingSet } from '../snapshots/prefetch.js';
import type { StartFailure, StopCause } from '../vmpool/core/model.js';
import type { FunctionRuntime } from '../runtimes/function-runtime.js';
import { InstanceStateMachine, type InstanceState } from './instance-state.js';

export interface WorkerLimits {
  /** a result larger than this (JSON bytes) is refused (OpenWhisk's 1 MiB by default) */
  maxResultBytes: number;
  /** logs beyond this many bytes per activation are cut, with a note */
  maxLogBytes: number;
}

export interface WorkerDeps {
  driver: RuntimeDriver;
  /** the Node.js functions' guest image */
  image: GuestImage;
  /** issue 21: the guest image of each other runtime this node has (python3); absent: its functions cannot start here */
  images?: Partial<Record<FunctionRuntime, GuestImage>>;
  accelerator: Accelerator;
  registry: Registry;
  network: ActorRef<NetworkMsg>;
  snapshots?: ActorRef<SnapshotMsg>;
  clock: Clock;
  bootTimeoutMs: number;
  limits: WorkerLimits;
  /** record a restored VM's working set and read it ahead on later restores (REAP) */
  prefetch?: boolean;
  /** when a restored clone's kernel clock and CRNG are set (see snapshots.kernelResync) */
  kernelResync?: 'before-run' | 'deferred';
  /**
   * issue 9: a restored clone's resync travels with its first run (`run.resync`, one channel
   * round trip instead of two; snapshots.resync 'with-run'); otherwise a separate `resync` request
   * before the clone is ready ('message').
   */
  resyncWithRun?: boolean;
  /** host CPUs this VM is pinned to */
  cpuAffinity?: number[];
  /**
   * How a cold start that leaves a snapshot goes on after taking it (snapshots.coldSnapshot):
   * 'copy' (default) copies the RAM file while the guest is paused and lets the same VM run on;
   * 'restore' stops the source VM and continues from a restore of its own snapshot.
   */
  coldSnapshot?: 'copy' | 'restore';
  /**
   * issue 19: host CPUs an idle VM's VMM may use (limits.idleCpuQuota). Guest code that keeps
   * running after it returned its result gets no more than this until the VM's next run; the cap
   * is lifted before that run is sent. Undefined or null: no cap.
   */
  idleCpuCap?: number | null;
  /**
   * issue 18: the VMs' cgroups have a start weight (limits.startCpuWeight): the VM holds it from its VMM's
   * spawn until it is ready for its first run, then its own weight. Undefined or false: one weight throughout.
   */
  startCpuWeight?: boolean;
}

/** startWeighted (issue 18): the core gave this start the start CPU weight (limits.startCpuWeightScope); absent: it has it */
export type StartPlan = (
  /** restoreError: this cold start follows a failed restore of the function's snapshot (the record says why) */
  | { path: 'cold'; fn: FunctionDef; snapshotTarget?: SnapshotRef; restoreError?: string }
  | { path: 'restore'; fn: FunctionDef; snapshot: SnapshotRef }
) & { startWeighted?: boolean };

/** A request VmPool assigned to this instance. */
export interface RunRequest {
  /** VmPool's request number */
  req: number;
  rec: ActivationRecord;
  params: unknown;
  /** the request waited for this instance's start: its record carries the start's stages */
  fresh: boolean;
  reply: Reply<InvokeOutcome>;
}

export type InvokeOutcome =
  | { ok: true; result: unknown; logs: string[]; runMs?: number }
  | { ok: false; failure: Failure; logs: string[]; runMs?: number };

/** What the Worker tells VmPool. `inst` is the decision core's instance number. */
export type WorkerEvent =
  /** cpuMs: the CPU time its VMMs took for the start, when the driver reports it (fairness charges it: issue 18) */
  | { kind: 'ready'; inst: number; cpuMs?: number }
  | { kind: 'snapshotTaken'; inst: number; snapshot: SnapshotRef; bytes: number }
  | { kind: 'snapshotFailed'; inst: number }
  /** cpuMs: the VMM's CPU time over the run, when the driver reports it (fairness charges it: issue 18) */
  | { kind: 'runDone'; inst: number; cpuMs?: number }
  /** failure: a restored clone's first run found the restore unusable (restore-broken); else its VM was gone */
  | { kind: 'runRefused'; inst: number; req: number; failure?: StartFailure }
  | { kind: 'gone'; inst: number; failure?: StartFailure };

/** Results of the Worker's own steps, delivered as messages. */
type StepMsg =
  /** the VMM runs (booting or restoring): a stop from now on kills it at once */
  | { kind: 'spawned'; vm: VmHandle }
  | { kind: 'booted'; ready: AgentReady }
  | { kind: 'initialized' }
  /** continued: the source VM runs on (snapshots.coldSnapshot copy); otherwise it was stopped */
  | { kind: 'snapshotted'; bytes: number; pauseMs: number; saveMs: number; copyMs?: number; continued: boolean }
  /** carried: the resync rides on the clone's first run (snapshots.resync with-run) */
  | { kind: 'restored'; resync: { clockMs?: number; reseedMs?: number }; carried?: boolean }
  | { kind: 'ran'; reply: AgentReply; cpuMs?: number; demandMs?: number }
  | { kind: 'stepFailed'; step: 'boot' | 'init' | 'snapshot' | 'restore' | 'run'; error: unknown }
  | { kind: 'vmStopped'; vm: VmHandle }
  | { kind: 'vmExited'; vm: VmHandle; detail: string };

export type WorkerMsg = { kind: 'run'; run: RunRequest } | { kind: 'stop'; reason: string } | StepMsg;

type Handler = (w: Worker, msg: WorkerMsg) => void;
type Handlers = Partial<Record<WorkerMsg['kind'], Handler>>;

/**
 * A run or an init gets exactly the function's timeout, counted from when the host sends it
 * to the guest (issue 20: a 2 s timeout answers after 2 s, not 3). The channel's own timeout
 * fires then; this backstop only bounds a step whose channel never settles.
 */
const BACKSTOP_MS = 100;

class DeadlineError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

export class Worker extends Actor<WorkerMsg> {
  /** Which messages each state accepts; anything else is logged and dropped (step results of a stopped VM are settled by `stopping`). */
  private static readonly HANDLERS: Record<InstanceState, Handlers> = {
    booting: {
      spawned: (w, m) => w.onSpawned(m as Extract<StepMsg, { kind: 'spawned' }>),
      booted: (w, m) => w.onBooted(m as Extract<StepMsg, { kind: 'booted' }>),
      vmExited: (w, m) => w.onVmExited(m as Extract<StepMsg, { kind: 'vmExited' }>),
      stepFailed: (w, m) => w.onStartStepFailed(m as Extract<StepMsg, { kind: 'stepFailed' }>),
      stop: (w, m) => w.beginStop((m as { reason: string }).reason),
      run: (w, m) => w.refuse((m as { run: RunRequest }).run),
    },
    initializing: {
      initialized: (w) => w.onInitialized(),
      stepFailed: (w, m) => w.onStartStepFailed(m as Extract<StepMsg, { kind: 'stepFailed' }>),
      vmExited: (w, m) => w.onVmExited(m as Extract<StepMsg, { kind: 'vmExited' }>),
      stop: (w, m) => w.beginStop((m as { reason: string }).reason),
      run: (w, m) => w.refuse((m as { run: RunRequest }).run),
    },
    snapshotting: {
      snapshotted: (w, m) => w.onSnapshotted(m as Extract<StepMsg, { kind: 'snapshotted' }>),
      stepFailed: (w, m) => w.onStartStepFailed(m as Extract<StepMsg, { kind: 'stepFailed' }>),
      vmExited: (w, m) => w.onVmExited(m as Extract<StepMsg, { kind: 'vmExited' }>),
      stop: (w, m) => w.beginStop((m as { reason: string }).reason),
      run: (w, m) => w.refuse((m as { run: RunRequest }).run),
    },
    restoring: {
      spawned: (w, m) => w.onSpawned(m as Extract<StepMsg, { kind: 'spawned' }>),
      restored: (w, m) => w.onRestored(m as Extract<StepMsg, { kind: 'restored' }>),
      stepFailed: (w, m) => w.onStartStepFailed(m as Extract<StepMsg, { kind: 'stepFailed' }>),
      vmExited: (w, m) => w.onVmExited(m as Extract<StepMsg, { kind: 'vmExited' }>),
      stop: (w, m) => w.beginStop((m as { reason: string }).reason),
      run: (w, m) => w.refuse((m as { run: RunRequest }).run),
    },
    idle: {
      run: (w, m) => w.onRun((m as { run: RunRequest }).run),
      vmExited: (w, m) => w.onVmExited(m as Extract<StepMsg, { kind: 'vmExited' }>),
      stop: (w, m) => w.beginStop((m as { reason: string }).reason),
    },
    running: {
      ran: (w, m) => w.onRan(m as Extract<StepMsg, { kind: 'ran' }>),
      stepFailed: (w, m) => w.onRunFailed(m as Extract<StepMsg, { kind: 'stepFailed' }>),
      // the run step fails too (its channel closes): remember why, decide there
      vmExited: (w, m) => w.noteExit(m as Extract<StepMsg, { kind: 'vmExited' }>),
      stop: (w, m) => w.beginStop((m as { reason: string }).reason),
      run: (w, m) => w.refuse((m as { run: RunRequest }).run),
    },
    failed: {
      run: (w, m) => w.refuse((m as { run: RunRequest }).run),
    },
    stopping: {
      // a step that was in flight when the stop came: settle it (its VM is stopped too)
      spawned: (w, m) => w.settleLate((m as { vm: VmHandle }).vm),
      booted: (w) => w.settleLate(undefined),
      restored: (w) => w.settleLate(undefined),
      stepFailed: (w, m) => w.settleLate(undefined, m as Extract<StepMsg, { kind: 'stepFailed' }>),
      ran: (w, m) => w.settleLate(undefined, m as Extract<StepMsg, { kind: 'ran' }>),
      initialized: (w) => w.settleLate(undefined),
      snapshotted: (w) => w.settleLate(undefined),
      vmStopped: (w, m) => w.onVmStopped((m as { vm: VmHandle }).vm),
      run: (w, m) => w.refuse((m as { run: RunRequest }).run),
      stop: () => undefined,
      vmExited: () => undefined,
    },
    gone: {
      run: (w, m) => w.refuse((m as { run: RunRequest }).run),
      stop: () => undefined,
      vmExited: () => undefined,
      vmStopped: () => undefined,
    },
  };

  readonly sm: InstanceStateMachine;
  private vm: VmHandle | undefined;
  /** VMs being stopped (the current one, a snapshot source, a late one) */
  private stoppingVms = new Set<VmHandle>();
  /** a step is in flight (boot, init, snapshot, restore, run) */
  private stepInFlight = false;
  private startPath: StartPath;
  private readonly startStamps: Partial<ActivationRecord['timestamps']> = {};
  private readonly startDetails: Record<string, number | string> = {};
  private readonly startBegan: number;
  private served = 0;
  private snapshotUsed: SnapshotRef | undefined;
  private current: RunRequest | undefined;
  private exitDetail: string | undefined;
  /** why a start failed, reported with `gone` */
  private startFailure: StartFailure | undefined;
  private cpuAtRunStart: number | undefined;
  private demandAtRunStart: number | undefined;
  /** issue 9: a restored clone whose resync rides on its first run (resyncWithRun) */
  private resyncPending = false;
  /** CPU time of a cold start's first VMM, which ends at the snapshot */
  private sourceCpuMs: number | undefined;
  /** the idle CPU cap is on (issue 19) */
  private cpuCapped = false;

  constructor(
    readonly vmId: string,
    /** the decision core's instance number */
    readonly inst: number,
    readonly plan: StartPlan,
    private readonly deps: WorkerDeps,
    private readonly pool: ActorRef<WorkerEvent>,
  ) {
    super();
    this.startBegan = deps.clock.now();
    this.startPath = plan.path;
    this.sm = new InstanceStateMachine(plan.path === 'restore' ? 'restoring' : 'booting', this.startBegan);
    if (plan.path === 'cold' && plan.restoreError) this.startDetails.restoreError = plan.restoreError;
  }

  get state(): InstanceState {
    return this.sm.state;
  }

  /**
   * Its VMM's memory now (VmPool's sampler; a read of /proc, nothing of the
   * Worker's state changes), or undefined when it has no VM that has started.
   */
  async memoryUsage(): Promise<{ rssKiB: number; pssKiB: number } | undefined> {
    const vm = this.vm;
    if (!vm || (this.sm.state !== 'idle' && this.sm.state !== 'running')) return undefined;
    try {
      return await vm.memoryUsage();
    } catch {
      return undefined; // it ended between the check and the read
    }
  }

  get fn(): FunctionDef {
    return this.plan.fn;
  }

  protected override preStart(): void {
    const plan = this.plan;
    if (plan.path === 'restore') this.step(() => this.restoreStep(plan.snapshot), 'restore');
    else this.step(() => this.bootStep(), 'boot');
  }

  protected receive(msg: WorkerMsg): void {
    const h = Worker.HANDLERS[this.sm.state][msg.kind];
    if (h) h(this, msg);
    else this.log.debug('message not accepted in this state', { vmId: this.vmId, state: this.sm.state, msg: msg.kind });
  }

  protected override onRestart(err: unknown): void {
    // an unexpected throw leaves the VM in an unknown state: never reuse it
    this.log.error('worker handler failed: the instance ends', { vmId: this.vmId, err: errText(err) });
    if (this.current) this.finishRun({ ok: false, failure: { kind: 'internal', message: `worker error: ${errText(err)}` }, logs: [] });
    this.startFailure ??= this.starting() ? { kind: 'boot', detail: { kind: 'boot_failed', message: `worker error: ${errText(err)}` } satisfies Failure } : undefined;
    this.fail(`worker error: ${errText(err)}`);
  }

  // ---- steps -------------------------------------------------------------

  /** Run a long step as a task; its result comes back as a message. */
  private step(task: () => Promise<StepMsg>, name: Extract<StepMsg, { kind: 'stepFailed' }>['step']): void {
    this.stepInFlight = true;
    task().then(
      (m) => this.self.tell(m),
      (error: unknown) => this.self.tell({ kind: 'stepFailed', step: name, error }),
    );
  }

  private async bootStep(): Promise<StepMsg> {
    const fn = this.plan.fn;
    const target = this.plan.path === 'cold' ? this.plan.snapshotTarget : undefined;
    // network (issue 10): the function's network spec in, its namespace/tap out (30 s: a slot may be made on demand)
    const ep = await this.deps.network.ask<VmEndpoints>((reply) => ({ kind: 'allocate', vmId: this.vmId, fn: fn.name, network: fn.network, reply }), 30_000);
    const memory: MemoryBacking = target && target.files.kind === 'shared-memory' ? { kind: 'file', path: target.files.memoryPath, share: true } : { kind: 'anonymous' };
    return { kind: 'spawned', vm: await this.deps.driver.boot(this.vmConfig(fn, ep, memory)) };
  }

  private async readyStep(vm: VmHandle): Promise<StepMsg> {
    return { kind: 'booted', ready: await vm.channel.ready(this.deps.bootTimeoutMs) };
  }

  private async initStep(vm: VmHandle): Promise<StepMsg> {
    const fn = this.plan.fn;
    const code = this.deps.registry.code(fn);
    // init is bounded by the function's own timeout (as on OpenWhisk)
    const r = await this.withDeadline(
      vm.channel.request({ op: 'init', files: toCodeFiles(code), main: code.main, entry: fn.entry, env: fn.env }, fn.timeoutMs),
      fn.timeoutMs + BACKSTOP_MS,
    );
    if (!r.ok) throw new InitRefused(r.error.message, r.error.exitCode, r.error.stack, r.logs ?? []);
    return { kind: 'initialized' };
  }

  private async snapshotStep(vm: VmHandle, target: SnapshotRef): Promise<StepMsg> {
    if (this.continuesAfterSnapshot()) {
      // the source runs on (its RAM file was copied while paused): no restore of its own snapshot.
      // A failure leaves this.vm set, so the instance's stop ends the VM
      const r = await vm.snapshot(target.files, { thenContinue: true });
      if (!r.continued) throw new Error(`${this.deps.driver.name}: the VM did not run on after the snapshot`);
      const bytes = (await this.deps.snapshots?.ask<number>((reply) => ({ kind: 'commit', id: target.id, createMs: r.continueMs ?? r.pauseMs + r.saveMs, reply }), 30_000)) ?? 0;
      return { kind: 'snapshotted', bytes, pauseMs: r.pauseMs, saveMs: r.saveMs, copyMs: r.copyMs, continued: true };
    }
    let r: { pauseMs: number; saveMs: number };
    try {
      r = await vm.snapshot(target.files);
      // the source VMM's CPU is part of the start's cost (it ends here)
      this.sourceCpuMs = vm.cpuMs?.();
    } finally {
      // the source must not run on (its writes would land in the snapshot), nor outlive a failed snapshot
      await vm.stop();
    }
    const bytes = (await this.deps.snapshots?.ask<number>((reply) => ({ kind: 'commit', id: target.id, createMs: r.pauseMs + r.saveMs, reply }), 30_000)) ?? 0;
    return { kind: 'snapshotted', bytes, pauseMs: r.pauseMs, saveMs: r.saveMs, continued: false };
  }

  /** snapshots.coldSnapshot copy, with a driver whose VMs can run on after a snapshot */
  private continuesAfterSnapshot(): boolean {
    return this.deps.coldSnapshot !== 'restore' && this.deps.driver.snapshotContinues === true;
  }

  private async restoreStep(snap: SnapshotRef): Promise<StepMsg> {
    const fn = this.plan.fn;
    // network (issue 10): as in bootStep
    const ep = await this.deps.network.ask<VmEndpoints>((reply) => ({ kind: 'allocate', vmId: this.vmId, fn: fn.name, network: fn.network, reply }), 30_000);
    const memory: MemoryBacking = snap.files.kind === 'shared-memory' ? { kind: 'file', path: snap.files.memoryPath, share: false } : { kind: 'anonymous' };
    if (this.deps.prefetch && snap.files.kind === 'shared-memory' && snap.workingSetPath) {
      const ws = await loadWorkingSet(snap.workingSetPath);
      if (ws) {
        const p0 = this.deps.clock.now();
        this.startDetails.prefetchBytes = await prefetchWorkingSet(snap.files.memoryPath, ws);
        this.startDetails.prefetchMs = this.deps.clock.now() - p0;
      }
    }
    return { kind: 'spawned', vm: await this.deps.driver.restore(this.vmConfig(fn, ep, memory), snap.files) };
  }

  /** What a restored clone needs before user code runs again: the host's time and fresh entropy. */
  private resyncFields(): ResyncFields {
    return { epochMs: this.deps.clock.wallNow?.() ?? this.deps.clock.now(), seed: randomBytes(32).toString('base64'), kernel: this.deps.kernelResync === 'deferred' ? 'deferred' : 'now' };
  }

  private async resyncStep(vm: VmHandle): Promise<StepMsg> {
    // issue 9: the resync rides on the first run; no user code runs before it (the agent applies it first)
    if (this.deps.resyncWithRun) return { kind: 'restored', resync: {}, carried: true };
    // fresh clock and randomness before any user code runs again; a restore may take as long as a
    // cold boot may: dozens of restores at once on a small TCG host take many seconds each
    const r = await vm.channel.request({ op: 'resync', ...this.resyncFields() }, Math.max(10_000, this.deps.bootTimeoutMs));
    if (!r.ok) throw new VmStartError('restore', 'snapshot-unusable', `agent refused resync: ${r.error.message}`);
    const rr = r.result as { clockMs?: number; reseedMs?: number } | undefined;
    return { kind: 'restored', resync: { clockMs: rr?.clockMs, reseedMs: rr?.reseedMs } };
  }

  private async runStep(vm: VmHandle, run: RunRequest, resync?: ResyncFields): Promise<StepMsg> {
    const fn = this.plan.fn;
    // a carried resync may take as long as the separate one may (see resyncStep)
    const extra = resync ? Math.max(10_000, this.deps.bootTimeoutMs) : 0;
    // the Worker enforces the deadline itself too: a hung guest must not hang the step
    const reply = await this.withDeadline(
      vm.channel.request({ op: 'run', activationId: run.rec.id, params: run.params, deadlineMs: fn.timeoutMs, ...(resync ? { resync } : {}) }, fn.timeoutMs + extra),
      fn.timeoutMs + extra + BACKSTOP_MS,
    );
    return { kind: 'ran', reply, cpuMs: vm.cpuMs?.(), demandMs: vm.cpuDemandMs?.() };
  }

  // ---- start ------------------------------------------------------------

  private onSpawned(m: Extract<StepMsg, { kind: 'spawned' }>): void {
    this.stepInFlight = false;
    this.attach(m.vm);
    const vm = m.vm;
    // the VMM's cgroup is made with the start weight; said again here for a VMM that was not (one small write)
    if (this.startWeighted()) vm.setStartCpuWeight?.(true);
    if (this.sm.state === 'booting') this.step(() => this.readyStep(vm), 'boot');
    else this.step(() => this.resyncStep(vm), 'restore');
  }

  private onBooted(m: Extract<StepMsg, { kind: 'booted' }>): void {
    this.stepInFlight = false;
    const vm = this.vm!;
    const now = this.deps.clock.now();
    this.startStamps.vmmSpawned = vm.timings.vmmSpawned ?? now;
    this.startStamps.agentReady = now;
    // the guest's own clock of the boot: kernel start → /init → agent → ready
    this.startDetails.guestInitMs = m.ready.uptimeMs.init;
    this.startDetails.guestAgentStartMs = m.ready.uptimeMs.agentStart;
    this.startDetails.guestReadyMs = m.ready.uptimeMs.ready;
    this.startStamps.vmBooted = now - (m.ready.uptimeMs.ready - m.ready.uptimeMs.init);
    this.sm.to('initializing', 'agent ready', now);
    this.step(() => this.initStep(vm), 'init');
  }

  private onInitialized(): void {
    this.stepInFlight = false;
    const now = this.deps.clock.now();
    this.startStamps.initDone = now;
    const target = this.plan.path === 'cold' ? this.plan.snapshotTarget : undefined;
    if (!target || !this.vm) return this.becomeReady();
    this.sm.to('snapshotting', 'after init', now);
    const vm = this.vm;
    // restore mode: the snapshot step stops the source, whatever happens; copy mode keeps it
    if (!this.continuesAfterSnapshot()) this.vm = undefined;
    this.step(() => this.snapshotStep(vm, target), 'snapshot');
  }

  private onSnapshotted(m: Extract<StepMsg, { kind: 'snapshotted' }>): void {
    this.stepInFlight = false;
    const now = this.deps.clock.now();
    const target = (this.plan as { snapshotTarget: SnapshotRef }).snapshotTarget;
    this.startDetails.snapshotPauseMs = m.pauseMs;
    this.startDetails.snapshotSaveMs = m.saveMs;
    if (m.copyMs !== undefined) this.startDetails.snapshotCopyMs = m.copyMs;
    this.startDetails.coldSnapshot = m.continued ? 'copy' : 'restore';
    this.startStamps.snapshotTaken = now;
    this.pool.tell({ kind: 'snapshotTaken', inst: this.inst, snapshot: target, bytes: m.bytes });
    // the source ran on from the pause, its RAM file copied into the snapshot
    if (m.continued) return this.becomeReady();
    this.sm.to('restoring', 'continue from own snapshot', now);
    this.step(() => this.restoreStep(target), 'restore');
  }

  private onRestored(m: Extract<StepMsg, { kind: 'restored' }>): void {
    this.stepInFlight = false;
    const vm = this.vm!;
    const now = this.deps.clock.now();
    this.startStamps.vmmSpawned ??= vm.timings.vmmSpawned;
    this.startStamps.snapshotLoaded = vm.timings.stateLoaded ?? now;
    this.startStamps.resumed = now;
    if (m.resync.clockMs !== undefined) this.startDetails.guestClockSetMs = m.resync.clockMs;
    if (m.resync.reseedMs !== undefined) this.startDetails.guestReseedMs = m.resync.reseedMs;
    if (m.carried) {
      this.resyncPending = true;
      this.startDetails.resync = 'with-run';
    }
    if (this.plan.path === 'restore') {
      this.snapshotUsed = this.plan.snapshot;
      this.startDetails.restoreMs = now - this.startBegan;
      this.deps.snapshots?.tell({ kind: 'restored', id: this.plan.snapshot.id });
    }
    this.becomeReady();
  }

  private becomeReady(): void {
    const now = this.deps.clock.now();
    this.startDetails.startMs = now - this.startBegan;
    // host CPU the start took (all its VMMs): the simulator's CPU model is calibrated on it
    const cpu = this.vm?.cpuMs?.();
    if (cpu !== undefined) this.startDetails.vmmCpuMs = cpu + (this.sourceCpuMs ?? 0);
    this.sm.to('idle', `started (${this.startPath})`, now);
    // issue 18: started: the VM's own CPU weight from its first run on
    if (this.startWeighted()) this.vm?.setStartCpuWeight?.(false);
    this.capIdleCpu();
    this.pool.tell({ kind: 'ready', inst: this.inst, ...(cpu !== undefined ? { cpuMs: cpu + (this.sourceCpuMs ?? 0) } : {}) });
  }

  /** A start step failed: classify it for the decision core, then end the instance. */
  private onStartStepFailed(m: Extract<StepMsg, { kind: 'stepFailed' }>): void {
    this.stepInFlight = false;
    const e = m.error;
    const fnName = this.plan.fn.name;
    this.startDetails.error = errText(e);
    let f: StartFailure;
    if (m.step === 'init') {
      // after the agent said ready, what goes wrong is the function's: its init threw, timed out or exited
      const failure: Failure =
        isTimeout(e)
          ? { kind: 'timeout', phase: 'init', limitMs: this.plan.fn.timeoutMs, message: `function ${fnName}: init did not finish within its timeout (${this.plan.fn.timeoutMs} ms); its VM was stopped` }
          : e instanceof InitRefused
            ? this.initFailure(e)
            : { kind: 'init_failed', message: `function ${fnName}'s VM ended during init${this.exitDetail ? ` (${this.exitDetail})` : ''}: ${errText(e)}`, start: this.failedStart([]) };
      f = { kind: 'init', detail: failure };
    } else if (m.step === 'restore' && this.plan.path === 'restore') {
      // a deadline on an overloaded host says nothing about the snapshot
      const slow = isTimeout(e);
      f = { kind: slow ? 'restore-slow' : 'restore-broken', detail: errText(e) };
      this.startDetails.restoreError = errText(e);
      this.deps.snapshots?.tell({ kind: 'restoreFailed', id: this.plan.snapshot.id, broken: !slow, reason: errText(e) });
    } else {
      if (m.step === 'snapshot') this.pool.tell({ kind: 'snapshotFailed', inst: this.inst });
      const failure: Failure = { kind: 'boot_failed', message: `function ${fnName}: could not start an instance: ${errText(e)}` };
      f = { kind: m.step === 'snapshot' ? 'snapshot' : 'boot', detail: failure };
    }
    this.log.warn('instance start failed', { vmId: this.vmId, fn: fnName, step: m.step, failure: f.kind, err: errText(e) });
    this.startFailure = f;
    this.fail(`start failed (${m.step})`);
  }

  /** The function's own init failure (issue 20): its error class, file:line, logs and the start it ended. */
  private initFailure(e: InitRefused): Failure {
    const d = describeInitError(e.message, e.guestStack);
    return {
      kind: 'init_failed',
      message: `function ${this.plan.fn.name} failed to initialise: ${d.text}`,
      exitCode: e.exitCode,
      ...(d.location ? { location: d.location } : {}),
      start: this.failedStart(this.boundLogs(e.logs)),
    };
  }

  private failedStart(logs: string[]): FailedStart {
    return { path: this.startPath, vmId: this.vmId, accelerator: this.vm?.accelerator, timestamps: { ...this.startStamps, initDone: this.deps.clock.now() }, logs };
  }

  // ---- run --------------------------------------------------------------

  private onRun(run: RunRequest): void {
    const vm = this.vm;
    if (!vm) return this.refuse(run);
    const rec = run.rec;
    rec.vmId = this.vmId;
    rec.accelerator = vm.accelerator;
    // the first invocation that waited for this start carries its stages
    if (run.fresh && this.served === 0) {
      rec.startPath = this.startPath;
      Object.assign(rec.timestamps, this.startStamps);
      rec.startDetails = { ...this.startDetails, ...prefixed(vm.timings) };
      if (this.snapshotUsed) rec.snapshot = { id: this.snapshotUsed.id, tier: this.snapshotUsed.tier };
    } else {
      rec.startPath = 'warm';
    }
    this.served++;
    this.current = run;
    const now = this.deps.clock.now();
    this.sm.to('running', `activation ${rec.id}`, now);
    rec.timestamps.runStarted = now;
    this.cpuAtRunStart = vm.cpuMs?.();
    this.demandAtRunStart = vm.cpuDemandMs?.();
    const resync = this.resyncPending ? this.resyncFields() : undefined;
    this.step(() => this.runStep(vm, run, resync), 'run');
    // the request is on its socket: a throttled VMM runs again from this write on (the kernel lifts it at once)
    this.uncapCpu(vm);
  }

  private onRan(m: Extract<StepMsg, { kind: 'ran' }>): void {
    this.stepInFlight = false;
    const run = this.current!;
    const now = this.deps.clock.now();
    run.rec.timestamps.runFinished = now;
    let runCpuMs: number | undefined;
    if (m.cpuMs !== undefined && this.cpuAtRunStart !== undefined && run.rec.timestamps.runStarted !== undefined) {
      const wall = now - run.rec.timestamps.runStarted;
      runCpuMs = Math.max(0, m.cpuMs - this.cpuAtRunStart);
      if (wall > 0) run.rec.runCpuShare = runCpuMs / wall;
    }
    if (m.demandMs !== undefined && this.demandAtRunStart !== undefined && run.rec.timestamps.runStarted !== undefined) {
      const wall = now - run.rec.timestamps.runStarted;
      // at most the VM's vCPUs: the wait for a CPU is summed over all the VMM's threads (vCPU, I/O, RCU), so
      // under contention a 1-vCPU run can "ask" more than a core; counted so, two runs do not fit on 2 cores
      // and the fair CPU gate lets a start go only on a node with no busy run (issue 18)
      if (wall > 0) run.rec.runCpuDemand = Math.min(this.plan.fn.vcpus, Math.max(0, (m.demandMs - this.demandAtRunStart) / wall));
    }
    // off the mailbox: reading the VMM's page map takes I/O, and nothing waits for the result
    if (this.served === 1 && this.deps.prefetch && this.snapshotUsed?.files.kind === 'shared-memory' && this.vm) void this.recordWorkingSet(this.vm, this.snapshotUsed);
    const r = m.reply;
    if (this.resyncPending && !this.afterCarriedResync(run, r)) return;
    const logs = this.boundLogs(r.logs ?? []);
    if (!r.ok && r.error.kind === 'exit') {
      // the function ended the agent's process: the VM is going down with it
      const fn = this.plan.fn.name;
      this.finishRun({ ok: false, failure: { kind: 'crashed', message: `function ${fn} exited the process during the run (status ${r.error.exitCode ?? '?'}); its VM was replaced`, exitCode: r.error.exitCode }, logs, runMs: r.durationMs });
      this.fail('function exited the process');
      return;
    }
    this.sm.to('idle', 'run finished', now);
    this.finishRun(this.outcomeOf(r, logs));
    this.pool.tell({ kind: 'runDone', inst: this.inst, ...(runCpuMs !== undefined ? { cpuMs: runCpuMs } : {}) });
    this.capIdleCpu();
  }

  /**
   * issue 9: the first run of a restored clone carried its resync. The agent's step timings go
   * into the record's start details. If the agent could not apply it (error kind 'state' or
   * 'protocol': the function did not run), the clone is not usable: the request goes back to
   * VmPool for another instance, the snapshot is reported, the instance ends. False then.
   */
  private afterCarriedResync(run: RunRequest, r: AgentReply): boolean {
    this.resyncPending = false;
    if (r.ok || (r.error.kind !== 'state' && r.error.kind !== 'protocol')) {
      const steps = (r as { resync?: Record<string, number> }).resync;
      if (steps && run.rec.startDetails) {
        if (steps.clockMs !== undefined) run.rec.startDetails.guestClockSetMs = steps.clockMs;
        if (steps.reseedMs !== undefined) run.rec.startDetails.guestReseedMs = steps.reseedMs;
      }
      return true;
    }
    this.current = undefined;
    const reason = `agent refused the resync carried by the first run: ${r.error.message}`;
    this.log.warn('restored clone refused the resync carried by its first run', { vmId: this.vmId, fn: this.plan.fn.name, err: r.error.message });
    if (this.snapshotUsed) this.deps.snapshots?.tell({ kind: 'restoreFailed', id: this.snapshotUsed.id, broken: true, reason });
    // a broken restore found after the fact: the core drops the snapshot and serves the request cold
    this.pool.tell({ kind: 'runRefused', inst: this.inst, req: run.req, failure: { kind: 'restore-broken', detail: reason } });
    this.fail('resync refused');
    return false;
  }

  /** OpenWhisk's result semantics: {error} is an application error; results have a size limit. */
  private outcomeOf(r: AgentReply, logs: string[]): InvokeOutcome {
    const fnName = this.plan.fn.name;
    if (!r.ok) {
      const failure: Failure =
        r.error.kind === 'application'
          ? { kind: 'application', message: r.error.message }
          : { kind: 'internal', message: `agent refused the run (${r.error.kind}): ${r.error.message}` };
      return { ok: false, failure, logs, runMs: r.durationMs };
    }
    const result = r.result ?? {};
    const bytes = Buffer.byteLength(JSON.stringify(result));
    if (bytes > this.deps.limits.maxResultBytes) {
      return {
        ok: false,
        failure: { kind: 'result_too_large', bytes, limitBytes: this.deps.limits.maxResultBytes, message: `function ${fnName}: the result is ${bytes} bytes, more than the limit of ${this.deps.limits.maxResultBytes} (functionLimits.maxResultBytes)` },
        logs,
        runMs: r.durationMs,
      };
    }
    if (typeof result === 'object' && result !== null && !Array.isArray(result) && 'error' in result) {
      const err = (result).error;
      return { ok: false, failure: { kind: 'application', message: typeof err === 'string' ? err : JSON.stringify(err), result }, logs, runMs: r.durationMs };
    }
    return { ok: true, result, logs, runMs: r.durationMs };
  }

  /** The run step failed: a deadline (the function hung) or the VM/agent ended (a crash, process.exit). */
  private onRunFailed(m: Extract<StepMsg, { kind: 'stepFailed' }>): void {
    this.stepInFlight = false;
    const run = this.current!;
    run.rec.timestamps.runFinished = this.deps.clock.now();
    const fn = this.plan.fn;
    if (m.error instanceof ChannelEncodeError) {
      // issue 19: the parameters could not be sent (nothing reached the guest): a bad request, the VM stays
      this.finishRun({ ok: false, failure: { kind: 'rejected', reason: 'bad_input', message: `body: the parameters could not be sent to function ${fn.name} (${m.error.message})` }, logs: [] });
      this.sm.to('idle', 'run not sent: parameters not encodable', this.deps.clock.now());
      this.pool.tell({ kind: 'runDone', inst: this.inst });
      return;
    }
    const exited = this.exitDetail !== undefined || m.error instanceof ChannelClosedError;
    const failure: Failure = !exited && isTimeout(m.error)
      ? { kind: 'timeout', phase: 'run', limitMs: fn.timeoutMs, message: `function ${fn.name} did not finish within ${fn.timeoutMs} ms; its VM was stopped` }
      : isGuestProtocolFault(m.error) // hardening (issue 12): say what the guest did on its channel
        ? { kind: 'crashed', message: `function ${fn.name}'s guest broke the agent protocol (${m.error.message}); its VM was stopped` }
        : { kind: 'crashed', message: `function ${fn.name}'s VM ended during the run (the function may have exited the process or crashed it)${this.exitDetail ? `: ${this.exitDetail}` : ''}` };
    this.finishRun({ ok: false, failure, logs: [] });
    // a hung or dead VM is never reused
    this.fail(failure.kind === 'timeout' ? 'run timed out' : 'VM died during run');
  }

  private finishRun(o: InvokeOutcome): void {
    const run = this.current;
    this.current = undefined;
    // issue 20: a guest clock too coarse to see a short run reports 0 ms; the record then takes the
    // host's runStarted -> runFinished (which includes the channel's round trip) rather than claim 0
    const t = run?.rec.timestamps;
    if (o.runMs !== undefined && o.runMs <= 0 && t?.runStarted !== undefined && t.runFinished !== undefined) o = { ...o, runMs: Math.max(0, t.runFinished - t.runStarted) };
    run?.reply.resolve(o);
  }

  /**
   * issue 19: an idle VM is held to deps.idleCpuCap host CPUs: what its function left running after
   * the result (timers, a loop) cannot take the node's CPU while the node counts the VM as idle.
   * One small synchronous write to its cgroup (no wait for I/O); the first refusal is logged.
   */
  private capIdleCpu(): void {
    const cap = this.deps.idleCpuCap;
    const vm = this.vm;
    if (cap === undefined || cap === null || !vm?.setCpuCap || this.cpuCapped) return;
    this.cpuCapped = vm.setCpuCap(cap);
  }

  /** With a run: the VM gets its own CPU limits back (a throttled VMM runs at once). */
  private uncapCpu(vm: VmHandle): void {
    if (!this.cpuCapped) return;
    vm.setCpuCap?.(null);
    this.cpuCapped = false;
  }

  /** Not idle: VmPool gives the request to someone else. */
  private refuse(run: RunRequest): void {
    this.pool.tell({ kind: 'runRefused', inst: this.inst, req: run.req });
  }

  private boundLogs(logs: string[]): string[] {
    const limit = this.deps.limits.maxLogBytes;
    let total = 0;
    for (let i = 0; i < logs.length; i++) {
      total += Buffer.byteLength(logs[i]!) + 1;
      if (total > limit) return [...logs.slice(0, i), `[faascell] logs truncated: more than ${limit} bytes (functionLimits.maxLogBytes)`];
    }
    return logs;
  }

  // ---- the VM ending ------------------------------------------------------

  private onVmExited(m: Extract<StepMsg, { kind: 'vmExited' }>): void {
    if (m.vm !== this.vm) return; // a snapshot source ended as planned
    this.vm = undefined;
    this.exitDetail = m.detail;
    this.log.warn('VM exited unexpectedly', { vmId: this.vmId, detail: m.detail, state: this.sm.state });
    if (this.starting()) {
      // a step under way fails when its channel closes and classifies the failure there
      if (this.stepInFlight) return;
      this.startFailure = { kind: 'boot', detail: { kind: 'boot_failed', message: `function ${this.plan.fn.name}: the VM exited while starting (${m.detail})` } satisfies Failure };
    }
    this.fail(`VM exited (${m.detail})`);
  }

  private noteExit(m: Extract<StepMsg, { kind: 'vmExited' }>): void {
    if (m.vm === this.vm) this.exitDetail = m.detail;
  }

  /** Go through `failed` to `stopping`. */
  private fail(reason: string): void {
    const now = this.deps.clock.now();
    if (this.sm.can('failed')) this.sm.to('failed', reason, now);
    this.beginStop(reason);
  }

  private beginStop(reason: string): void {
    const now = this.deps.clock.now();
    if (this.sm.state === 'stopping' || this.sm.state === 'gone') return;
    if (this.current) {
      // stopped while running (daemon shutdown, the host short of memory): the request gets an answer now
      this.finishRun({ ok: false, failure: stoppedDuringRun(this.vmId, this.plan.fn.name, reason), logs: [] });
    }
    if (this.starting() && !this.startFailure) this.startFailure = { kind: 'stopped' };
    this.sm.to('stopping', reason, now);
    const vm = this.vm;
    this.vm = undefined;
    if (vm) this.stopVm(vm);
    this.maybeGone();
  }

  /** A step result that arrived after the stop: stop its VM, answer its request. */
  private settleLate(vm: VmHandle | undefined, m?: StepMsg): void {
    this.stepInFlight = false;
    if (vm && vm !== this.vm) this.stopVm(vm);
    if (m && this.current) this.finishRun({ ok: false, failure: { kind: 'rejected', reason: 'shutting_down', message: `instance ${this.vmId} was stopped during the run` }, logs: [] });
    this.maybeGone();
  }

  private onVmStopped(vm: VmHandle): void {
    this.stoppingVms.delete(vm);
    this.maybeGone();
  }

  private stopVm(vm: VmHandle): void {
    this.stoppingVms.add(vm);
    vm.stop().then(
      () => this.self.tell({ kind: 'vmStopped', vm }),
      (err: unknown) => {
        this.log.error('stopping VM failed', { vmId: this.vmId, err: errText(err) });
        this.self.tell({ kind: 'vmStopped', vm });
      },
    );
  }

  private maybeGone(): void {
    if (this.sm.state !== 'stopping' || this.stepInFlight || this.stoppingVms.size > 0) return;
    this.deps.network.tell({ kind: 'release', vmId: this.vmId });
    this.sm.to('gone', 'stopped', this.deps.clock.now());
    this.pool.tell({ kind: 'gone', inst: this.inst, failure: this.startFailure?.kind === 'stopped' ? undefined : this.startFailure });
  }

  private starting(): boolean {
    const s = this.sm.state;
    return s === 'booting' || s === 'initializing' || s === 'snapshotting' || s === 'restoring' || (s === 'failed' && this.sm.entered('idle') === undefined);
  }

  // ---- helpers -------------------------------------------------------------

  /** issue 18: this start holds the start CPU weight (the node has one and the core gave it to this start) */
  private startWeighted(): boolean {
    return this.deps.startCpuWeight === true && this.plan.startWeighted !== false;
  }

  private vmConfig(fn: FunctionDef, ep: VmEndpoints, memory: MemoryBacking): VmConfig {
    const runDir = ep.runDir;
    // network (issue 10): egress VMs run in their namespace; record what the set-up cost
    if (ep.network) {
      this.startDetails.networkSetupMs = Math.round(ep.network.setupMs * 10) / 10;
      this.startDetails.networkPooled = ep.network.pooled ? 1 : 0;
    }
    return {
      network: ep.network ? { netnsPath: ep.network.netnsPath, tap: ep.network.tap } : undefined,
      vmId: this.vmId,
      memoryMiB: fn.memoryMiB,
      vcpus: fn.vcpus,
      image: this.imageOf(fn),
      runDir,
      accelerator: this.deps.accelerator,
      memory,
      cpuAffinity: this.deps.cpuAffinity,
      // issue 18: a start without the start weight gets a cgroup made with its own weight
      ...(this.deps.startCpuWeight ? { startCpuWeight: this.startWeighted() } : {}),
    };
  }

  /** The guest image of the function's runtime (issue 21); a runtime this node has no image for fails the start as a boot failure. */
  private imageOf(fn: FunctionDef): GuestImage {
    if ((fn.runtime ?? 'nodejs20') === 'nodejs20') return this.deps.image;
    const image = this.deps.images?.[fn.runtime];
    if (!image) throw new Error(`this node has no ${fn.runtime} guest image (faascell image build --runtime ${fn.runtime}, docs/python.md)`);
    return image;
  }

  private attach(vm: VmHandle): void {
    this.vm = vm;
    vm.exited.then(
      (e) => this.self.tell({ kind: 'vmExited', vm, detail: e.signal ? `signal ${e.signal}` : `exit code ${e.code}` }),
      () => this.self.tell({ kind: 'vmExited', vm, detail: 'unknown' }),
    );
  }

  /** After the first run of a restored VM: which pages of the snapshot did it need? (REAP's record phase) */
  private async recordWorkingSet(vm: VmHandle, snap: SnapshotRef): Promise<void> {
    const file = snap.workingSetPath;
    if (!file) return;
    try {
      if (await exists(file)) return;
      const ws = await recordWorkingSet(vm.pid, snap.files.memoryPath);
      await saveWorkingSet(ws, file);
      this.log.info('working set recorded', { snapshot: snap.id, pages: ws.pages, ranges: ws.ranges.length });
    } catch (err) {
      this.log.warn('could not record the working set', { snapshot: snap.id, err: errText(err) });
    }
  }

  private withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
    let timer: { cancel(): void } | undefined;
    const t = new Promise<never>((_, reject) => (timer = this.deps.clock.setTimer(ms, () => reject(new DeadlineError(ms)))));
    return Promise.race([p, t]).finally(() => timer?.cancel());
  }
}

/** The agent refused init: the function's code could not load or its init threw (or exited). */
class InitRefused extends Error {
  constructor(
    message: string,
    readonly exitCode?: number,
    /** the guest's stack of the error (a syntax error's starts with FILE:LINE) */
    readonly guestStack?: string,
    /** what the function printed during its init */
    readonly logs: string[] = [],
  ) {
    super(message);
    this.name = 'InitRefused';
  }
}

function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

function isTimeout(e: unknown): boolean {
  if (e instanceof VmStartError) return e.reason === 'timeout';
  return e instanceof ChannelTimeoutError || e instanceof DeadlineExceededError || e instanceof DeadlineError;
}

function prefixed(t: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t)) out[`driver.${k}`] = v;
  return out;
}

/** The failure of a request whose instance was stopped during its run: the host short of memory (VmPool's guard), else a shutdown. */
function stoppedDuringRun(vmId: string, fn: string, reason: string): Failure {
  if (reason === ('memory-pressure' satisfies StopCause)) {
    return {
      kind: 'rejected',
      reason: 'memory_pressure',
      message: `function ${fn}: instance ${vmId} was stopped during the run because the host ran short of memory (node.memory.guard); try again later`,
      retryAfterMs: 5000,
    };
  }
  return { kind: 'rejected', reason: 'shutting_down', message: `instance ${vmId} was stopped during the run (${reason})` };
}
