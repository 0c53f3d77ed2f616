// The node's CPU in the simulator: boots, restores and CPU-bound runs are jobs
// that share the cores with each other and with the idle VMs (processor
// sharing). A job has a weight (the cores it would use alone), CPU work (ms of
// its own time that need the CPU) and a fixed part that does not (waiting for
// I/O or timers). What the simulator passes (src/sim/simulator.ts): a start is
// a job of weight 1 whose CPU work is the profile's cold/restore CPU time and
// whose fixed part is the rest of its wall time; a run is a job of weight 1 whose
// CPU work is the invocation's own cost on the node plus cpuShare × its service
// time, with no fixed part (its waiting part follows as a plain timer). With
// demand D = Σ weights + the idle VMs' share on C cores, every job's CPU part
// progresses at min(1, C / D) of its own speed: concurrent starts and busy
// CPU-bound functions stretch each other, and a node full of idle VMs boots more
// slowly — what the real node showed (cold boots of 5-45 s against 3.3 s when quiet).

export interface CpuJob {
  /** CPU work left (ms of the job's own time, at full speed) */
  remaining: number;
  /** the part of the job that does not need the CPU (ms), added at its end */
  fixedMs: number;
  /** cores it takes at full speed */
  weight: number;
  /** bumped whenever its finish time moves: events of an older version are ignored */
  version: number;
  finishAt: number;
  /** when its CPU work was done (its fixed part then runs out, unaffected by sharing) */
  cpuDoneAt: number;
  pos: number;
  /** whose job it is (the simulator's instance) and what it is */
  owner: unknown;
  kind: number;
}

export class CpuModel {
  private readonly active: CpuJob[] = [];
  private rate = 1;
  private lastT = 0;
  private background = 0;
  private weights = 0;

  constructor(
    readonly cores: number,
    /** called with every job whose finish time changed (including a new one) */
    private readonly reschedule: (j: CpuJob) => void,
  ) {
    if (!(cores > 0)) throw new Error(`cpu model: cores must be > 0, got ${cores}`);
  }

  get jobs(): number {
    return this.active.length;
  }

  /** A job begins; `wallMs` is its duration alone on the node, `cpuMs` the part of it that needs the CPU. */
  begin(cpuMs: number, wallMs: number, weight: number, now: number, owner: unknown, kind: number, background: number): CpuJob {
    this.progress(now);
    this.background = background;
    const j: CpuJob = { remaining: cpuMs, fixedMs: Math.max(0, wallMs - cpuMs), weight, version: 0, finishAt: 0, cpuDoneAt: now, pos: this.active.length, owner, kind };
    this.active.push(j);
    this.weights += weight;
    this.retime(now, j);
    return j;
  }

  /** A job finished (or was abandoned). */
  end(j: CpuJob, now: number): void {
    if (j.pos < 0) return;
    this.progress(now);
    const a = this.active;
    const last = a.pop()!;
    if (last !== j) {
      a[j.pos] = last;
      last.pos = j.pos;
    }
    j.pos = -1;
    this.weights -= j.weight;
    if (this.active.length === 0) this.weights = 0;
    this.retime(now, undefined);
  }

  /** The CPU demand outside the jobs (idle VMs) changed (fractions of a core). */
  setBackground(demand: number, now: number): void {
    if (demand === this.background) return;
    if (this.active.length === 0) {
      this.background = demand;
      return;
    }
    const next = this.rateFor(this.weights, demand);
    this.background = demand;
    if (next === this.rate) return;
    this.progress(now);
    this.retime(now, undefined);
  }

  private rateFor(weights: number, background: number): number {
    const d = weights + background;
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

  private retime(now: number, added: CpuJob | undefined): void {
    this.rate = this.rateFor(this.weights, this.background);
    for (const s of this.active) {
      // a job in its fixed tail still counts as demand (an approximation: the tail is short)
      const at = (s.remaining > 0 ? now + s.remaining / this.rate : s.cpuDoneAt) + s.fixedMs;
      if (s !== added && at === s.finishAt) continue;
      s.finishAt = at;
      s.version = (s.version + 1) >>> 0;
      this.reschedule(s);
    }
  }
}
