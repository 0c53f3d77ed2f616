// Durable acceptance, the other half (issue 12): a record still `accepted` when
// the daemon starts belongs to an invocation a previous incarnation took in and
// never finished (killed with SIGKILL, crashed, the machine lost). It is
// finished here as a typed failure, so a client that lost its connection finds
// a clear error under the activation id instead of nothing.

import { stmt, type Db } from '../registry/db.js';
import { statusOf, toFaasError, type Failure } from '../core/failure.js';
import { finishTimings, type ActivationRecord } from './activation.js';

/** The record an unfinished activation becomes (pure: `now` is the wall clock at the restart). */
export function interruptedRecord(accepted: ActivationRecord, now: number): ActivationRecord {
  const at = new Date(now).toISOString();
  const failure: Failure = {
    kind: 'interrupted',
    reason: 'daemon_restarted',
    message: `the daemon ended (killed, crashed or stopped) while this activation was in flight; found unfinished when it started again at ${at}. The function may or may not have run`,
  };
  const e = toFaasError(failure);
  const rec: ActivationRecord = {
    ...accepted,
    timestamps: { ...accepted.timestamps },
    status: statusOf(failure),
    error: { code: e.code, message: e.message },
    interrupted: { reason: failure.reason, detectedAt: now },
    logs: accepted.logs ?? [],
  };
  finishTimings(rec);
  return rec;
}

/** Finish every record still `accepted` as `interrupted`, in one transaction; returns their ids. */
export function finishInterrupted(db: Db, now: number): string[] {
  const rows = stmt(db, "SELECT id, function, received_at, record FROM activations WHERE status = 'accepted'").all() as {
    id: string;
    function: string;
    received_at: number;
    record: string;
  }[];
  if (rows.length === 0) return [];
  const update = stmt(db, 'UPDATE activations SET status = ?, total_ms = ?, record = ? WHERE id = ?');
  db.transaction(() => {
    for (const r of rows) {
      let accepted: ActivationRecord;
      try {
        accepted = JSON.parse(r.record) as ActivationRecord;
      } catch {
        // an unreadable record still becomes a readable one: what the columns say
        accepted = { id: r.id, function: r.function, functionVersion: 0, runtime: 'qemu', status: 'accepted', timestamps: { received: r.received_at }, timings: {}, totalMs: 0, logs: [] };
      }
      const rec = interruptedRecord({ ...accepted, id: r.id }, now);
      update.run(rec.status, rec.totalMs, JSON.stringify(rec), r.id);
    }
  })();
  return rows.map((r) => r.id);
}
