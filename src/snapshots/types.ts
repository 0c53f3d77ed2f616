// Messages and records of the SnapshotManager, shared by VmPool and Worker.

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
  /** pages to read ahead before resuming (REAP), when recorded */
  workingSetPath?: string;
}

export interface SnapshotRecord {
  id: string;
  function: string;
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
  /** A valid snapshot for the function's current definition, if there is one. */
  | { kind: 'lookup'; fn: FunctionDef; reply: Reply<SnapshotRef | undefined> }
  /** Placement decides whether (and where) a new cold start should leave a snapshot; undefined = don't snapshot. */
  | { kind: 'prepare'; fn: FunctionDef; reply: Reply<SnapshotRef | undefined> }
  | { kind: 'commit'; id: string; createMs: number }
  | { kind: 'abort'; id: string; reason: string }
  | { kind: 'restored'; id: string; ok: boolean; restoreMs?: number; reason?: string }
  /** Drop the function's snapshots that no longer match its definition (or all of them, when deleted). */
  | { kind: 'invalidate'; fn: string; keep?: FunctionDef; reply?: Reply<number> }
  | { kind: 'list'; reply: Reply<SnapshotRecord[]> };
