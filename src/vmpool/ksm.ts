// Kernel same-page merging for the VMs' guest memory (issue 24, node.memory.ksm).
// QEMU marks guest RAM mergeable; ksmd merges identical pages only while
// /sys/kernel/mm/ksm/run is 1. That switch is host-wide: the daemon turns it on
// only when configured to, and puts back what it found when it stops (0 stops
// ksmd; pages already merged stay shared until written). A daemon killed with
// SIGKILL cannot put it back: docs/density.md says so.

import fs from 'node:fs';
import path from 'node:path';

export const KSM_DIR = '/sys/kernel/mm/ksm';

export interface KsmSession {
  /** what run held when the daemon started */
  found: string;
  /** the daemon turned ksmd on (and will turn it off again) */
  changed: boolean;
  /** put back what was found (once) */
  restore(): void;
}

/** Turns ksmd on unless it already runs. Throws when the kernel has no KSM or the switch cannot be written. */
export function startKsm(dir = KSM_DIR): KsmSession {
  const run = path.join(dir, 'run');
  const found = fs.readFileSync(run, 'utf8').trim();
  const changed = found === '0';
  if (changed) fs.writeFileSync(run, '1');
  let done = false;
  return {
    found,
    changed,
    restore() {
      if (done || !changed) return;
      done = true;
      fs.writeFileSync(run, found);
    },
  };
}
