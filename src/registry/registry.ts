// The function registry: definitions survive a daemon restart (SQLite).
// `version` increases on every update; `codeSha256` + shape decide whether a
// warm instance or a snapshot is still valid for the current definition.

import { stmt, type Db } from './db.js';
import { badRequest, FaasError } from '../core/errors.js';
import { sha256, sniffCodeKind, unpackCode, unpackCodeAsync, type CodeKind, type UnpackedCode } from './code.js';
import { normalizeNetworkSpec, type NetworkSpec } from '../network/spec.js';
import { ChangeFeed } from '../core/change-feed.js';

export const FUNCTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** An OpenWhisk action inside a package is the function `package/action` (issue 22; docs/openwhisk.md). */
export const PACKAGED_FUNCTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface FunctionDef {
  name: string;
  version: number;
  codeKind: CodeKind;
  codeSha256: string;
  codeBytes: number;
  main: string;
  entry: string;
  memoryMiB: number;
  vcpus: number;
  timeoutMs: number;
  maxInstances: number;
  env: Record<string, string>;
  /** Default parameters: an invocation's own parameters are merged over them (OpenWhisk's action parameters). */
  parameters: Record<string, unknown>;
  /** Free-form key/value annotations (OpenWhisk's action annotations); FaaSCell itself reads none. */
  annotations: Record<string, unknown>;
  /** `none` (no way out of the VM, the default) or `egress` with an allowlist (docs/network.md) */
  network?: NetworkSpec;
  createdAt: number;
  updatedAt: number;
}

export interface FunctionInput {
  code: Buffer;
  codeKind?: CodeKind;
  entry?: string;
  memoryMiB?: number;
  vcpus?: number;
  timeoutMs?: number;
  maxInstances?: number;
  env?: Record<string, string>;
  parameters?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
  /** {mode: 'none' | 'egress', allow: [destinations]}; validated here (400 naming the field) */
  network?: unknown;
}

export interface RegistryLimits {
  defaults: { memoryMiB: number; vcpus: number; timeoutMs: number; maxInstances: number };
  limits: { maxMemoryMiB: number; maxVcpus: number; maxTimeoutMs: number; maxInstances: number };
  maxCodeBytes: number;
}

interface Row {
  name: string;
  version: number;
  code: Buffer;
  code_kind: string;
  code_sha256: string;
  main: string;
  entry: string;
  memory_mib: number;
  vcpus: number;
  timeout_ms: number;
  max_instances: number;
  env: string;
  parameters: string;
  annotations: string;
  network: string;
  created_at: number;
  updated_at: number;
}

/** A change of the registry, told to its listeners (the cluster's registry sync: src/cluster/registry-sync.ts). */
export type RegistryChange =
  | { kind: 'put'; def: FunctionDef; code: Buffer; origin: 'local' | 'replica' }
  | { kind: 'delete'; name: string; origin: 'local' | 'replica' };

/** A listener may return the promise of its work (publishing the change): `synced()` waits for it. */
export type RegistryListener = (c: RegistryChange) => Promise<void> | void;

export class Registry {
  private readonly unpacked = new Map<string, UnpackedCode>();
  private readonly defs = new Map<string, FunctionDef>();
  private readonly changes = new ChangeFeed<RegistryChange>();
  /** names another kind of entity holds (an OpenWhisk sequence): a local deploy under one is a conflict */
  private nameGuard: ((name: string) => string | undefined) | undefined;

  constructor(
    private readonly db: Db,
    private readonly limits: RegistryLimits,
  ) {}

