// Every subject, stream consumer and key name the cluster uses, in one place.
//
//   <p>.invoke.any               the shared work queue (durable consumer "shared", pulled by every node)
//   <p>.invoke.node.<node>       invocations addressed to one node (locality; durable consumer "node-<node>")
//   <p>.outcome.<requester>      outcomes for one requester (a node's ingress or a client; consumer "outcomes-<requester>")
//   <p>.cluster.activation       request/reply: "who has activation <id>?" (core NATS, every node answers)

export interface Names {
  prefix: string;
  invokeStream: string;
  outcomeStream: string;
}

export const SHARED_CONSUMER = 'shared';

export function invokeSubjects(n: Names): string {
  return `${n.prefix}.invoke.>`;
}
export function sharedSubject(n: Names): string {
  return `${n.prefix}.invoke.any`;
}
export function nodeSubject(n: Names, node: string): string {
  return `${n.prefix}.invoke.node.${node}`;
}
export function nodeConsumer(node: string): string {
  return `node-${node}`;
}
/** The node a per-node consumer belongs to, or undefined for other consumers. */
export function nodeOfConsumer(name: string): string | undefined {
  return name.startsWith('node-') ? name.slice(5) : undefined;
}
export function outcomeSubjects(n: Names): string {
  return `${n.prefix}.outcome.>`;
}
export function outcomeSubject(n: Names, requester: string): string {
  return `${n.prefix}.outcome.${requester}`;
}
export function outcomeConsumer(requester: string): string {
  return `outcomes-${requester}`;
}
export function activationLookupSubject(n: Names): string {
  return `${n.prefix}.cluster.activation`;
}
/** KV key of a function definition (function names may hold dots: KV keys allow them). */
export function functionKey(name: string): string {
  return `fn.${name}`;
}
export function functionOfKey(key: string): string | undefined {
  return key.startsWith('fn.') ? key.slice(3) : undefined;
}
/** Object-store name of a function's code archive: one object per function and code digest. */
export function codeObject(name: string, sha256: string): string {
  return `${name}/${sha256}`;
}
