// OpenWhisk's entities beyond actions (issue 22), kept in SQLite beside the
// function registry: packages (and bindings), sequences (actions without code of
// their own), triggers, rules, and the alarm feeds of triggers. Actions with code
// stay FaaSCell functions (an action in a package is the function `package/action`).
// Every change is told to listeners: the alarm source reschedules, and in a
// cluster the entity sync publishes it (src/cluster/entity-sync.ts).

import { ChangeFeed, type ChangeListener } from '../../core/change-feed.js';
import { stmt, type Db } from '../../registry/db.js';
import type { AlarmSpec } from '../alarms/schedule.js';

export type Params = Record<string, unknown>;

/** `{namespace, name}` of the package a binding binds. */
export interface BindingRef {
  namespace: string;
  name: string;
}

export interface PackageDoc {
  /** set: this package is a binding of another one (its parameters over the bound package's) */
  binding?: BindingRef;
  parameters: Params;
  annotations: Params;
  publish: boolean;
}

export interface SequenceDoc {
  /** action names as FaaSCell names them: `name` or `package/name` (the namespace is this node's) */
  components: string[];
  parameters: Params;
  annotations: Params;
  limits: { timeout: number; memory: number };
}

export interface TriggerDoc {
  parameters: Params;
  annotations: Params;
  publish: boolean;
}

export type RuleStatus = 'active' | 'inactive';

export interface RuleDoc {
  /** the trigger's name */
  trigger: string;
  /** the action's FaaSCell name (`name` or `package/name`) */
  action: string;
  status: RuleStatus;
  annotations: Params;
  publish: boolean;
}

/** An alarm feed of a trigger (entity name: the trigger's name). */
export interface AlarmDoc {
  /** the feed's parameters as given (what a READ returns, what an UPDATE changes) */
  params: Params;
  spec: AlarmSpec;
  /** what each firing passes to the trigger (the feed's `trigger_payload`) */
  payload: Params;
  /** the `once` feed's `deleteAfterFire`: delete the trigger (and its rules) after firing */
  deleteAfterFire: false | 'trigger' | 'rules';
}

export interface EntityDocs {
  package: PackageDoc;
  sequence: SequenceDoc;
  trigger: TriggerDoc;
  rule: RuleDoc;
  alarm: AlarmDoc;
}
export type EntityKind = keyof EntityDocs;
export const ENTITY_KINDS: readonly EntityKind[] = ['package', 'sequence', 'trigger', 'rule', 'alarm'];

export interface Entity<K extends EntityKind = EntityKind> {
  kind: K;
  name: string;
  doc: EntityDocs[K];
  /** increases on every update (OpenWhisk's version 0.0.N) */
  version: number;
  updatedAt: number;
}

export type EntityChange =
  | { kind: 'put'; entity: Entity; origin: 'local' | 'replica' }
  | { kind: 'delete'; entityKind: EntityKind; name: string; origin: 'local' | 'replica' };

interface Row {
  kind: string;
  name: string;
  doc: string;
  version: number;
  updated_at: number;
}

const toEntity = <K extends EntityKind>(r: Row): Entity<K> => ({ kind: r.kind as K, name: r.name, doc: JSON.parse(r.doc) as EntityDocs[K], version: r.version, updatedAt: r.updated_at });

export class OwEntities {
  private readonly changes = new ChangeFeed<EntityChange>();

  constructor(private readonly db: Db) {}

  get<K extends EntityKind>(kind: K, name: string): Entity<K> | undefined {
    const r = stmt(this.db, 'SELECT * FROM openwhisk_entities WHERE kind = ? AND name = ?').get(kind, name) as Row | undefined;
    return r ? toEntity<K>(r) : undefined;
  }

  /** Every entity of a kind, by name. */
  list<K extends EntityKind>(kind: K): Entity<K>[] {
    return (stmt(this.db, 'SELECT * FROM openwhisk_entities WHERE kind = ? ORDER BY name').all(kind) as Row[]).map((r) => toEntity<K>(r));
  }

  /** Create or replace (a new version). */
  put<K extends EntityKind>(kind: K, name: string, doc: EntityDocs[K], now = Date.now()): Entity<K> {
    const version = (this.get(kind, name)?.version ?? 0) + 1;
    const e: Entity<K> = { kind, name, doc, version, updatedAt: now };
    this.write(e);
    this.changes.emit({ kind: 'put', entity: e, origin: 'local' });
    return e;
  }

  /** Store an entity made on another node (the cluster), exactly as it is. */
  putReplica(e: Entity): void {
    this.write(e);
    this.changes.emit({ kind: 'put', entity: e, origin: 'replica' });
  }

  delete(kind: EntityKind, name: string, origin: 'local' | 'replica' = 'local'): boolean {
    const gone = stmt(this.db, 'DELETE FROM openwhisk_entities WHERE kind = ? AND name = ?').run(kind, name).changes > 0;
    if (gone) this.changes.emit({ kind: 'delete', entityKind: kind, name, origin });
    return gone;
  }

  onChange(l: ChangeListener<EntityChange>): void {
    this.changes.on(l);
  }

  /** Resolves when every listener finished with the changes so far (in a cluster: they reached the bucket). */
  async synced(): Promise<void> {
    await this.changes.synced();
  }

  private write(e: Entity): void {
    stmt(this.db, 'INSERT OR REPLACE INTO openwhisk_entities (kind, name, doc, version, updated_at) VALUES (?, ?, ?, ?, ?)').run(e.kind, e.name, JSON.stringify(e.doc), e.version, e.updatedAt);
  }
}
