// Faults the simulator can inject, and the fake driver of the conformance test
// injects the same way (test/helpers/fake-driver.ts): which starts fail, how and
// when, and when a tier's device is full. The decision core meets the very same
// failure events in both shells (start-failures.ts decides what follows).

/** How a start fails. `resync`: a restored clone whose first run refuses the resync it carries. */
export type StartFaultKind = 'boot' | 'init' | 'restore-broken' | 'restore-slow' | 'resync' | 'snapshot';

export interface StartFault {
  kind: StartFaultKind;
  /** ms after the start began when it fails (ignored for resync: it fails at the clone's first run) */
  afterMs: number;
}

/** A start as the fault plan sees it. */
export interface StartInfo {
  fn: string;
  /** 1 for the function's first start, 2 for its second, … */
  nth: number;
  path: 'cold' | 'restore';
  /** the core's instance number */
  seq: number;
  /** a cold start that leaves a snapshot */
  snapshot: boolean;
  t: number;
}

export interface FaultModel {
  /** the fault of this start, if it has one */
  start?: (s: StartInfo) => StartFault | undefined;
  /** the device under `tier` has no room for a snapshot at time `now` (SnapshotManager's free-space check) */
  tierFull?: (tier: string, now: number) => boolean;
}

/** Numbers starts per function as both shells see them (StartInfo.nth). */
export class StartCounter {
  private readonly n = new Map<string, number>();
  next(fn: string): number {
    const k = (this.n.get(fn) ?? 0) + 1;
    this.n.set(fn, k);
    return k;
  }
}
