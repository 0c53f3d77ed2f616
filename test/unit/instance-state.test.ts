import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InstanceStateMachine, IllegalTransition, type Transition } from '../../src/vmpool/instance-state.js';

test('cold path: booting → initializing → idle ⇄ running → stopping → gone, each transition stamped', () => {
  const seen: Transition[] = [];
  const sm = new InstanceStateMachine('booting', 1, (t) => seen.push(t));
  sm.to('initializing', 'agent ready', 2);
  sm.to('idle', 'started', 3);
  sm.to('running', 'a1', 4);
  sm.to('idle', 'done', 5);
  sm.to('stopping', 'ttl', 6);
  sm.to('gone', 'ttl', 7);
  assert.deepEqual(seen.map((t) => t.to), ['initializing', 'idle', 'running', 'idle', 'stopping', 'gone']);
  assert.deepEqual(seen.map((t) => t.at), [2, 3, 4, 5, 6, 7]);
  assert.equal(sm.history.length, 7);
});

test('snapshot path and restore fallback are legal; nonsense is not', () => {
  const sm = new InstanceStateMachine('booting', 0);
  sm.to('initializing', 'x');
  sm.to('snapshotting', 'x');
  sm.to('restoring', 'x');
  sm.to('idle', 'x');
  const r = new InstanceStateMachine('restoring', 0);
  r.to('booting', 'snapshot corrupt');
  assert.throws(() => r.to('running', 'x'), IllegalTransition);
  const g = new InstanceStateMachine('booting', 0);
  g.end('failed: boom');
  assert.equal(g.state, 'gone');
  assert.deepEqual(g.history.map((t) => t.to), ['booting', 'failed', 'stopping', 'gone']);
  assert.throws(() => g.to('idle', 'x'), IllegalTransition);
  assert.equal(g.end('again'), false);
});

test('failed is reachable from every live state', () => {
  for (const path of [[], ['initializing'], ['initializing', 'idle'], ['initializing', 'idle', 'running'], ['initializing', 'snapshotting']] as const) {
    const sm = new InstanceStateMachine('booting', 0);
    for (const s of path) sm.to(s, 'x');
    assert.ok(sm.can('failed'), `failed from ${sm.state}`);
  }
});
