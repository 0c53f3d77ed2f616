// The broker's deadline queue (src/sim/cluster/deadline-queue.ts) pops exactly what one EventHeap of the same
// pushes pops, in the same order: mostly in-order deadlines with ties, some earlier ones, pops in between.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EventHeap } from '../../src/sim/heap.js';
import { DeadlineQueue } from '../../src/sim/cluster/deadline-queue.js';

type Op = { kind: 'push'; back: number; step: number } | { kind: 'pop' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('push' as const), back: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 50 })), step: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'pop' as const }) },
);

void test('the deadline queue pops in the order of one heap of every entry', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
      const h = new EventHeap();
      const q = new DeadlineQueue();
      let now = 0;
      let id = 0;
      for (const o of ops) {
        if (o.kind === 'push') {
          now += o.step;
          // a deadline `back` before the latest (a hand-back keeps its earlier one), else in order
          const t = Math.max(0, now - o.back);
          h.push(t, ++id, id % 7);
          q.push(t, id, id % 7);
        } else {
          assert.equal(q.size, h.size);
          assert.equal(q.peekTime(), h.peekTime());
          if (h.size === 0) continue;
          assert.equal(q.peekPayload(), h.peekPayload());
          assert.equal(q.peekTag(), h.peekTag());
          h.pop();
          q.pop();
          assert.deepEqual([q.topTime, q.topPayload, q.topTag], [h.topTime, h.topPayload, h.topTag]);
        }
      }
      while (h.size > 0) {
        h.pop();
        q.pop();
        assert.deepEqual([q.topTime, q.topPayload, q.topTag], [h.topTime, h.topPayload, h.topTag]);
      }
      assert.equal(q.size, 0);
    }),
    { numRuns: 300 },
  );
});
