// Which action a name means and with which parameters (pure given the lookups):
// an action in a package binding is the bound package's action; its default
// parameters are, lowest first, the package's, the binding's, the action's own —
// and an invocation's parameters go over all of them (OpenWhisk's order). A
// sequence's components are checked when it is created: each must exist, none may
// lead back to the sequence, and the actions it runs in all are at most the limit.

import { FaasError } from '../../core/errors.js';
import type { FunctionDef } from '../../registry/registry.js';
import type { Entity, Params } from './entities.js';
import { splitActionName } from './names.js';

/** OpenWhisk's default `actionSequenceLimit`. */
export const SEQUENCE_LIMIT = 50;

export const SEQUENCE_MESSAGES = {
  tooLong: 'Too many actions in the sequence.',
  noComponent: 'No component specified for the sequence.',
  cyclic: 'Sequence may not refer to itself.',
  notFound: 'Sequence component does not exist.',
} as const;

export interface Lookups {
  fn(name: string): FunctionDef | undefined;
  sequence(name: string): Entity<'sequence'> | undefined;
  pkg(name: string): Entity<'package'> | undefined;
  /** this node's namespace: a binding of another namespace's package resolves to nothing */
  namespace: string;
}

interface Common {
  /** FaaSCell's name of the action run (through a binding: the bound package's action) */
  name: string;
  /** the package's and binding's parameters, under the action's own */
  inherited: Params;
  /** every default parameter: inherited, then the action's own */
  defaults: Params;
  annotations: Params;
}
export type ResolvedAction = (Common & { kind: 'function'; def: FunctionDef }) | (Common & { kind: 'sequence'; entity: Entity<'sequence'> });

/** Parameters merged in order, later layers over earlier ones. */
export function mergeParams(...layers: (Params | undefined)[]): Params {
  return Object.assign({}, ...layers.filter((l) => l !== undefined)) as Params;
}

/** The parameters of an invocation that a `final` action protects (its defaults, inherited ones included). */
export function finalClash(annotations: Params, defaults: Params, own: Params): string[] {
  if (annotations.final !== true) return [];
  return Object.keys(own).filter((k) => k in defaults);
}

/** The package an action's package part means: itself, or the package a binding binds (with the binding's parameters). */
export function resolvePackage(name: string, l: Lookups): { pkg: string; params: Params } | undefined {
  const p = l.pkg(name);
  if (!p) return undefined;
  const b = p.doc.binding;
  if (!b) return { pkg: name, params: p.doc.parameters };
  if (b.namespace !== l.namespace && b.namespace !== '_') return undefined;
  const bound = l.pkg(b.name);
  if (!bound || bound.doc.binding) return undefined;
  return { pkg: b.name, params: mergeParams(bound.doc.parameters, p.doc.parameters) };
}

/** What `name` (FaaSCell's form) runs, or undefined when there is no such action. */
export function resolveAction(name: string, l: Lookups): ResolvedAction | undefined {
  const { pkg, name: own } = splitActionName(name);
  let target = name;
  let inherited: Params = {};
  if (pkg !== undefined) {
    const p = resolvePackage(pkg, l);
    if (!p) return undefined;
    target = `${p.pkg}/${own}`;
    inherited = p.params;
  }
  const def = l.fn(target);
  if (def) return { kind: 'function', name: target, def, inherited, defaults: mergeParams(inherited, def.parameters), annotations: def.annotations };
  const seq = l.sequence(target);
  if (seq) return { kind: 'sequence', name: target, entity: seq, inherited, defaults: mergeParams(inherited, seq.doc.parameters), annotations: seq.doc.annotations };
  return undefined;
}

const seqError = (message: string): FaasError => new FaasError('bad_request', message, 'exec.components');

/**
 * Checks a sequence `name` about to get `components` (FaaSCell names): each exists,
 * none leads back to `name` (the sequences among them inlined), and the atomic
 * actions it would run number at most `limit`. Returns the components as resolved.
 */
export function checkSequence(name: string, components: string[], l: Lookups, limit = SEQUENCE_LIMIT): void {
  if (components.length === 0) throw seqError(SEQUENCE_MESSAGES.noComponent);
  const count = (list: string[], seen: string[]): number => {
    let n = 0;
    for (const c of list) {
      if (c === name) throw seqError(SEQUENCE_MESSAGES.cyclic);
      const r = resolveAction(c, l);
      if (!r) throw seqError(`${SEQUENCE_MESSAGES.notFound} (${c})`);
      if (r.name === name) throw seqError(SEQUENCE_MESSAGES.cyclic);
      if (r.kind === 'function') n += 1;
      else {
        // a sequence already on the path is a cycle that does not pass through `name` (cannot exist once checked)
        if (seen.includes(r.name)) throw seqError(SEQUENCE_MESSAGES.cyclic);
        n += count(r.entity.doc.components, [...seen, r.name]);
      }
      if (n > limit) throw seqError(SEQUENCE_MESSAGES.tooLong);
    }
    return n;
  };
  count(components, [name]);
}
