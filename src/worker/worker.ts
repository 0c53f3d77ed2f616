// Worker: owns one microVM through a runtime driver. It starts the VM (cold
// boot, restore, or cold boot that leaves a snapshot behind), forwards each
// invocation to the guest agent, measures every step, and reports each state
// transition to VmPool. It handles one message at a time, which is exactly the
// one-request-at-a-time contract of a VM.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Actor, errText, type ActorRef, type Reply } from '../core/actor.js';
import { FaasError } from '../core/errors.js';
import type { NetworkMsg, VmEndpoints } from '../network/network-manager.js';
import { nowMs, type ActivationRecord, type StartPath } from '../perf/activation.js';
import type { Registry, FunctionDef } from '../registry/registry.js';
import { toCodeFiles } from '../registry/code.js';
import type { AgentReply } from '../runtimes/agent-protocol.js';
import type { Accelerator, GuestImage, MemoryBacking, RuntimeDriver, VmConfig, VmHandle } from '../runtimes/types.js';
import type { SnapshotMsg, SnapshotRef } from '../snapshots/types.js';
import { loadWorkingSet, prefetchWorkingSet, recordWorkingSet, saveWorkingSet } from '../snapshots/prefetch.js';
import { InstanceStateMachine, type InstanceState, type Transition } from '../vmpool/instance-state.js';

export interface WorkerDeps {
  driver: RuntimeDriver;
  image: GuestImage;
  accelerator: Accelerator;
  registry: Registry;
  network: ActorRef<NetworkMsg>;
  snapshots?: ActorRef<SnapshotMsg>;
  bootTimeoutMs: number;
  /** record a restored VM's working set and read it ahead on later restores (REAP) */
  prefetch?: boolean;
  /** when a restored clone's kernel clock and CRNG are set (see snapshots.kernelResync) */
  kernelResync?: 'before-run' | 'deferred';
  /** host CPUs this VM is pinned to */
  cpuAffinity?: number[];
}

export type StartPlan =
  | { path: 'cold'; fn: FunctionDef; snapshotTarget?: SnapshotRef }
  | { path: 'restore'; fn: FunctionDef; snapshot: SnapshotRef };

/** What the Worker tells VmPool. */
export interface InstanceEvent {
  kind: 'instance';
  vmId: string;
  fn: string;
  transition: Transition;
  /** set on the transition to idle after a start */
  started?: { path: StartPath; startMs: number; snapshotId?: string };
}

export interface InvokeRequest {
  rec: ActivationRecord;
  params: unknown;
  /** VmPool started this instance while the request waited: the activation carries the start's stages */
  fresh: boolean;
}

export type InvokeOutcome =
  | { ok: true; result: unknown; logs: string[]; runMs?: number }
  | { ok: false; error: FaasError; logs: string[]; runMs?: number };

export type WorkerMsg =
  | { kind: 'start'; plan: StartPlan }
  | { kind: 'invoke'; req: InvokeRequest; reply: Reply<InvokeOutcome> }
  | { kind: 'stop'; reason: string }
  | { kind: 'vmExited'; vm: VmHandle; detail: string };

/** Time the host adds to a function's timeout before it declares the run hung (channel latency). */
const RUN_GRACE_MS = 1000;

export class Worker extends Actor<WorkerMsg> {
  readonly sm: InstanceStateMachine;
  private vm: VmHandle | undefined;
  private fn: FunctionDef | undefined;
  private startPath: StartPath = 'cold';
  /** stamps of the start, merged into the activation of the first invocation that waited for it */
  private startStamps: Partial<ActivationRecord['timestamps']> = {};
  private startDetails: Record<string, number | string> = {};
  private startBegan = 0;
  private served = 0;
  private snapshotUsed: SnapshotRef | undefined;

  constructor(
    readonly vmId: string,
    initial: 'pending' | 'booting' | 'restoring',
    private readonly deps: WorkerDeps,
    private readonly pool: ActorRef<InstanceEvent>,
  ) {
    super();
    this.sm = new InstanceStateMachine(initial, Date.now(), (t) => this.report(t));
  }

