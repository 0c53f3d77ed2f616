// The broker's queue deadline (issue 18): an invocation no node took within
// admission.maxQueueDelayMs of entering the cluster's queues (accepted, or
// redelivered after the node holding it died) is refused with `queue_timeout`,
// as a node refuses what waited that long in its own queue. One rule for the
// daemon's broker (the ingress's timer, the puller's check, the Sink's
// hand-back: src/cluster/ingress.ts, src/sources/broker/) and the cluster
// simulator's broker (src/sim/cluster/broker.ts).
//
// The real cluster has no central process, so "still unpulled" is decided by a
// claim per invocation in a JetStream KV bucket (atomic create / compare-and-set):
// a node that pulls it before the deadline claims it `taken`; the node that
// accepted it (its ingress) claims it `expired` at the deadline and answers; who
// creates the claim first wins, so exactly one of them answers. A node that
// finds it `expired` drops it (the ingress answered); a node that pulls it after
// the deadline with no claim claims it `expired` itself and answers with the
// refusal (the ingress may be dead) instead of running it.

/** The time at which an invocation that entered the broker's queues at `queuedAt` is refused if no node took it. */
export function queueDeadline(queuedAt: number, maxQueueDelayMs: number): number {
  return queuedAt + maxQueueDelayMs;
}

/** Whether `now` is at or past the deadline (a node's queue refuses at `now >= deadline` the same way). */
export function pastDeadline(now: number, deadline: number): boolean {
  return now >= deadline;
}

/** The claim on an invocation, as stored in the claims bucket (absent: nobody took it yet). */
export type Claim =
  /** a node pulled it before its deadline and answers it */
  | { state: 'taken'; node: string; at: number }
  /** refused at its deadline by `by` (the ingress, or a node that pulled it too late): that one answered */
  | { state: 'expired'; by: string; at: number };

/** What a node does with an invocation it pulled. */
export type PullVerdict =
  /** claim it `taken` (no claim yet, before the deadline) and run it */
  | { kind: 'claim_run' }
  /** the node that took it lost it (it died, hung or lost NATS: a redelivery or a rescue): take the claim over and run it */
  | { kind: 'take_over'; from: string }
  /** claim it `expired` (no claim yet, past its deadline) and answer with the refusal */
  | { kind: 'claim_refuse' }
  /** already refused at its deadline by someone else, who answered: acknowledge it, do nothing else */
  | { kind: 'drop' };

export interface PulledCopy {
  /** the deadline of this copy (queueDeadline of its accepted time, or of the rescue that republished it) */
  deadline: number;
  /** JetStream delivered this copy before (a node pulled it and never acknowledged it) */
  redelivered: boolean;
}

/**
 * The puller's rule. A claim `taken` by a node means that node lost it (JetStream
 * redelivers only what was not acknowledged, and a node that hands work back
 * releases its claim first), so the puller takes it over and runs it: the requester
 * is waiting for its outcome and nobody else will answer. A redelivered copy is run
 * whatever the clock says (the puller cannot know when JetStream redelivered it;
 * the requester's timeout bounds it).
 */
export function pullVerdict(now: number, copy: PulledCopy, claim: Claim | undefined): PullVerdict {
  if (claim?.state === 'expired') return { kind: 'drop' };
  if (claim?.state === 'taken') return { kind: 'take_over', from: claim.node };
  if (copy.redelivered) return { kind: 'claim_run' };
  return pastDeadline(now, copy.deadline) ? { kind: 'claim_refuse' } : { kind: 'claim_run' };
}

/** The refusal's Retry-After: as the deadline admission's when it cannot estimate the wait. */
export function deadlineRetryAfterMs(maxQueueDelayMs: number): number {
  return maxQueueDelayMs;
}

/** The refusal's message. */
export function deadlineMessage(fn: string, maxQueueDelayMs: number, by: 'ingress' | 'puller'): string {
  const who = by === 'ingress' ? 'no node of the cluster took it' : 'a node took it only after its deadline';
  return `function ${fn}: ${who} within ${maxQueueDelayMs} ms (admission.maxQueueDelayMs)`;
}

export function encodeClaim(c: Claim): string {
  return JSON.stringify(c);
}

/** A claim read back (undefined for anything else: treated as no claim). */
export function decodeClaim(s: string): Claim | undefined {
  try {
    const c = JSON.parse(s) as Partial<Claim> & Record<string, unknown>;
    if (c.state === 'taken' && typeof c.node === 'string' && typeof c.at === 'number') return { state: 'taken', node: c.node, at: c.at };
    if (c.state === 'expired' && typeof c.by === 'string' && typeof c.at === 'number') return { state: 'expired', by: c.by, at: c.at };
  } catch {
    // not JSON: no claim
  }
  return undefined;
}
