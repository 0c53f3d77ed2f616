// What the OpenWhisk Source keeps per activation it started, beside PerfManager's
// record (which has no result): the result, the caller's subject and the action's
// limits at that time. Pruned with the records (activations.retain).

import { stmt, type Db } from '../../registry/db.js';

/** What an activation FaaSCell composed itself (a sequence's, a trigger's) or one run inside a sequence adds (issue 22). */
export interface ActivationKind {
  /** absent: an action's run */
  kind?: 'sequence' | 'trigger' | 'feed';
  /** the enclosing sequence's activation id */
  cause?: string;
  /** a sequence invoked directly, not as a component */
  topmost?: boolean;
  /** a sequence's duration: the sum of its components' */
  duration?: number;
  /** a trigger fired by an alarm: the firing's scheduled time (epoch ms) */
  scheduledAt?: number;
}

export interface StoredExtra {
  subject: string;
  result?: unknown;
  limits: { timeout: number; memory: number };
  extra?: ActivationKind;
}

export class ResultStore {
  private inserted = 0;

  constructor(
    private readonly db: Db,
    private readonly retain: number,
  ) {}

  put(id: string, x: StoredExtra, now = Date.now()): void {
    stmt(this.db, 'INSERT OR REPLACE INTO openwhisk_activations (id, subject, result, timeout_ms, memory_mib, created_at, extra) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, x.subject, x.result === undefined ? null : JSON.stringify(x.result), x.limits.timeout, x.limits.memory, now, x.extra ? JSON.stringify(x.extra) : null);
    if (++this.inserted % 1000 === 0) {
      stmt(this.db, 'DELETE FROM openwhisk_activations WHERE id IN (SELECT id FROM openwhisk_activations ORDER BY created_at DESC LIMIT -1 OFFSET ?)').run(this.retain);
    }
  }

  get(id: string): StoredExtra | undefined {
    const r = stmt(this.db, 'SELECT subject, result, timeout_ms, memory_mib, extra FROM openwhisk_activations WHERE id = ?').get(id) as
      | { subject: string; result: string | null; timeout_ms: number; memory_mib: number; extra: string | null }
      | undefined;
    if (!r) return undefined;
    const x: StoredExtra = { subject: r.subject, result: r.result === null ? undefined : (JSON.parse(r.result) as unknown), limits: { timeout: r.timeout_ms, memory: r.memory_mib } };
    if (r.extra !== null) x.extra = JSON.parse(r.extra) as ActivationKind;
    return x;
  }
}
