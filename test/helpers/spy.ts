// An actor that records every message it gets and lets a test wait for one (Worker unit tests).
import { Actor } from '../../src/core/actor.js';

export class Spy<M> extends Actor<M> {
  readonly got: M[] = [];
  private waiters: Array<{ pred: (m: M) => boolean; resolve: (m: M) => void }> = [];
  constructor(private readonly respond?: (m: M) => void) {
    super();
  }
  protected receive(msg: M): void {
    this.got.push(msg);
    this.respond?.(msg);
    this.waiters = this.waiters.filter((w) => (w.pred(msg) ? (w.resolve(msg), false) : true));
  }
  next(pred: (m: M) => boolean, timeoutMs = 5000): Promise<M> {
    const seen = this.got.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ pred, resolve });
      setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.got.map((m) => (m as { kind: string }).kind))}`)), timeoutMs).unref();
    });
  }
}
