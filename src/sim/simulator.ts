// Discrete-event simulation of ONE node driven by the same policy objects as
// the daemon's VmPool. Arrivals stream from the trace (slot by slot) and are
// merged with a heap of instance events, so the heap only ever holds one event
// per live instance (plus pre-warm timers).
import type { ResolvedPolicySet } from '../policies/index.js';
import type {
  EvictionContext,
  FunctionView,
  InstanceView,
  KeepAlivePolicy,
  PlacementStats,
  SelectionPolicy,
  TierView,
} from '../policies/types.js';
import { ArrivalExpander, type ExpandOptions } from '../traces/expand.js';
import type { Trace } from '../traces/types.js';
import { EventHeap } from './heap.js';
import { IdleHeap } from './idle-heap.js';
import { LatencyHistogram } from './histogram.js';
import { functionCosts, profileTiers, type FunctionCosts, type Profile } from './profile.js';

export interface SimulationOptions {
  trace: Trace;
  policies: ResolvedPolicySet;
  profile: Profile;
  /** Memory budget for instances (MiB); Infinity = unlimited. */
  memoryMiB: number;
  /** Instance cap per function unless its profile entry (or the profile defaults) set maxInstances; default unlimited. */
  maxInstancesPerFunction?: number;
  /** A queued request waiting longer than this is dropped (default 60 s). */
  maxQueueDelayMs?: number;
  /** Multiply trace time by this (0.5 = twice as dense). Default 1. */
  timeScale?: number;
  /** Simulate only the first durationMs of (scaled) trace time. */
  durationMs?: number;
  expand?: ExpandOptions;
  /** Label for the result (default: the keep-alive policy's name). */
  label?: string;
  /**
   * Always call eviction.selectVictims with the full idle list, even when the
   * policy offers orderKey() (the indexed fast path). For cross-checking.
   */
  exactEviction?: boolean;
}

export interface SimulationResult {
  policy: string;
  keepAlive: string;
  eviction: string;
  selection: string;
  placement: string;
  memoryMiB: number | null;
  functions: number;
  invocations: number;
  completed: number;
  warm: number;
  restores: number;
  coldStarts: number;
  dropped: number;
  /** Functions with a snapshot at the end. */
  snapshots: number;
  coldStartFraction: number;
  restoreFraction: number;
  warmFraction: number;
  droppedFraction: number;
  /** Idle instance memory × idle time. */
  wastedMemoryMiBSeconds: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Mean time requests spent queued (ms, over completed requests). */
  meanQueueMs: number;
  evictions: number;
  expirations: number;
  prewarms: number;
  instancesCreated: number;
  peakMemoryMiB: number;
  simulatedSeconds: number;
  wallMs: number;
  events: number;
  eventsPerSecond: number;
  invocationsPerSecond: number;
}

const K_FINISH = 0;
const K_EXPIRE = 1;
const K_READY = 2;
const K_PREWARM = 3;

const P_COLD = 0;
const P_RESTORE = 1;

class FnState {
  readonly view: FunctionView;
  readonly idle: SimInstance[] = [];
  /** Unclaimed pre-warm instances still starting. */
  readonly prewarming: SimInstance[] = [];
  live = 0;
  queue: number[] = [];
  qHead = 0;
  inMemWait = false;
  snapshotTier: string | null = null;
  snapshotReadyAt = Infinity;
  restoreMs: number;
  keepWarm = false;
  restores = 0;
  prewarmKeepMs = 0;
  maxInst = Infinity;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly costs: FunctionCosts,
  ) {
    this.restoreMs = costs.restoreMs;
    this.view = {
      name,
      memoryMiB: costs.memoryMiB,
      coldStartMs: costs.coldMs,
      restoreMs: costs.restoreMs,
      warmStartMs: costs.warmMs,
      runMs: costs.runMs,
    };
  }

  get queued(): number {
    return this.queue.length - this.qHead;
  }
}

