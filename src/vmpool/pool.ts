// VmPool: the daemon's shell around the decision core (src/vmpool/core). It
// turns messages into core calls (a request arrives, a Worker reports, a timer
// fires, PerfManager has new costs) and carries out the core's decisions with
// real actors: it spawns and stops Workers, hands assigned requests to them,
// answers refused ones, sets timers on the clock, and tells the SnapshotManager
// which snapshots to make, drop or move. It keeps no scheduling state of its own:
// the core holds the decision state, each Worker its VM's state.

import { createHash } from 'node:crypto';
import os from 'node:os';
import { Actor, errText, type ActorRef, type ActorSystem, type Reply } from '../core/actor.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Failure } from '../core/failure.js';
import type { ActivationRecord } from '../perf/activation.js';
import type { CostsMsg } from '../perf/perf-manager.js';
import type { AdmissionDecision } from '../policies/types.js';
import { networkShapeKey } from '../network/spec.js';
import type { FunctionDef } from '../registry/registry.js';
import type { SnapshotMsg, SnapshotRecord, SnapshotRef } from '../snapshots/types.js';
import { TierSpaceError } from '../snapshots/tier-space.js';
import { Worker, type InvokeOutcome, type StartPlan, type WorkerDeps, type WorkerEvent, type WorkerMsg } from '../worker/worker.js';
import { PoolCore, PRESSURE_OK, PRESSURE_STOP, type CoreCounters } from './core/core.js';
import { guardVerdict, type GuardThresholds, type GuardVerdict, type HostMemoryReading } from './host-memory.js';
import {
  type CoreConfig,
  type CoreEffects,
  type CoreFunction,
  type CoreInstance,
  type CorePolicies,
  type CoreSnapshot,
  DEFAULT_MEMORY_ACCOUNTING,
  type MemoryAccounting,
  type MemoryAccountingConfig,
  type MemorySample,
  type CoreStartPlan,
  type Decision,
  type RejectCode,
  type SnapshotDropCause,
  type StartBackoffDetail,
  type StartFailure,
  type StopCause,
  type TimerKind,
} from './core/model.js';

export interface PoolConfig extends Omit<CoreConfig, 'cpuSlots' | 'recycleOnStop' | 'memory'> {
  /** host CPUs VMs may run on */
  cpus: number[];
  /** pin each VM to one of `cpus`, round robin */
  pinVms: boolean;
  /** accounting (the core's) and how often live VMs are measured (ms; 0 or absent: never) */
  memory?: MemoryAccountingConfig & { sampleIntervalMs: number };
  /** the guard against the host's memory limit (needs PoolDeps.hostMemory); absent: off */
  guard?: GuardThresholds & { intervalMs: number };
}

/** The node's memory as /v1/status shows it (docs/density.md). */
export interface PoolMemoryStatus {
  accounting: MemoryAccounting;
  budgetMiB: number;
  /** charged against the budget: sizes (nominal), measured costs plus reserve (measured) */
  chargedMiB: number;
  /** the live instances' sizes added up */
  nominalMiB: number;
  /** their latest measurements (PSS) added up, and how many have none yet */
  measuredMiB: number;
  unmeasured: number;
  /** how many more idle VMs of each size the budget admits now */
  idleFit: Record<string, number>;
  guard?: { level: number; levelName: string; at: number; shortMiB: number; source?: string; availableMiB?: number; limitMiB?: number; psiSome10?: number; psiFull10?: number };
}

export interface PoolStatus {
  memoryUsedMiB: number;
  memoryBudgetMiB: number;
  /** measured and nominal memory, room for idle VMs, the guard (absent from older members of a cluster) */
  memory?: PoolMemoryStatus;
  /** false: every non-warm start is a cold boot (no snapshots taken or restored) */
  snapshotsEnabled: boolean;
  busy: number;
  starting: number;
  startSlots: number;
  instances: Array<{
    id: string;
    inst: number;
    fn: string;
    state: CoreInstance['state'];
    workerState: string;
    path: 'cold' | 'restore';
    memoryMiB: number;
    /** what it counts against the budget now, and its latest measured PSS (MiB) */
    chargedMiB?: number;
    measuredMiB?: number;
    createdAt: number;
    lastUsedAt: number;
    invocations: number;
    stale: boolean;
    cpuSlot: number;
    pid?: number;
  }>;
  queues: Record<string, number>;
  tiers: Array<{ name: string; usedBytes: number; capacityBytes: number; snapshots: number }>;
  counters: CoreCounters;
}

