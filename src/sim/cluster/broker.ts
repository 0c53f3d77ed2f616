// The cluster around the nodes: a model of FaaSCell's broker (the JetStream work
// queue with its shared and addressed consumers), the ingress's routing and the
// nodes' heartbeats, driven in rounds of virtual time. Every rule that decides
// where work goes is the daemon's own code: the locality choice
// (PlacementChooser, LocalityBook), the pull allowances (capacity.ts), the
// hand-back rule (handback.ts) and the cluster's cadences (timing.ts).
//
// What the model adds is time. NATS delivers a message a few milliseconds after
// it is published and the broker Source pulls in loops; here the broker acts at
// round boundaries (every `roundMs`, default 2 ms, about the measured broker
// hop): invocations published during a round are routed and delivered at its
// end, where every node's pull state is read once. Between rounds the nodes run
// independently (their starts, runs and timers), which is what lets the
// simulator advance nodes one by one and split them over threads.
//
// A round at time T:
//   1. cluster events due (a node dies or starts again, ack waits expire, the
//      pause after a hand-back ends, the scan for nodes that are down);
//   2. heartbeats due: a node beats every heartbeatMs and 200 ms after an outcome
//      (HEARTBEAT_MIN_GAP_MS); a beat updates the functions that changed since
//      the node's previous one, its queue length and its capacity ("free");
//   3. the invocations that arrived since the last round are routed (locality, or
//      an alternative for experiments) to a node's addressed queue or to the shared one;
//   4. every node whose state changed is read: shared capacity and addressed
//      allowance (one read per round: deliveries then count down);
//   5. addressed queues: a node pulls one message per round while its allowance
//      lets it, else after localityWaitMs (at its forwarder's tick) the queue
//      moves to the shared queue;
//   6. the shared queue goes to the nodes that pull, round robin in the order
//      their pull requests were made (JetStream's waiting requests).
//
// Every invocation gets an answer: one still in the broker's queues at its
// deadline (accepted + queueDeadlineMs, the nodes' admission.maxQueueDelayMs) is
// refused there (queue_timeout), as a node refuses what waited that long in its
// queue; so is a hand-back past it. A cluster whose nodes pull nothing (all
// overloaded: a node with queued work pulls none) answers at the deadline instead
// of holding the work for ever. The deadline and the hand-back rule are the
// daemon's (src/cluster/deadline.ts, handback.ts); the daemon decides "still
// queued" by a claim per invocation in a KV bucket, here the model knows it.

import { addressedAllowance, DEFAULT_PULL_RULE, sharedAllowance, slotsOfState, type PullRule, type PullState } from '../../cluster/capacity.js';
import { clusterConfigSchema } from '../../cluster/config.js';
import { handsBack } from '../../cluster/handback.js';
import { pastDeadline, queueDeadline, redeliveryDeadline } from '../../cluster/deadline.js';
import { LocalityBook, PlacementChooser } from '../../cluster/locality.js';
import { isLive } from '../../cluster/node-status.js';
import { DEAD_SCAN_TICKS, forwarderEveryMs, HEARTBEAT_MIN_GAP_MS } from '../../cluster/timing.js';
import { HANDBACK_PAUSE_MS } from '../../cluster/handback.js';
import { createRng, type SeededRng } from '../../policies/rng.js';
import type { RejectCode } from '../../vmpool/core/model.js';
import { EventHeap } from '../heap.js';
import { DeadlineQueue } from './deadline-queue.js';
import { Deque } from './deque.js';
import { PresenceIndex, warmChoice } from './presence.js';
import { LoadIndex } from './load-index.js';

/** How the ingress chooses a node (locality: the daemon's rule; the others are baselines for experiments). */
export type RoutingPolicy = 'locality' | 'shared' | 'least-loaded' | 'random' | 'hash';
export const ROUTING_POLICIES: readonly RoutingPolicy[] = ['locality', 'shared', 'least-loaded', 'random', 'hash'];

export interface BrokerOptions {
  /** node names (sorted names compare like the daemon's: zero-padded) */
  names: readonly string[];
  /** trace function names (the locality book keys by name, as the daemon's) */
  fnNames: readonly string[];
  routing: RoutingPolicy;
  roundMs: number;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  localityWaitMs: number;
  ackWaitMs: number;
  maxInFlight: number | 'auto';
  /** cluster.pullRule: what a node counts as room for shared-queue work (default the daemon's) */
  pullRule?: PullRule;
  maxHandbacks: number;
  /** cluster.maxDeliveries: a message delivered more often (every node that took it died) is answered daemon_restarted, not run (default the daemon's) */
  maxDeliveries?: number;
  /** how long an invocation may wait in the broker's queues before it is refused there (ms; default: no limit) */
  queueDeadlineMs?: number;
  /** seeds the heartbeat phases and the random routing */
  seed: number;
}