class SimInstance implements InstanceView {
  id = '';
  fn = '';
  memoryMiB = 0;
  state: InstanceView['state'] = 'starting';
  createdAt = 0;
  lastUsedAt = 0;
  invocations = 0;
  readonly cpuSlot = -1;
  idleSince = 0;
  fnIdlePos = -1;
  globalIdlePos = -1;
  path = P_COLD;
  /** Arrival time of the request a starting pre-warm instance will serve (NaN: none). */
  pendingArrival = NaN;
  prewarmKeepMs = 0;
  f!: FnState;
  // idle index (fast eviction path)
  evKey = 0;
  seq = 0;
  heapPos = -1;
  /** When keep-alive stops it (idle only). */
  expireAt = Infinity;
  /** Time of its one armed EXPIRE event (Infinity: none); later renewals re-arm lazily. */
  armedAt = Infinity;
  /** Incremented when stopped, so events of a previous life of a pooled object are ignored. */
  life = 0;

  constructor(readonly idx: number) {}

  get startCostMs(): number {
    return this.f.snapshotTier !== null ? this.f.restoreMs : this.f.costs.coldMs;
  }
}

export class Simulator {
  private readonly heap = new EventHeap();
  private readonly fns: FnState[];
  private readonly pool: SimInstance[] = [];
  private readonly free: SimInstance[] = [];
  private readonly globalIdle: SimInstance[] = [];
  private readonly idleIndex = new IdleHeap<SimInstance>();
  private readonly fast: boolean;
  // Hot-path references (avoid re-walking this.o.policies per event).
  private readonly ka: KeepAlivePolicy;
  private readonly sel: SelectionPolicy;
  private idleMem = 0;
  private readonly memWait: FnState[] = [];
  private readonly hist = new LatencyHistogram();
  private readonly tiers: TierView[];
  private readonly evCtx: EvictionContext;
  private readonly budget: number;
  private readonly maxInst: number;
  private readonly maxQueueDelay: number;
  private used = 0;
  private peak = 0;
  private idSeq = 0;
  private needDrain = false;
  private waste = 0;
  private queueWaitSum = 0;
  private s = { invocations: 0, completed: 0, warm: 0, restores: 0, cold: 0, dropped: 0, evictions: 0, expirations: 0, prewarms: 0, created: 0, events: 0 };

  constructor(private readonly o: SimulationOptions) {
    this.fns = o.trace.functions.map((tf) => new FnState(tf.index, tf.name, functionCosts(o.profile, tf.name, tf)));
    this.tiers = profileTiers(o.profile);
    this.budget = o.memoryMiB > 0 ? o.memoryMiB : Infinity;
    this.maxInst = o.maxInstancesPerFunction && o.maxInstancesPerFunction > 0 ? o.maxInstancesPerFunction : Infinity;
    for (const f of this.fns) f.maxInst = f.costs.maxInstances ?? this.maxInst;
    this.maxQueueDelay = o.maxQueueDelayMs ?? 60_000;
    this.ka = o.policies.keepAlive;
    this.sel = o.policies.selection;
    this.fast = !o.exactEviction && typeof o.policies.eviction.orderKey === 'function';
    this.evCtx = {
      now: 0,
      rng: o.policies.rng,
      keepAlive: o.policies.keepAlive,
      fnOf: (inst: InstanceView) => (inst as SimInstance).f.view,
    };
  }