export type PoolMsg =
  | { kind: 'invoke'; fn: FunctionDef; rec: ActivationRecord; params: unknown; reply: Reply<InvokeOutcome> }
  | WorkerEvent
  | CostsMsg
  | { kind: 'timer'; tk: TimerKind; target: number; token: number }
  /** measure the live VMs now (sampler timer); their measurements (seq: the instance's when measured) */
  | { kind: 'memTick' }
  | { kind: 'memory'; samples: Array<{ inst: CoreInstance; seq: number; pssKiB: number }> }
  /** the guard's timer, and what it read (samples: fresh measurements when the level is stop) */
  | { kind: 'guardTick' }
  | { kind: 'hostMemory'; verdict: GuardVerdict; reading: HostMemoryReading; samples?: Array<{ inst: CoreInstance; seq: number; pssKiB: number }> }
  /** `noRoom`: the tier's device had too little free space (TierSpaceError); `full`: the tiers found so for this start */
  | { kind: 'prepared'; inst: CoreInstance; seq: number; snap: CoreSnapshot; ref: SnapshotRef | undefined; err?: string; noRoom?: boolean; full: ReadonlySet<string> }
  /** the move the core asked for is done (ref: the snapshot's new place) or failed (no ref) */
  | { kind: 'moved'; snap: CoreSnapshot; ref: SnapshotRef | undefined; bytes?: number }
  | { kind: 'functionChanged'; fn: string; def: FunctionDef | undefined; reply?: Reply<void> }
  | { kind: 'evictFunction'; fn: string; reply: Reply<number> }
  | { kind: 'status'; reply: Reply<PoolStatus> }
  | { kind: 'shutdown'; reply: Reply<void> };

export interface PoolDeps {
  system: ActorSystem;
  workerDeps: Omit<WorkerDeps, 'cpuAffinity'>;
  policies: CorePolicies;
  snapshots?: ActorRef<SnapshotMsg>;
  /** functions to know from the start (the registry's) */
  functions: () => FunctionDef[];
  clock: Clock;
  config: PoolConfig;
  /** every decision of the core, as the simulator reports them (the conformance test) */
  onDecision?: (d: Decision) => void;
  /** reads the host's memory for the guard (host-memory.ts readHostMemory); absent: no guard */
  hostMemory?: () => Promise<HostMemoryReading>;
}

interface PendingRequest {
  def: FunctionDef;
  rec: ActivationRecord;
  params: unknown;
  reply: Reply<InvokeOutcome>;
  arrival: number;
}

interface WorkerHandle {
  worker: Worker;
  ref: ActorRef<WorkerMsg>;
  /** the request it runs (assigned, not finished) */
  req?: number;
}

const versionKeys = new WeakMap<FunctionDef, string>();

/**
 * Instances and snapshots are reusable only for the same version: code, shape, entry and env (and
 * network, issue 10: a VM's rules are set at its start; runtime, issue 21). The key is public (/v1/status): it hashes
 * the env's random id (FunctionDef.envId, new whenever the env changes), never the env values, which
 * could be guessed back from an unsalted hash (issue 19). Replicas carry the same envId, so the nodes
 * of a cluster compute the same key for the same definition.
 */
export function versionKey(def: FunctionDef): string {
  let k = versionKeys.get(def);
  if (k === undefined) versionKeys.set(def, (k = computeVersionKey(def)));
  return k;
}

function computeVersionKey(def: FunctionDef): string {
  // issue 21: the runtime (its image and agent) too; Node.js functions keep the keys they had before it
  const runtime = def.runtime === 'nodejs20' ? '' : `\nruntime=${def.runtime}`;
  return createHash('sha256').update(`${def.codeSha256}\n${def.memoryMiB}m${def.vcpus}c\n${def.entry}\nenv:${def.envId}${networkShapeKey(def.network)}${runtime}`).digest('hex').slice(0, 16);
}