/** One invocation as it travels: published by an ingress, pulled by a node, maybe handed back or redelivered. */
export interface ClusterMsg {
  id: number;
  fn: number;
  /** virtual ms when the ingress accepted it */
  arrival: number;
  ingress: number;
  handbacks: number;
  redeliveries: number;
  /** the node it was addressed to (-1: the shared queue) */
  target: number;
  /** how the current delivery came */
  via: 'shared' | 'addressed';
  /** once assigned: 0 warm, 1 restore, 2 cold */
  path: number;
  /** refused in the broker at this time if still queued there (accepted or redelivered + queueDeadlineMs) */
  deadline: number;
  /** refused at its deadline while in a queue (left there, skipped when it comes to the head) */
  expired?: boolean;
}

/** A node as the broker sees it: its pool's state and its functions, and the way to hand it work. */
export interface NodePort {
  /** the pull state now (the object may be reused) */
  state(): PullState;
  /** functions whose instances or snapshot changed since the last call (read it at once: the next call may reuse it) */
  takeDirty(): Iterable<number>;
  /** what a heartbeat reports of `fn` now: [idle, busy, starting, snapshot ? 1 : 0] */
  presence(fn: number, out: Int32Array): void;
  /** hand it an invocation of `fn` as the node's request `req` */
  deliver(fn: number, req: number, now: number): void;
  /** the node died: its VMs are gone, nothing it pulled is answered */
  kill(now: number): void;
  /** it starts again, empty */
  restart(now: number): void;
}

/** What became of the invocations (the outcome stream, from the requesters' side). */
export interface BrokerCounters {
  accepted: number;
  /** routed to a node's addressed queue, by why */
  targetedWarm: number;
  targetedSnapshot: number;
  targetedBusy: number;
  /** routed to a node by a baseline policy (least-loaded, random, hash) */
  targetedOther: number;
  /** published to the shared queue by the ingress */
  toShared: number;
  /** pulled by a node (each delivery) */
  pulled: number;
  pulledAddressed: number;
  answered: number;
  /** refused by a node past maxHandbacks (or for a reason no other node changes) */
  refused: number;
  refusedByReason: Record<string, number>;
  handedBack: number;
  /** addressed work moved to the shared queue: the node was busy for localityWaitMs */
  forwarded: number;
  /** moved out of the addressed queue of a node that is down */
  rescued: number;
  /** deliveries after a node died with the invocation pulled (ack wait expired) */
  redelivered: number;
  heartbeats: number;
  rounds: number;
}

const C_DIE = 1;
const C_RESTART = 2;
const C_ACKWAIT = 3;
const C_PAUSE_END = 4;

/** The refusal of an invocation that waited in the broker past its deadline (as a node's queue deadline). */
const DEADLINE_REFUSAL: RejectCode = 'queue_timeout';

/** How an invocation is answered without a run: a node's or the broker's refusal, or given up after too many deliveries (the daemon's 503 daemon_restarted). */
export type BrokerRefusal = RejectCode | 'daemon_restarted';
const GIVE_UP_REFUSAL: BrokerRefusal = 'daemon_restarted';

export class ClusterBroker {
  readonly counters: BrokerCounters = {
    accepted: 0,
    targetedWarm: 0,
    targetedSnapshot: 0,
    targetedBusy: 0,
    targetedOther: 0,
    toShared: 0,
    pulled: 0,
    pulledAddressed: 0,
    answered: 0,
    refused: 0,
    refusedByReason: {},
    handedBack: 0,
    forwarded: 0,
    rescued: 0,
    redelivered: 0,
    heartbeats: 0,
    rounds: 0,
  };
  readonly n: number;
  readonly presence: PresenceIndex;
  /** the current round's time */
  now = 0;
  private readonly ports: NodePort[] = [];
  private readonly nameIdx = new Map<string, number>();
  private readonly rng: SeededRng;

  // per node
  private readonly alive: Uint8Array;
  private readonly inflight: Int32Array;
  private readonly reqSeq: Int32Array;
  private readonly pulled: Map<number, ClusterMsg>[] = [];
  private readonly addressed: Deque<ClusterMsg>[] = [];
  private readonly capShared: Int32Array;
  private readonly capAddr: Int32Array;
  private readonly slots: Int32Array;
  private readonly blockedSince: Float64Array;
  private readonly pauseUntil: Float64Array;
  private readonly phase: Float64Array;
  private readonly lastBeat: Float64Array;
  private readonly beatDue: Float64Array;
  private readonly beatVer: Uint32Array;
  private readonly diedAt: Float64Array;
  private readonly pubQueued: Int32Array;
  private readonly pubFree: Int32Array;
  /** bookings of the baseline policies (one balancer), reset at the node's next heartbeat */
  private readonly gBooked: Int32Array;
  private readonly inFifo: Uint8Array;
  private readonly isChanged: Uint8Array;
  private readonly isPending: Uint8Array;
  /**
   * Step 5 without a walk over every node with addressed work (issue 23 item 6): a node acts in a round only when it
   * may pull (its allowance is open: `ready`) or its locality wait is over (`waiting`, by that time); the others only
   * wait. Those that act do so in the order they joined `pending` (pendSeq), as a walk would have visited them.
   * liveAddr: messages in a node's addressed queue not refused at their deadline (0: it leaves `pending`).
   */
  private readonly pendSeq: Float64Array;
  private pendNext = 0;
  private readonly liveAddr: Int32Array;
  private readonly inReady: Uint8Array;
  private ready: number[] = [];
  private readonly waiting = new EventHeap();
  private readonly waitVer: Uint32Array;
  /** nodes whose addressed queue lost its last live message outside a round's step 5 (deadline, rescue) */
  private readonly emptied: number[] = [];
  private readonly acting: number[] = [];
  private readonly bySeq = (a: number, b: number): number => this.pendSeq[a]! - this.pendSeq[b]!;

