// VmPool: holds the state of every instance on the node and decides, for each
// invocation, between a warm instance, a restore from a snapshot, and a cold
// boot. It consults the policies (keep-alive, eviction, selection; placement via
// the SnapshotManager) and enforces the node's budget: memory with low/high
// watermarks, per-function instance limits, a global concurrency limit and
// per-function queues with a length limit and a maximum queueing delay.

import { Actor, errText, type ActorRef, type ActorSystem, type Reply } from '../core/actor.js';
import { FaasError } from '../core/errors.js';
import { nowMs, type ActivationRecord } from '../perf/activation.js';
import type { FunctionView, InstanceView, KeepAlivePolicy, PolicySet, Rng } from '../policies/types.js';
import { networkShapeKey } from '../network/spec.js';
import type { FunctionDef } from '../registry/registry.js';
import type { SnapshotMsg, SnapshotRef } from '../snapshots/types.js';
import { Worker, type InstanceEvent, type StartPlan, type WorkerDeps, type WorkerMsg } from '../worker/worker.js';

export interface PoolConfig {
  memoryBudgetMiB: number;
  lowWatermark: number;
  highWatermark: number;
  cpus: number[];
  pinVms: boolean;
  maxConcurrentInvocations: number;
  maxQueueLength: number;
  maxQueueDelayMs: number;
  snapshotsEnabled: boolean;
}

export interface Lease {
  vmId: string;
  worker: ActorRef<WorkerMsg>;
  /** the instance was started while this request waited (its start path and stages belong to this activation) */
  fresh: boolean;
}

type PoolInstState = 'starting' | 'idle' | 'busy' | 'stopping';

interface Inst {
  id: string;
  fn: string;
  codeSha256: string;
  shape: string;
  memoryMiB: number;
  state: PoolInstState;
  worker: Worker;
  ref: ActorRef<WorkerMsg>;
  createdAt: number;
  lastUsedAt: number;
  invocations: number;
  startCostMs: number;
  cpuSlot: number;
  /** the definition changed (or an evict was asked): stop instead of reusing */
  stale: boolean;
  /** bumps on every idle period, so an old keep-alive timer cannot stop a reused instance */
  idleToken: number;
  timer?: NodeJS.Timeout;
  /** set for pre-warmed instances: how long to keep them once ready */
  prewarmKeepMs?: number;
  /** stopped under memory pressure (the keep-alive policy heard onEvict, not onStop) */
  evicted?: boolean;
}

interface Waiter {
  fn: FunctionDef;
  rec: ActivationRecord;
  reply: Reply<Lease>;
  enqueuedAt: number;
  timer: NodeJS.Timeout;
}

export interface PoolStatus {
  memoryUsedMiB: number;
  memoryBudgetMiB: number;
  /** false: every non-warm start is a cold boot (no snapshots taken or restored) */
  snapshotsEnabled: boolean;
  busy: number;
  instances: Array<{ id: string; fn: string; state: PoolInstState; workerState: string; memoryMiB: number; createdAt: number; lastUsedAt: number; invocations: number; stale: boolean; cpuSlot: number }>;
  queues: Record<string, number>;
  counters: PoolCounters;
}

export interface PoolCounters {
  cold: number;
  restore: number;
  warm: number;
  evictedMemory: number;
  expired: number;
  prewarmed: number;
  rejectedQueueFull: number;
  rejectedQueueDelay: number;
  startFailures: number;
}

export type PoolMsg =
  | { kind: 'acquire'; fn: FunctionDef; rec: ActivationRecord; reply: Reply<Lease> }
  | InstanceEvent
  | { kind: 'expire'; vmId: string; token: number }
  | { kind: 'prewarm'; fn: FunctionDef; keepMs: number }
  | { kind: 'queueTimeout'; fn: string; rec: ActivationRecord }
  | { kind: 'evictFunction'; fn: string; reply: Reply<number> }
  | { kind: 'functionChanged'; fn: string; def: FunctionDef | undefined; reply?: Reply<void> }
  | { kind: 'status'; reply: Reply<PoolStatus> }
  | { kind: 'shutdown'; reply: Reply<void> };