export class VmPool extends Actor<PoolMsg> implements CoreEffects {
  private readonly core: PoolCore;
  private readonly pending = new Map<number, PendingRequest>();
  /** live instances by the core's instance number */
  private readonly bySeq = new Map<number, CoreInstance>();
  private reqSeq = 0;
  /** why the last restore of a function failed, for the record of the cold start that follows */
  private readonly restoreErrors = new Map<string, string>();
  private shutdownReply: Reply<void> | undefined;
  /** the VM whose failed start is being handed to the core (its refusals name it) */
  private failingVm: string | undefined;
  /** timers set for the core (cancelled at shutdown) */
  private readonly timers = new Set<TimerHandle>();
  /** a boot nonce in VM ids: ids stay unique across daemon restarts */
  private readonly nonce = Date.now().toString(36);
  /** the memory sampler's next tick is set / a sample is being read */
  private memArmed = false;
  private memReading = false;
  private guardReading = false;
  private lastGuard: { verdict: GuardVerdict; reading: HostMemoryReading; at: number } | undefined;

  constructor(private readonly deps: PoolDeps) {
    super();
    const c = deps.config;
    this.core = new PoolCore({ ...c, cpuSlots: c.pinVms ? c.cpus.length : 0 }, deps.policies, this);
  }

  protected override async preStart(): Promise<void> {
    const now = this.deps.clock.now();
    if (this.deps.hostMemory && this.deps.config.guard) this.after(this.deps.config.guard.intervalMs, { kind: 'guardTick' });
    for (const def of this.deps.functions()) this.define(def, now);
    // snapshots on disk from an earlier run: the core takes those of the functions' current versions
    const snaps = this.deps.snapshots;
    if (snaps && this.core.cfg.snapshots) {
      const inv = await snaps.ask<Array<{ record: SnapshotRecord; ref: SnapshotRef }>>((reply) => ({ kind: 'inventory', reply }), 30_000);
      for (const { record, ref } of inv) {
        const f = this.core.fn(record.function);
        const taken = f ? this.core.addSnapshot(f, record.versionKey, record.tier, record.sizeBytes, record.lastUsedAt, ref) : undefined;
        if (!taken) snaps.tell({ kind: 'drop', id: record.id, cause: 'invalidated' });
      }
    }
  }

  protected receive(msg: PoolMsg): void {
    const now = this.deps.clock.now();
    switch (msg.kind) {
      case 'invoke':
        return this.invoke(msg, now);
      case 'ready':
        return this.withInst(msg.inst, (ci) => this.core.startDone(ci, now, msg.cpuMs));
      case 'snapshotTaken':
        return this.withInst(msg.inst, (ci) => {
          if (ci.snapshot) this.core.snapshotReady(ci.snapshot, msg.bytes, msg.snapshot, now);
        });
      case 'snapshotFailed':
        return this.withInst(msg.inst, (ci) => {
          if (ci.snapshot) this.core.snapshotFailed(ci.snapshot, now);
        });
      case 'runDone':
        return this.withInst(msg.inst, (ci) => {
          const h = ci.handle as WorkerHandle;
          if (h.req !== undefined) this.pending.delete(h.req);
          h.req = undefined;
          this.core.runDone(ci, now, msg.cpuMs);
        });
      case 'runRefused':
        return this.withInst(msg.inst, (ci) => {
          const p = this.pending.get(msg.req);
          (ci.handle as WorkerHandle).req = undefined;
          if (msg.failure) this.restoreErrors.set(ci.fn, String(msg.failure.detail));
          if (msg.failure) this.log.warn('restored clone unusable at its first run: snapshot dropped, a cold start serves the request', { fn: ci.fn, err: msg.failure.detail });
          if (p) this.core.runRefused(ci, msg.req, p.arrival, now, msg.failure);
        });
      case 'gone':
        return this.withInst(msg.inst, (ci) => {
          const h = ci.handle as WorkerHandle;
          if (h.req !== undefined) this.pending.delete(h.req); // the Worker answered it
          this.bySeq.delete(ci.seq);
          const f = msg.failure;
          if (f && (f.kind === 'restore-broken' || f.kind === 'restore-slow')) {
            this.restoreErrors.set(ci.fn, String(f.detail));
            this.log.warn(f.kind === 'restore-broken' ? 'snapshot unusable: dropped, the next start boots cold' : 'restore timed out: the snapshot is kept', { fn: ci.fn, vmId: h.worker.vmId, err: f.detail });
          }
          void this.deps.system.stop(h.ref).catch(() => undefined);
          // a request refused because this start failed names the VM (its console log is kept)
          this.failingVm = h.worker.vmId;
          this.core.gone(ci, msg.failure, now);
          this.failingVm = undefined;
          this.maybeShutdownDone();
        });
      case 'costs': {
        const f = this.core.fn(msg.fn);
        if (f) this.core.setCosts(f, msg.costs);
        return;
      }
      case 'timer':
        this.core.timer(msg.tk, msg.target, msg.token, now);
        return;
      case 'memTick':
        return this.memTick(now);
      case 'memory':
        this.memReading = false;
        this.core.measured(liveSamples(msg.samples), now);
        return;
      case 'guardTick':
        return this.guardTick();
      case 'hostMemory':
        return this.onHostMemory(msg, now);
      case 'prepared':
        return this.prepared(msg, now);
      case 'moved':
        // two-phase: the core changes the snapshot's tier only now that its files are there
        if (msg.ref && msg.snap.f.snapshot === msg.snap) {
          msg.snap.ref = msg.ref;
          this.core.moveDone(msg.snap, msg.bytes);
        } else if (msg.ref) {
          this.deps.snapshots?.tell({ kind: 'drop', id: msg.ref.id, cause: 'invalidated' }); // dropped while moving
        } else this.core.moveFailed(msg.snap);
        return;
      case 'functionChanged': {
        if (msg.def) this.define(msg.def, now);
        else {
          const f = this.core.fn(msg.fn);
          if (f) this.core.removeFunction(f, now);
        }
        msg.reply?.resolve();
        return;
      }
      case 'evictFunction': {
        const f = this.core.fn(msg.fn);
        msg.reply.resolve(f ? this.core.evictFunction(f, now) : 0);
        return;
      }
      case 'status':
        msg.reply.resolve(this.status());
        return;
      case 'shutdown':
        this.shutdownReply = msg.reply;
        this.core.shutdown(now);
        this.maybeShutdownDone();
        return;
    }
  }

