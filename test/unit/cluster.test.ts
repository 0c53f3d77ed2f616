// The cluster (issue 13): its pure parts (capacity, locality, messages). The broker, registry sync
// and lookups against a real nats-server are in test/integration/cluster-nats.test.ts; the e2e test
// runs real daemons.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/schema.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import { pullCapacity, slotsOf } from '../../src/cluster/capacity.js';
import { nodeName } from '../../src/cluster/config.js';
import { choosePlacement, LocalityBook } from '../../src/cluster/locality.js';
import { bestRecord } from '../../src/cluster/lookup.js';
import { BadMessageError, decodeInvocation, encode, outcomeOf, resultOf } from '../../src/cluster/messages.js';
import { emptyCounters, presenceOf, type NodeStatus } from '../../src/cluster/node-status.js';
import { FaasError } from '../../src/core/errors.js';
import { inst, status } from '../cluster-helpers/pool-status.js';

function hb(node: string, at: number, functions: NodeStatus['functions'], free = 1, queued = 0): NodeStatus {
  return { node, startedAt: 0, at, version: 'x', memoryUsedMiB: 0, memoryBudgetMiB: 1024, instances: 0, busy: 0, starting: 0, startSlots: 1, queued, queues: {}, functions, inFlight: 0, free, load: [0, 0, 0], counters: emptyCounters() };
}

describe('capacity', () => {
  test('a node pulls what it can serve now: idle instances plus the starts it may begin', () => {
    assert.equal(pullCapacity(status({ startSlots: 2 }), 0, 'auto'), 2);
    assert.equal(pullCapacity(status({ startSlots: 2, starting: 1 }), 1, 'auto'), 1);
    assert.equal(pullCapacity(status({ startSlots: 1, busy: 1, instances: [inst('f', 'busy'), inst('f', 'idle')] }), 1, 'auto'), 2);
    assert.equal(slotsOf(status({ startSlots: 1, busy: 1, instances: [inst('f', 'busy'), inst('f', 'idle')] })), 3);
  });
  test('nothing while any request waits in a queue, and never past maxInFlight', () => {
    assert.equal(pullCapacity(status({ startSlots: 4, queues: { f: 1 } }), 0, 'auto'), 0);
    assert.equal(pullCapacity(status({ startSlots: 4 }), 0, 3), 3);
    assert.equal(pullCapacity(status({ startSlots: 4 }), 5, 'auto'), 0);
  });
});

describe('locality', () => {
  const o = { self: 'a', nodeTimeoutMs: 1000 };
  test('warm first (this node first), then a snapshot with room, else the shared queue', () => {
    const nodes = [hb('a', 100, { f: { idle: 0, busy: 1, starting: 0, snapshot: true } }, 0), hb('b', 100, { f: { idle: 1, busy: 0, starting: 0, snapshot: false } }), hb('c', 100, { g: { idle: 0, busy: 0, starting: 0, snapshot: true } })];
    assert.deepEqual(choosePlacement('f', nodes, 200, o), { kind: 'node', node: 'b', why: 'warm' });
    assert.deepEqual(choosePlacement('g', nodes, 200, o), { kind: 'node', node: 'c', why: 'snapshot' });
    assert.deepEqual(choosePlacement('h', nodes, 200, o), { kind: 'shared' });
    // a snapshot on a node without room does not count (its busy instance does)
    assert.deepEqual(choosePlacement('f', [nodes[0]!], 200, o), { kind: 'node', node: 'a', why: 'busy' });
    assert.deepEqual(choosePlacement('f', [hb('a', 100, { f: { idle: 0, busy: 0, starting: 0, snapshot: true } }, 0)], 200, o), { kind: 'shared' });
    // a silent node is down
    assert.deepEqual(choosePlacement('f', nodes, 5000, o), { kind: 'shared' });
    // a busy instance on a node with nothing queued serves next; not on a node with a queue
    assert.deepEqual(choosePlacement('g', [hb('d', 100, { g: { idle: 0, busy: 1, starting: 0, snapshot: false } }, 0)], 200, o), { kind: 'node', node: 'd', why: 'busy' });
    assert.deepEqual(choosePlacement('g', [hb('d', 100, { g: { idle: 0, busy: 1, starting: 0, snapshot: false } }, 0, 1)], 200, o), { kind: 'shared' });
    assert.deepEqual(choosePlacement('g', [hb('d', 100, { g: { idle: 0, busy: 1, starting: 0, snapshot: false } }, 0)], 200, o, () => ({ fn: 1, total: 1 })), { kind: 'shared' });
  });
  test('requests sent since the last heartbeat are booked against the node', () => {
    const book = new LocalityBook();
    const nodes = [hb('b', 100, { f: { idle: 1, busy: 0, starting: 0, snapshot: false } })];
    assert.equal(book.choose('f', nodes, 150, o).kind, 'node');
    book.book('b', 'f', 150);
    assert.equal(book.choose('f', nodes, 160, o).kind, 'shared');
    book.heartbeat(hb('b', 170, { f: { idle: 1, busy: 0, starting: 0, snapshot: false } }));
    assert.equal(book.choose('f', [hb('b', 170, { f: { idle: 1, busy: 0, starting: 0, snapshot: false } })], 180, o).kind, 'node');
  });
  test('presence: instances by state, stale ones left out, ready snapshots', () => {
    const p = presenceOf({ instances: [inst('f', 'idle'), inst('f', 'busy'), inst('g', 'idle', true)] }, [{ function: 'g', status: 'ready' }, { function: 'h', status: 'creating' }]);
    assert.deepEqual(p, { f: { idle: 1, busy: 1, starting: 0, snapshot: false }, g: { idle: 0, busy: 0, starting: 0, snapshot: true } });
  });
});