export interface PoolDeps {
  system: ActorSystem;
  workerDeps: Omit<WorkerDeps, 'cpuAffinity'>;
  policies: PolicySet & { keepAliveFor(fn: string): KeepAlivePolicy };
  snapshots?: ActorRef<SnapshotMsg>;
  rng: Rng;
  config: PoolConfig;
}

export class VmPool extends Actor<PoolMsg> {
  private readonly insts = new Map<string, Inst>();
  private readonly queues = new Map<string, Waiter[]>();
  /** latest definition seen per function, for start-cost bookkeeping and prewarm */
  private readonly defs = new Map<string, FunctionDef>();
  private readonly costs = new Map<string, { coldMs?: number; restoreMs?: number }>();
  private seq = 0;
  private cpuCursor = 0;
  private shuttingDown = false;
  readonly counters: PoolCounters = { cold: 0, restore: 0, warm: 0, evictedMemory: 0, expired: 0, prewarmed: 0, rejectedQueueFull: 0, rejectedQueueDelay: 0, startFailures: 0 };

  constructor(private readonly deps: PoolDeps) {
    super();
  }

  protected receive(msg: PoolMsg): void {
    switch (msg.kind) {
      case 'acquire':
        return this.acquire(msg.fn, msg.rec, msg.reply);
      case 'instance':
        return this.onInstanceEvent(msg);
      case 'expire': {
        const inst = this.insts.get(msg.vmId);
        if (inst && inst.state === 'idle' && inst.idleToken === msg.token) {
          this.counters.expired++;
          this.stopInst(inst, 'keep-alive expired');
        }
        return;
      }
      case 'prewarm':
        return this.prewarm(msg.fn, msg.keepMs);
      case 'queueTimeout':
        return this.queueTimeout(msg.fn, msg.rec);
      case 'evictFunction': {
        let n = 0;
        for (const inst of this.insts.values()) {
          if (inst.fn !== msg.fn || inst.state === 'stopping') continue;
          n++;
          if (inst.state === 'idle') this.stopInst(inst, 'evicted by request');
          else inst.stale = true;
        }
        msg.reply.resolve(n);
        return;
      }
      case 'functionChanged':
        this.functionChanged(msg.fn, msg.def);
        msg.reply?.resolve();
        return;
      case 'status':
        msg.reply.resolve(this.status());
        return;
      case 'shutdown':
        this.shutdown(msg.reply);
        return;
    }
  }

  // ---- acquire -----------------------------------------------------------

  private acquire(fn: FunctionDef, rec: ActivationRecord, reply: Reply<Lease>): void {
    if (this.shuttingDown) return reply.reject(new FaasError('unavailable', 'the daemon is shutting down'));
    rec.timestamps.queued = nowMs();
    this.defs.set(fn.name, fn);
    this.deps.policies.keepAliveFor(fn.name).onInvocation(this.fnView(fn), Date.now());
    const q = this.queue(fn.name);
    // Only requests beyond what the function's free instance slots (idle, starting or
    // still startable) will serve count as queued; a request waiting for its own cold
    // start is not queued behind anybody.
    const busy = [...this.insts.values()].filter((i) => i.fn === fn.name && i.state === 'busy').length;
    const queuedBeyond = q.length - Math.max(0, fn.maxInstances - busy);
    if (queuedBeyond >= this.deps.config.maxQueueLength && !this.hasIdle(fn)) {
      this.counters.rejectedQueueFull++;
      return reply.reject(new FaasError('too_many_requests', `function ${fn.name}: ${q.length} requests already queued (admission.maxQueueLength ${this.deps.config.maxQueueLength})`));
    }
    rec.timestamps.admitted = nowMs();
    const timer = setTimeout(() => this.self.tell({ kind: 'queueTimeout', fn: fn.name, rec }), this.deps.config.maxQueueDelayMs);
    q.push({ fn, rec, reply, enqueuedAt: Date.now(), timer });
    this.pump(fn.name);
  }

