// Where activation records live (SQLite), and the bounds on what guests can make the node keep
// (issue 19). A record's logs are stored beside it, not inside it: lists read no logs unless a
// client asks, and a page that carries logs ends once it holds LIST_LOG_BUDGET_BYTES of them.
// Stored logs are capped per function and in total; past a cap the oldest logs are dropped (the
// records stay, with a one-line note), so a function that logs its maximum on every run costs the
// node a bounded amount of disk and of answer size, however many records are retained.

import { stmt, type Db } from '../registry/db.js';
import type { ActivationRecord } from './activation.js';

/** Readers never see an acceptance: an activation in flight is not found, as before (and as OpenWhisk does). */
const FINISHED = "status != 'accepted'";

/** How much of its logs a list page carries at most (one record's logs always fit: a page holds at least one record). */
export const LIST_LOG_BUDGET_BYTES = 8 * 1024 * 1024;

export interface StoreLimits {
  /** records kept (activations.retain) */
  retain: number;
  /** log bytes kept per function (activations.maxLogBytesPerFunction); past it its oldest logs are dropped */
  maxLogBytesPerFunction?: number;
  /** log bytes kept in all (activations.maxLogBytesTotal); past it the node's oldest logs are dropped */
  maxLogBytesTotal?: number;
}

/** A position in the newest-first order: the records after it are strictly older. */
export interface ActivationCursor {
  receivedAt: number;
  id: string;
}

export interface ActivationFilter {
  fn?: string;
  /** received at or after (epoch ms) */
  since?: number;
  /** received at or before (epoch ms) */
  upto?: number;
}

export interface ActivationQuery extends ActivationFilter {
  limit: number;
  /** records to pass over first (OpenWhisk's skip) */
  skip?: number;
  /** continue after this position (a previous page's `next`) */
  after?: ActivationCursor;
  /** carry each record's logs (default: none) */
  logs?: boolean;
  /**
   * A page with logs holds at most LIST_LOG_BUDGET_BYTES of them: 'end-page' ends the page there
   * (and `next` continues after it); 'note' keeps the page's length and puts a note in place of
   * the logs that do not fit (OpenWhisk's lists have no cursor to continue with).
   */
  pastBudget?: 'end-page' | 'note';
}

/** A record as a list shows it: without `logs` unless they were asked for. */
export type ListedActivation = Omit<ActivationRecord, 'logs'> & { logs?: string[] };

export interface ActivationPage {
  records: ListedActivation[];
  /** where the next page starts; absent when this page reached the oldest matching record */
  next?: ActivationCursor;
}

/** The note a record keeps when its logs were dropped for a cap. */
export const DROPPED_LOGS_NOTE = '[faascell] logs dropped: the stored logs reached activations.maxLogBytesPerFunction or activations.maxLogBytesTotal (oldest first)';
const LEFT_OUT_NOTE = `[faascell] logs left out of this list (a page carries at most ${LIST_LOG_BUDGET_BYTES / 1048576} MiB of logs): GET the activation for them`;

interface Row {
  id: string;
  function: string;
  received_at: number;
  record: string;
  log_bytes: number;
}

/** The record of a row; logs from their column (rows written before issue 19 kept them inside). */
function parse(record: string, logs: string | null | undefined, withLogs: boolean): ListedActivation {
  const rec = JSON.parse(record) as ListedActivation;
  if (withLogs) rec.logs = logs != null ? (JSON.parse(logs) as string[]) : (rec.logs ?? []);
  else delete rec.logs;
  return rec;
}

export class ActivationStore {
  private readonly perFunction = new Map<string, number>();
  private total = 0;
  private readonly maxPerFunction: number;
  private readonly maxTotal: number;

  constructor(
    private readonly db: Db,
    readonly limits: StoreLimits,
  ) {
    this.maxPerFunction = limits.maxLogBytesPerFunction ?? Number.POSITIVE_INFINITY;
    this.maxTotal = limits.maxLogBytesTotal ?? Number.POSITIVE_INFINITY;
    this.recount();
  }

  /** Log bytes stored now: in all, and per function (for tests and /v1/status). */
  logBytes(): { total: number; perFunction: Record<string, number> } {
    return { total: this.total, perFunction: Object.fromEntries(this.perFunction) };
  }

