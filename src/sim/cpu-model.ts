// The node's CPU in the simulator: boots, restores and CPU-bound runs are jobs
// that share the cores with each other and with the idle VMs (weighted
// processor sharing). A job has a cap (the cores it would use alone), a share
// weight (its cgroup's CPU weight relative to a VM's normal one: 1 for a run,
// limits.startCpuWeight / limits.cpuWeight for a boot or restore), CPU work (ms
// of its own time that need the CPU) and a fixed part that does not (waiting for
// I/O or timers). What the simulator passes (src/sim/simulator.ts): a start is
// a job of cap 1 whose CPU work is the profile's cold/restore CPU time and
// whose fixed part is the rest of its wall time; a run is a job of cap 1 whose
// CPU work is the invocation's own cost on the node plus cpuShare × its service
// time, with no fixed part (its waiting part follows as a plain timer). The idle
// VMs are one more demand of share 1 (they run at a VM's normal weight).
// The cores go by water-filling (weightedRates): no job above its cap, the rest
// shared in proportion to cap × share weight, as CFS shares a core among cgroups
// by weight. With every share weight equal this is plain processor sharing: with
// demand D = Σ caps + the idle VMs' share on C cores every job's CPU part
// progresses at min(1, C / D) of its own speed: concurrent starts and busy
// CPU-bound functions stretch each other, and a node full of idle VMs boots more
// slowly — what the real node showed (cold boots of 5-45 s against 3.3 s when quiet).

/**
 * Weighted processor sharing by water-filling: demand i would use caps[i] cores alone and has share weight
 * shares[i]; it gets caps[i] × rate[i] cores, rate[i] = min(1, λ × shares[i]) with λ such that the cores are all
 * handed out when Σ caps > cores (else every rate is 1). Rates are written into `out` (returned).
 */
export function weightedRates(caps: readonly number[], shares: readonly number[], cores: number, out: number[] = [], order: number[] = []): number[] {
  const n = caps.length;
  out.length = n;
  let total = 0;
  for (let i = 0; i < n; i++) total += caps[i]!;
  if (total <= cores) {
    out.fill(1);
    return out;
  }
  // the demands with the largest share weights reach their caps first: saturate them in that order, demands
  // of no cap last (an insertion sort into the caller's buffer: a handful of share classes, no allocation per event)
  order.length = n;
  for (let i = 0; i < n; i++) {
    const ki = caps[i]! > 0 ? shares[i]! : -Infinity;
    let j = i;
    while (j > 0 && (caps[order[j - 1]!]! > 0 ? shares[order[j - 1]!]! : -Infinity) < ki) {
      order[j] = order[j - 1]!;
      j--;
    }
    order[j] = i;
  }
  let left = cores;
  let denom = 0;
  for (let i = 0; i < n; i++) denom += caps[i]! * shares[i]!;
  let k = 0;
  while (k < n) {
    const i = order[k]!;
    if (caps[i]! <= 0 || (left / denom) * shares[i]! < 1) break;
    left -= caps[i]!;
    denom -= caps[i]! * shares[i]!;
    k++;
  }
  // the rest shared by the demands below their caps (summed afresh: no cancellation from the subtractions); none
  // measurable left: they get what they ask
  let rest = 0;
  for (let j = k; j < n; j++) rest += caps[order[j]!]! * shares[order[j]!]!;
  const lambda = rest > 0 ? left / rest : Infinity;
  for (let j = 0; j < n; j++) out[order[j]!] = j < k ? 1 : Math.min(1, lambda * shares[order[j]!]!);
  return out;
}

export interface CpuJob {
  /** CPU work left (ms of the job's own time, at full speed) */
  remaining: number;
  /** the part of the job that does not need the CPU (ms), added at its end */
  fixedMs: number;
  /** cores it takes at full speed (its cap) */
  weight: number;
  /** its class of share weight (CpuModel's: 0 = share 1, a VM's normal weight) */
  cls: number;
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

/** The jobs of one share weight: their caps summed, and the speed they all progress at. */
interface ShareClass {
  share: number;
  caps: number;
  jobs: number;
  rate: number;
}

export class CpuModel {
  private readonly active: CpuJob[] = [];
  private lastT = 0;
  private background = 0;
  /** class 0: share 1 (runs, idle VMs, starts when they weigh as much as a VM); others: one per start weight */
  private readonly classes: ShareClass[] = [{ share: 1, caps: 0, jobs: 0, rate: 1 }];
  /** jobs in classes other than 0 (none: plain processor sharing) */
  private weightedJobs = 0;
  private readonly capsBuf: number[] = [];
  private readonly sharesBuf: number[] = [];
  private readonly ratesBuf: number[] = [];
  private readonly ratesBefore: number[] = [];
  private readonly orderBuf: number[] = [];

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

