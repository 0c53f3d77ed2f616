// The claims bucket: who answers an invocation, decided atomically in JetStream KV
// (the rule: src/cluster/deadline.ts). A claim is created with KV `create`, which
// fails when the key holds a value, so of a node pulling the invocation and the
// ingress refusing it at its deadline exactly one wins. A node that hands work back
// deletes its claim first (the next puller may claim it again); a node taking over
// from one that died replaces the claim only if it is still the one it read
// (compare-and-set on the revision). Claims expire with the bucket's TTL.

import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { claimFor, decodeClaim, encodeClaim, pullVerdict, type Claim, type PullAction, type PulledCopy } from './deadline.js';

/** How long a claim is kept: far beyond any queue deadline (claims are read only up to it, or at a pull). */
export const CLAIM_TTL_MS = 3_600_000;

/** The claim key of an activation id (KV keys: letters, digits, `-`, `_`, `=`, `.`; anything else is hashed). */
export function claimKey(id: string): string {
  return /^[A-Za-z0-9_=-]{1,64}$/.test(id) ? `a.${id}` : `h.${createHash('sha256').update(id).digest('hex')}`;
}

/** A claim that changes between its read and our write is read again this many times. */
const CLAIM_ATTEMPTS = 4;

/** The outcome of trying to create a claim. */
export type ClaimResult = { created: true; revision: number } | { created: false; existing: Claim | undefined; revision: number };

export class Claims {
  constructor(private readonly kv: KV) {}

  /** Create the claim if the key holds none; else say what it holds (a network failure throws). */
  async create(id: string, c: Claim): Promise<ClaimResult> {
    const key = claimKey(id);
    try {
      return { created: true, revision: await this.kv.create(key, encodeClaim(c)) };
    } catch (err) {
      // create fails when the key has a value: read it (a failure for any other reason throws here, or finds none)
      const e = await this.kv.get(key);
      if (!e || e.operation !== 'PUT') throw err;
      return { created: false, existing: decodeClaim(e.string()), revision: e.revision };
    }
  }

  /** Replace the claim read at `revision`: its new revision (undefined: it changed meanwhile, or the bucket failed). */
  async replace(id: string, c: Claim, revision: number): Promise<number | undefined> {
    try {
      return await this.kv.update(claimKey(id), encodeClaim(c), revision);
    } catch {
      return undefined;
    }
  }

  /** Release a claim (the work goes back to the queue: the next node may claim it, or the ingress refuse it). */
  async release(id: string): Promise<void> {
    await this.kv.delete(claimKey(id));
  }
}

/** What a puller does with what it pulled, once claimed: `held` renews a `taken` claim while it runs. */
export type Pulled = { then: Exclude<PullAction, 'run'> } | { then: 'run'; held: HeldClaim } | { then: 'drop' };

/**
 * A node pulled invocation `id`: claim it by the rule (pullVerdict) and say what to do with it: run it, answer with
 * the refusal at the queue deadline or the redelivery loop's failure, or drop it (someone else answered it). Throws
 * when the bucket is unreachable or the claim keeps changing: the caller leaves the message to a later delivery.
 */
export async function claimPulled(claims: Claims, id: string, node: string, now: number, copy: PulledCopy): Promise<Pulled> {
  let existing: { claim: Claim | undefined; revision: number } | undefined;
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const v = pullVerdict(now, copy, existing?.claim);
    if (v.kind === 'drop') return { then: 'drop' };
    const mine = claimFor(v.then, node, now);
    let revision: number | undefined;
    if (v.kind === 'take_over') {
      revision = await claims.replace(id, mine, existing!.revision);
      if (revision === undefined) {
        existing = undefined; // it changed meanwhile: read it again
        continue;
      }
    } else {
      const r = await claims.create(id, mine);
      if (!r.created) {
        existing = { claim: r.existing, revision: r.revision };
        continue;
      }
      revision = r.revision;
    }
    return v.then === 'run' ? { then: 'run', held: new HeldClaim(claims, id, node, now, revision) } : { then: v.then };
  }
  throw new Error(`the claim of ${id} kept changing`);
}

/**
 * A `taken` claim its node renews (`heldAt`) each time it keeps the message with an in-progress ack, so a node that
 * pulls a redelivery dates it from the holder's last renewal (redeliveryDeadline). A renewal that fails (the claim was
 * taken over, or the bucket is unreachable) is tried again at the next one; the claim is then older than the run, and
 * a redelivery of it is refused earlier, never later.
 */
export class HeldClaim {
  private busy = false;

  constructor(
    private readonly claims: Claims,
    private readonly id: string,
    private readonly node: string,
    private readonly at: number,
    private revision: number,
  ) {}

  renew(now: number): void {
    if (this.busy) return;
    this.busy = true;
    void this.claims
      .replace(this.id, { state: 'taken', node: this.node, at: this.at, heldAt: now }, this.revision)
      .then((r) => {
        if (r !== undefined) this.revision = r;
      })
      .finally(() => {
        this.busy = false;
      });
  }
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