  private changed: number[] = [];
  private readonly shared = new Deque<ClusterMsg>();
  private readonly fifo = new Deque<number>();
  private readonly beats = new EventHeap();
  private readonly events = new EventHeap();
  private readonly ackWaits: Array<{ node: number; msgs: ClusterMsg[]; /** when the node stopped holding them */ heldAt: number }> = [];
  private readonly down = new Set<number>();
  private nextScan: number;
  private readonly forwardEvery: number;
  private readonly scanEvery: number;
  private readonly books: (LocalityBook<number, number> | undefined)[] = [];
  private readonly chooser = new PlacementChooser<number>();
  /** nodes beat more often than they time out: a node that runs is live (no need to look at its heartbeat) */
  private readonly aliveIsLive: boolean;
  /** the least-loaded baseline's order of the nodes (kept only under that routing) */
  private readonly load: LoadIndex | undefined;
  private readonly pres = new Int32Array(4);
  private readonly isLive = (k: number): boolean => this.live(k);
  private readonly pullRule: PullRule;
  private msgSeq = 0;
  /** the next round addressed work needs (a pull, or a forward after the locality wait) */
  private wakeAt = Infinity;
  /** inside deliver(): refusals wait until the round's deliveries are done */
  private delivering = false;
  private readonly deferred: Array<{ k: number; req: number; reason: RejectCode }> = [];
  /** invocations in the broker's queues (shared or addressed) by id, and their deadlines (tag: the arming) */
  private readonly queuedMsgs = new Map<number, ClusterMsg>();
  private readonly deadlines = new DeadlineQueue();
  /** refused at their deadline but still in a queue */
  private stale = 0;
  private readonly deadlineMs: number;
  private readonly maxDeliveries: number;

  /** every outcome: the invocation and what happened (answered with its path, refused with its reason) */
  onOutcome: (m: ClusterMsg, now: number, refusal: BrokerRefusal | undefined) => void = () => undefined;
  /** every broker decision (the conformance test compares them) */
  onDecision: ((d: BrokerDecision) => void) | undefined;

  constructor(readonly o: BrokerOptions) {
    const n = (this.n = o.names.length);
    if (!(o.roundMs > 0) || o.heartbeatMs % o.roundMs !== 0) throw new Error(`cluster: heartbeatMs (${o.heartbeatMs}) must be a multiple of the broker round (${o.roundMs} ms)`);
    o.names.forEach((name, k) => this.nameIdx.set(name, k));
    this.rng = createRng(o.seed);
    this.pullRule = o.pullRule ?? DEFAULT_PULL_RULE;
    this.presence = new PresenceIndex(n);
    this.alive = new Uint8Array(n).fill(1);
    this.inflight = new Int32Array(n);
    this.reqSeq = new Int32Array(n);
    this.capShared = new Int32Array(n);
    this.capAddr = new Int32Array(n);
    this.slots = new Int32Array(n);
    this.blockedSince = new Float64Array(n).fill(NaN);
    this.pauseUntil = new Float64Array(n);
    this.phase = new Float64Array(n);
    this.lastBeat = new Float64Array(n);
    this.beatDue = new Float64Array(n).fill(Infinity);
    this.beatVer = new Uint32Array(n);
    this.diedAt = new Float64Array(n).fill(Infinity);
    this.pubQueued = new Int32Array(n);
    this.pubFree = new Int32Array(n);
    this.gBooked = new Int32Array(n);
    this.inFifo = new Uint8Array(n);
    this.isChanged = new Uint8Array(n);
    this.isPending = new Uint8Array(n);
    this.pendSeq = new Float64Array(n);
    this.liveAddr = new Int32Array(n);
    this.inReady = new Uint8Array(n);
    this.waitVer = new Uint32Array(n);
    this.forwardEvery = forwarderEveryMs(o.localityWaitMs);
    this.scanEvery = this.forwardEvery * DEAD_SCAN_TICKS;
    this.nextScan = this.scanEvery;
    this.load = o.routing === 'least-loaded' ? new LoadIndex(n) : undefined;
    this.aliveIsLive = o.heartbeatMs <= o.nodeTimeoutMs;
    this.deadlineMs = o.queueDeadlineMs ?? Infinity;
    this.maxDeliveries = o.maxDeliveries ?? clusterConfigSchema.parse({}).maxDeliveries;
    for (let k = 0; k < n; k++) {
      this.pulled.push(new Map());
      this.addressed.push(new Deque());
      // a daemon beats when it starts and then every heartbeatMs: the phases differ
      // (on the round grid: a beat at a tick sees what happened up to that round, in the simulator and in the test's real pools alike)
      this.phase[k] = Math.floor((this.rng.next() * o.heartbeatMs) / o.roundMs) * o.roundMs;
      this.lastBeat[k] = 0;
    }
  }

