// OpenWhisk action documents ⇄ FaaSCell function definitions (pure).

import { FaasError } from '../../core/errors.js';
import type { CodeKind } from '../../registry/code.js';
import { sniffCodeKind } from '../../registry/code.js';
import type { FunctionDef, FunctionInput } from '../../registry/registry.js';
import { toList, toObject } from './context.js';
import type { Entity, SequenceDoc } from './entities.js';
import { entityNamespace, localActionName, splitActionName } from './names.js';
import { limitsOf, semver } from './records.js';

/** The body of PUT …/actions/{name}, as OpenWhisk's controller reads it. */
export interface ActionPut {
  namespace?: string;
  name?: string;
  exec?: { kind: string; code?: string; main?: string; binary?: boolean; image?: string; components?: unknown[] };
  parameters?: { key: string; value?: unknown; init?: boolean }[];
  annotations?: { key: string; value?: unknown }[];
  limits?: { timeout?: number; memory?: number; logs?: number; concurrency?: number; instances?: number };
  version?: string;
  publish?: boolean;
}

const keyValue = { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1 }, value: {}, init: { type: 'boolean' } } } as const;

/** JSON schema of ActionPut (fastify validates before the handler). */
export const actionPutSchema = {
  type: 'object',
  properties: {
    namespace: { type: 'string' },
    name: { type: 'string' },
    exec: {
      type: 'object',
      required: ['kind'],
      properties: { kind: { type: 'string', minLength: 1 }, code: { type: 'string' }, main: { type: 'string' }, binary: { type: 'boolean' }, image: { type: 'string' }, components: { type: 'array' } },
    },
    parameters: { type: 'array', items: keyValue },
    annotations: { type: 'array', items: keyValue },
    limits: {
      type: 'object',
      properties: { timeout: { type: 'integer' }, memory: { type: 'integer' }, logs: { type: 'integer' }, concurrency: { type: 'integer' }, instances: { type: 'integer' } },
    },
    version: { type: 'string' },
    publish: { type: 'boolean' },
  },
} as const;

/** The kind every action here runs as: the guest runs the host's Node.js. */
export const NODE_KIND = `nodejs:${process.versions.node.split('.')[0]}`;

const bad = (field: string, message: string): FaasError => new FaasError('bad_request', `${field}: ${message}`, field);

/** FaaSCell's field names in registry errors → OpenWhisk's. */
const FIELD: Record<string, string> = { memoryMiB: 'limits.memory', timeoutMs: 'limits.timeout', maxInstances: 'limits.instances', entry: 'exec.main', code: 'exec.code', parameters: 'parameters', annotations: 'annotations', name: 'name' };

/** A registry error restated with OpenWhisk's field names. */
export function openWhiskFieldError(e: FaasError): FaasError {
  const f = e.field ? FIELD[e.field] : undefined;
  if (!f || !e.field) return e;
  return new FaasError(e.code, e.message.startsWith(`${e.field}:`) ? `${f}:${e.message.slice(e.field.length + 1)}` : e.message, f);
}


/** exec.code as deployable bytes: source text, or a base64 zip / tar.gz (exec.binary or sniffed). */
function decodeCode(exec: NonNullable<ActionPut['exec']>): { code: Buffer; codeKind: CodeKind } {
  if (exec.code === undefined || exec.code === '') throw bad('exec.code', 'the action\'s code is required');
  const text = exec.code;
  const looksBase64 = /^[A-Za-z0-9+/=\s]+$/.test(text) && text.length % 4 === 0;
  if (exec.binary === true || looksBase64) {
    const raw = Buffer.from(text, 'base64');
    const kind = sniffCodeKind(raw);
    if (kind !== 'js') return { code: raw, codeKind: kind };
    if (exec.binary === true) throw bad('exec.code', 'binary code must be a base64 zip or tar.gz archive');
  }
  return { code: Buffer.from(text, 'utf8'), codeKind: 'js' };
}

/**
 * The FunctionInput of a PUT. On an update (overwrite with an existing action),
 * what the body leaves out is kept, as OpenWhisk keeps it: code, limits,
 * parameters and annotations.
 */