  private queueTimeout(fnName: string, rec: ActivationRecord): void {
    const q = this.queue(fnName);
    const i = q.findIndex((w) => w.rec === rec);
    if (i < 0) return;
    const [w] = q.splice(i, 1);
    this.counters.rejectedQueueDelay++;
    w!.reply.reject(new FaasError('unavailable', `function ${fnName}: no instance became available within ${this.deps.config.maxQueueDelayMs} ms (admission.maxQueueDelayMs)`));
  }

  /** Serve the function's queue: warm instances first, then start new ones within the limits. */
  private pump(fnName: string): void {
    const q = this.queue(fnName);
    while (q.length > 0) {
      if (this.busyCount() >= this.deps.config.maxConcurrentInvocations) return;
      const w = q[0]!;
      const idle = this.idleOf(w.fn);
      if (idle.length > 0) {
        q.shift();
        const chosen = this.deps.policies.selection.select(idle.map((i) => this.view(i)), Date.now());
        this.lease(this.insts.get(chosen.id) ?? idle[0]!, w);
        continue;
      }
      const starting = [...this.insts.values()].filter((i) => i.fn === fnName && i.state === 'starting' && !i.stale && i.codeSha256 === w.fn.codeSha256).length;
      if (starting >= q.length) return; // enough starts under way for everyone waiting
      const live = [...this.insts.values()].filter((i) => i.fn === fnName && i.state !== 'stopping').length;
      if (live >= w.fn.maxInstances) {
        // stale instances of an old version count against the limit only while busy
        if (!this.stopOneStaleIdle(fnName)) return;
        continue;
      }
      if (!this.makeRoom(w.fn.memoryMiB)) return; // wait until memory frees up (or the queue delay runs out)
      this.launch(w.fn, undefined);
      // loop: more waiters may need more instances
    }
  }

  private lease(inst: Inst, w: Waiter): void {
    clearTimeout(w.timer);
    this.clearIdleTimer(inst);
    // fresh: first use, and the instance was not already idle when this request arrived
    const fresh = inst.invocations === 0 && inst.lastUsedAt >= w.enqueuedAt;
    if (!fresh) this.counters.warm++;
    inst.state = 'busy';
    inst.invocations++;
    inst.lastUsedAt = Date.now();
    w.rec.timestamps.instanceAssigned = nowMs();
    w.reply.resolve({ vmId: inst.id, worker: inst.ref, fresh });
  }

  // ---- starting instances ------------------------------------------------

  private launch(fn: FunctionDef, prewarmKeepMs: number | undefined): Inst {
    const id = `vm-${Date.now().toString(36)}${(++this.seq).toString(36).padStart(4, '0')}`;
    const slot = this.nextCpuSlot();
    const cpuAffinity = this.deps.config.pinVms && slot >= 0 ? [this.deps.config.cpus[slot]!] : undefined;
    const worker = new Worker(id, 'pending', { ...this.deps.workerDeps, cpuAffinity }, this.self);
    const ref = this.deps.system.spawn<WorkerMsg>(`worker-${id}`, worker, {
      supervision: { kind: 'restart', maxRestarts: 1, withinMs: 60_000 },
      onFailure: (f) => this.log.error('worker failed beyond restart', { vmId: id, err: errText(f.error) }),
    });
    const now = Date.now();
    const inst: Inst = {
      id,
      fn: fn.name,
      codeSha256: fn.codeSha256,
      shape: shapeOf(fn),
      memoryMiB: fn.memoryMiB,
      state: 'starting',
      worker,
      ref,
      createdAt: now,
      lastUsedAt: now,
      invocations: 0,
      startCostMs: this.costs.get(fn.name)?.coldMs ?? 0,
      cpuSlot: slot,
      stale: false,
      idleToken: 0,
      prewarmKeepMs,
    };
    this.insts.set(id, inst);
    // the start path needs the SnapshotManager's answer: decided off the pool's mailbox
    this.planStart(fn)
      .then((plan) => ref.tell({ kind: 'start', plan }))
      .catch((err: unknown) => {
        this.log.error('planning a start failed; cold boot', { fn: fn.name, err: errText(err) });
        ref.tell({ kind: 'start', plan: { path: 'cold', fn } });
      });
    return inst;
  }

