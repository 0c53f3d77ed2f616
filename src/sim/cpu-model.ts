// The node's CPU in the simulator: boots and restores are CPU work that shares
// the cores with the VMs that run and idle (processor sharing). With D units of
// demand on C cores every start progresses at min(1, C / D) of a core, so starts
// stretch when several run at once or when many VMs take their share: what the
// real node showed (cold boots of 5-45 s against 3.3 s on a quiet node). Runs are
// not stretched (a run's CPU share only slows starts down).

export interface CpuStart {
  /** CPU work left (ms of one core) */
  remaining: number;
  /** wall time of the start that is not CPU work (ms), added at its end */
  fixedMs: number;
  /** bumped whenever its finish time moves: the simulator ignores READY events of an older version */
  version: number;
  finishAt: number;
  /** when its CPU work was done (its fixed part then runs out, unaffected by sharing) */
  cpuDoneAt: number;
  pos: number;
  /** whose start it is (the simulator's instance) */
  owner: unknown;
}

export class CpuModel {
  private readonly active: CpuStart[] = [];
  private rate = 1;
  private lastT = 0;
  private background = 0;

  constructor(
    readonly cores: number,
    /** called with every start whose finish time changed */
    private readonly reschedule: (s: CpuStart) => void,
  ) {
    if (!(cores > 0)) throw new Error(`cpu model: cores must be > 0, got ${cores}`);
  }

  get startsRunning(): number {
    return this.active.length;
  }

  /** A start begins: returns it with its finish time under the current sharing (and re-times the others). */
  begin(cpuMs: number, wallMs: number, now: number, owner: unknown, background: number): CpuStart {
    this.progress(now);
    this.background = background;
    const s: CpuStart = { remaining: cpuMs, fixedMs: Math.max(0, wallMs - cpuMs), version: 0, finishAt: 0, cpuDoneAt: now, pos: this.active.length, owner };
    this.active.push(s);
    this.retime(now, s);
    return s;
  }

  /** A start finished (or was abandoned). */
  end(s: CpuStart, now: number): void {
    if (s.pos < 0) return;
    this.progress(now);
    const a = this.active;
    const last = a.pop()!;
    if (last !== s) {
      a[s.pos] = last;
      last.pos = s.pos;
    }
    s.pos = -1;
    this.retime(now, undefined);
  }

  /** The CPU demand of running and idle VMs changed (fractions of a core). */
  setBackground(demand: number, now: number): void {
    if (demand === this.background) return;
    if (this.active.length === 0) {
      this.background = demand;
      return;
    }
    const next = this.rateFor(this.active.length, demand);
    this.background = demand;
    if (next === this.rate) return;
    this.progress(now);
    this.retime(now, undefined);
  }

  private rateFor(n: number, background: number): number {
    const d = n + background;
    return d <= this.cores ? 1 : this.cores / d;
  }

  private progress(now: number): void {
    const dt = now - this.lastT;
    this.lastT = now;
    if (dt <= 0) return;
    const done = dt * this.rate;
    for (const s of this.active) {
      if (s.remaining <= 0) continue;
      if (s.remaining <= done) {
        s.cpuDoneAt = this.lastT - dt + s.remaining / this.rate;
        s.remaining = 0;
      } else s.remaining -= done;
    }
  }

  private retime(now: number, added: CpuStart | undefined): void {
    this.rate = this.rateFor(this.active.length, this.background);
    for (const s of this.active) {
      // a start in its fixed tail still counts as demand (an approximation: the tail is short)
      const at = (s.remaining > 0 ? now + s.remaining / this.rate : s.cpuDoneAt) + s.fixedMs;
      if (s !== added && at === s.finishAt) continue;
      s.finishAt = at;
      s.version = (s.version + 1) >>> 0;
      this.reschedule(s);
    }
  }
}