  /** Attach node k's port (before the first round). */
  attach(k: number, port: NodePort): void {
    this.ports[k] = port;
    this.markChanged(k, 0);
  }

  // ---- what the nodes report ------------------------------------------------------

  /** Node k's state changed (an instance started, stopped, became idle or busy). */
  markChanged(k: number, t: number): void {
    if (this.isChanged[k] === 0) {
      this.isChanged[k] = 1;
      this.changed.push(k);
    }
    if (this.beatDue[k] === Infinity && this.alive[k]) this.scheduleBeat(k, this.nextTick(k, t));
  }

  /** Node k's request `req` got an instance (fresh: one whose start it waited for). */
  assigned(k: number, req: number, fresh: boolean, path: 'cold' | 'restore'): void {
    const m = this.pulled[k]!.get(req);
    if (m) m.path = !fresh ? 0 : path === 'restore' ? 1 : 2;
  }

  /** Node k answered request `req` (its run ended): the outcome is published, then the message acknowledged. */
  done(k: number, req: number, t: number): void {
    const m = this.pulled[k]!.get(req);
    if (!m) return;
    this.pulled[k]!.delete(req);
    this.inflight[k]!--;
    this.counters.answered++;
    this.settled(k, t);
    this.onOutcome(m, t, undefined);
  }

  /** Node k refused request `req`: handed back to the shared queue, or the refusal is the answer. */
  refused(k: number, req: number, reason: RejectCode, t: number): void {
    if (this.delivering) {
      // refused as it arrived: the daemon's Sink learns it after the pull that brought it (the Dispatcher is asynchronous)
      this.deferred.push({ k, req, reason });
      return;
    }
    const m = this.pulled[k]!.get(req);
    if (!m) return;
    this.pulled[k]!.delete(req);
    this.inflight[k]!--;
    if (reason !== 'start_failed' && reason !== 'init_failed' && handsBack(reason, m.handbacks, this.o.maxHandbacks, t, m.deadline)) {
      m.handbacks++;
      m.target = -1;
      this.shared.push(m);
      this.enqueued(m);
      this.counters.handedBack++;
      // it refused what it pulled: it leaves the shared queue to the others a moment
      this.pauseUntil[k] = t + HANDBACK_PAUSE_MS;
      this.events.push(t + HANDBACK_PAUSE_MS, k * 8 + C_PAUSE_END, 0);
      this.onDecision?.({ t, kind: 'handback', id: m.id, node: this.o.names[k]! });
      this.settled(k, t);
      return;
    }
    this.counters.refused++;
    this.counters.refusedByReason[reason] = (this.counters.refusedByReason[reason] ?? 0) + 1;
    this.settled(k, t);
    this.onOutcome(m, t, reason);
  }

  /** An outcome was published: the node's heartbeat follows soon (Heartbeat.poke). */
  private settled(k: number, t: number): void {
    this.markChanged(k, t);
    // the last beat, periodic ones included (Heartbeat.poke waits from the last one, whatever made it)
    const due = Math.max(t, this.beatAt(k, t) + HEARTBEAT_MIN_GAP_MS);
    if (due < this.beatDue[k]! && this.alive[k]) this.scheduleBeat(k, due);
  }

  // ---- failures ---------------------------------------------------------------------

  /** Node k dies at `at` (its VMs and everything it pulled are lost); it starts again after `restartAfterMs` if given. */
  fail(k: number, at: number, restartAfterMs?: number): void {
    this.events.push(at, k * 8 + C_DIE, 0);
    if (restartAfterMs !== undefined) this.events.push(at + restartAfterMs, k * 8 + C_RESTART, 0);
  }

  // ---- the ingress ------------------------------------------------------------------

  /** An invocation of `fn` accepted at `arrival` by node `ingress`: routed now (at a round), published. */
  accept(fn: number, arrival: number, ingress: number): ClusterMsg {
    const m: ClusterMsg = { id: ++this.msgSeq, fn, arrival, ingress, handbacks: 0, redeliveries: 0, target: -1, via: 'shared', path: -1, deadline: queueDeadline(arrival, this.deadlineMs) };
    this.counters.accepted++;
    this.enqueued(m);
    const k = this.route(m);
    if (k < 0) {
      this.counters.toShared++;
      this.shared.push(m);
      this.onDecision?.({ t: this.now, kind: 'route', id: m.id, fn: this.o.fnNames[fn]!, ingress: this.o.names[ingress]!, to: 'shared' });
      return m;
    }
    m.target = k;
    this.addressed[k]!.push(m);
    this.liveAddr[k]!++;
    this.notePending(k);
    return m;
  }

  /** A live node at random (the ingress of an arrival; -1 when every node is down). */
  randomLiveNode(): number {
    for (let tries = 0; tries < 4 * this.n; tries++) {
      const k = this.rng.int(this.n);
      if (this.alive[k]) return k;
    }
    for (let k = 0; k < this.n; k++) if (this.alive[k]) return k;
    return -1;
  }