  private async planStart(fn: FunctionDef): Promise<StartPlan> {
    const snaps = this.deps.snapshots;
    if (!snaps || !this.deps.config.snapshotsEnabled) return { path: 'cold', fn };
    const existing = await snaps.ask<SnapshotRef | undefined>((reply) => ({ kind: 'lookup', fn, reply }), 10_000);
    if (existing) return { path: 'restore', fn, snapshot: existing };
    const target = await snaps.ask<SnapshotRef | undefined>((reply) => ({ kind: 'prepare', fn, reply }), 10_000);
    return { path: 'cold', fn, snapshotTarget: target };
  }

  private prewarm(fn: FunctionDef, keepMs: number): void {
    if (this.shuttingDown) return;
    const cur = this.defs.get(fn.name);
    if (!cur || cur.codeSha256 !== fn.codeSha256) return; // deleted or changed since
    if (this.idleOf(cur).length > 0 || [...this.insts.values()].some((i) => i.fn === fn.name && i.state === 'starting')) return;
    if (!this.makeRoom(cur.memoryMiB)) return;
    this.counters.prewarmed++;
    this.launch(cur, keepMs);
  }

  // ---- instance events ---------------------------------------------------

  private onInstanceEvent(ev: InstanceEvent): void {
    const inst = this.insts.get(ev.vmId);
    if (!inst) return;
    const to = ev.transition.to;
    if (ev.started) {
      this.counters[ev.started.path]++;
      const c = this.costs.get(inst.fn) ?? {};
      if (ev.started.path === 'cold') c.coldMs = ev.started.startMs;
      else if (ev.started.path === 'restore') c.restoreMs = ev.started.startMs;
      this.costs.set(inst.fn, c);
      inst.startCostMs = ev.started.startMs;
    }
    if (to === 'idle') {
      if (inst.state === 'stopping') return;
      inst.state = 'idle';
      inst.lastUsedAt = Date.now();
      this.becameIdle(inst);
      return;
    }
    if (to === 'running') {
      inst.state = 'busy';
      return;
    }
    if (to === 'failed' || to === 'stopping') {
      if (inst.state === 'starting') this.counters.startFailures++;
      const wasStarting = inst.state === 'starting';
      inst.state = 'stopping';
      this.clearIdleTimer(inst);
      if (wasStarting && to === 'failed') this.failOneWaiter(inst.fn, ev.transition.reason);
      return;
    }
    if (to === 'gone') {
      this.clearIdleTimer(inst);
      // every other end (TTL, pre-warm unload, crash, timeout, delete, update) is an onStop
      if (!inst.evicted && inst.invocations > 0) this.deps.policies.keepAliveFor(inst.fn).onStop?.(this.view(inst), this.fnView(this.defs.get(inst.fn)), Date.now());
      this.insts.delete(inst.id);
      void this.deps.system.stop(inst.ref).catch(() => undefined);
      // memory and an instance slot were freed: serve whoever waits
      for (const fn of this.queues.keys()) this.pump(fn);
    }
  }

  /** A start failed: the oldest waiter of that function gets the error (no endless retry loop). */
  private failOneWaiter(fnName: string, reason: string): void {
    const q = this.queue(fnName);
    const w = q.shift();
    if (!w) return;
    clearTimeout(w.timer);
    w.reply.reject(new FaasError(/init/.test(reason) ? 'init_error' : 'vm_error', `function ${fnName}: could not start an instance: ${reason.replace(/^failed: /, '')}`));
    this.pump(fnName);
  }

