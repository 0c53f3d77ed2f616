// The broker's queue deadline (issue 18): the shared rule (src/cluster/deadline.ts), the hand-back
// rule past it, and the claims that make exactly one party answer (src/cluster/claims.ts over an
// in-memory stand-in for the JetStream KV bucket with its create / update-at-revision semantics).
// Through real nats-server and real daemons: test/e2e/cluster.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KV } from '@nats-io/kv';
import { Claims, claimKey, claimPulled } from '../../src/cluster/claims.js';
import { claimFor, decodeClaim, encodeClaim, pastDeadline, pullVerdict, queueDeadline, redeliveryDeadline, type Claim, type PulledCopy } from '../../src/cluster/deadline.js';
import { setImmediate } from 'node:timers/promises';
import { handsBack } from '../../src/cluster/handback.js';
import { decodeInvocation, encode } from '../../src/cluster/messages.js';

/** The KV operations Claims uses, with JetStream's semantics: create fails on a live key, update needs the last revision. */
class MemoryKv {
  private rev = 0;
  readonly keys = new Map<string, { value: string; revision: number; op: 'PUT' | 'DEL' }>();
  failing = false;
  create(k: string, v: string): Promise<number> {
    if (this.failing) return Promise.reject(new Error('no responders'));
    const e = this.keys.get(k);
    if (e && e.op === 'PUT') return Promise.reject(new Error('wrong last sequence'));
    this.keys.set(k, { value: v, revision: ++this.rev, op: 'PUT' });
    return Promise.resolve(this.rev);
  }
  update(k: string, v: string, revision: number): Promise<number> {
    const e = this.keys.get(k);
    if (!e || e.revision !== revision) return Promise.reject(new Error('wrong last sequence'));
    this.keys.set(k, { value: v, revision: ++this.rev, op: 'PUT' });
    return Promise.resolve(this.rev);
  }
  get(k: string): Promise<{ operation: 'PUT' | 'DEL'; revision: number; string(): string } | null> {
    if (this.failing) return Promise.reject(new Error('no responders'));
    const e = this.keys.get(k);
    return Promise.resolve(e ? { operation: e.op, revision: e.revision, string: () => e.value } : null);
  }
  delete(k: string): Promise<void> {
    const e = this.keys.get(k);
    if (e) this.keys.set(k, { value: '', revision: ++this.rev, op: 'DEL' });
    return Promise.resolve();
  }
}

const claimsOn = (kv: MemoryKv): Claims => new Claims(kv as unknown as KV);

