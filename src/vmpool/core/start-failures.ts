// Failed starts, and why none of them can make the node retry in a loop.
//
// What a failure does at once (decided here):
//   boot      the VM did not come up: the oldest waiting request gets the failure
//   init      the function's init failed (deterministic): every request waiting for it gets it (init_failed:
//             counted as the function's failure, not the platform's)
//   snapshot  taking the cold start's snapshot failed: as boot (the shell said snapshotFailed before)
//   restore-broken  the snapshot could not be restored (or a clone's first run refused the resync it
//             carried): the snapshot is dropped and a cold start follows; no request fails
//   restore-slow    the restore did not finish in time: the snapshot is kept; no request fails
// What bounds the starts (the back-off):
//   - a function's failed starts in a row are counted (failStreak; a start that succeeds resets it), retries
//     only: a start that ran alongside the one that failed before it fails of the same cause and adds nothing;
//   - the first failure is retried at once (a transient fault, or the cold start after a broken snapshot);
//   - from the second one on, the function backs off: no start before backoffBaseMs × 2^(n−2) (capped at
//     backoffMaxMs) has passed; requests that only a start could serve are refused at once with
//     start_backoff (503 + Retry-After), not at their deadline; then one start at a time probes;
//   - a snapshot that failed (broken at restore, or not taken) counts the same way (snapFailStreak): the next
//     cold start snapshots again at once, from the second failure in a row on the function's snapshots are
//     held off exponentially, so a snapshot that always breaks cannot cycle snapshot → broken restore.
// So one request causes at most two failed starts, and a function whose starts keep failing tries at
// exponentially longer intervals (tests: test/unit/start-faults.test.ts).

import type { CoreState } from './state.js';
import type { CoreFunction, CoreInstance, StartBackoffDetail, StartFailure } from './model.js';
import { rejectHead } from './queue.js';
import { dropSnapshot } from './snapshots.js';

export type StartPermission = 'ok' | 'backoff' | 'probing';

/** May f start an instance now, as far as its failures go? */
export function mayStart(f: CoreFunction, now: number): StartPermission {
  if (f.failStreak === 0) return 'ok';
  if (now < f.backoffUntil) return 'backoff';
  // after repeated failures one start at a time finds out whether the fault is gone
  return f.failStreak >= 2 && f.starting > 0 ? 'probing' : 'ok';
}

export function backoffDetail(f: CoreFunction): StartBackoffDetail {
  return { failures: f.failStreak, retryAt: f.backoffUntil, last: f.lastStartFailure ?? { kind: 'boot' } };
}

function backoffMs(s: CoreState, n: number): number {
  const st = s.cfg.starts;
  return Math.min(st.backoffMaxMs, st.backoffBaseMs * 2 ** Math.min(30, n));
}

function noteStartFailure(s: CoreState, inst: CoreInstance, failure: StartFailure, now: number): void {
  const f = inst.f;
  // the function's own init failing is its failure, counted apart from the platform's
  if (failure.kind === 'init') s.counters.initFailures++;
  else s.counters.startFailures++;
  f.lastStartFailure = failure;
  // only a start begun after the last failure is a retry: starts that ran alongside it (several at once,
  // clones of the same broken snapshot) failed of the same cause and do not lengthen the back-off
  if (f.failStreak > 0 && inst.createdAt < f.lastFailureAt) return;
  f.failStreak++;
  f.lastFailureAt = now;
  f.backoffUntil = f.failStreak >= 2 ? now + backoffMs(s, f.failStreak - 2) : now;
}

/** A start of f succeeded: its failure count starts again. */
export function noteStartSuccess(f: CoreFunction): void {
  f.failStreak = 0;
  f.backoffUntil = 0;
}

function noteSnapshotFailure(s: CoreState, f: CoreFunction, now: number): void {
  f.snapFailStreak++;
  // as for starts: the first failure is retried at once (a VMM killed while saving, a file lost), the
  // second and later ones hold the next snapshot off exponentially
  f.noSnapshotUntil = f.snapFailStreak >= 2 ? now + backoffMs(s, f.snapFailStreak - 2) : now;
}

/** A restored clone served a run: its snapshot works. */
export function noteRestoredRun(inst: CoreInstance): void {
  if (inst.path === 'restore' && inst.invocations === 1) inst.f.snapFailStreak = 0;
}

export function snapshotsAllowed(f: CoreFunction, now: number): boolean {
  return f.snapFailStreak === 0 || now >= f.noSnapshotUntil;
}

/** A start of `inst` ended without an instance (its counts are already settled). */
export function startFailed(s: CoreState, inst: CoreInstance, failure: StartFailure | undefined, now: number): void {
  if (!failure || failure.kind === 'stopped') return;
  const f = inst.f;
  noteStartFailure(s, inst, failure, now);
  switch (failure.kind) {
    case 'restore-broken':
      brokenSnapshot(s, inst, now);
      break;
    case 'snapshot': // the shell reported snapshotFailed before: the snapshot is gone and counted
    case 'boot':
      if (f.queued > 0) rejectHead(s, f, 'start_failed', failure.detail, now);
      break;
    case 'init':
      while (f.queued > 0) rejectHead(s, f, 'init_failed', failure.detail, now);
      break;
    case 'restore-slow':
      break;
  }
}

/** A restored clone's first run found the restore unusable: a failed start, after the fact. */
export function firstRunBroken(s: CoreState, inst: CoreInstance, failure: StartFailure, now: number): void {
  noteStartFailure(s, inst, failure, now);
  brokenSnapshot(s, inst, now);
}

/** The snapshot `inst` restored from is unusable (a clone, or a cold start continuing from its own snapshot). */
function brokenSnapshot(s: CoreState, inst: CoreInstance, now: number): void {
  const f = inst.f;
  const snap = inst.snapshot;
  if (!snap || f.snapshot !== snap) return;
  dropSnapshot(s, snap, 'broken', now);
  noteSnapshotFailure(s, f, now);
}

/** Taking (or preparing) a cold start's snapshot failed; when the start ends with it, a 'snapshot' failure follows. */
export function snapshotNotTaken(s: CoreState, f: CoreFunction, now: number): void {
  noteSnapshotFailure(s, f, now);
}
