// Messages and records of the SnapshotManager, shared by VmPool and Worker.
// The decision core decides which snapshots exist (placement, tier capacity,
// invalidation, re-placement); the SnapshotManager keeps their files and their
// catalogue in the database and does what the core decided.

import type { Reply } from '../core/actor.js';
import type { FunctionDef } from '../registry/registry.js';
import type { SnapshotFiles } from '../runtimes/types.js';

/** A snapshot a Worker can restore from, or is about to create. */
export interface SnapshotRef {
  id: string;
  fn: string;
  tier: string;
  dir: string;
  files: SnapshotFiles;
  /** where the working set of its first restored run is recorded and read back (REAP) */
  workingSetPath: string;
}

export interface SnapshotRecord {
  id: string;
  function: string;
  /** the function version it belongs to (code, shape, entry, env) */
  versionKey: string;
  codeSha256: string;
  imageVersion: string;
  memoryMiB: number;
  vcpus: number;
  kind: SnapshotFiles['kind'];
  tier: string;
  dir: string;
  sizeBytes: number;
  createdAt: number;
  lastUsedAt: number;
  restoreCount: number;
  createMs: number | null;
  status: 'creating' | 'ready';
}

export type SnapshotMsg =
  /** Ready snapshots of this image, newest first, with their refs: VmPool gives them to the decision core at start. */
  | { kind: 'inventory'; reply: Reply<Array<{ record: SnapshotRecord; ref: SnapshotRef }>> }
  /** The core decided that a cold start of `fn` leaves a snapshot on `tier`: make its directory and catalogue row. */
  | { kind: 'prepare'; fn: FunctionDef; versionKey: string; tier: string; reply: Reply<SnapshotRef> }
  /** The snapshot was written: answers its size in bytes (0 when it is no longer wanted). */
  | { kind: 'commit'; id: string; createMs: number; reply?: Reply<number> }
  | { kind: 'restored'; id: string }
  /** Bookkeeping of a failed restore; whether the snapshot goes is the core's decision (a `drop` follows). */
  | { kind: 'restoreFailed'; id: string; broken: boolean; reason: string }
  | { kind: 'drop'; id: string; cause: string }
  /** Move the files to another tier (adaptive placement); answers the new ref (undefined: not moved). */
  /** the reply: its new place and what its files take there, or undefined when it could not be moved */
  | { kind: 'move'; id: string; tier: string; reply?: Reply<{ ref: SnapshotRef; bytes: number } | undefined> }
  | { kind: 'list'; reply: Reply<SnapshotRecord[]> };