  private route(m: ClusterMsg): number {
    const o = this.o;
    const fnName = o.fnNames[m.fn]!;
    let k = -1;
    let why = '';
    switch (o.routing) {
      case 'shared':
        return -1;
      case 'locality': {
        const book = (this.books[m.ingress] ??= new LocalityBook<number, number>((node) => this.beatAt(node, this.now)));
        const warm = warmChoice(this.presence, m.fn, m.ingress, book, this.isLive, this.pubQueued);
        if (warm >= 0) {
          k = warm;
          why = 'warm';
          this.counters.targetedWarm++;
          book.book(k, m.fn, this.now);
          break;
        }
        // no node with an idle instance: every node that has the function, for a snapshot or a busy instance
        const c = this.chooser.reset(m.ingress);
        const cands = this.presence.candidates(m.fn);
        for (let j = 0; j < cands.length; j++) {
          const e = cands[j]!;
          const node = e.node;
          if (!this.live(node)) continue;
          const b = book.bookedAt(node);
          c.offer(node, this.pubQueued[node]!, this.pubFree[node]!, e, b === undefined ? 0 : b.count(m.fn), b === undefined ? 0 : b.total);
        }
        const node = c.node;
        if (node === undefined) return -1;
        k = node;
        why = c.why!;
        if (why === 'warm') this.counters.targetedWarm++;
        else if (why === 'snapshot') this.counters.targetedSnapshot++;
        else this.counters.targetedBusy++;
        book.book(node, m.fn, this.now);
        break;
      }
      case 'least-loaded': {
        k = this.load!.best((j) => this.live(j));
        if (k < 0) return -1;
        why = 'least-loaded';
        break;
      }
      case 'random': {
        for (let tries = 0; tries < 4 * this.n && k < 0; tries++) {
          const j = this.rng.int(this.n);
          if (this.live(j)) k = j;
        }
        if (k < 0) return -1;
        why = 'random';
        break;
      }
      case 'hash': {
        // OpenWhisk's home invoker: hash(function) mod N, then a fixed step through the
        // others to the first with room (the controller's own bookings count)
        const h = hashName(fnName);
        const step = coprimeStep(h, this.n);
        for (let i = 0, j = h % this.n; i < this.n; i++, j = (j + step) % this.n) {
          if (this.live(j) && this.pubFree[j]! - this.gBooked[j]! > 0) {
            k = j;
            break;
          }
        }
        if (k < 0) return -1;
        why = 'hash';
        break;
      }
    }
    if (o.routing !== 'locality') {
      this.counters.targetedOther++;
      this.gBooked[k]!++;
      this.load?.update(k, this.pubFree[k]! - this.gBooked[k]!, this.pubQueued[k]!);
    }
    this.onDecision?.({ t: this.now, kind: 'route', id: m.id, fn: fnName, ingress: o.names[m.ingress]!, to: o.names[k]!, why });
    return k;
  }

  // ---- heartbeats ---------------------------------------------------------------------

  private nextTick(k: number, t: number): number {
    const hb = this.o.heartbeatMs;
    const ph = this.phase[k]!;
    return t <= ph ? ph : ph + Math.ceil((t - ph) / hb) * hb;
  }

  /** When node k's latest heartbeat as of `t` was made (its periodic beats need no event: they change nothing but the time). */
  beatAt(k: number, t: number): number {
    const hb = this.o.heartbeatMs;
    const ph = this.phase[k]!;
    const until = Math.min(t, this.diedAt[k]!);
    const tick = until < ph ? 0 : ph + Math.floor((until - ph) / hb) * hb;
    return Math.max(this.lastBeat[k]!, tick);
  }

  live(k: number): boolean {
    if (this.alive[k] && this.aliveIsLive) return true;
    return isLive({ at: this.beatAt(k, this.now) }, this.now, this.o.nodeTimeoutMs);
  }

  private scheduleBeat(k: number, at: number): void {
    this.beatDue[k] = at;
    this.beatVer[k] = (this.beatVer[k]! + 1) >>> 0;
    this.beats.push(at, k, this.beatVer[k]);
  }

  private beat(k: number, T: number): void {
    const port = this.ports[k]!;
    const p = this.pres;
    for (const fn of port.takeDirty()) {
      port.presence(fn, p);
      this.presence.set(k, fn, p[0]!, p[1]!, p[2]!, p[3] !== 0);
    }
    const s = port.state();
    this.pubQueued[k] = s.queued;
    this.pubFree[k] = sharedAllowance(s, this.inflight[k]!, this.o.maxInFlight, this.pullRule);
    this.gBooked[k] = 0;
    this.load?.update(k, this.pubFree[k], s.queued);
    this.lastBeat[k] = T;
    this.beatDue[k] = Infinity;
    this.counters.heartbeats++;
  }

  // ---- the round ------------------------------------------------------------------------

  /**
   * Earliest time the broker has something to do on its own: cluster events,
   * heartbeats, nodes to read again, addressed work a node may pull or forward.
   * Work that waits for a node to change needs no round until a node event.
   */
  nextWork(): number {
    let t = Math.min(this.events.peekTime(), this.beats.peekTime(), this.wakeAt, this.nextDeadline());
    if (this.changed.length > 0) t = Math.min(t, this.now + this.o.roundMs);
    if (this.down.size > 0) t = Math.min(t, this.nextScan);
    return t;
  }

