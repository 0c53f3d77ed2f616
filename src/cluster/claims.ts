// The claims bucket: who answers an invocation, decided atomically in JetStream KV
// (the rule: src/cluster/deadline.ts). A claim is created with KV `create`, which
// fails when the key holds a value, so of a node pulling the invocation and the
// ingress refusing it at its deadline exactly one wins. A node that hands work back
// deletes its claim first (the next puller may claim it again); a node taking over
// from one that died replaces the claim only if it is still the one it read
// (compare-and-set on the revision). Claims expire with the bucket's TTL.

import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { decodeClaim, encodeClaim, pullVerdict, type Claim, type PulledCopy } from './deadline.js';

/** How long a claim is kept: far beyond any queue deadline (claims are read only up to it, or at a pull). */
export const CLAIM_TTL_MS = 3_600_000;

/** The claim key of an activation id (KV keys: letters, digits, `-`, `_`, `=`, `.`; anything else is hashed). */
export function claimKey(id: string): string {
  return /^[A-Za-z0-9_=-]{1,64}$/.test(id) ? `a.${id}` : `h.${createHash('sha256').update(id).digest('hex')}`;
}

/** A claim that changes between its read and our write is read again this many times. */
const CLAIM_ATTEMPTS = 4;

/** The outcome of trying to create a claim. */
export type ClaimResult = { created: true } | { created: false; existing: Claim | undefined; revision: number };

export class Claims {
  constructor(private readonly kv: KV) {}

  /** Create the claim if the key holds none; else say what it holds (a network failure throws). */
  async create(id: string, c: Claim): Promise<ClaimResult> {
    const key = claimKey(id);
    try {
      await this.kv.create(key, encodeClaim(c));
      return { created: true };
    } catch (err) {
      // create fails when the key has a value: read it (a failure for any other reason throws here, or finds none)
      const e = await this.kv.get(key);
      if (!e || e.operation !== 'PUT') throw err;
      return { created: false, existing: decodeClaim(e.string()), revision: e.revision };
    }
  }

  /** Replace the claim read at `revision` (false: it changed meanwhile). */
  async replace(id: string, c: Claim, revision: number): Promise<boolean> {
    try {
      await this.kv.update(claimKey(id), encodeClaim(c), revision);
      return true;
    } catch {
      return false;
    }
  }

  /** Release a claim (the work goes back to the queue: the next node may claim it, or the ingress refuse it). */
  async release(id: string): Promise<void> {
    await this.kv.delete(claimKey(id));
  }
}

/**
 * A node pulled invocation `id`: claim it by the rule (pullVerdict) and say what to do with it: run it, answer with
 * the refusal at the queue deadline, or drop it (someone else refused it and answered). Throws when the bucket is
 * unreachable or the claim keeps changing: the caller leaves the message to a later delivery.
 */
export async function claimPulled(claims: Claims, id: string, node: string, now: number, copy: PulledCopy): Promise<'run' | 'refuse' | 'drop'> {
  let existing: { claim: Claim | undefined; revision: number } | undefined;
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const v = pullVerdict(now, copy, existing?.claim);
    if (v.kind === 'drop') return 'drop';
    if (v.kind === 'take_over') {
      if (await claims.replace(id, { state: 'taken', node, at: now }, existing!.revision)) return 'run';
      existing = undefined; // it changed meanwhile: read it again
      continue;
    }
    const r = await claims.create(id, v.kind === 'claim_run' ? { state: 'taken', node, at: now } : { state: 'expired', by: node, at: now });
    if (r.created) return v.kind === 'claim_run' ? 'run' : 'refuse';
    existing = { claim: r.existing, revision: r.revision };
  }
  throw new Error(`the claim of ${id} kept changing`);
}

/**
 * A requester holds the queue deadline of an invocation it published: at `deadline` it claims it `expired`.
 * `expired` resolves if that claim was created (no node took it: the requester answers with the refusal); it never
 * resolves when a node holds it (that node answers) or the bucket is unreachable (the wait for the outcome bounds it).
 */
export function holdDeadline(claims: Claims, id: string, by: string, deadline: number, onError: (err: unknown) => void): { expired: Promise<'expired'>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => {
      claims
        .create(id, { state: 'expired', by, at: Date.now() })
        .then((r) => r.created && resolve('expired'))
        .catch(onError);
    }, Math.max(0, deadline - Date.now()));
  });
  return { expired, cancel: () => clearTimeout(timer) };
}