  private becameIdle(inst: Inst): void {
    const def = this.defs.get(inst.fn);
    if (inst.stale || !def || def.codeSha256 !== inst.codeSha256 || shapeOf(def) !== inst.shape) {
      this.stopInst(inst, 'definition changed or evicted');
      return;
    }
    if (this.queue(inst.fn).length > 0) {
      this.pump(inst.fn);
      if (inst.state !== 'idle') return;
    }
    // nobody waits: other functions may be blocked on the global concurrency limit
    for (const fn of this.queues.keys()) if (fn !== inst.fn && this.queue(fn).length > 0) this.pump(fn);
    if (inst.state !== 'idle') return;
    const now = Date.now();
    inst.idleToken++;
    let keepMs: number;
    let prewarmAfterMs: number | undefined;
    if (inst.prewarmKeepMs !== undefined && inst.invocations === 0) {
      keepMs = inst.prewarmKeepMs;
    } else {
      const d = this.deps.policies.keepAliveFor(inst.fn).onIdle(this.view(inst), this.fnView(def), now);
      keepMs = d.keepWarmMs;
      prewarmAfterMs = d.prewarmAfterMs;
    }
    if (prewarmAfterMs !== undefined) {
      this.stopInst(inst, 'keep-alive: unload until pre-warm');
      const keep = keepMs;
      setTimeout(() => this.self.tell({ kind: 'prewarm', fn: def, keepMs: keep }), Math.max(0, prewarmAfterMs)).unref();
      return;
    }
    if (keepMs <= 0) {
      this.stopInst(inst, 'keep-alive: none');
      return;
    }
    if (Number.isFinite(keepMs)) {
      const token = inst.idleToken;
      inst.timer = setTimeout(() => this.self.tell({ kind: 'expire', vmId: inst.id, token }), Math.min(keepMs, 2 ** 31 - 1));
      inst.timer.unref();
    }
  }

  // ---- memory ------------------------------------------------------------

  private memoryUsed(): number {
    let used = 0;
    for (const i of this.insts.values()) if (i.state !== 'stopping') used += i.memoryMiB;
    return used;
  }

  /** Make room for `needMiB` more: evict idle instances (eviction policy) once the high watermark is crossed. */
  private makeRoom(needMiB: number): boolean {
    const c = this.deps.config;
    const used = this.memoryUsed();
    if (used + needMiB <= c.highWatermark * c.memoryBudgetMiB) return true;
    const toFree = used + needMiB - c.lowWatermark * c.memoryBudgetMiB;
    const idle = [...this.insts.values()].filter((i) => i.state === 'idle').map((i) => this.view(i));
    const keepAlive = this.deps.policies.keepAlive;
    const victims = this.deps.policies.eviction.selectVictims(idle, toFree, {
      now: Date.now(),
      rng: this.deps.rng,
      keepAlive,
      fnOf: (v) => this.fnView(this.defs.get(v.fn)),
    });
    for (const v of victims) {
      const inst = this.insts.get(v.id);
      if (!inst || inst.state !== 'idle') continue;
      this.deps.policies.keepAliveFor(inst.fn).onEvict?.(v, this.fnView(this.defs.get(inst.fn)), Date.now());
      inst.evicted = true;
      this.counters.evictedMemory++;
      this.stopInst(inst, 'evicted: memory pressure');
    }
    return this.memoryUsed() + needMiB <= c.memoryBudgetMiB;
  }

  // ---- changes, stop, status ---------------------------------------------

  private functionChanged(fnName: string, def: FunctionDef | undefined): void {
    if (def) this.defs.set(fnName, def);
    else this.defs.delete(fnName);
    for (const inst of this.insts.values()) {
      if (inst.fn !== fnName) continue;
      if (def && inst.codeSha256 === def.codeSha256 && inst.shape === shapeOf(def)) continue;
      inst.stale = true;
      if (inst.state === 'idle') this.stopInst(inst, def ? 'definition changed' : 'function deleted');
    }
    if (!def) {
      const q = this.queue(fnName);
      for (const w of q.splice(0)) {
        clearTimeout(w.timer);
        w.reply.reject(new FaasError('not_found', `function ${fnName} was deleted`, 'name'));
      }
    }
  }