describe('the queue deadline rule', () => {
  test('accepted (or redelivered) + maxQueueDelayMs; at the deadline it is past', () => {
    assert.equal(queueDeadline(1000, 500), 1500);
    assert.equal(pastDeadline(1499, 1500), false);
    assert.equal(pastDeadline(1500, 1500), true);
  });

  // a copy as the puller sees it: accepted so that its deadline is `deadline`, ack wait 500 ms, max queue delay 1 s
  const copyOf = (deadline: number, redelivered = false, deliveries = redelivered ? 2 : 1): PulledCopy => ({ deadline, redelivered, ackWaitMs: 500, maxQueueDelayMs: 1000, deliveries, maxDeliveries: 5 });

  test('the puller: claim and run before the deadline, claim and refuse after it', () => {
    assert.deepEqual(pullVerdict(1000, copyOf(1500), undefined), { kind: 'claim', then: 'run' });
    assert.deepEqual(pullVerdict(1500, copyOf(1500), undefined), { kind: 'claim', then: 'refuse' });
    // redelivered with no claim (nak'd when the claims bucket was unreachable): it waited since it was accepted
    assert.deepEqual(pullVerdict(1400, copyOf(1500, true), undefined), { kind: 'claim', then: 'run' });
    assert.deepEqual(pullVerdict(9000, copyOf(1500, true), undefined), { kind: 'claim', then: 'refuse' });
  });

  test('a redelivery waits again from when JetStream redelivered it: its holder last held it + ack wait + max queue delay', () => {
    assert.equal(redeliveryDeadline(1200, 500, 1000), 2700);
    const held: Claim = { state: 'taken', node: 'b', at: 1000, heldAt: 1200 };
    // the accepted deadline (1500) is long past; the redelivery's (2700) is not
    assert.deepEqual(pullVerdict(2699, copyOf(1500, true), held), { kind: 'take_over', from: 'b', then: 'run' });
    assert.deepEqual(pullVerdict(2700, copyOf(1500, true), held), { kind: 'take_over', from: 'b', then: 'refuse' });
    // a copy rescued from a dead node's queue (not redelivered, a new queuing time) counts from its rescue
    assert.deepEqual(pullVerdict(2000, copyOf(2500), held), { kind: 'take_over', from: 'b', then: 'run' });
    assert.deepEqual(pullVerdict(2500, copyOf(2500), held), { kind: 'take_over', from: 'b', then: 'refuse' });
  });

  test('a redelivery loop ends: past maxDeliveries the copy is given up, whatever the clock', () => {
    const held: Claim = { state: 'taken', node: 'b', at: 1000, heldAt: 1000 };
    assert.deepEqual(pullVerdict(1100, copyOf(1500, true, 5), held), { kind: 'take_over', from: 'b', then: 'run' });
    assert.deepEqual(pullVerdict(1100, copyOf(1500, true, 6), held), { kind: 'take_over', from: 'b', then: 'give_up' });
    assert.deepEqual(pullVerdict(1100, copyOf(1500, true, 6), undefined), { kind: 'claim', then: 'give_up' });
    assert.deepEqual(claimFor('give_up', 'c', 1100), { state: 'expired', by: 'c', at: 1100 });
    assert.deepEqual(claimFor('run', 'c', 1100), { state: 'taken', node: 'c', at: 1100, heldAt: 1100 });
  });

  test('the puller: an expired claim is dropped (someone answered it)', () => {
    assert.deepEqual(pullVerdict(1000, copyOf(1500, true), { state: 'expired', by: 'a', at: 1500 }), { kind: 'drop' });
    assert.deepEqual(pullVerdict(1000, copyOf(1500), { state: 'expired', by: 'a', at: 900 }), { kind: 'drop' });
    assert.deepEqual(pullVerdict(1000, copyOf(1500, true, 9), { state: 'expired', by: 'a', at: 900 }), { kind: 'drop' });
  });

  test('a refusal at capacity is handed back only before the deadline (the simulator broker uses the same rule)', () => {
    assert.equal(handsBack('overloaded', 0, 5, 1499, 1500), true);
    assert.equal(handsBack('overloaded', 0, 5, 1500, 1500), false);
    assert.equal(handsBack('overloaded', 5, 5, 0, 1500), false);
    assert.equal(handsBack('not_found', 0, 5, 0, 1500), false);
  });

  test('claims round-trip; anything else reads as no claim; keys are KV-safe', () => {
    const cs: Claim[] = [
      { state: 'taken', node: 'n1', at: 5, heldAt: 7 },
      { state: 'expired', by: 'n2', at: 6 },
    ];
    for (const c of cs) assert.deepEqual(decodeClaim(encodeClaim(c)), c);
    // a claim written before heldAt existed: held since it was taken
    assert.deepEqual(decodeClaim('{"state":"taken","node":"n1","at":5}'), { state: 'taken', node: 'n1', at: 5, heldAt: 5 });
    assert.equal(decodeClaim('nope'), undefined);
    assert.equal(decodeClaim('{"state":"taken"}'), undefined);
    assert.equal(claimKey('0b4e-11_AB'), 'a.0b4e-11_AB');
    assert.match(claimKey('with space.and.dots'), /^h\.[0-9a-f]{64}$/);
  });

  test('the message carries the requester deadline inputs; bad ones are refused naming the field', () => {
    const m = { v: 1 as const, id: 'x1', fn: 'f', params: {}, receivedAt: 10, requester: 'n1', redeliveries: 0, handbacks: 0, maxQueueDelayMs: 500, queuedAt: 20 };
    const back = decodeInvocation(encode(m));
    assert.equal(back.maxQueueDelayMs, 500);
    assert.equal(back.queuedAt, 20);
    assert.throws(() => decodeInvocation(encode({ ...m, maxQueueDelayMs: -1 })), /maxQueueDelayMs/);
    assert.throws(() => decodeInvocation(encode({ ...m, queuedAt: 'soon' as unknown as number })), /queuedAt/);
  });
});