  /**
   * Write records in one transaction. `fresh`: only if the id is new (a client-chosen id).
   * Returns, per record, whether it was written. Call enforceLogCaps() after the transaction.
   */
  write(batch: Array<{ rec: ActivationRecord; fresh: boolean }>): boolean[] {
    const cols = 'INTO activations (id, function, start_path, status, received_at, total_ms, record, logs, log_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)';
    const replace = stmt(this.db, 'INSERT OR REPLACE ' + cols);
    const fresh = stmt(this.db, 'INSERT OR IGNORE ' + cols);
    const before = stmt(this.db, 'SELECT function, log_bytes FROM activations WHERE id = ?');
    const out: boolean[] = [];
    for (const { rec, fresh: onlyNew } of batch) {
      const { logs, ...rest } = rec;
      const logText = logs && logs.length > 0 ? JSON.stringify(logs) : null;
      const bytes = logText === null ? 0 : Buffer.byteLength(logText);
      const old = onlyNew ? undefined : (before.get(rec.id) as { function: string; log_bytes: number } | undefined);
      const r = (onlyNew ? fresh : replace).run(rec.id, rec.function, rec.startPath ?? null, rec.status, Math.round(rec.timestamps.received ?? 0), rec.totalMs, JSON.stringify(rest), logText, bytes);
      const written = r.changes > 0;
      out.push(written);
      if (!written) continue;
      if (old) this.add(old.function, -old.log_bytes);
      this.add(rec.function, bytes);
    }
    return out;
  }

  /** Drop the oldest logs of every function over its cap, then the node's oldest while over the total. */
  enforceLogCaps(): number {
    let dropped = 0;
    for (const [fn, bytes] of this.perFunction) {
      if (bytes <= this.maxPerFunction) continue;
      dropped += this.dropOldest(() => (this.perFunction.get(fn) ?? 0) > this.maxPerFunction, 'SELECT id, function, log_bytes FROM activations WHERE function = ? AND log_bytes > 0 ORDER BY received_at, id LIMIT 64', [fn]);
    }
    if (this.total > this.maxTotal) {
      dropped += this.dropOldest(() => this.total > this.maxTotal, 'SELECT id, function, log_bytes FROM activations WHERE log_bytes > 0 ORDER BY received_at, id LIMIT 64', []);
    }
    return dropped;
  }

  private dropOldest(over: () => boolean, sql: string, args: unknown[]): number {
    const clear = stmt(this.db, 'UPDATE activations SET logs = ?, log_bytes = 0 WHERE id = ?');
    const note = JSON.stringify([DROPPED_LOGS_NOTE]);
    let n = 0;
    this.db.transaction(() => {
      while (over()) {
        const rows = stmt(this.db, sql).all(...args) as Array<{ id: string; function: string; log_bytes: number }>;
        if (rows.length === 0) break;
        for (const r of rows) {
          if (!over()) break;
          clear.run(note, r.id);
          this.add(r.function, -r.log_bytes);
          n++;
        }
      }
    })();
    return n;
  }

  /** Keep the newest `retain` records. */
  prune(): void {
    stmt(this.db, 'DELETE FROM activations WHERE id IN (SELECT id FROM activations ORDER BY received_at DESC LIMIT -1 OFFSET ?)').run(this.limits.retain);
    this.recount();
  }

  get(id: string): ActivationRecord | undefined {
    const r = stmt(this.db, `SELECT record, logs FROM activations WHERE id = ? AND ${FINISHED}`).get(id) as { record: string; logs: string | null } | undefined;
    return r ? (parse(r.record, r.logs, true) as ActivationRecord) : undefined;
  }

  /** issue 20: the ids that start with `prefix` (at most `limit`), as the CLI's short ids */
  idsWithPrefix(prefix: string, limit: number): string[] {
    // a range on the primary key (no LIKE: ids may hold '_', a LIKE wildcard)
    const rows = stmt(this.db, `SELECT id FROM activations WHERE id >= ? AND id < ? AND ${FINISHED} ORDER BY id LIMIT ?`).all(prefix, prefix + '\u{10FFFF}', limit) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  /** issue 23: the finished records received in [since, until), oldest first, without their logs (traffic export) */
  range(since: number, until: number, limit: number): ActivationRecord[] {
    const rows = stmt(this.db, `SELECT record FROM activations WHERE received_at >= ? AND received_at < ? AND ${FINISHED} ORDER BY received_at LIMIT ?`).all(Math.floor(since), Math.ceil(until), limit) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as ActivationRecord);
  }

