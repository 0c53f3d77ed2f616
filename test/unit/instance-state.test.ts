import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ALLOWED, HISTORY_LIMIT, InstanceStateMachine, IllegalTransition, type InstanceState, type Transition } from '../../src/worker/instance-state.js';

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

test('snapshot path is legal; nonsense is not; a failure ends through stopping', () => {
  const sm = new InstanceStateMachine('booting', 0);
  sm.to('initializing', 'x', 1);
  sm.to('snapshotting', 'x', 2);
  sm.to('restoring', 'x', 3);
  sm.to('idle', 'x', 4);
  const r = new InstanceStateMachine('restoring', 0);
  assert.throws(() => r.to('booting', 'x', 1), IllegalTransition, 'a broken snapshot is the core\'s to handle, not a cold boot in the same Worker');
  assert.throws(() => r.to('running', 'x', 1), IllegalTransition);
  const g = new InstanceStateMachine('booting', 0);
  g.to('failed', 'boom', 1);
  assert.throws(() => g.to('gone', 'x', 2), IllegalTransition);
  g.to('stopping', 'boom', 2);
  g.to('gone', 'boom', 3);
  assert.throws(() => g.to('idle', 'x', 4), IllegalTransition);
});

test('failed and stopping are reachable from every live state', () => {
  for (const path of [[], ['initializing'], ['initializing', 'idle'], ['initializing', 'idle', 'running'], ['initializing', 'snapshotting'], ['initializing', 'snapshotting', 'restoring']] as const) {
    const sm = new InstanceStateMachine('booting', 0);
    for (const s of path) sm.to(s, 'x', 1);
    assert.ok(sm.can('failed'), `failed from ${sm.state}`);
    assert.ok(sm.can('stopping'), `stopping from ${sm.state}`);
  }
});

test('the history is bounded', () => {
  const sm = new InstanceStateMachine('booting', 0);
  sm.to('initializing', 'x', 1);
  sm.to('idle', 'x', 2);
  for (let i = 0; i < 1000; i++) {
    sm.to('running', 'x', 3 + i);
    sm.to('idle', 'x', 3 + i);
  }
  assert.equal(sm.history.length, HISTORY_LIMIT);
  assert.equal(sm.dropped, 3 + 2000 - HISTORY_LIMIT);
});

test('the transition table in the module comment matches ALLOWED', () => {
  const src = readFileSync(fileURLToPath(new URL('../../src/worker/instance-state.ts', import.meta.url)), 'utf8');
  const lines = src.split('\n').map((l) => /^\/\/\s+([a-z]+)\s+->(.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  const table: Record<string, string[]> = {};
  for (const m of lines) table[m[1]!] = m[2]!.trim().split(/\s+/).filter(Boolean);
  assert.deepEqual(Object.keys(table).sort(), Object.keys(ALLOWED).sort());
  for (const [s, to] of Object.entries(ALLOWED)) assert.deepEqual([...table[s]!].sort(), [...to].sort(), `edges of ${s}`);
  // every edge of the drawing's states exists in the table
  for (const s of Object.keys(ALLOWED) as InstanceState[]) assert.ok(src.includes(s));
});
