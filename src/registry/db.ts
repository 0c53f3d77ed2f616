// The embedded database (SQLite through better-sqlite3). One file in the state
// directory; schema migrations are numbered and applied in order at open.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export type Db = Database.Database;

const MIGRATIONS: string[] = [
  // 1: functions and activations
  `CREATE TABLE functions (
     name TEXT PRIMARY KEY,
     version INTEGER NOT NULL,
     code BLOB NOT NULL,
     code_kind TEXT NOT NULL,
     code_sha256 TEXT NOT NULL,
     main TEXT NOT NULL,
     entry TEXT NOT NULL,
     memory_mib INTEGER NOT NULL,
     vcpus INTEGER NOT NULL,
     timeout_ms INTEGER NOT NULL,
     max_instances INTEGER NOT NULL,
     env TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE activations (
     id TEXT PRIMARY KEY,
     function TEXT NOT NULL,
     start_path TEXT,
     status TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     total_ms REAL,
     record TEXT NOT NULL
   );
   CREATE INDEX activations_by_time ON activations(received_at DESC);
   CREATE INDEX activations_by_function ON activations(function, received_at DESC);`,
  // 2: snapshots (SnapshotManager)
  `CREATE TABLE snapshots (
     id TEXT PRIMARY KEY,
     function TEXT NOT NULL,
     code_sha256 TEXT NOT NULL,
     image_version TEXT NOT NULL,
     memory_mib INTEGER NOT NULL,
     vcpus INTEGER NOT NULL,
     kind TEXT NOT NULL,
     tier TEXT NOT NULL,
     dir TEXT NOT NULL,
     size_bytes INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     last_used_at INTEGER NOT NULL,
     restore_count INTEGER NOT NULL DEFAULT 0,
     create_ms REAL,
     status TEXT NOT NULL DEFAULT 'ready'
   );
   CREATE INDEX snapshots_by_function ON snapshots(function);`,
  // 3: a snapshot is valid only for its function's exact version (code, shape, entry, env)
  `ALTER TABLE snapshots ADD COLUMN version_key TEXT NOT NULL DEFAULT '';`,
  // 4: default parameters merged under each invocation's own, free-form annotations (OpenWhisk actions),
  //    and what the OpenWhisk Source keeps per activation beside the record (src/sources/openwhisk/results.ts)
  `ALTER TABLE functions ADD COLUMN parameters TEXT NOT NULL DEFAULT '{}';
   ALTER TABLE functions ADD COLUMN annotations TEXT NOT NULL DEFAULT '{}';
   CREATE TABLE openwhisk_activations (
     id TEXT PRIMARY KEY,
     subject TEXT NOT NULL,
     result TEXT,
     timeout_ms INTEGER NOT NULL,
     memory_mib INTEGER NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX openwhisk_activations_by_time ON openwhisk_activations(created_at DESC);`,
  // 5: a function's network specification (src/network/spec.ts)
  `ALTER TABLE functions ADD COLUMN network TEXT NOT NULL DEFAULT '{"mode":"none","allow":[]}';`,
  // 6: durable acceptance (issue 12): the records still 'accepted' are found at start without a scan
  `CREATE INDEX activations_accepted ON activations(id) WHERE status = 'accepted';`,
  // 7 (issue 22, OpenWhisk beyond actions): packages, sequences, triggers, rules and alarm feeds
  //    (src/sources/openwhisk/entities.ts); each alarm's last firing, so that a restart does not fire
  //    it twice (src/sources/alarms/); what a sequence or trigger activation adds to its record
  `CREATE TABLE openwhisk_entities (
     kind TEXT NOT NULL,
     name TEXT NOT NULL,
     doc TEXT NOT NULL,
     version INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (kind, name)
   );
   CREATE TABLE alarm_firings (
     trigger TEXT PRIMARY KEY,
     last_fired_at INTEGER NOT NULL
   );
   ALTER TABLE openwhisk_activations ADD COLUMN extra TEXT;`,
];

/**
 * Durability (docs/reliability.md): WAL mode with synchronous NORMAL. Each
 * commit is appended to the WAL with write(2), so a daemon killed with SIGKILL
 * loses no committed transaction (measured: bench/durability.ts); the WAL is
 * fsynced at checkpoints only, so an OS crash or power loss may lose the
 * transactions since the last one. FULL (an fsync per commit) closes that gap
 * at several times the cost of an insert.
 */
export type Synchronous = 'OFF' | 'NORMAL' | 'FULL';

export function openDb(stateDir: string, file = 'faascell.db', opts: { synchronous?: Synchronous } = {}): Db {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const db = new Database(path.join(stateDir, file));
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.synchronous ?? 'NORMAL'}`);
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

export function openMemoryDb(): Db {
  const db = new Database(':memory:');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    const sql = MIGRATIONS[v]!;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

const statements = new WeakMap<Db, Map<string, Database.Statement>>();

/** A prepared statement, compiled once per database: preparing costs more than running a small query. */
export function stmt(db: Db, sql: string): Database.Statement {
  let m = statements.get(db);
  if (!m) statements.set(db, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = db.prepare(sql)));
  return s;
}