export function actionInput(body: ActionPut, existing?: { def: FunctionDef; code: Buffer; kind: CodeKind }): FunctionInput {
  const exec = body.exec;
  let code: Buffer;
  let codeKind: CodeKind;
  let entry: string;
  if (exec) {
    if (!/^nodejs(:[A-Za-z0-9._-]+)?$/.test(exec.kind)) {
      throw bad('exec.kind', `the runtime '${exec.kind}' is not supported by this platform: FaaSCell runs Node.js actions (nodejs:default, ${NODE_KIND}, …)`);
    }
    ({ code, codeKind } = decodeCode(exec));
    entry = exec.main === undefined || exec.main === '' ? 'main' : exec.main;
  } else if (existing) {
    code = existing.code;
    codeKind = existing.kind;
    entry = existing.def.entry;
  } else throw bad('exec', 'required when the action is created');
  const l = body.limits ?? {};
  if (l.concurrency !== undefined && l.concurrency !== 1) throw bad('limits.concurrency', 'FaaSCell runs one activation at a time per instance: only 1 is supported');
  if (l.logs !== undefined && (l.logs < 0 || l.logs > 10)) throw bad('limits.logs', `must be from 0 to 10 MB (got ${l.logs})`);
  const prev = existing?.def;
  const keep = !body.limits && prev;
  return {
    code,
    codeKind,
    entry,
    memoryMiB: l.memory ?? (keep ? prev.memoryMiB : undefined),
    timeoutMs: l.timeout ?? (keep ? prev.timeoutMs : undefined),
    maxInstances: l.instances ?? (keep ? prev.maxInstances : undefined),
    vcpus: prev?.vcpus,
    env: prev?.env,
    parameters: toObject(body.parameters) ?? prev?.parameters,
    annotations: toObject(body.annotations) ?? prev?.annotations,
  };
}

/** An action document as OpenWhisk returns it; `code` only when asked for (GET ?code=true). */
export function actionDocument(def: FunctionDef, namespace: string, code?: { code: Buffer; kind: CodeKind }): Record<string, unknown> {
  const exec: Record<string, unknown> = { kind: NODE_KIND, binary: def.codeKind !== 'js' };
  if (def.entry !== 'main') exec.main = def.entry;
  if (code) exec.code = code.kind === 'js' ? code.code.toString('utf8') : code.code.toString('base64');
  const annotations = toList(def.annotations);
  if (!('exec' in def.annotations)) annotations.push({ key: 'exec', value: 'nodejs' });
  return {
    namespace: entityNamespace(def.name, namespace),
    name: splitActionName(def.name).name,
    version: semver(def.version),
    publish: false,
    exec,
    annotations,
    parameters: toList(def.parameters),
    limits: { ...limitsOf({ timeout: def.timeoutMs, memory: def.memoryMiB }), instances: def.maxInstances },
    updated: def.updatedAt,
  };
}


/**
 * The sequence of a PUT with `exec.kind: sequence` (issue 22): components by name in
 * any OpenWhisk form, in this node's namespace; on an update, what the body leaves
 * out is kept. The components are checked against the store by the route.
 */
export function sequenceInput(body: ActionPut, namespace: string, defaults: { timeoutMs: number; memoryMiB: number }, existing?: SequenceDoc): SequenceDoc {
  const exec = body.exec;
  let components: string[];
  if (exec) {
    if (!Array.isArray(exec.components)) throw bad('exec.components', 'a sequence needs its components: an array of action names');
    components = exec.components.map((c, i) => {
      if (typeof c !== 'string') throw bad(`exec.components.${i}`, 'must be an action name');
      return localActionName(c, namespace, `exec.components.${i}`);
    });
  } else if (existing) components = existing.components;
  else throw bad('exec', 'required when the action is created');
  if (body.limits?.concurrency !== undefined && body.limits.concurrency !== 1) throw bad('limits.concurrency', 'only 1 is supported');
  return {
    components,
    parameters: toObject(body.parameters) ?? existing?.parameters ?? {},
    annotations: toObject(body.annotations) ?? existing?.annotations ?? {},
    limits: { timeout: body.limits?.timeout ?? existing?.limits.timeout ?? defaults.timeoutMs, memory: body.limits?.memory ?? existing?.limits.memory ?? defaults.memoryMiB },
  };
}

/** A sequence as OpenWhisk returns it: an action whose exec is the list of its components. */
export function sequenceDocument(e: Entity<'sequence'>, namespace: string): Record<string, unknown> {
  const annotations = toList(e.doc.annotations);
  if (!('exec' in e.doc.annotations)) annotations.push({ key: 'exec', value: 'sequence' });
  return {
    namespace: entityNamespace(e.name, namespace),
    name: splitActionName(e.name).name,
    version: semver(e.version),
    publish: false,
    exec: { kind: 'sequence', components: e.doc.components.map((c) => `/${namespace}/${c}`) },
    annotations,
    parameters: toList(e.doc.parameters),
    limits: limitsOf(e.doc.limits),
    updated: e.updatedAt,
  };
}