  private invoke(m: Extract<PoolMsg, { kind: 'invoke' }>, now: number): void {
    const f = this.define(m.fn, now);
    const req = ++this.reqSeq;
    m.rec.timestamps.queued = now;
    this.pending.set(req, { def: m.fn, rec: m.rec, params: m.params, reply: m.reply, arrival: now });
    this.core.arrive(f, req, now);
    // still waiting (not answered, not running yet): it was admitted
    if (this.pending.has(req)) m.rec.timestamps.admitted ??= now;
    // admission judged it (no idle instance served it at once): what the core expected it to wait
    const est = this.core.lastEstimateMs;
    if (!Number.isNaN(est)) m.rec.admission = { estimatedWaitMs: Number.isFinite(est) ? Math.round(est) : null, ...m.rec.admission };
  }

  /** The core's function for this definition (created, or updated to a new version). */
  private define(def: FunctionDef, now: number): CoreFunction {
    let f = this.core.fn(def.name);
    const version = versionKey(def);
    if (!f || f.version !== version || f.maxInstances !== def.maxInstances || f.memoryMiB !== def.memoryMiB || f.share !== def.share) {
      f = this.core.defineFunction(def.name, { memoryMiB: def.memoryMiB, maxInstances: def.maxInstances, version, share: def.share }, now);
    }
    if (f.version === version) f.handle = def;
    return f;
  }

  private withInst(seq: number, fn: (ci: CoreInstance) => void): void {
    const ci = this.bySeq.get(seq);
    if (ci) fn(ci);
  }

  // ---- CoreEffects ---------------------------------------------------------

  start(inst: CoreInstance, plan: CoreStartPlan, now: number): void {
    this.deps.onDecision?.({ t: now, kind: 'start', inst: inst.seq, fn: inst.fn, path: plan.path, snapshot: plan.snapshot !== undefined });
    const def = inst.f.handle as FunctionDef;
    this.bySeq.set(inst.seq, inst);
    this.armSampler(now);
    if (plan.path === 'cold' && plan.snapshot && this.deps.snapshots) {
      // the snapshot's directory first; the Worker starts once the SnapshotManager answered
      this.prepare(inst, plan.snapshot, new Set());
      return;
    }
    this.spawn(inst, plan.path === 'restore' ? { path: 'restore', fn: def, snapshot: plan.snapshot.ref as SnapshotRef } : { path: 'cold', fn: def, restoreError: this.takeRestoreError(inst.fn) }, now);
  }

  private takeRestoreError(fn: string): string | undefined {
    const e = this.restoreErrors.get(fn);
    this.restoreErrors.delete(fn);
    return e;
  }