  run(): SimulationResult {
    const wall0 = performance.now();
    const o = this.o;
    const trace = o.trace;
    const scale = o.timeScale ?? 1;
    const endMs = Math.min(trace.nSlots * trace.slotMs * scale, o.durationMs ?? Infinity);
    const x = new ArrivalExpander(trace, o.expand);
    const heap = this.heap;
    let done = false;
    for (let slot = 0; slot < trace.nSlots && !done; slot++) {
      if (slot * trace.slotMs * scale >= endMs) break;
      const n = x.slot(slot);
      const times = x.times;
      const fns = x.fns;
      for (let i = 0; i < n; i++) {
        const t = times[i]! * scale;
        if (t >= endMs) {
          done = true;
          break;
        }
        while (heap.size > 0 && heap.peekTime() <= t) this.step();
        this.arrival(this.fns[fns[i]!]!, t);
        this.s.events++;
        if (this.needDrain) this.drain(t);
      }
    }
    // Events up to the end; then only in-flight work (finishes, starting instances).
    let simEnd = endMs;
    while (heap.size > 0 && heap.peekTime() <= endMs) this.step();
    while (heap.pop()) {
      const kind = heap.topPayload & 3;
      if (kind === K_EXPIRE || kind === K_PREWARM) continue;
      simEnd = Math.max(simEnd, heap.topTime);
      this.dispatch(kind, heap.topPayload >> 2, heap.topTag, heap.topTime);
      if (this.needDrain) this.drain(heap.topTime);
    }
    for (const f of this.fns) {
      this.s.dropped += f.queued;
      f.queue = [];
      f.qHead = 0;
    }
    for (const inst of this.globalIdle) this.waste += (inst.memoryMiB * Math.max(0, simEnd - inst.idleSince)) / 1000;

    const wallMs = performance.now() - wall0;
    const s = this.s;
    const inv = s.invocations;
    const frac = (k: number): number => (inv > 0 ? k / inv : 0);
    const p = o.policies;
    return {
      policy: o.label ?? p.keepAlive.name,
      keepAlive: p.keepAlive.name,
      eviction: p.eviction.name,
      selection: p.selection.name,
      placement: p.placement.name,
      memoryMiB: Number.isFinite(this.budget) ? this.budget : null,
      functions: this.fns.length,
      invocations: inv,
      completed: s.completed,
      warm: s.warm,
      restores: s.restores,
      coldStarts: s.cold,
      dropped: s.dropped,
      snapshots: this.fns.filter((f) => f.snapshotTier !== null).length,
      coldStartFraction: frac(s.cold),
      restoreFraction: frac(s.restores),
      warmFraction: frac(s.warm),
      droppedFraction: frac(s.dropped),
      wastedMemoryMiBSeconds: this.waste,
      p50Ms: this.hist.percentile(50),
      p99Ms: this.hist.percentile(99),
      meanMs: this.hist.mean(),
      meanQueueMs: s.completed > 0 ? this.queueWaitSum / s.completed : 0,
      evictions: s.evictions,
      expirations: s.expirations,
      prewarms: s.prewarms,
      instancesCreated: s.created,
      peakMemoryMiB: this.peak,
      simulatedSeconds: simEnd / 1000,
      wallMs,
      events: s.events,
      eventsPerSecond: wallMs > 0 ? (s.events * 1000) / wallMs : 0,
      invocationsPerSecond: wallMs > 0 ? (inv * 1000) / wallMs : 0,
    };
  }

  private step(): void {
    const heap = this.heap;
    heap.pop();
    this.dispatch(heap.topPayload & 3, heap.topPayload >> 2, heap.topTag, heap.topTime);
    if (this.needDrain) this.drain(heap.topTime);
  }

  private dispatch(kind: number, idx: number, tag: number, now: number): void {
    this.s.events++;
    if (kind === K_FINISH) {
      this.finish(this.pool[idx]!, now);
    } else if (kind === K_EXPIRE) {
      const inst = this.pool[idx]!;
      if (inst.life !== tag || inst.armedAt !== now) return; // stale
      inst.armedAt = Infinity;
      if (inst.state !== 'idle') return; // re-armed when it is idle again
      if (now >= inst.expireAt) {
        this.s.expirations++;
        this.stop(inst, now, false);
      } else if (Number.isFinite(inst.expireAt)) {
        this.arm(inst, inst.expireAt);
      }
    } else if (kind === K_READY) {
      this.ready(this.pool[idx]!, now);
    } else {
      this.prewarm(this.fns[idx]!, now);
    }
  }

  // ---- requests ----

  private arrival(f: FnState, t: number): void {
    this.s.invocations++;
    this.ka.onInvocation(f.view, t);
    if (f.queued > 0) {
      f.queue.push(t);
      return;
    }
    if (f.idle.length > 0) {
      this.serveWarm(this.pickIdle(f, t), t, t);
      return;
    }
    if (f.prewarming.length > 0) {
      f.prewarming.pop()!.pendingArrival = t;
      return;
    }
    if (this.tryStart(f, t, t) !== 0) f.queue.push(t);
  }