  /**
   * Create or replace a function. Returns the stored definition and whether it was new.
   * `replica`: store another node's definition as it is (its version and times), not a new version.
   */
  put(name: string, input: FunctionInput, now = Date.now(), replica?: Pick<FunctionDef, 'version' | 'createdAt' | 'updatedAt'>, checked?: UnpackedCode): { def: FunctionDef; created: boolean } {
    const kind = this.checkCode(name, input);
    const taken = replica ? undefined : this.nameGuard?.(name);
    if (taken) throw new FaasError('conflict', `name: ${taken}`, 'name');
    const L = this.limits;
    const unpacked = checked ?? unpackCode(kind, input.code, this.unpackedBudget());
    const memoryMiB = input.memoryMiB ?? L.defaults.memoryMiB;
    const vcpus = input.vcpus ?? L.defaults.vcpus;
    const timeoutMs = input.timeoutMs ?? L.defaults.timeoutMs;
    const maxInstances = input.maxInstances ?? L.defaults.maxInstances;
    const entry = input.entry ?? 'main';
    range('memoryMiB', memoryMiB, 128, L.limits.maxMemoryMiB);
    range('vcpus', vcpus, 1, L.limits.maxVcpus);
    range('timeoutMs', timeoutMs, 100, L.limits.maxTimeoutMs);
    range('maxInstances', maxInstances, 1, L.limits.maxInstances);
    if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(entry)) throw badRequest('entry', 'must be a JavaScript identifier');
    const env = input.env ?? {};
    for (const [k, v] of Object.entries(env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw badRequest(`env.${k}`, 'not a valid variable name');
      if (typeof v !== 'string') throw badRequest(`env.${k}`, 'must be a string');
    }
    const parameters = jsonObject('parameters', input.parameters);
    const annotations = jsonObject('annotations', input.annotations);
    const network = normalizeNetworkSpec(input.network, 'network');
    const codeSha = sha256(input.code);
    const existing = this.row(name);
    const def: FunctionDef = {
      name,
      version: replica?.version ?? (existing?.version ?? 0) + 1,
      codeKind: kind,
      codeSha256: codeSha,
      codeBytes: input.code.length,
      main: unpacked.main,
      entry,
      memoryMiB,
      vcpus,
      timeoutMs,
      maxInstances,
      env,
      parameters,
      annotations,
      network,
      createdAt: replica?.createdAt ?? existing?.created_at ?? now,
      updatedAt: replica?.updatedAt ?? now,
    };
    stmt(this.db, 
        `INSERT INTO functions (name, version, code, code_kind, code_sha256, main, entry, memory_mib, vcpus, timeout_ms, max_instances, env, parameters, annotations, network, created_at, updated_at)
         VALUES (@name, @version, @code, @codeKind, @codeSha256, @main, @entry, @memoryMiB, @vcpus, @timeoutMs, @maxInstances, @env, @parameters, @annotations, @network, @createdAt, @updatedAt)
         ON CONFLICT(name) DO UPDATE SET version=excluded.version, code=excluded.code, code_kind=excluded.code_kind,
           code_sha256=excluded.code_sha256, main=excluded.main, entry=excluded.entry, memory_mib=excluded.memory_mib,
           vcpus=excluded.vcpus, timeout_ms=excluded.timeout_ms, max_instances=excluded.max_instances, env=excluded.env,
           parameters=excluded.parameters, annotations=excluded.annotations, network=excluded.network, updated_at=excluded.updated_at`,
      )
      .run({ ...def, code: input.code, env: JSON.stringify(env), parameters: JSON.stringify(parameters), annotations: JSON.stringify(annotations), network: JSON.stringify(network) });
    this.unpacked.set(cacheKey(def), unpacked);
    const frozen = freezeDef(def);
    this.defs.set(name, frozen);
    this.emit({ kind: 'put', def: frozen, code: input.code, origin: replica ? 'replica' : 'local' });
    return { def: frozen, created: !existing };
  }

  /** Store a definition made on another node (the cluster registry), exactly as it is. */
  putReplica(def: FunctionDef, code: Buffer): FunctionDef {
    if (sha256(code) !== def.codeSha256) throw badRequest('code', `function ${def.name}: the code does not match its digest`);
    // every input field of the definition (whatever fields it has) goes through the same checks as a deploy
    const { name, version, createdAt, updatedAt, codeSha256: _sha, codeBytes: _bytes, main: _main, ...input } = def;
    return this.put(name, { ...input, code }, updatedAt, { version, createdAt, updatedAt }).def;
  }

  /** What a deploy that leaves them out gets (functionDefaults). */
  defaults(): RegistryLimits['defaults'] {
    return this.limits.defaults;
  }

  /** Names held by entities the registry does not store (OpenWhisk sequences, issue 22). */
  guardNames(g: (name: string) => string | undefined): void {
    this.nameGuard = g;
  }

  /** Be told of every change (the cluster's registry sync). */
  onChange(l: RegistryListener): void {
    this.changes.on(l);
  }

  /** Resolves when every listener finished with the changes made so far (a deploy reached the cluster). */
  async synced(): Promise<void> {
    await this.changes.synced();
  }

  private emit(c: RegistryChange): void {
    this.changes.emit(c);
  }

  /** The current definition (kept in memory: read on every invocation; changed only through put/delete). */
  get(name: string): FunctionDef | undefined {
    const cached = this.defs.get(name);
    if (cached !== undefined) return cached;
    const r = this.row(name);
    if (!r) return undefined;
    const def = freezeDef(toDef(r));
    this.defs.set(name, def);
    return def;
  }

  mustGet(name: string): FunctionDef {
    const d = this.get(name);
    if (!d) throw new FaasError('not_found', `function ${name} does not exist`, 'name');
    return d;
  }

  list(): FunctionDef[] {
    return (stmt(this.db, 'SELECT * FROM functions ORDER BY name').all() as Row[]).map(toDef);
  }

  delete(name: string, origin: 'local' | 'replica' = 'local'): boolean {
    this.defs.delete(name);
    for (const k of [...this.unpacked.keys()]) if (k.startsWith(name + '@')) this.unpacked.delete(k);
    const gone = stmt(this.db, 'DELETE FROM functions WHERE name = ?').run(name).changes > 0;
    if (gone) this.emit({ kind: 'delete', name, origin });
    return gone;
  }