  private prepare(inst: CoreInstance, snap: CoreSnapshot, full: ReadonlySet<string>): void {
    const def = inst.f.handle as FunctionDef;
    const seq = inst.seq;
    this.deps.snapshots!.ask<SnapshotRef>((reply) => ({ kind: 'prepare', fn: def, versionKey: inst.version, tier: snap.tier.name, reply }), 30_000).then(
      (ref) => this.self.tell({ kind: 'prepared', inst, seq, snap, ref, full }),
      (err: unknown) => this.self.tell({ kind: 'prepared', inst, seq, snap, ref: undefined, err: errText(err), noRoom: err instanceof TierSpaceError, full }),
    );
  }

  private prepared(m: Extract<PoolMsg, { kind: 'prepared' }>, now: number): void {
    const { inst, snap, ref } = m;
    if (inst.seq !== m.seq || inst.state !== 'starting') {
      // stopped while the directory was being made
      if (ref) this.deps.snapshots?.tell({ kind: 'drop', id: ref.id, cause: 'failed' });
      return;
    }
    if (!ref && m.noRoom) {
      // issue 12: a tier whose device is full is skipped for the next tier placement allows, else no snapshot
      const full = new Set(m.full).add(snap.tier.name);
      const mine = inst.snapshot === snap;
      const next = mine ? this.core.snapshotNoRoom(inst, full, now) : undefined;
      if (!mine) this.core.snapshotFailed(snap, now); // no longer this start's snapshot: only forgotten
      this.log.warn(next ? 'snapshot tier full: the snapshot goes to another tier' : 'snapshot tier full: cold boot without a snapshot', { fn: inst.fn, err: m.err, next: next?.tier.name });
      if (next && inst.state === 'starting') return this.prepare(inst, next, full);
    } else if (!ref) {
      this.log.warn('could not prepare a snapshot: cold boot without one', { fn: inst.fn, err: m.err });
      this.core.snapshotFailed(snap, now);
    } else if (inst.f.snapshot !== snap) {
      this.deps.snapshots?.tell({ kind: 'drop', id: ref.id, cause: 'invalidated' });
    } else snap.ref = ref;
    const def = inst.f.handle as FunctionDef;
    this.spawn(inst, { path: 'cold', fn: def, snapshotTarget: ref && inst.f.snapshot === snap ? ref : undefined, restoreError: this.takeRestoreError(inst.fn) }, now);
  }

  private spawn(inst: CoreInstance, plan: StartPlan, now: number): void {
    void now;
    const vmId = `vm-${this.nonce}-${inst.seq}`;
    const c = this.deps.config;
    const cpuAffinity = c.pinVms && inst.cpuSlot >= 0 ? [c.cpus[inst.cpuSlot]!] : undefined;
    // issue 18: the core decided whether this start gets the start CPU weight
    const worker = new Worker(vmId, inst.seq, { ...plan, startWeighted: inst.startWeighted }, { ...this.deps.workerDeps, cpuAffinity }, this.self);
    const ref = this.deps.system.spawn<WorkerMsg>(`worker-${vmId}`, worker, {
      // a handler that throws ends the instance (Worker.onRestart); a second throw is the daemon's problem
      supervision: { kind: 'restart', maxRestarts: 1, withinMs: 60_000 },
      onFailure: (f) => {
        this.log.error('worker failed beyond restart', { vmId, err: errText(f.error) });
        this.self.tell({ kind: 'gone', inst: inst.seq, failure: { kind: 'boot', detail: { kind: 'internal', message: `worker failed: ${errText(f.error)}` } satisfies Failure } });
      },
    });
    inst.handle = { worker, ref } satisfies WorkerHandle;
  }

  assign(req: number, inst: CoreInstance, fresh: boolean, _arrival: number, now: number): void {
    this.deps.onDecision?.({ t: now, kind: 'assign', req, inst: inst.seq, fn: inst.fn, fresh });
    const p = this.pending.get(req);
    if (!p) return;
    const h = inst.handle as WorkerHandle;
    h.req = req;
    p.rec.timestamps.admitted ??= now;
    p.rec.timestamps.instanceAssigned = now;
    h.ref.tell({ kind: 'run', run: { req, rec: p.rec, params: p.params, fresh, reply: p.reply } });
  }