  /** Steps 1–2 of a round at T: cluster events and heartbeats (the caller then accepts the round's arrivals and calls deliver). */
  begin(T: number): void {
    this.now = T;
    this.counters.rounds++;
    const ev = this.events;
    while (ev.size > 0 && ev.peekTime() <= T) {
      ev.pop();
      const k = Math.floor(ev.topPayload / 8);
      const kind = ev.topPayload % 8;
      if (kind === C_DIE) this.die(k, ev.topTime);
      else if (kind === C_RESTART) this.restart(k, T);
      else if (kind === C_ACKWAIT) this.ackWaitExpired(ev.topTag);
      else if (kind === C_PAUSE_END) this.markChanged(k, T);
    }
    const b = this.beats;
    while (b.size > 0 && b.peekTime() <= T) {
      b.pop();
      const k = b.topPayload;
      if (b.topTag !== this.beatVer[k] || !this.alive[k]) continue;
      this.beat(k, T);
    }
    if (this.down.size > 0 && T >= this.nextScan) {
      this.nextScan = Math.floor(T / this.scanEvery) * this.scanEvery + this.scanEvery;
      this.rescue();
    }
    this.expire(T);
  }

  /** Steps 4–6 of a round at T: read the nodes that changed, then deliver. */
  deliver(T: number): void {
    this.delivering = true;
    try {
      this.deliverRound(T);
    } finally {
      this.delivering = false;
    }
    for (const d of this.deferred) this.refused(d.k, d.req, d.reason, T);
    this.deferred.length = 0;
  }

  private deliverRound(T: number): void {
    const o = this.o;
    // 4. pull state of the nodes that changed (one read per round)
    const changed = this.changed;
    this.changed = [];
    for (const k of changed) {
      this.isChanged[k] = 0;
      if (!this.alive[k]) continue;
      const s = this.ports[k]!.state();
      this.slots[k] = o.maxInFlight === 'auto' ? slotsOfState(s) : Math.min(slotsOfState(s), o.maxInFlight);
      this.capShared[k] = sharedAllowance(s, this.inflight[k]!, o.maxInFlight, this.pullRule);
      this.capAddr[k] = addressedAllowance(s, this.inflight[k]!, o.maxInFlight, this.pullRule);
      if (this.capAddr[k] === 0) {
        if (Number.isNaN(this.blockedSince[k]!)) this.blockedSince[k] = T;
      } else this.blockedSince[k] = NaN;
      if (this.capShared[k] > 0 && !this.inFifo[k]) {
        this.inFifo[k] = 1;
        this.fifo.push(k);
      }
      if (this.isPending[k]) this.classify(k, T);
    }
    // 5. addressed queues: one message per node per round, or forwarded after the locality wait
    this.wakeAt = Infinity;
    for (const k of this.emptied) if (this.isPending[k] && this.liveAddr[k] === 0) this.leavePending(k);
    this.emptied.length = 0;
    const acting = this.acting;
    for (const k of this.ready) {
      if (this.inReady[k]) acting.push(k);
      this.inReady[k] = 0;
    }
    this.ready.length = 0;
    const wait = this.waiting;
    while (wait.size > 0 && wait.peekTime() <= T) {
      wait.pop();
      const k = wait.topPayload;
      if (wait.topTag === this.waitVer[k]) {
        this.waitVer[k] = (this.waitVer[k] + 1) >>> 0;
        acting.push(k);
      }
    }
    if (acting.length > 1) acting.sort(this.bySeq);
    for (let i = 0; i < acting.length; i++) {
      const k = acting[i]!;
      const q = this.addressed[k]!;
      this.purge(q);
      if (this.alive[k] && this.capAddr[k]! > 0 && q.size > 0) {
        this.liveAddr[k]!--;
        this.pull(k, q.shift()!, 'addressed', T);
        this.capAddr[k] = this.inflight[k]! < this.slots[k]! + 1 ? 1 : 0;
        if (this.capAddr[k] === 0 && Number.isNaN(this.blockedSince[k]!)) this.blockedSince[k] = T;
      } else if (this.alive[k] && q.size > 0 && this.capAddr[k] === 0 && T >= this.forwardAt(k)) {
        // busy for localityWaitMs: what waits here goes to the shared queue (64 per forwarder tick)
        for (let j = 0; j < 64 && this.purge(q) > 0; j++) {
          this.liveAddr[k]!--;
          this.toShared(q.shift()!, k, 'busy');
        }
      }
      if (this.liveAddr[k] === 0) this.leavePending(k);
      else this.classify(k, T);
    }
    acting.length = 0;
    if (this.ready.length > 0) this.wakeAt = T + o.roundMs;
    while (wait.size > 0 && wait.peekTag() !== this.waitVer[wait.peekPayload()]) wait.pop();
    if (wait.size > 0) this.wakeAt = Math.min(this.wakeAt, Math.max(T + o.roundMs, wait.peekTime()));
    // 6. the shared queue, round robin over the pull requests in the order they were made
    const fifo = this.fifo;
    while (this.purge(this.shared) > 0 && fifo.size > 0) {
      const k = fifo.shift()!;
      if (!this.alive[k] || this.capShared[k]! <= 0 || T < this.pauseUntil[k]!) {
        this.inFifo[k] = 0;
        continue;
      }
      this.pull(k, this.shared.shift()!, 'shared', T);
      if (--this.capShared[k]! > 0) fifo.push(k);
      else this.inFifo[k] = 0;
    }
  }

