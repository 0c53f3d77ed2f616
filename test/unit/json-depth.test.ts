// Issue 19 (deep JSON): the API's depth check, a pure function. It must agree with a
// plain recursive depth on any JSON value, and survive bodies deep enough to overflow
// a recursive walk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { depthField, formatPath, tooDeep } from '../../src/api/json-depth.js';

/** reference: levels of arrays/objects (a scalar is 0, {} is 1) */
function depth(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  const kids = Array.isArray(v) ? v : Object.values(v);
  return 1 + kids.reduce((m: number, k) => Math.max(m, depth(k)), 0);
}

function nested(levels: number, key = 'a'): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = { [key]: v };
  return v;
}

void test('property: a value is too deep exactly when its depth exceeds the limit, and the path leads to a container that deep', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 1, max: 9 }), (v, max) => {
      const p = tooDeep(v, max);
      assert.equal(p !== undefined, depth(v) > max);
      if (p) {
        let at: unknown = v;
        for (const k of p) at = (at as Record<string | number, unknown>)[k];
        assert.ok(typeof at === 'object' && at !== null, 'the path ends at an array or object');
        assert.equal(p.length, max, 'the first container past the limit: at level max + 1');
      }
    }),
    { numRuns: 500 },
  );
});

void test('100,000 levels are checked without overflowing the stack', () => {
  let v: unknown = [];
  for (let i = 0; i < 100_000; i++) v = [v];
  const p = tooDeep(v, 100);
  assert.equal(p?.length, 100);
  assert.equal(tooDeep(nested(5000), 5001), undefined);
});

void test('the field is the top-level member; the message shows the start of the path', () => {
  const body = { exec: { kind: 'nodejs:20' }, parameters: [{ key: 'p', value: nested(10) }] };
  const p = tooDeep(body, 5)!;
  assert.deepEqual(p.slice(0, 4), ['parameters', 0, 'value', 'a']);
  assert.equal(depthField(p), 'parameters');
  assert.equal(formatPath(p), 'parameters[0].value.a…');
  const arr = tooDeep([[[[1]]]], 2)!;
  assert.equal(depthField(arr), 'body');
  assert.equal(formatPath(arr), 'body[0][0]');
  assert.equal(tooDeep('scalar', 1), undefined);
  assert.equal(tooDeep(undefined, 1), undefined);
});
