// The broker's queue deadlines (issue 23 item 6): one entry per invocation accepted,
// handed back or redelivered, popped in time order. Nearly all of them come in time
// order (accepted at its arrival + the queue deadline, redelivered at now + the
// deadline), so they go to a FIFO; the few that do not (a hand-back keeps its
// original deadline) go to a heap. Popping takes the earlier head of the two, ties
// by the order of the pushes: exactly the order one EventHeap of every entry gives,
// without keeping hundreds of thousands of entries (a minute of a day's deadlines,
// most of them for invocations pulled long ago) in a heap that every push climbs.

import { EventHeap } from '../heap.js';

export class DeadlineQueue {
  private time = new Float64Array(1024);
  private seq = new Float64Array(1024);
  private payload = new Int32Array(1024);
  private tag = new Uint32Array(1024);
  private head = 0;
  private n = 0;
  /** entries out of time order, by (time, push order): the tag indexes the side arrays below */
  private readonly late = new EventHeap();
  private lateSeq: number[] = [];
  private latePayload: number[] = [];
  private lateTag: number[] = [];
  private readonly lateFree: number[] = [];
  private pushes = 0;
  private lastTime = -Infinity;

  // The popped entry, valid until the next pop.
  topTime = 0;
  topPayload = 0;
  topTag = 0;

  get size(): number {
    return this.n + this.late.size;
  }

  push(t: number, payload: number, tag: number): void {
    const s = this.pushes++;
    if (t >= this.lastTime) {
      if (this.n === this.time.length) this.grow();
      const i = (this.head + this.n) & (this.time.length - 1);
      this.time[i] = t;
      this.seq[i] = s;
      this.payload[i] = payload;
      this.tag[i] = tag;
      this.n++;
      this.lastTime = t;
      return;
    }
    const j = this.lateFree.pop() ?? this.lateSeq.length;
    this.lateSeq[j] = s;
    this.latePayload[j] = payload;
    this.lateTag[j] = tag;
    // the heap breaks ties by its own push order, which is this queue's among late entries
    this.late.push(t, j, 0);
  }

  /** Which head comes first: the FIFO's (true) or the heap's. */
  private fifoFirst(): boolean {
    if (this.late.size === 0) return true;
    if (this.n === 0) return false;
    const ft = this.time[this.head]!;
    const lt = this.late.peekTime();
    return ft < lt || (ft === lt && this.seq[this.head]! < this.lateSeq[this.late.peekPayload()]!);
  }

  /** Time of the earliest entry (Infinity when empty). */
  peekTime(): number {
    if (this.size === 0) return Infinity;
    return this.fifoFirst() ? this.time[this.head]! : this.late.peekTime();
  }

  peekPayload(): number {
    return this.fifoFirst() ? this.payload[this.head]! : this.latePayload[this.late.peekPayload()]!;
  }

  peekTag(): number {
    return this.fifoFirst() ? this.tag[this.head]! : this.lateTag[this.late.peekPayload()]!;
  }

  /** Pops the earliest entry into topTime/topPayload/topTag; false when empty. */
  pop(): boolean {
    if (this.size === 0) return false;
    if (this.fifoFirst()) {
      const i = this.head;
      this.topTime = this.time[i]!;
      this.topPayload = this.payload[i]!;
      this.topTag = this.tag[i]!;
      this.head = (i + 1) & (this.time.length - 1);
      this.n--;
      return true;
    }
    this.late.pop();
    const j = this.late.topPayload;
    this.topTime = this.late.topTime;
    this.topPayload = this.latePayload[j]!;
    this.topTag = this.lateTag[j]!;
    this.lateFree.push(j);
    return true;
  }

  private grow(): void {
    const cap = this.time.length * 2;
    const mask = this.time.length - 1;
    const t = new Float64Array(cap);
    const s = new Float64Array(cap);
    const p = new Int32Array(cap);
    const g = new Uint32Array(cap);
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) & mask;
      t[k] = this.time[i]!;
      s[k] = this.seq[i]!;
      p[k] = this.payload[i]!;
      g[k] = this.tag[i]!;
    }
    this.time = t;
    this.seq = s;
    this.payload = p;
    this.tag = g;
    this.head = 0;
  }
}