  private stopInst(inst: Inst, reason: string): void {
    if (inst.state === 'stopping') return;
    inst.state = 'stopping';
    this.clearIdleTimer(inst);
    inst.ref.tell({ kind: 'stop', reason });
  }

  private stopOneStaleIdle(fnName: string): boolean {
    for (const inst of this.insts.values()) {
      if (inst.fn === fnName && inst.state === 'idle' && inst.stale) {
        this.stopInst(inst, 'stale');
        return true;
      }
    }
    return false;
  }

  private shutdown(reply: Reply<void>): void {
    this.shuttingDown = true;
    for (const q of this.queues.values()) {
      for (const w of q.splice(0)) {
        clearTimeout(w.timer);
        w.reply.reject(new FaasError('unavailable', 'the daemon is shutting down'));
      }
    }
    const all = [...this.insts.values()];
    for (const i of all) this.clearIdleTimer(i);
    // abort kills VMs even while a Worker is busy booting
    Promise.all(all.map((i) => i.worker.abort('daemon shutdown').catch(() => undefined))).then(
      () => reply.resolve(),
      (err: unknown) => reply.reject(err),
    );
  }

  private status(): PoolStatus {
    const queues: Record<string, number> = {};
    for (const [k, q] of this.queues) if (q.length) queues[k] = q.length;
    return {
      memoryUsedMiB: this.memoryUsed(),
      memoryBudgetMiB: this.deps.config.memoryBudgetMiB,
      snapshotsEnabled: this.deps.config.snapshotsEnabled && this.deps.snapshots !== undefined,
      busy: this.busyCount(),
      instances: [...this.insts.values()].map((i) => ({
        id: i.id,
        fn: i.fn,
        state: i.state,
        workerState: i.worker.state,
        memoryMiB: i.memoryMiB,
        createdAt: i.createdAt,
        lastUsedAt: i.lastUsedAt,
        invocations: i.invocations,
        stale: i.stale,
        cpuSlot: i.cpuSlot,
      })),
      queues,
      counters: { ...this.counters },
    };
  }

  // ---- helpers -----------------------------------------------------------

  private queue(fn: string): Waiter[] {
    let q = this.queues.get(fn);
    if (!q) this.queues.set(fn, (q = []));
    return q;
  }

  private idleOf(fn: FunctionDef): Inst[] {
    const shape = shapeOf(fn);
    return [...this.insts.values()].filter((i) => i.fn === fn.name && i.state === 'idle' && !i.stale && i.codeSha256 === fn.codeSha256 && i.shape === shape);
  }

  private hasIdle(fn: FunctionDef): boolean {
    return this.idleOf(fn).length > 0;
  }

  private busyCount(): number {
    let n = 0;
    for (const i of this.insts.values()) if (i.state === 'busy') n++;
    return n;
  }

  private clearIdleTimer(inst: Inst): void {
    if (inst.timer) clearTimeout(inst.timer);
    inst.timer = undefined;
  }

  private nextCpuSlot(): number {
    const n = this.deps.config.cpus.length;
    if (n === 0) return -1;
    const s = this.cpuCursor % n;
    this.cpuCursor++;
    return s;
  }

  private view(i: Inst): InstanceView {
    return {
      id: i.id,
      fn: i.fn,
      memoryMiB: i.memoryMiB,
      state: i.state,
      createdAt: i.createdAt,
      lastUsedAt: i.lastUsedAt,
      invocations: i.invocations,
      startCostMs: i.startCostMs,
      cpuSlot: i.cpuSlot,
    };
  }

  private fnView(def: FunctionDef | undefined): FunctionView {
    if (!def) return { name: '?', memoryMiB: 0 };
    const c = this.costs.get(def.name);
    return { name: def.name, memoryMiB: def.memoryMiB, coldStartMs: c?.coldMs, restoreMs: c?.restoreMs };
  }
}

/** VM shape: an instance is reusable only for the same memory and vCPUs (and network, issue 10: its rules are set at start). */
function shapeOf(fn: FunctionDef): string {
  return `${fn.memoryMiB}m${fn.vcpus}c${networkShapeKey(fn.network)}`;
}