  /** The first forwarder tick at which node k has been blocked for localityWaitMs. */
  private forwardAt(k: number): number {
    const due = this.blockedSince[k]! + this.o.localityWaitMs;
    const ph = this.phase[k]! % this.forwardEvery;
    return due <= ph ? ph : ph + Math.ceil((due - ph) / this.forwardEvery) * this.forwardEvery;
  }

  private pull(k: number, m: ClusterMsg, via: 'shared' | 'addressed', T: number): void {
    this.queuedMsgs.delete(m.id);
    m.via = via;
    if (m.redeliveries + 1 > this.maxDeliveries) {
      // a redelivery loop (every node that took it died): the puller answers it without a run (pullVerdict's give_up)
      this.counters.pulled++;
      if (via === 'addressed') this.counters.pulledAddressed++;
      this.counters.refused++;
      this.counters.refusedByReason[GIVE_UP_REFUSAL] = (this.counters.refusedByReason[GIVE_UP_REFUSAL] ?? 0) + 1;
      this.onDecision?.({ t: T, kind: 'give_up', id: m.id, node: this.o.names[k]! });
      this.onOutcome(m, T, GIVE_UP_REFUSAL);
      return;
    }
    this.inflight[k]!++;
    this.capShared[k] = Math.max(0, this.capShared[k]! - 1);
    const req = ++this.reqSeq[k]!;
    this.pulled[k]!.set(req, m);
    this.counters.pulled++;
    if (via === 'addressed') this.counters.pulledAddressed++;
    this.onDecision?.({ t: T, kind: 'deliver', id: m.id, node: this.o.names[k]!, via });
    this.markChanged(k, T);
    this.ports[k]!.deliver(m.fn, req, T);
  }

  private toShared(m: ClusterMsg, from: number, why: 'busy' | 'down'): void {
    m.target = -1;
    this.shared.push(m);
    if (why === 'busy') this.counters.forwarded++;
    else this.counters.rescued++;
    this.onDecision?.({ t: this.now, kind: 'forward', id: m.id, node: this.o.names[from]!, why });
  }

  private notePending(k: number): void {
    if (this.isPending[k] === 0) {
      this.isPending[k] = 1;
      this.pendSeq[k] = this.pendNext++;
      // where it stands is known from its last read (step 4), or at the next one
      this.classify(k, this.now);
    }
  }

  /** A node with live addressed work: it pulls every round while its allowance is open, else it waits for its forwarder tick. */
  private classify(k: number, T: number): void {
    this.waitVer[k] = (this.waitVer[k]! + 1) >>> 0;
    this.inReady[k] = 0;
    if (!this.alive[k]) return;
    if (this.capAddr[k]! > 0) {
      this.inReady[k] = 1;
      this.ready.push(k);
    } else if (!Number.isNaN(this.blockedSince[k]!)) this.waiting.push(Math.max(T, this.forwardAt(k)), k, this.waitVer[k]);
    // (not read since it started: step 4 reads it this round)
  }

  private leavePending(k: number): void {
    this.isPending[k] = 0;
    this.inReady[k] = 0;
    this.waitVer[k] = (this.waitVer[k]! + 1) >>> 0;
  }

  // ---- failures -----------------------------------------------------------------------------

  private die(k: number, at: number): void {
    if (!this.alive[k]) return;
    this.alive[k] = 0;
    this.diedAt[k] = at;
    // a dead node neither pulls nor forwards: it waits in `pending` (no round needed) until its queue is rescued
    this.inReady[k] = 0;
    this.waitVer[k] = (this.waitVer[k]! + 1) >>> 0;
    this.down.add(k);
    this.ports[k]!.kill(at);
    // what it pulled and never answered comes back after the ack wait
    const msgs = [...this.pulled[k]!.values()];
    this.pulled[k]!.clear();
    this.inflight[k] = 0;
    if (msgs.length > 0) {
      this.ackWaits.push({ node: k, msgs, heldAt: at });
      this.events.push(at + this.o.ackWaitMs, k * 8 + C_ACKWAIT, this.ackWaits.length - 1);
    }
    this.onDecision?.({ t: at, kind: 'die', node: this.o.names[k]! });
  }

  private ackWaitExpired(i: number): void {
    const { node, msgs, heldAt } = this.ackWaits[i]!;
    this.ackWaits[i] = { node, msgs: [], heldAt };
    // JetStream redelivers: a shared message to whoever pulls next, an addressed one to its node's consumer
    for (let j = msgs.length - 1; j >= 0; j--) {
      const m = msgs[j]!;
      m.redeliveries++;
      this.counters.redelivered++;
      // the node that had it died: it waits again from its redelivery, for as long as when it was accepted (the daemon's rule)
      m.deadline = redeliveryDeadline(heldAt, this.o.ackWaitMs, this.deadlineMs);
      this.enqueued(m);
      if (m.via === 'shared') this.shared.unshift(m);
      else {
        this.addressed[node]!.unshift(m);
        this.liveAddr[node]!++;
        this.notePending(node);
      }
    }
  }