  reject(req: number, f: CoreFunction, reason: RejectCode, detail: unknown, _arrival: number, now: number): void {
    this.deps.onDecision?.({ t: now, kind: 'reject', req, fn: f.name, reason });
    const p = this.pending.get(req);
    if (!p) return;
    this.pending.delete(req);
    if ((reason === 'start_failed' || reason === 'init_failed') && this.failingVm) p.rec.vmId = this.failingVm;
    // admitted, then refused at its deadline: admission's estimate did not hold (issue 18)
    if (reason === 'queue_timeout') p.rec.admission = { estimatedWaitMs: p.rec.admission?.estimatedWaitMs ?? null, refusedLate: true };
    p.reply.resolve({ ok: false, failure: this.rejection(f.name, reason, detail, now - p.arrival), logs: [] });
  }

  private rejection(fn: string, reason: RejectCode, detail: unknown, waitedMs: number): Failure {
    const c = this.core.cfg;
    switch (reason) {
      case 'queue_full':
      case 'overloaded': {
        const d = detail as Extract<AdmissionDecision, { admit: false }>;
        return { kind: 'rejected', reason, message: d.message, retryAfterMs: d.retryAfterMs };
      }
      case 'queue_timeout':
        return { kind: 'rejected', reason, message: `function ${fn}: no instance became available within ${c.maxQueueDelayMs} ms (admission.maxQueueDelayMs; waited ${Math.round(waitedMs)} ms)` };
      case 'deleted':
        return { kind: 'rejected', reason, message: `function ${fn} was deleted` };
      case 'shutting_down':
        return { kind: 'rejected', reason, message: 'the daemon is shutting down' };
      case 'start_failed':
        return (detail as Failure | undefined) ?? { kind: 'boot_failed', message: `function ${fn}: could not start an instance` };
      case 'init_failed':
        return (detail as Failure | undefined) ?? { kind: 'init_failed', message: `function ${fn} failed to initialise` };
      case 'start_backoff': {
        const d = detail as StartBackoffDetail;
        const wait = Math.max(0, d.retryAt - this.deps.clock.now());
        return {
          kind: 'rejected',
          reason,
          message: `function ${fn}: its last ${d.failures} starts failed (last: ${startFailureText(d.last)}); the next start is tried in ${(wait / 1000).toFixed(1)} s (admission.startBackoffBaseMs)`,
          retryAfterMs: wait,
        };
      }
    }
  }

  stop(inst: CoreInstance, cause: StopCause, now: number): void {
    this.deps.onDecision?.({ t: now, kind: 'stop', inst: inst.seq, fn: inst.fn, cause });
    (inst.handle as WorkerHandle | undefined)?.ref.tell({ kind: 'stop', reason: cause });
  }

  wake(at: number, kind: TimerKind, target: number, token: number): void {
    const clock = this.deps.clock;
    const h = clock.setTimer(at - clock.now(), () => {
      this.timers.delete(h);
      this.self.tell({ kind: 'timer', tk: kind, target, token });
    });
    this.timers.add(h);
  }

  dropSnapshot(snap: CoreSnapshot, cause: SnapshotDropCause, now: number): void {
    this.deps.onDecision?.({ t: now, kind: 'dropSnapshot', fn: snap.f.name, tier: snap.tier.name, cause });
    const ref = snap.ref as SnapshotRef | undefined;
    // a snapshot dropped before its directory existed is dropped when `prepared` arrives
    if (ref) this.deps.snapshots?.tell({ kind: 'drop', id: ref.id, cause });
  }

  moveSnapshot(snap: CoreSnapshot, from: string, to: string, now: number): void {
    this.deps.onDecision?.({ t: now, kind: 'moveSnapshot', fn: snap.f.name, from, to });
    const ref = snap.ref as SnapshotRef | undefined;
    const snaps = this.deps.snapshots;
    if (!ref || !snaps) {
      this.self.tell({ kind: 'moved', snap, ref: undefined });
      return;
    }
    // restores read the old place until the copy is done (the SnapshotManager keeps the old files a while)
    snaps.ask<{ ref: SnapshotRef; bytes: number } | undefined>((reply) => ({ kind: 'move', id: ref.id, tier: to, reply }), 600_000).then(
      (moved) => this.self.tell({ kind: 'moved', snap, ref: moved?.ref, bytes: moved?.bytes }),
      (err: unknown) => {
        this.log.warn('moving a snapshot failed: it stays where it was', { id: ref.id, err: errText(err) });
        this.self.tell({ kind: 'moved', snap, ref: undefined });
      },
    );
  }