  private pickIdle(f: FnState, now: number): SimInstance {
    if (f.idle.length === 1) return f.idle[0]!;
    return this.sel.select(f.idle, now) as SimInstance;
  }

  /** 0 started, 1 at the function's instance cap, 2 no memory. */
  private tryStart(f: FnState, arrival: number, now: number): number {
    if (f.live >= f.maxInst) return 1;
    const mem = f.costs.memoryMiB;
    if (!this.admit(mem, now, true)) {
      if (!f.inMemWait) {
        f.inMemWait = true;
        this.memWait.push(f);
      }
      return 2;
    }
    const inst = this.newInstance(f, now);
    const restore = f.snapshotTier !== null && now >= f.snapshotReadyAt;
    let cost: number;
    if (restore) {
      inst.path = P_RESTORE;
      cost = f.restoreMs;
      this.s.restores++;
      f.restores++;
    } else {
      inst.path = P_COLD;
      cost = f.costs.coldMs;
      this.s.cold++;
      this.placeAfterCold(f, now);
    }
    inst.state = 'busy';
    inst.invocations = 1;
    const run = f.costs.runMs;
    this.record(now - arrival, cost + run);
    this.heap.push(now + cost + run, (inst.idx << 2) | K_FINISH, 0);
    return 0;
  }

  private placeAfterCold(f: FnState, now: number): void {
    if (f.snapshotTier !== null || f.keepWarm) return;
    const c = f.costs;
    const base = c.warmMs + c.runMs;
    const slowdownByTier: Record<string, number | undefined> = {};
    for (const t of this.tiers) slowdownByTier[t.name] = base > 0 ? ((c.restoreMsByTier[t.name] ?? c.restoreMs) + c.runMs) / base : undefined;
    const stats: PlacementStats = { slowdownByTier, samples: f.restores };
    const d = this.o.policies.placement.place(f.view, this.tiers, stats);
    if (d.action === 'snapshot') {
      const tier = this.tiers.find((t) => t.name === d.tier);
      const bytes = c.snapshotMiB * 1048576;
      // A snapshot that does not fit its tier is not kept (the next cold start asks again).
      if (tier && tier.capacityBytes > 0 && tier.usedBytes + bytes > tier.capacityBytes) return;
      if (tier) (tier as { usedBytes: number }).usedBytes += bytes;
      f.snapshotTier = d.tier;
      f.restoreMs = c.restoreMsByTier[d.tier] ?? c.restoreMs;
      // The snapshot exists once the cold start it is taken from has finished booting.
      f.snapshotReadyAt = now + c.coldMs;
    } else if (d.action === 'keep-warm') {
      f.keepWarm = true;
    }
  }

  private serveWarm(inst: SimInstance, arrival: number, now: number): void {
    this.leaveIdle(inst, now);
    inst.state = 'busy';
    inst.invocations++;
    this.s.warm++;
    const f = inst.f;
    this.record(now - arrival, f.costs.warmMs + f.costs.runMs);
    this.heap.push(now + f.costs.warmMs + f.costs.runMs, (inst.idx << 2) | K_FINISH, 0);
  }

  private record(queuedMs: number, serviceMs: number): void {
    this.s.completed++;
    this.queueWaitSum += queuedMs;
    this.hist.record(queuedMs + serviceMs);
  }

  /** Next queued request of f that has not waited too long (NaN: none). */
  private nextQueued(f: FnState, now: number): number {
    while (f.qHead < f.queue.length) {
      const a = f.queue[f.qHead++]!;
      if (f.qHead > 1024 && f.qHead * 2 > f.queue.length) {
        f.queue = f.queue.slice(f.qHead);
        f.qHead = 0;
      }
      if (now - a <= this.maxQueueDelay) return a;
      this.s.dropped++;
    }
    return NaN;
  }

  // ---- instance life ----