describe('messages', () => {
  test('a malformed invocation names the wrong field, and its requester when it has one', () => {
    const bad = (o: unknown): BadMessageError => {
      try {
        decodeInvocation(new TextEncoder().encode(JSON.stringify(o)));
      } catch (err) {
        return err as BadMessageError;
      }
      throw new Error('accepted');
    };
    const e = bad({ v: 1, id: 'x', requester: 'n1', fn: 'f', params: [], receivedAt: 1 });
    assert.ok(e instanceof BadMessageError);
    assert.match(e.message, /params/);
    assert.equal(e.requester, 'n1');
    assert.equal(bad({ v: 1 }).requester, undefined);
    assert.throws(() => decodeInvocation(new TextEncoder().encode('nope')), BadMessageError);
  });
  test('an outcome carries the typed failure and rebuilds the HTTP error', () => {
    const err = new FaasError('unavailable', 'busy');
    err.retryAfterMs = 2000;
    const rec = { id: 'a' } as ActivationRecord;
    const o = outcomeOf('a', 'n1', { activation: rec, error: err, failure: { kind: 'rejected', reason: 'overloaded', message: 'busy', retryAfterMs: 2000 } });
    const back = resultOf(JSON.parse(new TextDecoder().decode(encode(o))));
    assert.equal(back.error?.status, 503);
    assert.equal(back.error?.retryAfterMs, 2000);
    assert.equal(back.failure?.kind, 'rejected');
  });
  test('the best copy of a record is one that ran, the latest', () => {
    const r = (status: ActivationRecord['status'], at: number, node: string): ActivationRecord => ({ id: 'x', status, node, timestamps: { responseSent: at } }) as ActivationRecord;
    assert.equal(bestRecord([r('rejected', 9, 'a'), r('success', 5, 'b'), r('success', 7, 'c')])?.node, 'c');
    assert.equal(bestRecord([]), undefined);
  });
  test('node names are stable per state directory and differ between them', () => {
    const c = parseConfig({}).cluster;
    assert.equal(nodeName(c, '/s/1', 'host.example'), nodeName(c, '/s/1', 'host.example'));
    assert.notEqual(nodeName(c, '/s/1', 'host'), nodeName(c, '/s/2', 'host'));
    assert.match(nodeName(c, '/s/1', 'host.example'), /^host-example-[0-9a-f]{8}$/);
  });
});

// issue 23: a heartbeat voids a node's booking in place (no delete and re-add); what the book
// answers is what a book that forgets the voided entry answers, with name and index keys, with
// heartbeats told (the daemon) or read lazily from beatAt (the simulator).
describe('locality book', () => {
  /** The book's rule written plainly: entries forgotten when a heartbeat made at or after them is seen. */
  class PlainBook {
    readonly m = new Map<string, { since: number; byFn: Map<string, number>; total: number }>();
    constructor(private readonly beatAt?: (node: string) => number) {}
    heartbeat(node: string, at: number): void {
      const b = this.m.get(node);
      if (b && at >= b.since) this.m.delete(node);
    }
    read(node: string): { since: number; byFn: Map<string, number>; total: number } | undefined {
      const b = this.m.get(node);
      if (b && this.beatAt && this.beatAt(node) >= b.since) this.m.delete(node);
      return this.m.get(node);
    }
    book(node: string, fn: string, now: number): void {
      let b = this.read(node);
      if (!b) this.m.set(node, (b = { since: now, byFn: new Map(), total: 0 }));
      b.byFn.set(fn, (b.byFn.get(fn) ?? 0) + 1);
      b.total++;
    }
  }
  const ops = fc.array(
    fc.record({ op: fc.constantFrom('book', 'beat', 'read'), node: fc.nat(4), fn: fc.nat(2), dt: fc.nat(3) }),
    { maxLength: 120 },
  );
  test('voided in place: the same bookings as a book that forgets them, by name and by index, told or lazy', () => {
    fc.assert(
      fc.property(ops, fc.boolean(), (seq, lazy) => {
        const beats = new Map<string, number>();
        const beatAt = lazy ? (node: string): number => beats.get(node) ?? -1 : undefined;
        const plain = new PlainBook(beatAt);
        const byName = new LocalityBook<string, string>(beatAt);
        const byIndex = new LocalityBook<number, number>(beatAt ? (k) => beatAt(`n${k}`) : undefined);
        let now = 0;
        for (const { op, node, fn, dt } of seq) {
          now += dt;
          const name = `n${node}`;
          if (op === 'book') {
            plain.book(name, `f${fn}`, now);
            byName.book(name, `f${fn}`, now);
            byIndex.book(node, fn, now);
          } else if (op === 'beat') {
            beats.set(name, now);
            if (!lazy) {
              plain.heartbeat(name, now);
              byName.heartbeat({ node: name, at: now });
              byIndex.heartbeat({ node, at: now });
            }
          }
          for (let k = 0; k < 5; k++) {
            const want = plain.read(`n${k}`);
            for (let f = 0; f < 3; f++) {
              const exp = { fn: want?.byFn.get(`f${f}`) ?? 0, total: want?.total ?? 0 };
              assert.deepEqual(byName.booking(`n${k}`, `f${f}`), exp);
              assert.deepEqual(byIndex.booking(k, f), exp);
            }
            assert.equal(byIndex.bookedAt(k) === undefined, want === undefined);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