  // ---- memory: the sampler and the guard -------------------------------------

  /** A timer that tells this actor `msg` in `ms` (cancelled at shutdown). */
  private after(ms: number, msg: PoolMsg): void {
    const h = this.deps.clock.setTimer(ms, () => {
      this.timers.delete(h);
      this.self.tell(msg);
    });
    this.timers.add(h);
  }

  /**
   * The sampler runs while instances live, at multiples of its interval on the
   * pool's clock (the simulator samples at the same times: the conformance test).
   */
  private armSampler(now: number): void {
    const every = this.deps.config.memory?.sampleIntervalMs ?? 0;
    if (!(every > 0) || this.memArmed || this.shutdownReply) return;
    this.memArmed = true;
    this.after((Math.floor(now / every) + 1) * every - now, { kind: 'memTick' });
  }

  private memTick(now: number): void {
    this.memArmed = false;
    if (this.core.liveCount === 0) return; // the next start arms it again
    this.armSampler(now);
    // a slow read (a loaded host) is not queued behind: the next tick measures again
    if (this.memReading) return;
    this.memReading = true;
    void this.measureVms().then((samples) => this.self.tell({ kind: 'memory', samples }));
  }

  /** The PSS of every idle or busy VM, read from /proc by its Worker (in instance order). */
  private async measureVms(): Promise<Array<{ inst: CoreInstance; seq: number; pssKiB: number }>> {
    const insts = [...this.core.allInstances()].filter((ci) => ci.state === 'idle' || ci.state === 'busy').sort((a, b) => a.seq - b.seq);
    const reads = await Promise.all(insts.map((ci) => (ci.handle as WorkerHandle | undefined)?.worker.memoryUsage() ?? Promise.resolve(undefined)));
    const out: Array<{ inst: CoreInstance; seq: number; pssKiB: number }> = [];
    insts.forEach((ci, i) => {
      const r = reads[i];
      if (r) out.push({ inst: ci, seq: ci.seq, pssKiB: r.pssKiB });
    });
    return out;
  }

  private guardTick(): void {
    const g = this.deps.config.guard!;
    if (this.shutdownReply) return;
    this.after(g.intervalMs, { kind: 'guardTick' });
    if (this.guardReading) return;
    this.guardReading = true;
    void (async () => {
      try {
        const reading = await this.deps.hostMemory!();
        const verdict = guardVerdict(reading, g);
        // before stopping anything, know which instances are growing now
        const samples = verdict.level >= PRESSURE_STOP ? await this.measureVms() : undefined;
        this.self.tell({ kind: 'hostMemory', verdict, reading, samples });
      } catch (err) {
        this.guardReading = false;
        this.log.warn('memory guard: reading the host failed', { err: errText(err) });
      }
    })();
  }

  private onHostMemory(m: Extract<PoolMsg, { kind: 'hostMemory' }>, now: number): void {
    this.guardReading = false;
    const { verdict } = m;
    const before = this.core.hostLevel;
    this.lastGuard = { verdict, reading: m.reading, at: now };
    if (verdict.level === PRESSURE_OK && before === PRESSURE_OK) return;
    if (m.samples) this.core.measured(liveSamples(m.samples), now);
    const out = this.core.hostPressure(verdict.level, verdict.shortMiB, now);
    const where = { level: LEVEL_NAMES[verdict.level], source: verdict.source?.name, availableMiB: Math.round(verdict.source?.availableMiB ?? 0), limitMiB: Math.round(verdict.source?.limitMiB ?? 0), psiSome10: m.reading.psiSome10, psiFull10: m.reading.psiFull10 };
    if (verdict.level !== before) this.log.warn(verdict.level === PRESSURE_OK ? 'memory guard: the host has memory again' : 'memory guard: the host is short of memory', { ...where, was: LEVEL_NAMES[before] });
    if (out.evicted > 0) this.log.warn('memory guard: evicted idle instances', { ...where, evicted: out.evicted });
    if (out.stopped) this.log.error('memory guard: stopped the newest growing instance (its request fails with memory_pressure)', { ...where, fn: out.stopped.fn, vmId: (out.stopped.handle as WorkerHandle | undefined)?.worker.vmId });
  }

