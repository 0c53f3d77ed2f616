// OpenWhisk's entity names (pure): `name`, `package/name`, `/namespace/name`,
// `/namespace/package/name` (and `namespace/package/name`, as the openwhisk client
// sends it) ⇄ FaaSCell's names: `name`, or `package/name` for an action in a package.
// One namespace per node: `_` means it.

import { FaasError } from '../../core/errors.js';
import { FUNCTION_NAME } from '../../registry/registry.js';

export interface QualifiedName {
  /** undefined: the caller's default namespace */
  namespace?: string;
  pkg?: string;
  name: string;
}

const bad = (field: string, message: string): FaasError => new FaasError('bad_request', `${field}: ${message}`, field);

/** Split an OpenWhisk name as the controller reads it. */
export function parseQualified(s: string, field: string): QualifiedName {
  const abs = s.startsWith('/');
  const parts = (abs ? s.slice(1) : s).split('/');
  if (parts.some((p) => p === '')) throw bad(field, `not an entity name: '${s}'`);
  if (abs) {
    if (parts.length === 2) return { namespace: parts[0], name: parts[1]! };
    if (parts.length === 3) return { namespace: parts[0], pkg: parts[1], name: parts[2]! };
  } else {
    if (parts.length === 1) return { name: parts[0]! };
    if (parts.length === 2) return { pkg: parts[0], name: parts[1]! };
    if (parts.length === 3) return { namespace: parts[0], pkg: parts[1], name: parts[2]! };
  }
  throw bad(field, `not an entity name: '${s}' (name, package/name, /namespace/name or /namespace/package/name)`);
}

/** Is `ns` this node's namespace (`_` or its name; undefined = the default)? */
export const isOwnNamespace = (ns: string | undefined, own: string): boolean => ns === undefined || ns === '_' || ns === own;

/** A simple entity name (package, trigger, rule, action without package) as FaaSCell accepts it. */
export function checkSimpleName(field: string, name: string): string {
  if (!FUNCTION_NAME.test(name)) throw bad(field, `must match ${FUNCTION_NAME.source} (got '${name}')`);
  return name;
}

/** FaaSCell's name of an action given in any OpenWhisk form; a name in another namespace is a 400 naming `field`. */
export function localActionName(s: string, own: string, field: string): string {
  const q = parseQualified(s, field);
  if (!isOwnNamespace(q.namespace, own)) throw bad(field, `'${s}' is in namespace '${q.namespace}': this node serves '${own}' only`);
  checkSimpleName(field, q.name);
  if (q.pkg !== undefined) checkSimpleName(field, q.pkg);
  return q.pkg === undefined ? q.name : `${q.pkg}/${q.name}`;
}

/** A FaaSCell action name split into its package (if any) and its own name. */
export function splitActionName(name: string): { pkg?: string; name: string } {
  const i = name.indexOf('/');
  return i < 0 ? { name } : { pkg: name.slice(0, i), name: name.slice(i + 1) };
}

/** OpenWhisk's `namespace` of an entity: `guest`, or `guest/pkg` for one in a package. */
export function entityNamespace(name: string, own: string): string {
  const { pkg } = splitActionName(name);
  return pkg === undefined ? own : `${own}/${pkg}`;
}

/** `/guest/name` or `/guest/pkg/name`: how rules and triggers name what they refer to. */
export const fullyQualified = (name: string, own: string): string => `/${own}/${name}`;