  private finish(inst: SimInstance, now: number): void {
    const f = inst.f;
    const next = f.queued > 0 ? this.nextQueued(f, now) : NaN;
    if (!Number.isNaN(next)) {
      // Still hot: serve the function's own queue at once.
      inst.state = 'busy';
      inst.invocations++;
      this.s.warm++;
      this.record(now - next, f.costs.warmMs + f.costs.runMs);
      this.heap.push(now + f.costs.warmMs + f.costs.runMs, (inst.idx << 2) | K_FINISH, 0);
      return;
    }
    this.goIdle(inst, now);
  }

  private goIdle(inst: SimInstance, now: number): void {
    const f = inst.f;
    inst.state = 'idle';
    inst.lastUsedAt = now;
    const d = this.ka.onIdle(inst, f.view, now);
    let keep = d.keepWarmMs;
    if (f.keepWarm) keep = Infinity;
    else if (d.prewarmAfterMs !== undefined && d.prewarmAfterMs > 0) {
      this.stop(inst, now, false);
      f.prewarmKeepMs = keep;
      this.heap.push(now + d.prewarmAfterMs, (f.index << 2) | K_PREWARM, 0);
      return;
    }
    if (!(keep > 0)) {
      this.stop(inst, now, false);
      return;
    }
    this.enterIdle(inst, now, keep);
  }

  private enterIdle(inst: SimInstance, now: number, keepMs: number): void {
    const f = inst.f;
    inst.state = 'idle';
    inst.idleSince = now;
    inst.fnIdlePos = f.idle.length;
    f.idle.push(inst);
    inst.globalIdlePos = this.globalIdle.length;
    this.globalIdle.push(inst);
    this.idleMem += inst.memoryMiB;
    if (this.fast) {
      this.evCtx.now = now;
      inst.evKey = this.o.policies.eviction.orderKey!(inst, this.evCtx);
      this.idleIndex.push(inst);
    }
    inst.expireAt = now + keepMs;
    // One armed event per instance: an earlier armed one re-arms itself when it fires.
    if (Number.isFinite(keepMs) && inst.armedAt > inst.expireAt) this.arm(inst, inst.expireAt);
    if (this.memWait.length > 0) this.needDrain = true;
  }

  private arm(inst: SimInstance, at: number): void {
    inst.armedAt = at;
    this.heap.push(at, (inst.idx << 2) | K_EXPIRE, inst.life);
  }

  private leaveIdle(inst: SimInstance, now: number): void {
    this.waste += (inst.memoryMiB * (now - inst.idleSince)) / 1000;
    const f = inst.f;
    const a = f.idle;
    const lastF = a.pop()!;
    if (lastF !== inst) {
      a[inst.fnIdlePos] = lastF;
      lastF.fnIdlePos = inst.fnIdlePos;
    }
    const g = this.globalIdle;
    const lastG = g.pop()!;
    if (lastG !== inst) {
      g[inst.globalIdlePos] = lastG;
      lastG.globalIdlePos = inst.globalIdlePos;
    }
    inst.fnIdlePos = -1;
    inst.globalIdlePos = -1;
    this.idleMem -= inst.memoryMiB;
    if (this.fast) this.idleIndex.remove(inst);
  }

  private stop(inst: SimInstance, now: number, evicted: boolean): void {
    if (inst.state === 'idle' && inst.fnIdlePos >= 0) this.leaveIdle(inst, now);
    const f = inst.f;
    if (evicted) this.ka.onEvict?.(inst, f.view, now);
    else this.ka.onStop?.(inst, f.view, now);
    inst.state = 'stopping';
    inst.life = (inst.life + 1) >>> 0;
    inst.armedAt = Infinity;
    f.live--;
    this.used -= inst.memoryMiB;
    this.free.push(inst);
    if (this.memWait.length > 0) this.needDrain = true;
  }

