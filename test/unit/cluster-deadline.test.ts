// The broker's queue deadline (issue 18): the shared rule (src/cluster/deadline.ts), the hand-back
// rule past it, and the claims that make exactly one party answer (src/cluster/claims.ts over an
// in-memory stand-in for the JetStream KV bucket with its create / update-at-revision semantics).
// Through real nats-server and real daemons: test/e2e/cluster.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KV } from '@nats-io/kv';
import { Claims, claimKey, claimPulled } from '../../src/cluster/claims.js';
import { decodeClaim, encodeClaim, pastDeadline, pullVerdict, queueDeadline, type Claim } from '../../src/cluster/deadline.js';
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

  test('the puller: claim and run before the deadline, claim and refuse after it; a redelivered copy runs', () => {
    const copy = { deadline: 1500, redelivered: false };
    assert.deepEqual(pullVerdict(1000, copy, undefined), { kind: 'claim_run' });
    assert.deepEqual(pullVerdict(1500, copy, undefined), { kind: 'claim_refuse' });
    // the puller cannot know when JetStream redelivered it: it runs (the requester's timeout bounds it)
    assert.deepEqual(pullVerdict(9000, { ...copy, redelivered: true }, undefined), { kind: 'claim_run' });
  });

  test('the puller: an expired claim is dropped (its ingress answered); a taken one was lost by its node and is taken over', () => {
    const copy = { deadline: 1500, redelivered: true };
    assert.deepEqual(pullVerdict(1000, copy, { state: 'expired', by: 'a', at: 1500 }), { kind: 'drop' });
    assert.deepEqual(pullVerdict(1000, { ...copy, redelivered: false }, { state: 'expired', by: 'a', at: 900 }), { kind: 'drop' });
    assert.deepEqual(pullVerdict(9000, copy, { state: 'taken', node: 'b', at: 1200 }), { kind: 'take_over', from: 'b' });
  });

  test('a refusal at capacity is handed back only before the deadline (the simulator broker uses the same rule)', () => {
    assert.equal(handsBack('overloaded', 0, 5, 1499, 1500), true);
    assert.equal(handsBack('overloaded', 0, 5, 1500, 1500), false);
    assert.equal(handsBack('overloaded', 5, 5, 0, 1500), false);
    assert.equal(handsBack('not_found', 0, 5, 0, 1500), false);
  });

  test('claims round-trip; anything else reads as no claim; keys are KV-safe', () => {
    const cs: Claim[] = [
      { state: 'taken', node: 'n1', at: 5 },
      { state: 'expired', by: 'n2', at: 6 },
    ];
    for (const c of cs) assert.deepEqual(decodeClaim(encodeClaim(c)), c);
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
  const pull = (c: Claims, id: string, node: string, now: number, deadline: number, redelivered = false): Promise<'run' | 'refuse' | 'drop'> =>
    claimPulled(c, id, node, now, { deadline, redelivered });
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

  test('the node that took it died: the redelivered copy is taken over and run; the ingress still waits', async () => {
    const c = claimsOn(new MemoryKv());
    assert.equal(await pull(c, 'i1', 'n2', 100, 1000), 'run');
    assert.equal(await pull(c, 'i1', 'n3', 50_000, 1000, true), 'run');
    assert.equal(await ingressExpires(c, 'i1'), false);
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
    await assert.rejects(claimsOn(kv).create('i1', { state: 'taken', node: 'n', at: 0 }));
  });
});