  /** Kill the VM at once, outside the mailbox (daemon shutdown while a start is under way). */
  async abort(reason: string): Promise<void> {
    const vm = this.vm;
    this.vm = undefined;
    if (vm) await vm.stop();
    if (this.sm.state !== 'gone' && this.sm.state !== 'stopping') this.sm.end(reason);
  }

  protected async receive(msg: WorkerMsg): Promise<void> {
    switch (msg.kind) {
      case 'start':
        return this.start(msg.plan);
      case 'invoke':
        return this.invoke(msg.req, msg.reply);
      case 'stop':
        return this.stopVm(msg.reason);
      case 'vmExited':
        if (msg.vm !== this.vm) return; // an old VM (e.g. a snapshot source) ended as planned
        this.vm = undefined;
        if (this.sm.state === 'gone') return;
        this.log.warn('VM exited unexpectedly', { vmId: this.vmId, detail: msg.detail, state: this.sm.state });
        await this.teardown(`failed: VM exited (${msg.detail})`);
        return;
    }
  }

  protected override async onRestart(err: unknown): Promise<void> {
    // an unexpected throw leaves the VM in an unknown state: never reuse it
    await this.teardown(`failed: worker error: ${errText(err)}`);
  }

  // ---- start -------------------------------------------------------------

  private async start(plan: StartPlan): Promise<void> {
    this.fn = plan.fn;
    this.startBegan = nowMs();
    try {
      if (this.sm.state === 'pending') this.sm.to(plan.path === 'restore' ? 'restoring' : 'booting', `start path ${plan.path}`);
      if (plan.path === 'restore') {
        const ok = await this.restoreFrom(plan.snapshot, plan.fn);
        // stopped meanwhile (eviction, shutdown): nothing to fall back to
        if (!ok && (this.sm.state === 'gone' || this.sm.state === 'stopping')) return;
        if (!ok) {
          this.sm.to('booting', 'snapshot unusable, cold boot instead');
          await this.coldBoot(plan.fn, undefined);
        }
      } else {
        await this.coldBoot(plan.fn, plan.snapshotTarget);
      }
      if (this.sm.state === 'gone' || this.sm.state === 'stopping') return; // stopped while starting
      const startMs = nowMs() - this.startBegan;
      this.sm.to('idle', `started (${this.startPath})`);
      this.pool.tell({
        kind: 'instance',
        vmId: this.vmId,
        fn: plan.fn.name,
        transition: this.sm.history[this.sm.history.length - 1]!,
        started: { path: this.startPath, startMs, snapshotId: this.snapshotUsed?.id },
      });
    } catch (err) {
      if (this.sm.state === 'gone' || this.sm.state === 'stopping') {
        this.log.info('start abandoned: instance stopped meanwhile', { vmId: this.vmId, fn: plan.fn.name, err: errText(err) });
        await this.teardown('stopped while starting');
        return;
      }
      this.log.error('instance start failed', { vmId: this.vmId, fn: plan.fn.name, err: errText(err) });
      this.startDetails.error = errText(err);
      await this.teardown(`failed: start: ${errText(err)}`);
    }
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
      image: this.deps.image,
      runDir,
      accelerator: this.deps.accelerator,
      memory,
      cpuAffinity: this.deps.cpuAffinity,
    };
  }

  private async coldBoot(fn: FunctionDef, target: SnapshotRef | undefined): Promise<void> {
    this.startPath = 'cold';
    // network (issue 10): the function's network spec in, its namespace/tap out (30 s: a slot may be made on demand)
    const ep = await this.deps.network.ask<VmEndpoints>((reply) => ({ kind: 'allocate', vmId: this.vmId, fn: fn.name, network: fn.network, reply }), 30_000);
    const memory: MemoryBacking = target && target.files.kind === 'shared-memory' ? { kind: 'file', path: target.files.memoryPath, share: true } : { kind: 'anonymous' };
    const vm = await this.deps.driver.boot(this.vmConfig(fn, ep, memory));
    this.attach(vm);
    this.startStamps.vmmSpawned = vm.timings.vmmSpawned ?? nowMs();
    const ready = await vm.channel.ready(this.deps.bootTimeoutMs);
    if (this.sm.state !== 'booting') throw new Error(`stopped while booting (${this.sm.state})`);
    const readyAt = nowMs();
    this.startStamps.agentReady = readyAt;
    // the guest's own clock of the boot: kernel start → /init → agent → ready
    this.startDetails.guestInitMs = ready.uptimeMs.init;
    this.startDetails.guestAgentStartMs = ready.uptimeMs.agentStart;
    this.startDetails.guestReadyMs = ready.uptimeMs.ready;
    this.startStamps.vmBooted = readyAt - (ready.uptimeMs.ready - ready.uptimeMs.init);
    this.sm.to('initializing', 'agent ready');
    await this.initFunction(vm, fn);
    this.startStamps.initDone = nowMs();
    if (!target) return;

    // Snapshot right after init: a restored VM answers `run` at once. The source
    // VM must not run on (its writes would land in the snapshot), so it ends and
    // this Worker continues from a private restore of its own snapshot.
    this.sm.to('snapshotting', 'after init');
    const t0 = nowMs();
    try {
      const r = await vm.snapshot(target.files);
      this.startDetails.snapshotPauseMs = r.pauseMs;
      this.startDetails.snapshotSaveMs = r.saveMs;
      await this.detachAndStop(vm);
      this.deps.snapshots?.tell({ kind: 'commit', id: target.id, createMs: nowMs() - t0 });
      this.startStamps.snapshotTaken = nowMs();
    } catch (err) {
      this.deps.snapshots?.tell({ kind: 'abort', id: target.id, reason: errText(err) });
      throw err;
    }
    this.sm.to('restoring', 'continue from own snapshot');
    const ok = await this.restoreFrom(target, fn);
    this.startPath = 'cold';
    if (!ok) throw new Error('could not restore the snapshot just taken');
  }

  /** Restore from a snapshot; false when the snapshot is unusable (caller falls back to a cold boot). */
  private async restoreFrom(snap: SnapshotRef, fn: FunctionDef): Promise<boolean> {
    this.startPath = 'restore';
    const t0 = nowMs();
    let vm: VmHandle | undefined;
    try {
      // network (issue 10): as in coldBoot
      const ep = await this.deps.network.ask<VmEndpoints>((reply) => ({ kind: 'allocate', vmId: this.vmId, fn: fn.name, network: fn.network, reply }), 30_000);
      const memory: MemoryBacking = snap.files.kind === 'shared-memory' ? { kind: 'file', path: snap.files.memoryPath, share: false } : { kind: 'anonymous' };
      if (this.deps.prefetch && snap.files.kind === 'shared-memory') {
        const ws = loadWorkingSet(workingSetFile(snap));
        if (ws) {
          const p0 = nowMs();
          this.startDetails.prefetchBytes = await prefetchWorkingSet(snap.files.memoryPath, ws);
          this.startDetails.prefetchMs = nowMs() - p0;
        }
      }
      vm = await this.deps.driver.restore(this.vmConfig(fn, ep, memory), snap.files);
      this.attach(vm);
      this.startStamps.vmmSpawned ??= vm.timings.vmmSpawned;
      this.startStamps.snapshotLoaded = vm.timings.stateLoaded ?? nowMs();
      // fresh clock and randomness before any user code runs again
      // a restore may take as long as a cold boot may: dozens of restores at once on a
      // small TCG host take many seconds each, and a cold fallback would cost even more
      const r = await vm.channel.request({ op: 'resync', epochMs: Date.now(), seed: randomBytes(32).toString('base64'), kernel: this.deps.kernelResync === 'deferred' ? 'deferred' : 'now' }, Math.max(10_000, this.deps.bootTimeoutMs));
      if (!r.ok) throw new Error(`agent refused resync: ${r.error.message}`);
      const rr = r.result as { clockMs?: number; reseedMs?: number } | undefined;
      if (typeof rr?.clockMs === 'number') this.startDetails.guestClockSetMs = rr.clockMs;
      if (typeof rr?.reseedMs === 'number') this.startDetails.guestReseedMs = rr.reseedMs;
      this.startStamps.resumed = nowMs();
      this.startDetails.restoreMs = nowMs() - t0;
      this.snapshotUsed = snap;
      this.deps.snapshots?.tell({ kind: 'restored', id: snap.id, ok: true, restoreMs: nowMs() - t0 });
      return true;
    } catch (err) {
      if (this.sm.state === 'gone' || this.sm.state === 'stopping') {
        // stopped while restoring (eviction, shutdown): says nothing about the snapshot
        this.log.info('restore abandoned: instance stopped meanwhile', { vmId: this.vmId, snapshot: snap.id, err: errText(err) });
        if (vm) await this.detachAndStop(vm);
        return false;
      }
      this.log.warn('restore failed; falling back to cold boot', { vmId: this.vmId, snapshot: snap.id, err: errText(err) });
      this.deps.snapshots?.tell({ kind: 'restored', id: snap.id, ok: false, reason: errText(err) });
      if (vm) await this.detachAndStop(vm);
      this.startDetails.restoreError = errText(err);
      this.startPath = 'cold';
      return false;
    }
  }

  private async initFunction(vm: VmHandle, fn: FunctionDef): Promise<void> {
    const code = this.deps.registry.code(fn);
    const r = await vm.channel.request({ op: 'init', files: toCodeFiles(code), main: code.main, entry: fn.entry, env: fn.env }, Math.max(10_000, fn.timeoutMs));
    if (!r.ok) throw new FaasError('init_error', `function ${fn.name} failed to initialise: ${r.error.message}`);
  }

  private attach(vm: VmHandle): void {
    this.vm = vm;
    vm.exited.then(
      (e) => this.self.tell({ kind: 'vmExited', vm, detail: e.signal ? `signal ${e.signal}` : `exit code ${e.code}` }),
      () => this.self.tell({ kind: 'vmExited', vm, detail: 'unknown' }),
    );
  }

  private async detachAndStop(vm: VmHandle): Promise<void> {
    if (this.vm === vm) this.vm = undefined;
    await vm.stop();
  }

  // ---- invoke ------------------------------------------------------------

  private async invoke(req: InvokeRequest, reply: Reply<InvokeOutcome>): Promise<void> {
    const vm = this.vm;
    const fn = this.fn;
    if (!vm || !fn || this.sm.state !== 'idle') {
      reply.resolve({ ok: false, error: new FaasError('vm_error', `instance ${this.vmId} is ${this.sm.state}, not idle`), logs: [] });
      return;
    }
    const rec = req.rec;
    rec.vmId = this.vmId;
    rec.accelerator = vm.accelerator;
    // the first invocation that waited for this start carries its stages
    if (req.fresh && this.served === 0) {
      rec.startPath = this.startPath;
      Object.assign(rec.timestamps, this.startStamps);
      rec.startDetails = { ...this.startDetails, ...prefixed(vm.timings) };
      if (this.snapshotUsed) rec.snapshot = { id: this.snapshotUsed.id, tier: this.snapshotUsed.tier };
    } else {
      rec.startPath = 'warm';
    }
    this.served++;
    this.sm.to('running', `activation ${rec.id}`);
    rec.timestamps.runStarted = nowMs();
    let r: AgentReply;
    try {
      // the Worker enforces the deadline itself too: a hung guest must not hang the Worker
      r = await withDeadline(
        vm.channel.request({ op: 'run', activationId: rec.id, params: req.params, deadlineMs: fn.timeoutMs }, fn.timeoutMs + RUN_GRACE_MS),
        fn.timeoutMs + RUN_GRACE_MS + 100,
      );
    } catch (err) {
      rec.timestamps.runFinished = nowMs();
      const exited = this.vm !== vm || (await Promise.race([vm.exited.then(() => true), sleep(50).then(() => false)]));
      const timedOut = !exited && (err instanceof DeadlineError || /timed? ?out|within/i.test(errText(err)));
      const error = timedOut
        ? new FaasError('timeout', `function ${fn.name} did not finish within ${fn.timeoutMs} ms; its VM was stopped`)
        : new FaasError('vm_error', `function ${fn.name}'s VM ended during the run (the function may have exited the process or crashed it): ${errText(err)}`);
      reply.resolve({ ok: false, error, logs: [] });
      // a hung or dead VM is never reused
      await this.teardown(timedOut ? 'failed: run timed out' : 'failed: VM died during run');
      return;
    }
    rec.timestamps.runFinished = nowMs();
    if (this.served === 1 && this.deps.prefetch && this.snapshotUsed?.files.kind === 'shared-memory') this.recordWorkingSet(vm, this.snapshotUsed);
    const logs = r.logs ?? [];
    this.sm.to('idle', 'run finished');
    if (r.ok) {
      reply.resolve({ ok: true, result: r.result ?? {}, logs, runMs: r.durationMs });
    } else {
      const code = r.error.kind === 'application' ? 'function_error' : r.error.kind === 'init' ? 'init_error' : 'vm_error';
      reply.resolve({ ok: false, error: new FaasError(code, r.error.message), logs, runMs: r.durationMs });
    }
  }

  /** After the first run of a restored VM: which pages of the snapshot did it need? (REAP's record phase) */
  private recordWorkingSet(vm: VmHandle, snap: SnapshotRef): void {
    const file = workingSetFile(snap);
    if (existsSync(file)) return;
    try {
      const ws = recordWorkingSet(vm.pid, snap.files.memoryPath);
      saveWorkingSet(ws, file);
      this.log.info('working set recorded', { snapshot: snap.id, pages: ws.pages, ranges: ws.ranges.length });
    } catch (err) {
      this.log.warn('could not record the working set', { snapshot: snap.id, err: errText(err) });
    }
  }

  // ---- stop --------------------------------------------------------------

  private async stopVm(reason: string): Promise<void> {
    if (this.sm.state === 'gone') return;
    await this.teardown(reason);
  }

  /** End the instance from any state: kill the VM, free its run dir, report `gone`. */
  private async teardown(reason: string): Promise<void> {
    const vm = this.vm;
    this.vm = undefined;
    if (this.sm.state !== 'gone' && this.sm.state !== 'stopping') {
      if (reason.startsWith('failed') && this.sm.state !== 'failed') this.sm.to('failed', reason);
      this.sm.to('stopping', reason);
    }
    try {
      if (vm) await vm.stop();
    } catch (err) {
      this.log.error('stopping VM failed', { vmId: this.vmId, err: errText(err) });
    }
    this.deps.network.tell({ kind: 'release', vmId: this.vmId });
    if (this.sm.state !== 'gone') this.sm.to('gone', reason);
  }

  private report(t: Transition): void {
    // idle-after-start is reported by start() together with its details
    if (t.to === 'idle' && t.reason.startsWith('started')) return;
    this.pool.tell({ kind: 'instance', vmId: this.vmId, fn: this.fn?.name ?? '', transition: t });
  }

  get state(): InstanceState {
    return this.sm.state;
  }
}

function workingSetFile(snap: SnapshotRef): string {
  return path.join(snap.dir, 'ws.json');
}

function prefixed(t: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t)) out[`driver.${k}`] = v;
  return out;
}

class DeadlineError extends Error {
  constructor(ms: number) {
    super(`run timed out after ${ms} ms`);
  }
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DeadlineError(ms)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
