// The cluster simulator's presence index (src/sim/cluster/presence.ts) and its fast warm choice: the same
// node as the daemon's PlacementChooser offered every candidate, whatever the heartbeats, bookings,
// queues and dead nodes (issue 23: routing reads the idle lists instead of scanning every node).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LocalityBook, PlacementChooser } from '../../src/cluster/locality.js';
import { PresenceIndex, warmChoice } from '../../src/sim/cluster/presence.js';

// three 32-bit words of nodes, their edges (0, 31, 32, 63) often
const NODES = 70;
const nodeId = fc.oneof(fc.nat(NODES - 1), fc.constantFrom(0, 31, 32, 63));
const FNS = 3;

const report = fc.record({
  node: nodeId,
  fn: fc.nat(FNS - 1),
  idle: fc.oneof(fc.constant(0), fc.nat(4)),
  busy: fc.nat(2),
  starting: fc.nat(1),
  snapshot: fc.boolean(),
});

const scenario = fc.record({
  reports: fc.array(report, { maxLength: 80 }),
  bookings: fc.array(fc.record({ node: nodeId, fn: fc.nat(FNS - 1) }), { maxLength: 12 }),
  queued: fc.array(fc.nat(2), { minLength: NODES, maxLength: NODES }),
  dead: fc.array(fc.boolean(), { minLength: NODES, maxLength: NODES }),
  self: nodeId,
  fn: fc.nat(FNS - 1),
  cleared: fc.option(nodeId, { nil: undefined }),
});

test('warmChoice picks the node PlacementChooser picks among the warm candidates', () => {
  fc.assert(
    fc.property(scenario, (s) => {
      const index = new PresenceIndex(NODES);
      for (const r of s.reports) index.set(r.node, r.fn, r.idle, r.busy, r.starting, r.snapshot);
      if (s.cleared !== undefined) index.clearNode(s.cleared);
      // no heartbeat since the bookings: they all count
      const book = new LocalityBook<number, number>(() => -1);
      for (const b of s.bookings) book.book(b.node, b.fn, 0);
      const live = (k: number): boolean => !s.dead[k];
      const queued = Int32Array.from(s.queued);

      const c = new PlacementChooser<number>().reset(s.self);
      for (const e of index.candidates(s.fn)) {
        if (!live(e.node)) continue;
        const b = book.bookedAt(e.node);
        c.offer(e.node, queued[e.node]!, 0, e, b?.count(s.fn) ?? 0, b?.total ?? 0);
      }
      const expected = c.why === 'warm' ? c.node! : -1;
      assert.equal(warmChoice(index, s.fn, s.self, book, live, queued), expected);
    }),
    { numRuns: 3000, seed: 23 },
  );
});

test('the idle lists follow the heartbeats: each node once, in order, under its idle count', () => {
  fc.assert(
    fc.property(fc.array(report, { maxLength: 120 }), (reports) => {
      const index = new PresenceIndex(NODES);
      for (const r of reports) index.set(r.node, r.fn, r.idle, r.busy, r.starting, r.snapshot);
      for (let fn = 0; fn < FNS; fn++) {
        const want = index
          .candidates(fn)
          .filter((e) => e.idle > 0)
          .map((e) => `${e.idle}:${e.node}`)
          .sort();
        const got: string[] = [];
        index.idleNodes(fn).forEach((nodes, idle) => {
          assert.deepEqual(nodes, [...nodes].sort((a, b) => a - b));
          for (const node of nodes) got.push(`${idle}:${node}`);
        });
        assert.deepEqual(got.sort(), want);
      }
    }),
    { numRuns: 1000, seed: 23 },
  );
});
