// Activations looked up cluster-wide by id: every node answers a request on the
// lookup subject with its copy of the record (or null). The requester takes the
// best copy: one that ran (a node that handed the invocation back keeps a
// `rejected` record of that attempt) and, among those, the latest.

import type { Subscription } from '@nats-io/transport-node';
import type { ActivationRecord } from '../perf/activation.js';
import type { Broker } from './connection.js';
import { activationLookupSubject } from './subjects.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export function serveLookups(b: Broker, node: string, get: (id: string) => Promise<ActivationRecord | undefined>): Subscription {
  return b.nc.subscribe(activationLookupSubject(b.names), {
    callback: (err, msg) => {
      if (err) return;
      let id = '';
      try {
        const v = (JSON.parse(dec.decode(msg.data)) as { id?: unknown }).id;
        if (typeof v === 'string') id = v;
      } catch {
        // answered with null below
      }
      void (id ? get(id) : Promise.resolve(undefined)).then(
        (record) => msg.respond(enc.encode(JSON.stringify({ node, record: record ?? null }))),
        () => msg.respond(enc.encode(JSON.stringify({ node, record: null }))),
      );
    },
  });
}

export function bestRecord(copies: ActivationRecord[]): ActivationRecord | undefined {
  let best: ActivationRecord | undefined;
  const ran = (r: ActivationRecord): boolean => r.status !== 'rejected';
  const at = (r: ActivationRecord): number => r.timestamps.responseSent ?? r.timestamps.received ?? 0;
  for (const r of copies) {
    if (!best || (ran(r) && !ran(best)) || (ran(r) === ran(best) && at(r) > at(best))) best = r;
  }
  return best;
}

/** Ask every node; `expected` answers end the wait early. */
export async function lookupActivation(b: Broker, id: string, expected: number, maxWaitMs = 1500): Promise<ActivationRecord | undefined> {
  const copies: ActivationRecord[] = [];
  try {
    const it = await b.nc.requestMany(activationLookupSubject(b.names), enc.encode(JSON.stringify({ id })), { strategy: 'count', maxMessages: Math.max(1, expected), maxWait: maxWaitMs });
    for await (const m of it) {
      try {
        const r = (JSON.parse(dec.decode(m.data)) as { record: ActivationRecord | null }).record;
        if (r) copies.push(r);
      } catch {
        // a malformed answer counts as none
      }
    }
  } catch {
    // no node answered
  }
  return bestRecord(copies);
}