  /** The stored code as deployed (a JS file's text, or the archive's bytes) and its kind. */
  source(name: string): { code: Buffer; kind: CodeKind } | undefined {
    const r = stmt(this.db, 'SELECT code, code_kind FROM functions WHERE name = ?').get(name) as Pick<Row, 'code' | 'code_kind'> | undefined;
    return r ? { code: r.code, kind: r.code_kind as CodeKind } : undefined;
  }

  /**
   * `put` for a deploy from the API (issue 19): the archive is unpacked on the thread pool, with
   * its declared sizes checked first, so a zip bomb neither blocks the event loop nor fills memory.
   */
  async deploy(name: string, input: FunctionInput): Promise<{ def: FunctionDef; created: boolean }> {
    const kind = this.checkCode(name, input);
    const unpacked = await unpackCodeAsync(kind, input.code, this.unpackedBudget());
    return this.put(name, { ...input, codeKind: kind }, Date.now(), undefined, unpacked);
  }

  /** The cheap checks before any unpacking: the name, the code's size; its kind. */
  private checkCode(name: string, input: FunctionInput): CodeKind {
    if (!FUNCTION_NAME.test(name) && !PACKAGED_FUNCTION_NAME.test(name)) throw badRequest('name', 'must match ' + FUNCTION_NAME.source);
    const L = this.limits;
    if (input.code.length === 0) throw badRequest('code', 'is empty');
    if (input.code.length > L.maxCodeBytes) throw new FaasError('payload_too_large', `code: ${input.code.length} bytes exceeds ${L.maxCodeBytes}`, 'code');
    return input.codeKind ?? sniffCodeKind(input.code);
  }

  /** What an archive may unpack to (docs/configuration.md: api.maxCodeBytes). */
  private unpackedBudget(): number {
    return this.limits.maxCodeBytes * 4;
  }

  /** The unpacked code of the current version (cached in memory; the archive is unpacked once per version). */
  code(def: FunctionDef): UnpackedCode {
    const key = cacheKey(def);
    let u = this.unpacked.get(key);
    if (!u) {
      const r = stmt(this.db, 'SELECT code, code_kind FROM functions WHERE name = ? AND code_sha256 = ?').get(def.name, def.codeSha256) as
        | Pick<Row, 'code' | 'code_kind'>
        | undefined;
      if (!r) throw new FaasError('not_found', `function ${def.name} changed or was deleted`, 'name');
      u = unpackCode(r.code_kind as CodeKind, r.code, this.unpackedBudget());
      this.unpacked.set(key, u);
    }
    return u;
  }

  private row(name: string): Row | undefined {
    return stmt(this.db, 'SELECT * FROM functions WHERE name = ?').get(name) as Row | undefined;
  }
}

/** Definitions are shared by every reader: frozen, so none can change another's. */
function freezeDef(d: FunctionDef): FunctionDef {
  Object.freeze(d.env);
  Object.freeze(d.parameters);
  Object.freeze(d.annotations);
  return Object.freeze(d);
}

function cacheKey(d: FunctionDef): string {
  return `${d.name}@${d.codeSha256}`;
}

/** A JSON object (default {}); anything else is a bad request naming the field. */
function jsonObject(field: string, v: Record<string, unknown> | undefined): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest(field, 'must be a JSON object');
  return v;
}

function range(field: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw badRequest(field, `must be an integer from ${min} to ${max} (got ${v})`);
}

function toDef(r: Row): FunctionDef {
  return {
    name: r.name,
    version: r.version,
    codeKind: r.code_kind as CodeKind,
    codeSha256: r.code_sha256,
    codeBytes: r.code.length,
    main: r.main,
    entry: r.entry,
    memoryMiB: r.memory_mib,
    vcpus: r.vcpus,
    timeoutMs: r.timeout_ms,
    maxInstances: r.max_instances,
    env: JSON.parse(r.env) as Record<string, string>,
    parameters: JSON.parse(r.parameters) as Record<string, unknown>,
    annotations: JSON.parse(r.annotations) as Record<string, unknown>,
    network: JSON.parse(r.network) as NetworkSpec,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** An invocation's parameters: its own over the function's default parameters (OpenWhisk's rule). */
export function withDefaults(def: FunctionDef, own: unknown): unknown {
  if (Object.keys(def.parameters).length === 0 || typeof own !== 'object' || own === null || Array.isArray(own)) return own;
  return { ...def.parameters, ...(own as Record<string, unknown>) };
}

/** Parameters an invocation may not set: the defaults of a function annotated `final: true` (OpenWhisk's rule). */
export function finalClash(def: FunctionDef, own: Record<string, unknown>): string[] {
  if (def.annotations.final !== true) return [];
  return Object.keys(own).filter((k) => k in def.parameters);
}