  private restart(k: number, T: number): void {
    if (this.alive[k]) return;
    this.alive[k] = 1;
    this.diedAt[k] = Infinity;
    this.down.delete(k);
    this.ports[k]!.restart(T);
    this.presence.clearNode(k);
    this.inflight[k] = 0;
    this.blockedSince[k] = NaN;
    // a daemon beats as it starts
    this.phase[k] = T % this.o.heartbeatMs;
    this.markChanged(k, T);
    this.scheduleBeat(k, T);
    this.onDecision?.({ t: T, kind: 'restart', node: this.o.names[k]! });
  }

  /** The other nodes' forwarders move the addressed queues of nodes that are down to the shared queue. */
  private rescue(): void {
    for (const k of this.down) {
      if (this.live(k)) continue; // not yet seen as down
      const q = this.addressed[k]!;
      while (this.purge(q) > 0) {
        this.liveAddr[k]!--;
        this.toShared(q.shift()!, k, 'down');
      }
      if (this.liveAddr[k] === 0) this.emptied.push(k);
    }
  }

  // ---- state for the shell ------------------------------------------------------------------

  get sharedLength(): number {
    return this.shared.size;
  }

  // ---- deadlines ----------------------------------------------------------------------------

  /** m (accepted, handed back or redelivered) waits in a queue of the broker until its deadline. */
  private enqueued(m: ClusterMsg): void {
    this.queuedMsgs.set(m.id, m);
    if (m.deadline < Infinity) this.deadlines.push(m.deadline, m.id, m.redeliveries);
  }

  /** The next deadline of an invocation still queued (entries of those pulled since are dropped). */
  private nextDeadline(): number {
    const h = this.deadlines;
    while (h.size > 0) {
      const m = this.queuedMsgs.get(h.peekPayload());
      if (m && m.deadline === h.peekTime() && m.redeliveries === h.peekTag()) return m.deadline;
      h.pop();
    }
    return Infinity;
  }

  /** Refuse what is still queued at its deadline (it stays in its queue, skipped: purge). */
  private expire(T: number): void {
    const h = this.deadlines;
    while (h.size > 0 && pastDeadline(T, h.peekTime())) {
      h.pop();
      const m = this.queuedMsgs.get(h.topPayload);
      if (!m || m.deadline !== h.topTime || m.redeliveries !== h.topTag) continue;
      this.queuedMsgs.delete(m.id);
      m.expired = true;
      this.stale++;
      if (m.target >= 0 && --this.liveAddr[m.target]! === 0) this.emptied.push(m.target);
      this.counters.refused++;
      this.counters.refusedByReason[DEADLINE_REFUSAL] = (this.counters.refusedByReason[DEADLINE_REFUSAL] ?? 0) + 1;
      this.onDecision?.({ t: T, kind: 'expire', id: m.id });
      this.onOutcome(m, T, DEADLINE_REFUSAL);
    }
  }

  /** Drop the refused ones at the head of q; what is left (size). */
  private purge(q: Deque<ClusterMsg>): number {
    while (q.size > 0 && q.peek()!.expired) {
      q.shift();
      this.stale--;
    }
    return q.size;
  }

  /** Invocations still somewhere: queued in the broker or pulled and not answered. */
  get outstanding(): number {
    let n = this.shared.size;
    for (let k = 0; k < this.n; k++) n += this.addressed[k]!.size + this.inflight[k]!;
    for (const a of this.ackWaits) n += a.msgs.length;
    return n - this.stale;
  }

  isAlive(k: number): boolean {
    return this.alive[k] === 1;
  }

}

/** The broker's decisions, as the conformance test compares them. */
export type BrokerDecision =
  | { t: number; kind: 'route'; id: number; fn: string; ingress: string; to: string; why?: string }
  | { t: number; kind: 'deliver'; id: number; node: string; via: 'shared' | 'addressed' }
  | { t: number; kind: 'handback'; id: number; node: string }
  /** delivered more than maxDeliveries times: answered daemon_restarted by the node that pulled it, not run */
  | { t: number; kind: 'give_up'; id: number; node: string }
  | { t: number; kind: 'forward'; id: number; node: string; why: 'busy' | 'down' }
  /** refused in the broker at its deadline */
  | { t: number; kind: 'expire'; id: number }
  | { t: number; kind: 'die' | 'restart'; node: string };

/** FNV-1a of a function name (OpenWhisk hashes namespace and action name). */
export function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A step size co-prime with n, chosen by the hash (OpenWhisk's stepSizes). */
export function coprimeStep(h: number, n: number): number {
  if (n <= 2) return 1;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  for (let s = 1 + (h % (n - 1)), i = 0; i < n; i++, s = 1 + (s % (n - 1))) if (gcd(s, n) === 1) return s;
  return 1;
}
