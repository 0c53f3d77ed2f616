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
// refusal (the ingress may be dead) instead of running it. A redelivery (its node
// died holding it) waits again from when JetStream redelivered it: the node that
// pulls it takes the claim over, and refuses it (once) past that deadline.

/** The time at which an invocation that entered the broker's queues at `queuedAt` is refused if no node took it. */
export function queueDeadline(queuedAt: number, maxQueueDelayMs: number): number {
  return queuedAt + maxQueueDelayMs;
}

/** Whether `now` is at or past the deadline (a node's queue refuses at `now >= deadline` the same way). */
export function pastDeadline(now: number, deadline: number): boolean {
  return now >= deadline;
}

/**
 * A redelivered copy waits again from when JetStream redelivered it: `ackWaitMs` after the node holding it last said
 * it held it (its in-progress acks restart the ack wait; the claim's `heldAt` is renewed with each of them). The
 * simulated broker dates its redeliveries the same way from the node's death.
 */
export function redeliveryDeadline(heldAt: number, ackWaitMs: number, maxQueueDelayMs: number): number {
  return queueDeadline(heldAt + ackWaitMs, maxQueueDelayMs);
}

/** The claim on an invocation, as stored in the claims bucket (absent: nobody took it yet). */
export type Claim =
  /** a node pulled it before its deadline and answers it; `heldAt`: the last time it said it still held it */
  | { state: 'taken'; node: string; at: number; heldAt: number }
  /** answered without a run by `by` (the ingress or a puller at the queue deadline, or a puller giving up on a redelivery loop) */
  | { state: 'expired'; by: string; at: number };

/** What the puller does with the invocation once it holds the claim. */
export type PullAction =
  /** run it (the claim says `taken`) */
  | 'run'
  /** answer with the queue deadline's refusal (the claim says `expired`) */
  | 'refuse'
  /** delivered more than `maxDeliveries` times (every node that took it stopped before answering): answer with that failure */
  | 'give_up';

/** What a node does with an invocation it pulled. */
export type PullVerdict =
  /** no claim yet: create one (`taken` to run it, `expired` to answer without a run) */
  | { kind: 'claim'; then: PullAction }
  /** the node that took it lost it (it died, hung or lost NATS: a redelivery or a rescue): take the claim over (compare-and-set) */
  | { kind: 'take_over'; from: string; then: PullAction }
  /** already answered without a run by someone else: acknowledge it, do nothing else */
  | { kind: 'drop' };

export interface PulledCopy {
  /** the deadline of this copy (queueDeadline of its accepted time, or of the rescue that republished it) */
  deadline: number;
  /** JetStream delivered this copy before (a node pulled it and never acknowledged it) */
  redelivered: boolean;
  /** cluster.ackWaitMs: how long after its holder's last in-progress ack JetStream redelivers it */
  ackWaitMs: number;
  /** the requester's admission.maxQueueDelayMs (else the puller's) */
  maxQueueDelayMs: number;
  /** deliveries of this invocation so far, this one included (a rescued or handed-back copy carries the earlier ones) */
  deliveries: number;
  /** cluster.maxDeliveries */
  maxDeliveries: number;
}

/**
 * The puller's rule. A claim `taken` by a node means that node lost it (JetStream
 * redelivers only what was not acknowledged, and a node that hands work back
 * releases its claim first), so the puller takes the claim over: the requester is
 * waiting for its outcome and nobody else will answer. What it then does is the
 * queue deadline's rule for this copy: a redelivery waited since JetStream
 * redelivered it (redeliveryDeadline of the claim's `heldAt`), any other copy since
 * it was accepted or rescued (a redelivered copy with no claim was pulled and never
 * claimed: it counts from its acceptance). Past the deadline it is refused once
 * (the claim says who answers), never run late; an invocation delivered more than
 * `maxDeliveries` times is not run again (a redelivery loop: each node that took it
 * died or hung).
 */
export function pullVerdict(now: number, copy: PulledCopy, claim: Claim | undefined): PullVerdict {
  if (claim?.state === 'expired') return { kind: 'drop' };
  const held = claim?.state === 'taken' ? claim : undefined;
  const deadline = held && copy.redelivered ? redeliveryDeadline(held.heldAt, copy.ackWaitMs, copy.maxQueueDelayMs) : copy.deadline;
  const then: PullAction = copy.deliveries > copy.maxDeliveries ? 'give_up' : pastDeadline(now, deadline) ? 'refuse' : 'run';
  return held ? { kind: 'take_over', from: held.node, then } : { kind: 'claim', then };
}

/** The claim a puller writes for what it does: `taken` to run it, `expired` (answered by it) otherwise. */
export function claimFor(then: PullAction, node: string, now: number): Claim {
  return then === 'run' ? { state: 'taken', node, at: now, heldAt: now } : { state: 'expired', by: node, at: now };
}

/** The refusal's Retry-After: as the deadline admission's when it cannot estimate the wait. */
export function deadlineRetryAfterMs(maxQueueDelayMs: number): number {
  return maxQueueDelayMs;
}

/** The failure of an invocation given up after a redelivery loop. */
export function redeliveryLoopMessage(fn: string, deliveries: number, maxDeliveries: number): string {
  return `function ${fn}: delivered ${deliveries} times, more than cluster.maxDeliveries (${maxDeliveries}); every node that took it stopped before answering, so it is not run again`;
}

/** The refusal's message. */
export function deadlineMessage(fn: string, maxQueueDelayMs: number, by: 'ingress' | 'puller' | 'redelivery'): string {
  const who =
    by === 'ingress' ? 'no node of the cluster took it' : by === 'puller' ? 'a node took it only after its deadline' : 'the node holding it stopped, and its redelivery was taken only after its deadline';
  return `function ${fn}: ${who} within ${maxQueueDelayMs} ms (admission.maxQueueDelayMs)`;
}

export function encodeClaim(c: Claim): string {
  return JSON.stringify(c);
}

/** A claim read back (undefined for anything else: treated as no claim). */
export function decodeClaim(s: string): Claim | undefined {
  try {
    const c = JSON.parse(s) as Partial<Claim> & Record<string, unknown>;
    // heldAt: absent in the claims of nodes older than the redelivery deadline (taken at `at`)
    if (c.state === 'taken' && typeof c.node === 'string' && typeof c.at === 'number') return { state: 'taken', node: c.node, at: c.at, heldAt: typeof c.heldAt === 'number' ? c.heldAt : c.at };
    if (c.state === 'expired' && typeof c.by === 'string' && typeof c.at === 'number') return { state: 'expired', by: c.by, at: c.at };
  } catch {
    // not JSON: no claim
  }
  return undefined;
}