  private memoryStatus(): PoolMemoryStatus {
    const t = this.core.memoryTotals();
    const sizes = new Set<number>([128, 256, 512, 1024]);
    for (const f of this.core.fns) if (!f.deleted) sizes.add(f.memoryMiB);
    const idleFit: Record<string, number> = {};
    for (const size of [...sizes].sort((a, b) => a - b)) idleFit[String(size)] = this.core.idleFit(size);
    const g = this.lastGuard;
    return {
      accounting: (this.deps.config.memory ?? DEFAULT_MEMORY_ACCOUNTING).accounting,
      budgetMiB: this.core.cfg.memoryBudgetMiB,
      chargedMiB: t.chargedMiB,
      nominalMiB: t.nominalMiB,
      measuredMiB: t.measuredMiB,
      unmeasured: t.unmeasured,
      idleFit,
      ...(g
        ? {
            guard: {
              level: this.core.hostLevel,
              levelName: LEVEL_NAMES[this.core.hostLevel],
              at: g.at,
              shortMiB: g.verdict.shortMiB,
              source: g.verdict.source?.name,
              availableMiB: g.verdict.source && Math.round(g.verdict.source.availableMiB),
              limitMiB: g.verdict.source && Math.round(g.verdict.source.limitMiB),
              psiSome10: g.reading.psiSome10,
              psiFull10: g.reading.psiFull10,
            },
          }
        : {}),
    };
  }

  // ---- status and shutdown ---------------------------------------------------

  private status(): PoolStatus {
    const queues: Record<string, number> = {};
    for (const f of this.core.fns) if (f.queued > 0) queues[f.name] = f.queued;
    const instances: PoolStatus['instances'] = [];
    for (const ci of this.core.allInstances()) {
      const h = ci.handle as WorkerHandle | undefined;
      instances.push({
        id: h?.worker.vmId ?? `vm-${this.nonce}-${ci.seq}`,
        inst: ci.seq,
        fn: ci.fn,
        state: ci.state,
        // a read-only look at the Worker's own state machine, for display
        workerState: h?.worker.state ?? 'pending',
        path: ci.path,
        memoryMiB: ci.memoryMiB,
        chargedMiB: ci.chargedMiB,
        ...(Number.isNaN(ci.measuredMiB) ? {} : { measuredMiB: ci.measuredMiB }),
        createdAt: ci.createdAt,
        lastUsedAt: ci.lastUsedAt,
        invocations: ci.invocations,
        stale: ci.stale,
        cpuSlot: ci.cpuSlot,
      });
    }
    return {
      memoryUsedMiB: this.core.memoryUsedMiB,
      memoryBudgetMiB: this.core.cfg.memoryBudgetMiB,
      memory: this.memoryStatus(),
      snapshotsEnabled: this.core.cfg.snapshots,
      busy: this.core.busyCount,
      starting: this.core.startingCount,
      startSlots: this.core.startSlots(),
      instances,
      queues,
      tiers: this.core.tierUsage(),
      counters: { ...this.core.counters },
    };
  }

  private maybeShutdownDone(): void {
    if (!this.shutdownReply || this.bySeq.size > 0) return;
    for (const p of this.pending.values()) p.reply.resolve({ ok: false, failure: { kind: 'rejected', reason: 'shutting_down', message: 'the daemon is shutting down' }, logs: [] });
    this.pending.clear();
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    const r = this.shutdownReply;
    this.shutdownReply = undefined;
    r.resolve();
  }
}

const LEVEL_NAMES = ['ok', 'evict', 'refuse', 'stop'] as const;

/** Measurements of instances that are still the ones measured (a slot may have been reused meanwhile). */
function liveSamples(samples: ReadonlyArray<{ inst: CoreInstance; seq: number; pssKiB: number }>): MemorySample[] {
  return samples.filter((x) => x.inst.seq === x.seq).map((x) => ({ inst: x.inst, pssMiB: x.pssKiB / 1024 }));
}

/** A start failure in words (its typed detail's message when it has one). */
function startFailureText(f: StartFailure): string {
  const d = f.detail;
  if (typeof d === 'string') return `${f.kind}: ${d}`;
  if (d && typeof d === 'object' && 'message' in d && typeof d.message === 'string') return d.message;
  return f.kind;
}

/** Host cores for the scheduler: the configured ones, else the host's. */
export function hostCores(cpus: number[], configured?: number): number {
  return configured ?? (cpus.length > 0 ? cpus.length : os.cpus().length);
}