describe('claims: exactly one of the puller and the ingress answers', () => {
  // accepted at deadline - 1000 (max queue delay 1 s), ack wait 500 ms
  const pull = async (c: Claims, id: string, node: string, now: number, deadline: number, redelivered = false, deliveries = redelivered ? 2 : 1): Promise<'run' | 'refuse' | 'give_up' | 'drop'> =>
    (await claimPulled(c, id, node, now, { deadline, redelivered, ackWaitMs: 500, maxQueueDelayMs: 1000, deliveries, maxDeliveries: 5 })).then;
  const ingressExpires = async (c: Claims, id: string): Promise<boolean> => (await c.create(id, { state: 'expired', by: 'ingress', at: 0 })).created;

  test('a node pulls before the deadline: it runs, the ingress waits for its outcome', async () => {
    const c = claimsOn(new MemoryKv());
    assert.equal(await pull(c, 'i1', 'n2', 100, 1000), 'run');
    assert.equal(await ingressExpires(c, 'i1'), false);
  });

  test('nobody pulls by the deadline: the ingress answers; a node pulling it later drops it', async () => {
    const c = claimsOn(new MemoryKv());
    assert.equal(await ingressExpires(c, 'i1'), true);
    assert.equal(await pull(c, 'i1', 'n2', 2000, 1000), 'drop');
    // its copy handed back or redelivered is dropped as well
    assert.equal(await pull(c, 'i1', 'n3', 500, 1000, true), 'drop');
  });

  test('the ingress is dead: a node pulling it past the deadline refuses it (answers) instead of running it, once', async () => {
    const c = claimsOn(new MemoryKv());
    assert.equal(await pull(c, 'i1', 'n2', 2000, 1000), 'refuse');
    assert.equal(await pull(c, 'i1', 'n3', 2001, 1000), 'drop');
  });

  test('hand-back releases the claim: the next puller claims it again, or the ingress refuses it at the deadline', async () => {
    const c = claimsOn(new MemoryKv());
    assert.equal(await pull(c, 'i1', 'n2', 100, 1000), 'run');
    await c.release('i1');
    assert.equal(await pull(c, 'i1', 'n3', 200, 1000), 'run');
    await c.release('i1');
    assert.equal(await ingressExpires(c, 'i1'), true);
    assert.equal(await pull(c, 'i1', 'n4', 300, 1000), 'drop');
  });

  test('the node that took it died: its redelivery is taken over and run within its deadline; the ingress still waits', async () => {
    const c = claimsOn(new MemoryKv());
    assert.equal(await pull(c, 'i1', 'n2', 100, 1000), 'run');
    // n2 took it at 100: redelivered at 600, its deadline 1600
    assert.equal(await pull(c, 'i1', 'n3', 1599, 1000, true), 'run');
    assert.equal(await ingressExpires(c, 'i1'), false);
  });

  test('a redelivery past its deadline is refused once by the node that takes it over, never run; the next copy is dropped', async () => {
    const c = claimsOn(new MemoryKv());
    assert.equal(await pull(c, 'i1', 'n2', 100, 1000), 'run');
    assert.equal(await pull(c, 'i1', 'n3', 1600, 1000, true), 'refuse');
    // the ingress waits for n3's refusal; any further copy is dropped
    assert.equal(await ingressExpires(c, 'i1'), false);
    assert.equal(await pull(c, 'i1', 'n4', 1700, 1000, true, 3), 'drop');
  });

  test('a holder renews its claim with each in-progress ack: its redelivery is dated from the last renewal', async () => {
    const kv = new MemoryKv();
    const c = claimsOn(kv);
    const took = await claimPulled(c, 'i1', 'n2', 100, { deadline: 1000, redelivered: false, ackWaitMs: 500, maxQueueDelayMs: 1000, deliveries: 1, maxDeliveries: 5 });
    assert.equal(took.then, 'run');
    if (took.then !== 'run') return;
    took.held.renew(5000); // a long run, kept alive until 5000
    await setImmediate();
    assert.deepEqual(decodeClaim(kv.keys.get(claimKey('i1'))!.value), { state: 'taken', node: 'n2', at: 100, heldAt: 5000 });
    took.held.renew(6000);
    await setImmediate();
    // n2 stopped at 6000: redelivered at 6500, refused from 7500 on
    assert.equal(await pull(c, 'i1', 'n3', 7499, 1000, true), 'run');
    // the claim now n3's: n2's late renewal (compare-and-set) fails and changes nothing
    took.held.renew(7000);
    await setImmediate();
    assert.deepEqual(decodeClaim(kv.keys.get(claimKey('i1'))!.value), { state: 'taken', node: 'n3', at: 7499, heldAt: 7499 });
  });

  test('past maxDeliveries the copy is given up once, the next dropped', async () => {
    const c = claimsOn(new MemoryKv());
    assert.equal(await pull(c, 'i1', 'n2', 100, 1000), 'run');
    assert.equal(await pull(c, 'i1', 'n3', 200, 1000, true, 6), 'give_up');
    assert.equal(await pull(c, 'i1', 'n4', 300, 1000, true, 7), 'drop');
  });

  test('every interleaving of one puller and the ingress answers exactly once', async () => {
    for (const pullAt of [0, 999, 1000, 5000]) {
      for (const ingressFirst of [true, false]) {
        const c = claimsOn(new MemoryKv());
        let answers = 0;
        const ingress = async (): Promise<void> => {
          if (await ingressExpires(c, 'i')) answers++;
        };
        const puller = async (): Promise<void> => {
          const v = await pull(c, 'i', 'n2', pullAt, 1000);
          if (v !== 'drop') answers++;
        };
        if (ingressFirst) await ingress().then(puller);
        else await puller().then(ingress);
        // the ingress's timer fires only at the deadline; a puller before it always wins the claim
        assert.equal(answers, 1, `pull at ${pullAt}, ingress first ${ingressFirst}`);
      }
    }
  });

  test('the bucket unreachable: claiming throws (the puller leaves the message for a later delivery)', async () => {
    const kv = new MemoryKv();
    kv.failing = true;
    await assert.rejects(claimsOn(kv).create('i1', { state: 'taken', node: 'n', at: 0, heldAt: 0 }));
  });
});
