// BrokerSink: the outcome of an invocation pulled from the broker. It is published
// to the requester's outcome subject and only then is the message acknowledged, so
// a node that dies before that leaves the invocation to be redelivered. A refusal
// at capacity (the node pulled work its admission then refused) is not an outcome:
// the invocation goes back to the shared queue (a copy is published, then the
// message acknowledged) until `maxHandbacks`, after which the refusal is the answer.

import type { JsMsg } from '@nats-io/jetstream';
import { handsBack } from '../../cluster/handback.js';
import { encode, outcomeOf, type InvocationMessage } from '../../cluster/messages.js';
import type { InvocationResult, Sink } from '../../sinks/types.js';
import type { ActivationRecord } from '../../perf/activation.js';

/** Whether the refusal goes back to the shared queue: at capacity, within `maxHandbacks`, before the queue deadline (issue 18). */
export function shouldHandBack(res: InvocationResult, inv: InvocationMessage, maxHandbacks: number, now: number, deadline: number): boolean {
  const f = res.failure;
  return f?.kind === 'rejected' && handsBack(f.reason, inv.handbacks, maxHandbacks, now, deadline);
}

export interface BrokerSinkDeps {
  node: string;
  maxHandbacks: number;
  /** publish until stored (retried with the same message id) */
  publish(subject: string, data: Uint8Array, msgID: string): Promise<void>;
  outcomeSubject(requester: string): string;
  sharedSubject: string;
  /** issue 18: let go of this node's claim on the invocation before handing it back (the next puller claims it) */
  releaseClaim(id: string): Promise<void>;
  /** issue 18: renew this node's claim with each in-progress ack (a redelivery after this node stops is dated from the last one) */
  stillHeld?(): void;
  /** the message is settled (acknowledged, or given up at shutdown) */
  settled(how: 'answered' | 'handedBack' | 'failed'): void;
  /** the NATS connection is closed for good (no more in-progress acks) */
  closed(): boolean;
  onError(err: unknown, inv: InvocationMessage): void;
}

export class BrokerSink implements Sink {
  readonly name = 'broker';
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(
    private readonly m: JsMsg,
    private readonly inv: InvocationMessage,
    private readonly meta: { via: 'shared' | 'addressed'; redeliveries: number; acceptedAt: number; /** issue 18: the queue deadline of this copy */ deadline: number },
    private readonly d: BrokerSinkDeps,
    ackWaitMs: number,
  ) {
    // a long run keeps its message: in-progress acks restart the ack wait
    this.keepAlive = setInterval(() => {
      if (d.closed()) clearInterval(this.keepAlive);
      else {
        m.working();
        d.stillHeld?.();
      }
    }, Math.max(300, Math.floor(ackWaitMs / 3)));
  }

  /** Called by the Dispatcher before the record is stored: the node's copy names the node too. */
  annotate(rec: ActivationRecord): void {
    rec.node = this.d.node;
    rec.cluster = {
      requester: this.inv.requester,
      acceptedAt: this.inv.receivedAt,
      via: this.meta.via,
      redeliveries: this.meta.redeliveries,
      handbacks: this.inv.handbacks,
      ...(this.inv.forwardedFrom ? { forwardedFrom: this.inv.forwardedFrom } : {}),
    };
  }

  deliver(res: InvocationResult): void {
    clearInterval(this.keepAlive);
    this.annotate(res.activation); // idempotent: also when a record reached the sink without the Dispatcher
    void this.settle(res);
  }

  private async settle(res: InvocationResult): Promise<void> {
    const { inv, m, d } = this;
    try {
      if (shouldHandBack(res, inv, d.maxHandbacks, Date.now(), this.meta.deadline)) {
        // the claim goes first: the ingress may refuse it at its deadline while it waits in the queue again
        await d.releaseClaim(inv.id);
        const copy: InvocationMessage = { ...inv, target: undefined, handbacks: inv.handbacks + 1, redeliveries: this.meta.redeliveries };
        await d.publish(d.sharedSubject, encode(copy), `${inv.id}:h:${m.seq}`);
        m.ack();
        d.settled('handedBack');
        return;
      }
      // the same message id for every run of this activation: a second run's outcome is dropped as a duplicate
      await d.publish(d.outcomeSubject(inv.requester), encode(outcomeOf(inv.id, d.node, res)), `out:${inv.id}`);
      m.ack();
      d.settled('answered');
    } catch (err) {
      // not published (NATS gone for good, or the daemon stops): the message is redelivered after the ack wait
      d.onError(err, inv);
      d.settled('failed');
    }
  }

  /** Given up before any outcome (the daemon stops): stop keeping the message. */
  abandon(): void {
    clearInterval(this.keepAlive);
  }
}
