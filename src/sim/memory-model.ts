// What an instance costs the host, as the simulator models the daemon's sampler
// (the VMM's PSS): its own pages plus its share of the pages it shares.
//
//   own      an idle cold-booted VM's private pages (coldPrivateMiB), or a restored
//            clone's (clonePrivateMiB: its copy-on-write copies, QEMU's heap, its TCG
//            code), plus runGrowthMiB for every run it has served
//   shared   the pages every VM maps (QEMU's binary, the kernel, the root fs image:
//            profile.node.vmSharedMiB) split among the VMs that have started, and for a
//            clone its snapshot's resident RAM file pages (snapshotSharedMiB) split
//            among that snapshot's clones
//
// Parameters come from the profile (bench/profiles/*.json, `faascell bench memory`);
// without them an instance costs its size, i.e. measured accounting behaves as nominal.
// The simulator samples at the daemon's sampling times (node.memory.sampleIntervalMs,
// at multiples of it while instances live): the conformance test compares both.

import type { CoreInstance, MemorySample } from '../vmpool/core/model.js';

export interface MemoryModelCosts {
  memoryMiB: number;
  coldPrivateMiB: number;
  clonePrivateMiB: number;
  snapshotSharedMiB: number;
  runGrowthMiB: number;
}

/** The PSS (MiB) of one VM: `runs` served, sharing its snapshot's pages with `snapshotSharers` clones and the common pages with `vmSharers` VMs. */
export function modelPss(c: MemoryModelCosts, restored: boolean, runs: number, snapshotSharers: number, vmSharers: number, vmSharedMiB: number): number {
  return pssOf(restored ? c.clonePrivateMiB : c.coldPrivateMiB, c.runGrowthMiB, runs, restored ? c.snapshotSharedMiB : 0, snapshotSharers, vmSharers, vmSharedMiB);
}

/** modelPss from its parts: private and per-run pages, and the snapshot's shared pages (0: not a clone). */
function pssOf(privateMiB: number, runGrowthMiB: number, runs: number, snapshotSharedMiB: number, snapshotSharers: number, vmSharers: number, vmSharedMiB: number): number {
  const own = privateMiB + runGrowthMiB * runs;
  const shared = vmSharedMiB / Math.max(1, vmSharers) + snapshotSharedMiB / Math.max(1, snapshotSharers);
  return own + shared;
}

/**
 * Samples of every started (idle or busy) instance, in instance order, as the
 * daemon's sampler would read them. `insts`: the live instances in order of
 * their seq (the simulator keeps them so: no sort per sample). A simulated day
 * samples tens of thousands of times: the sample objects and the per-snapshot
 * clone counts are kept from sample to sample (a sample is valid until the next).
 */
export class MemorySampler {
  private readonly out: MemorySample[] = [];
  /** clones per snapshot id (index 0: a clone without one), valid where gen[id] is this sample's */
  private clones = new Int32Array(1024);
  private gen = new Int32Array(1024);
  private g = 0;
  /** by instance slot, from its start: its private MiB, growth per run, and its snapshot's shared MiB (0: not a clone) */
  private privateMiB = new Float64Array(256);
  private growthMiB = new Float64Array(256);
  private snapshotMiB = new Float64Array(256);
  /** scratch by position in a sample: an instance's own pages, its snapshot id (−1: not a clone) */
  private own = new Float64Array(256);
  private snapId = new Int32Array(256);

  constructor(private readonly vmSharedMiB: number) {}

  /** An instance starts with these costs (its path is known): what its samples are made of, kept by slot. */
  started(inst: CoreInstance, c: MemoryModelCosts): void {
    const i = inst.idx;
    if (i >= this.privateMiB.length) this.growSlots(i);
    const restored = inst.path === 'restore';
    this.privateMiB[i] = restored ? c.clonePrivateMiB : c.coldPrivateMiB;
    this.growthMiB[i] = c.runGrowthMiB;
    this.snapshotMiB[i] = restored ? c.snapshotSharedMiB : 0;
  }

  sample(insts: readonly CoreInstance[]): MemorySample[] {
    const g = ++this.g;
    const out = this.out;
    const own = this.own.length >= insts.length ? this.own : (this.own = new Float64Array(2 * insts.length));
    const snapId = this.snapId.length >= insts.length ? this.snapId : (this.snapId = new Int32Array(2 * insts.length));
    // one pass: the started instances (into the reused samples), their own pages, the clones per snapshot
    let k = 0;
    for (let j = 0; j < insts.length; j++) {
      const inst = insts[j]!;
      const st = inst.state;
      if (st !== 'idle' && st !== 'busy') continue;
      const i = inst.idx;
      own[k] = this.privateMiB[i]! + this.growthMiB[i]! * inst.invocations;
      let id = -1;
      if (inst.path === 'restore') {
        id = inst.snapshot?.id ?? 0;
        if (id >= this.gen.length) this.grow(id);
        if (this.gen[id] !== g) {
          this.gen[id] = g;
          this.clones[id] = 0;
        }
        this.clones[id]!++;
      }
      snapId[k] = id;
      const sample = out[k];
      if (sample) sample.inst = inst;
      else out[k] = { inst, pssMiB: 0 };
      k++;
    }
    if (out.length > k) out.length = k;
    // then each one's share of the pages it shares (pssOf's sums, in its order)
    const vmShare = this.vmSharedMiB / Math.max(1, k);
    const clones = this.clones;
    for (let j = 0; j < k; j++) {
      const sample = out[j]!;
      const id = snapId[j]!;
      sample.pssMiB = own[j]! + (vmShare + this.snapshotMiB[sample.inst.idx]! / Math.max(1, id >= 0 ? clones[id]! : 0));
    }
    return out;
  }

  private growSlots(i: number): void {
    const cap = Math.max(i + 1, this.privateMiB.length * 2);
    this.privateMiB = widened(this.privateMiB, cap, Float64Array);
    this.growthMiB = widened(this.growthMiB, cap, Float64Array);
    this.snapshotMiB = widened(this.snapshotMiB, cap, Float64Array);
  }

  private grow(id: number): void {
    const cap = Math.max(id + 1, this.gen.length * 2);
    this.clones = widened(this.clones, cap, Int32Array);
    this.gen = widened(this.gen, cap, Int32Array);
  }
}

/** A copy of `a` with room for `cap` entries. */
function widened<T extends Float64Array<ArrayBuffer> | Int32Array<ArrayBuffer>>(a: T, cap: number, make: new (n: number) => T): T {
  const b = new make(cap);
  b.set(a);
  return b;
}

/** The sampler's schedule: multiples of the interval, while instances live (armed by a start). */
export class SampleClock {
  private armed = false;
  constructor(readonly everyMs: number) {}

  /** When to sample next after `now` (a start, or a sample), or undefined when a sample is already due. */
  arm(now: number): number | undefined {
    if (!(this.everyMs > 0) || this.armed) return undefined;
    this.armed = true;
    return (Math.floor(now / this.everyMs) + 1) * this.everyMs;
  }

  /** The sample is being taken: the next start or sample arms the clock again. */
  fired(): void {
    this.armed = false;
  }
}
