// What the OpenWhisk Source keeps per activation it started, beside PerfManager's
// record (which has no result): the result, the caller's subject and the action's
// limits at that time. Pruned with the records (activations.retain).

import { stmt, type Db } from '../../registry/db.js';

export interface StoredExtra {
  subject: string;
  result?: unknown;
  limits: { timeout: number; memory: number };
}

export class ResultStore {
  private inserted = 0;

  constructor(
    private readonly db: Db,
    private readonly retain: number,
  ) {}

  put(id: string, x: StoredExtra, now = Date.now()): void {
    stmt(this.db, 'INSERT OR REPLACE INTO openwhisk_activations (id, subject, result, timeout_ms, memory_mib, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, x.subject, x.result === undefined ? null : JSON.stringify(x.result), x.limits.timeout, x.limits.memory, now);
    if (++this.inserted % 1000 === 0) {
      stmt(this.db, 'DELETE FROM openwhisk_activations WHERE id IN (SELECT id FROM openwhisk_activations ORDER BY created_at DESC LIMIT -1 OFFSET ?)').run(this.retain);
    }
  }

  get(id: string): StoredExtra | undefined {
    const r = stmt(this.db, 'SELECT subject, result, timeout_ms, memory_mib FROM openwhisk_activations WHERE id = ?').get(id) as
      | { subject: string; result: string | null; timeout_ms: number; memory_mib: number }
      | undefined;
    if (!r) return undefined;
    return { subject: r.subject, result: r.result === null ? undefined : (JSON.parse(r.result) as unknown), limits: { timeout: r.timeout_ms, memory: r.memory_mib } };
  }
}
