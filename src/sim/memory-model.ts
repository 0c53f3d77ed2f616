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
  const own = (restored ? c.clonePrivateMiB : c.coldPrivateMiB) + c.runGrowthMiB * runs;
  const shared = vmSharedMiB / Math.max(1, vmSharers) + (restored ? c.snapshotSharedMiB / Math.max(1, snapshotSharers) : 0);
  return own + shared;
}

/**
 * Samples of every started (idle or busy) instance, in instance order, as the
 * daemon's sampler would read them.
 */
export function modelSamples(insts: Iterable<CoreInstance>, costsOf: (inst: CoreInstance) => MemoryModelCosts, vmSharedMiB: number): MemorySample[] {
  const started: CoreInstance[] = [];
  const clones = new Map<unknown, number>();
  for (const inst of insts) {
    if (inst.state !== 'idle' && inst.state !== 'busy') continue;
    started.push(inst);
    if (inst.path === 'restore') clones.set(inst.snapshot, (clones.get(inst.snapshot) ?? 0) + 1);
  }
  started.sort((a, b) => a.seq - b.seq);
  return started.map((inst) => {
    const restored = inst.path === 'restore';
    return { inst, pssMiB: modelPss(costsOf(inst), restored, inst.invocations, restored ? clones.get(inst.snapshot)! : 0, started.length, vmSharedMiB) };
  });
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