  /** The speed a job's CPU part progresses at now (fraction of its own speed alone). */
  rateOf(j: CpuJob): number {
    return this.classes[j.cls]!.rate;
  }

  /**
   * A job begins; `wallMs` is its duration alone on the node, `cpuMs` the part of it that needs the CPU, `weight`
   * its cap (cores alone), `share` its share weight relative to a VM at its normal weight (default 1).
   */
  begin(cpuMs: number, wallMs: number, weight: number, now: number, owner: unknown, kind: number, background: number, share = 1): CpuJob {
    this.progress(now);
    this.background = background;
    const cls = this.classOf(share);
    const j: CpuJob = { remaining: cpuMs, fixedMs: Math.max(0, wallMs - cpuMs), weight, cls, version: 0, finishAt: 0, cpuDoneAt: now, pos: this.active.length, owner, kind };
    this.active.push(j);
    const c = this.classes[cls]!;
    c.caps += weight;
    c.jobs++;
    if (cls !== 0) this.weightedJobs++;
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
    const c = this.classes[j.cls]!;
    c.caps -= j.weight;
    c.jobs--;
    if (j.cls !== 0) {
      this.weightedJobs--;
      if (c.jobs === 0) c.caps = 0;
    }
    if (this.active.length === 0) this.classes[0]!.caps = 0;
    this.retime(now, undefined);
  }

  /** The CPU demand outside the jobs (idle VMs) changed (fractions of a core). */
  setBackground(demand: number, now: number): void {
    if (demand === this.background) return;
    if (this.active.length === 0) {
      this.background = demand;
      return;
    }
    if (this.weightedJobs === 0) {
      // plain processor sharing: one rate for every job
      const next = this.rateFor(this.classes[0]!.caps, demand);
      this.background = demand;
      if (next === this.classes[0]!.rate) return;
    } else {
      const before = this.ratesBefore;
      before.length = 0;
      for (const c of this.classes) before.push(c.rate);
      this.computeRates(demand);
      if (this.classes.every((c, i) => c.rate === before[i])) {
        this.background = demand;
        return;
      }
      // the CPU done so far went at the old rates
      this.classes.forEach((c, i) => (c.rate = before[i]!));
      this.background = demand;
    }
    this.progress(now);
    this.retime(now, undefined);
  }

  private classOf(share: number): number {
    const cs = this.classes;
    for (let i = 0; i < cs.length; i++) if (cs[i]!.share === share) return i;
    cs.push({ share, caps: 0, jobs: 0, rate: 1 });
    return cs.length - 1;
  }

  private rateFor(weights: number, background: number): number {
    const d = weights + background;
    return d <= this.cores ? 1 : this.cores / d;
  }

  /** Each class's rate for this background: water-filling over the classes and the idle VMs (share 1). */
  private computeRates(background: number): void {
    const cs = this.classes;
    if (this.weightedJobs === 0) {
      cs[0]!.rate = this.rateFor(cs[0]!.caps, background);
      return;
    }
    const caps = this.capsBuf;
    const shares = this.sharesBuf;
    caps.length = 0;
    shares.length = 0;
    for (const c of cs) {
      caps.push(c.jobs > 0 ? c.caps : 0);
      shares.push(c.share);
    }
    // the idle VMs weigh as much as a VM at its normal weight
    caps[0] = caps[0]! + background;
    const r = weightedRates(caps, shares, this.cores, this.ratesBuf, this.orderBuf);
    for (let i = 0; i < cs.length; i++) cs[i]!.rate = r[i]!;
  }

  private progress(now: number): void {
    const dt = now - this.lastT;
    this.lastT = now;
    if (dt <= 0) return;
    const cs = this.classes;
    for (const s of this.active) {
      if (s.remaining <= 0) continue;
      const rate = cs[s.cls]!.rate;
      const done = dt * rate;
      if (s.remaining <= done) {
        s.cpuDoneAt = this.lastT - dt + s.remaining / rate;
        s.remaining = 0;
      } else s.remaining -= done;
    }
  }

  private retime(now: number, added: CpuJob | undefined): void {
    this.computeRates(this.background);
    const cs = this.classes;
    for (const s of this.active) {
      // a job in its fixed tail still counts as demand (an approximation: the tail is short)
      const at = (s.remaining > 0 ? now + s.remaining / cs[s.cls]!.rate : s.cpuDoneAt) + s.fixedMs;
      if (s !== added && at === s.finishAt) continue;
      s.finishAt = at;
      s.version = (s.version + 1) >>> 0;
      this.reschedule(s);
    }
  }
}