  list(q: ActivationQuery): ActivationPage {
    const { where, args } = conditions(q, q.after);
    const rows = stmt(this.db, `SELECT id, function, received_at, record, log_bytes FROM activations WHERE ${where} ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?`).all(
      ...args,
      q.limit + 1,
      q.skip ?? 0,
    ) as Row[];
    const more = rows.length > q.limit;
    let page = rows.slice(0, q.limit);
    const records: ListedActivation[] = [];
    if (!q.logs) {
      for (const r of page) records.push(parse(r.record, undefined, false));
    } else {
      const logsOf = stmt(this.db, 'SELECT logs FROM activations WHERE id = ?');
      let used = 0;
      for (let i = 0; i < page.length; i++) {
        const r = page[i]!;
        const fits = i === 0 || used + r.log_bytes <= LIST_LOG_BUDGET_BYTES;
        if (!fits && q.pastBudget !== 'note') {
          page = page.slice(0, i);
          return { records, next: cursorOf(page[page.length - 1]!) };
        }
        if (!fits) {
          const rec = parse(r.record, undefined, false);
          rec.logs = [LEFT_OUT_NOTE];
          records.push(rec);
          continue;
        }
        used += r.log_bytes;
        records.push(parse(r.record, (logsOf.get(r.id) as { logs: string | null }).logs, true));
      }
    }
    return more && page.length > 0 ? { records, next: cursorOf(page[page.length - 1]!) } : { records };
  }

  count(f: ActivationFilter): number {
    const { where, args } = conditions(f, undefined);
    return (stmt(this.db, `SELECT count(*) AS n FROM activations WHERE ${where}`).get(...args) as { n: number }).n;
  }

  private add(fn: string, bytes: number): void {
    if (bytes === 0) return;
    const v = (this.perFunction.get(fn) ?? 0) + bytes;
    if (v > 0) this.perFunction.set(fn, v);
    else this.perFunction.delete(fn);
    this.total += bytes;
  }

  private recount(): void {
    this.perFunction.clear();
    this.total = 0;
    for (const r of stmt(this.db, 'SELECT function, sum(log_bytes) AS n FROM activations WHERE log_bytes > 0 GROUP BY function').all() as Array<{ function: string; n: number }>) {
      this.perFunction.set(r.function, r.n);
      this.total += r.n;
    }
  }
}

function cursorOf(r: Row): ActivationCursor {
  return { receivedAt: r.received_at, id: r.id };
}

function conditions(f: ActivationFilter, after: ActivationCursor | undefined): { where: string; args: unknown[] } {
  const parts = [FINISHED];
  const args: unknown[] = [];
  if (f.fn !== undefined) {
    parts.push('function = ?');
    args.push(f.fn);
  }
  if (f.since !== undefined) {
    parts.push('received_at >= ?');
    args.push(f.since);
  }
  if (f.upto !== undefined) {
    parts.push('received_at <= ?');
    args.push(f.upto);
  }
  if (after) {
    parts.push('(received_at < ? OR (received_at = ? AND id < ?))');
    args.push(after.receivedAt, after.receivedAt, after.id);
  }
  return { where: parts.join(' AND '), args };
}

/** A cursor as the API hands it out: opaque to clients. */
export function encodeCursor(c: ActivationCursor): string {
  return Buffer.from(`${c.receivedAt}:${c.id}`, 'utf8').toString('base64url');
}

/** The cursor of a `next` value, or undefined when it is not one. */
export function decodeCursor(s: string): ActivationCursor | undefined {
  const m = /^(\d{1,16}):([A-Za-z0-9_-]{1,64})$/.exec(Buffer.from(s, 'base64url').toString('utf8'));
  return m ? { receivedAt: Number(m[1]), id: m[2]! } : undefined;
}
