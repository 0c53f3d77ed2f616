import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Actor, ActorSystem, AskTimeoutError, ActorStoppedError, type Reply, type ActorFailure } from '../../src/core/actor.js';
import { silentLogger } from '../../src/core/logger.js';

type Msg = { kind: 'add'; n: number } | { kind: 'get'; reply: Reply<number> } | { kind: 'boom' } | { kind: 'slow'; ms: number; reply: Reply<string> } | { kind: 'never'; reply: Reply<number> };

class Counter extends Actor<Msg> {
  total = 0;
  restarts = 0;
  order: number[] = [];
  protected async receive(m: Msg): Promise<void> {
    switch (m.kind) {
      case 'add':
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        this.order.push(m.n);
        this.total += m.n;
        return;
      case 'get':
        return m.reply.resolve(this.total);
      case 'boom':
        throw new Error('boom');
      case 'slow':
        await new Promise((r) => setTimeout(r, m.ms));
        return m.reply.resolve('done');
      case 'never':
        return;
    }
  }
  protected override onRestart(): void {
    this.restarts++;
    this.total = 0;
  }
}

function system(failures: ActorFailure[] = []): ActorSystem {
  return new ActorSystem(silentLogger, (f) => failures.push(f));
}

test('messages are handled one at a time, in order', async () => {
  const sys = system();
  const c = new Counter();
  const ref = sys.spawn('counter', c);
  for (let i = 1; i <= 20; i++) ref.tell({ kind: 'add', n: i });
  const total = await ref.ask<number>((reply) => ({ kind: 'get', reply }), 1000);
  assert.equal(total, 210);
  assert.deepEqual(c.order, Array.from({ length: 20 }, (_, i) => i + 1));
  await sys.shutdown();
});

test('ask times out with a clear error and a late reply is ignored', async () => {
  const sys = system();
  const ref = sys.spawn('c', new Counter());
  await assert.rejects(ref.ask<number>((reply) => ({ kind: 'never', reply }), 30), AskTimeoutError);
  await assert.rejects(ref.ask<string>((reply) => ({ kind: 'slow', ms: 80, reply }), 20), /did not answer within 20 ms/);
  await sys.shutdown();
});

test('a throwing handler restarts the actor, which keeps serving', async () => {
  const failures: ActorFailure[] = [];
  const sys = system(failures);
  const c = new Counter();
  const ref = sys.spawn('c', c, { supervision: { kind: 'restart', maxRestarts: 2, withinMs: 10_000 } });
  ref.tell({ kind: 'add', n: 5 });
  ref.tell({ kind: 'boom' });
  ref.tell({ kind: 'add', n: 7 });
  assert.equal(await ref.ask<number>((reply) => ({ kind: 'get', reply }), 1000), 7);
  assert.equal(c.restarts, 1);
  assert.equal(failures.length, 0);
  await sys.shutdown();
});

test('too many restarts escalate to the supervisor; nothing fails silently', async () => {
  const failures: ActorFailure[] = [];
  const sys = system(failures);
  const ref = sys.spawn('c', new Counter(), { supervision: { kind: 'restart', maxRestarts: 1, withinMs: 10_000 } });
  ref.tell({ kind: 'boom' });
  ref.tell({ kind: 'boom' });
  await ref.ask<number>((reply) => ({ kind: 'get', reply }), 1000);
  assert.equal(failures.length, 1);
  assert.equal(failures[0]!.actor, 'c');
  await sys.shutdown();
});

test('stop strategy stops the actor and tells the supervisor; asks then fail fast', async () => {
  const failures: ActorFailure[] = [];
  const sys = system(failures);
  const ref = sys.spawn('c', new Counter(), { supervision: { kind: 'stop' } });
  ref.tell({ kind: 'boom' });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(failures.length, 1);
  assert.equal(ref.stopped, true);
  await assert.rejects(ref.ask<number>((reply) => ({ kind: 'get', reply }), 100), ActorStoppedError);
  await sys.shutdown();
});

test('shutdown drains queued messages before stopping', async () => {
  const sys = system();
  const c = new Counter();
  const ref = sys.spawn('c', c);
  for (let i = 0; i < 10; i++) ref.tell({ kind: 'add', n: 1 });
  await sys.shutdown();
  assert.equal(c.total, 10);
  assert.equal(sys.size, 0);
});
