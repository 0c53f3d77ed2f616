// Time as a dependency. Everything that schedules or stamps (VmPool, Workers,
// Dispatcher, PerfManager, the fake driver of unit tests) takes a Clock, so the
// same actors run on the real clock in the daemon and on a virtual clock in the
// conformance test that checks them against the simulator decision for decision.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Epoch milliseconds, sub-millisecond resolution. */
  now(): number;
  /** Run `fn` after `ms` (never synchronously). */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Resolves after `ms`. */
  sleep(ms: number): Promise<void>;
  /**
   * The host's wall clock, which may step (NTP, an operator); only for what must
   * agree with it, e.g. a restored guest's clock. Absent: `now()`.
   */
  wallNow?(): number;
}

/**
 * Epoch-like milliseconds that never step: performance.now() anchored at the
 * process's time origin. Deadlines and stage stamps use it, not Date.now(): a
 * wall clock stepped back (NTP, an operator) would stretch a deadline by the
 * step, one stepped forward would expire it at once, and stamps taken from both
 * clocks would disagree by the step.
 */
export const monoNow = (): number => performance.timeOrigin + performance.now();

/** The real clock: performance.now() anchored at the process's time origin (monotonic within the process). */
export const realClock: Clock = {
  now: monoNow,
  wallNow: () => Date.now(),
  setTimer(ms, fn) {
    // setTimeout's limit is 2^31-1 ms; longer timers fire early and re-check (callers compare times)
    const t = setTimeout(fn, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
  sleep: (ms) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms))),
};

interface VTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to. `run()` alternates between letting every
 * pending promise and immediate settle and firing the earliest timer, so time
 * advances only while the whole actor system is quiescent: a run is deterministic
 * (ties fire in the order the timers were set).
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: VTimer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer: VTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimer(ms, r));
  }

  /** Pending (not cancelled) timers. */
  get pending(): number {
    return this.heap.filter((t) => !t.cancelled).length;
  }

  /** Let every promise chain and immediate that is ready run to completion. */
  async settle(): Promise<void> {
    // microtasks drain before each macrotask; a few macrotask turns catch setImmediate chains
    for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
  }

  /**
   * Fire timers in time order until none is due before `until` (or none is left), settling in between.
   * `idle`: time moves on only once it says so (e.g. no actor has a message waiting or a handler awaiting
   * real I/O: a copy, a child process), waiting in real time up to `idleWaitMs` each time.
   */
  async run(until = Infinity, opts: { maxTimers?: number; idle?: () => boolean; idleWaitMs?: number } = {}): Promise<void> {
    let fired = 0;
    const max = opts.maxTimers ?? 10_000_000;
    for (;;) {
      await this.settle();
      if (opts.idle) await this.untilIdle(opts.idle, opts.idleWaitMs ?? 60_000);
      const next = this.pop(until);
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      next.fn();
      if (++fired >= max) throw new Error(`VirtualClock: more than ${max} timers fired`);
    }
    if (Number.isFinite(until)) this.t = Math.max(this.t, until);
  }

  private async untilIdle(idle: () => boolean, maxMs: number): Promise<void> {
    const t0 = performance.now();
    while (!idle()) {
      if (performance.now() - t0 > maxMs) throw new Error(`VirtualClock: not idle after ${maxMs} ms of real time`);
      await new Promise<void>((r) => setTimeout(r, 1));
      await this.settle();
    }
  }

  private pop(until: number): VTimer | undefined {
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > until) return undefined;
      const last = this.heap.pop()!;
      if (this.heap.length > 0) {
        this.heap[0] = last;
        this.down(0);
      }
      if (!top.cancelled) return top;
    }
  }

  private less(a: VTimer, b: VTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(x: VTimer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