  private newInstance(f: FnState, now: number): SimInstance {
    let inst = this.free.pop();
    if (!inst) {
      inst = new SimInstance(this.pool.length);
      this.pool.push(inst);
    }
    inst.seq = this.idSeq++;
    inst.id = String(inst.seq);
    inst.fn = f.name;
    inst.f = f;
    inst.memoryMiB = f.costs.memoryMiB;
    inst.state = 'starting';
    inst.createdAt = now;
    inst.lastUsedAt = now;
    inst.invocations = 0;
    inst.pendingArrival = NaN;
    f.live++;
    this.used += inst.memoryMiB;
    if (this.used > this.peak) this.peak = this.used;
    this.s.created++;
    return inst;
  }

  private admit(need: number, now: number, allowEvict: boolean): boolean {
    if (this.used + need <= this.budget) return true;
    if (!allowEvict || this.globalIdle.length === 0) return false;
    const deficit = this.used + need - this.budget;
    if (this.fast) {
      // Same victims as selectVictims: lowest orderKey first until covered.
      if (this.idleMem < deficit) return false;
      while (this.used + need > this.budget) {
        const v = this.idleIndex.peek();
        if (!v) return false;
        this.s.evictions++;
        this.stop(v, now, true);
      }
      return true;
    }
    this.evCtx.now = now;
    const victims = this.o.policies.eviction.selectVictims(this.globalIdle, deficit, this.evCtx) as SimInstance[];
    let freeable = 0;
    for (const v of victims) if (v.state === 'idle') freeable += v.memoryMiB;
    // Partial eviction would lose warm instances without admitting anyone.
    if (freeable < deficit) return false;
    for (const v of victims) {
      if (v.state !== 'idle') continue;
      this.s.evictions++;
      this.stop(v, now, true);
    }
    return this.used + need <= this.budget;
  }

  // ---- pre-warming ----

  private prewarm(f: FnState, now: number): void {
    if (f.idle.length > 0 || f.prewarming.length > 0 || f.live >= f.maxInst || f.queued > 0) return;
    // Speculative: never evicts anyone.
    if (!this.admit(f.costs.memoryMiB, now, false)) return;
    const inst = this.newInstance(f, now);
    const restore = f.snapshotTier !== null && now >= f.snapshotReadyAt;
    inst.path = restore ? P_RESTORE : P_COLD;
    inst.prewarmKeepMs = f.prewarmKeepMs;
    f.prewarming.push(inst);
    this.s.prewarms++;
    this.heap.push(now + (restore ? f.restoreMs : f.costs.coldMs), (inst.idx << 2) | K_READY, 0);
  }

  private ready(inst: SimInstance, now: number): void {
    const f = inst.f;
    const k = f.prewarming.indexOf(inst);
    if (k >= 0) f.prewarming.splice(k, 1);
    if (!Number.isNaN(inst.pendingArrival)) {
      // A request claimed it while it was starting: it waited for that start.
      if (inst.path === P_RESTORE) this.s.restores++;
      else this.s.cold++;
      inst.state = 'busy';
      inst.invocations = 1;
      this.record(0, now - inst.pendingArrival + f.costs.warmMs + f.costs.runMs);
      this.heap.push(now + f.costs.warmMs + f.costs.runMs, (inst.idx << 2) | K_FINISH, 0);
      return;
    }
    inst.lastUsedAt = now;
    this.enterIdle(inst, now, f.keepWarm ? Infinity : inst.prewarmKeepMs);
  }

  // ---- memory waiters ----

  private drain(now: number): void {
    this.needDrain = false;
    const w = this.memWait;
    while (w.length > 0) {
      const f = w[0]!;
      if (f.queued === 0) {
        f.inMemWait = false;
        w.shift();
        continue;
      }
      const head = f.queue[f.qHead]!;
      if (now - head > this.maxQueueDelay) {
        this.nextQueued(f, now); // drops the stale ones
        continue;
      }
      const r = this.tryStart(f, head, now);
      if (r === 0) {
        f.qHead++;
        continue;
      }
      if (r === 1) {
        // Waits for its own instances, not for memory.
        f.inMemWait = false;
        w.shift();
        continue;
      }
      break; // FIFO: the head still does not fit
    }
  }
}

export function simulate(o: SimulationOptions): SimulationResult {
  return new Simulator(o).run();
}
