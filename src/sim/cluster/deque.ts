/**
 * A growable ring buffer: FIFO with O(1) push at both ends (a redelivered
 * invocation goes to the head of the shared queue, new work to its tail). The
 * broker's queues hold millions of entries over a simulated day; an array with
 * shift() would copy them.
 */
export class Deque<T> {
  private buf: (T | undefined)[] = new Array<T | undefined>(16);
  private head = 0;
  private n = 0;

  get size(): number {
    return this.n;
  }

  push(x: T): void {
    if (this.n === this.buf.length) this.grow();
    this.buf[(this.head + this.n) & (this.buf.length - 1)] = x;
    this.n++;
  }

  unshift(x: T): void {
    if (this.n === this.buf.length) this.grow();
    this.head = (this.head - 1) & (this.buf.length - 1);
    this.buf[this.head] = x;
    this.n++;
  }

  peek(): T | undefined {
    return this.n > 0 ? this.buf[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.n === 0) return undefined;
    const x = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.n--;
    return x;
  }

  /** Remove and return everything, in order. */
  drain(): T[] {
    const out: T[] = [];
    for (let x = this.shift(); x !== undefined; x = this.shift()) out.push(x);
    return out;
  }

  private grow(): void {
    const old = this.buf;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.n; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.buf = next;
    this.head = 0;
  }
}
