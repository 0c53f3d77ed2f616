// Where a requester (a node's ingress, or a client) collects the outcomes of the
// invocations it sent: its own durable consumer on the outcome stream. An outcome
// nobody waits for (a second run's, or one for a requester that restarted) is
// acknowledged and counted, never redelivered forever.

import type { Consumer } from '@nats-io/jetstream';
import type { Broker } from './connection.js';
import { ensureOutcomeConsumer } from './connection.js';
import { decodeOutcome, type OutcomeMessage } from './messages.js';
import { sleep } from './publish.js';
import { outcomeConsumer } from './subjects.js';

interface Waiter {
  resolve(o: OutcomeMessage | undefined): void;
  timer: NodeJS.Timeout;
}

export class OutcomeCollector {
  private readonly waiters = new Map<string, Waiter>();
  private running = false;
  private loop: Promise<void> | undefined;
  private stopFetch: (() => void) | undefined;
  /** outcomes that arrived with nobody waiting (duplicates, or for a restarted requester) */
  unclaimed = 0;

  constructor(
    private readonly b: Broker,
    readonly requester: string,
    /** clients: the server removes the consumer after this long unused */
    private readonly inactiveMs?: number,
  ) {}

  async start(): Promise<void> {
    await ensureOutcomeConsumer(this.b, this.requester, this.inactiveMs);
    const c = await this.b.js.consumers.get(this.b.names.outcomeStream, outcomeConsumer(this.requester));
    this.running = true;
    this.loop = this.run(c);
  }

  /** Wait for the outcome of `id` (undefined after `timeoutMs`). Register before publishing the invocation. */
  expect(id: string, timeoutMs: number): Promise<OutcomeMessage | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(id, { resolve, timer });
    });
  }

  cancel(id: string): void {
    const w = this.waiters.get(id);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiters.delete(id);
    w.resolve(undefined);
  }

  get waiting(): number {
    return this.waiters.size;
  }

  private async run(c: Consumer): Promise<void> {
    while (this.running && !this.b.nc.isClosed()) {
      try {
        const it = await c.fetch({ max_messages: 256, expires: 2000 });
        this.stopFetch = () => it.stop();
        for await (const m of it) {
          let o: OutcomeMessage | undefined;
          try {
            o = decodeOutcome(m.data);
          } catch (err) {
            this.b.log.warn('cluster: malformed outcome dropped', { err: (err as Error).message });
          }
          const w = o ? this.waiters.get(o.id) : undefined;
          if (o && w) {
            clearTimeout(w.timer);
            this.waiters.delete(o.id);
            w.resolve(o);
          } else if (o) this.unclaimed++;
          m.ack();
        }
      } catch (err) {
        if (this.running) {
          this.b.log.debug('cluster: outcome fetch failed; again', { err: (err as Error).message });
          await sleep(250);
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopFetch?.();
    for (const id of [...this.waiters.keys()]) this.cancel(id);
    await this.loop;
  }
}
