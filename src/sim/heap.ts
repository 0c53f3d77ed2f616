/**
 * 4-ary min-heap of (time, payload, tag) triples in parallel typed arrays: no
 * per-event allocation, half the levels of a binary heap (the simulator pops and
 * pushes an event per invocation). Ties are broken by insertion order (a
 * sequence number) so runs are deterministic.
 */
export class EventHeap {
  private time = new Float64Array(1024);
  private seq = new Float64Array(1024);
  private payload = new Int32Array(1024);
  private tag = new Uint32Array(1024);
  private n = 0;
  private counter = 0;

  get size(): number {
    return this.n;
  }

  /** `s`: the tie-breaking sequence number (default: this heap's insertion order; EventQueue passes its own) */
  push(t: number, payload: number, tag: number, s = this.counter++): void {
    if (this.n === this.time.length) this.grow();
    let i = this.n++;
    const time = this.time;
    const seq = this.seq;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pt = time[p]!;
      if (pt < t || (pt === t && seq[p]! < s)) break;
      time[i] = pt;
      seq[i] = seq[p]!;
      this.payload[i] = this.payload[p]!;
      this.tag[i] = this.tag[p]!;
      i = p;
    }
    time[i] = t;
    seq[i] = s;
    this.payload[i] = payload;
    this.tag[i] = tag;
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    return this.n > 0 ? this.time[0]! : Infinity;
  }

  /** The earliest event's payload and tag (call only when size > 0). */
  peekPayload(): number {
    return this.payload[0]!;
  }

  peekTag(): number {
    return this.tag[0]!;
  }

  /** The earliest event's sequence number (call only when size > 0). */
  peekSeq(): number {
    return this.seq[0]!;
  }

  // The popped event, valid until the next pop.
  topTime = 0;
  topPayload = 0;
  topTag = 0;

  /** Pops the earliest event into topTime/topPayload/topTag; false when empty. */
  pop(): boolean {
    if (this.n === 0) return false;
    const time = this.time;
    const seq = this.seq;
    const payload = this.payload;
    const tag = this.tag;
    this.topTime = time[0]!;
    this.topPayload = payload[0]!;
    this.topTag = tag[0]!;
    const last = --this.n;
    if (last === 0) return true;
    const t = time[last]!;
    const s = seq[last]!;
    const p = payload[last]!;
    const g = tag[last]!;
    let i = 0;
    for (;;) {
      const first = 4 * i + 1;
      if (first >= last) break;
      // the smallest of up to four children (sequence numbers read only on a tie of times)
      let c = first;
      let ct = time[c]!;
      const end = first + 4 < last ? first + 4 : last;
      for (let k = first + 1; k < end; k++) {
        const kt = time[k]!;
        if (kt < ct || (kt === ct && seq[k]! < seq[c]!)) {
          c = k;
          ct = kt;
        }
      }
      if (t < ct || (t === ct && s < seq[c]!)) break;
      time[i] = ct;
      seq[i] = seq[c]!;
      payload[i] = payload[c]!;
      tag[i] = tag[c]!;
      i = c;
    }
    time[i] = t;
    seq[i] = s;
    payload[i] = p;
    tag[i] = g;
    return true;
  }

  private grow(): void {
    const cap = this.time.length * 2;
    const t = new Float64Array(cap);
    t.set(this.time);
    this.time = t;
    const s = new Float64Array(cap);
    s.set(this.seq);
    this.seq = s;
    const p = new Int32Array(cap);
    p.set(this.payload);
    this.payload = p;
    const g = new Uint32Array(cap);
    g.set(this.tag);
    this.tag = g;
  }
}

/**
 * Two EventHeaps that pop as one, in the same order as one heap would (time, then insertion order across
 * both). Far-off events (the core's keep-alive expiries and queue deadlines, most of them stale when they
 * fire: a simulated node keeps a thousand or more of them pending) wait in their own heap, so the near one,
 * popped once per event, stays a few levels deep.
 */
export class EventQueue {
  private readonly near = new EventHeap();
  private readonly far = new EventHeap();
  private counter = 0;
  /** the earliest time of both heaps (Infinity: empty), kept at each push and pop: read before every event */
  private next = Infinity;
  /** the far heap's earliest time (Infinity: empty): it changes only when that heap is pushed or popped */
  private farNext = Infinity;

  // The popped event, valid until the next pop.
  topTime = 0;
  topPayload = 0;
  topTag = 0;

  get size(): number {
    return this.near.size + this.far.size;
  }

  /** `far`: an event that is usually far off (it goes to the second heap; the order is the same). */
  push(t: number, payload: number, tag: number, far = false): void {
    if (far) {
      this.far.push(t, payload, tag, this.counter++);
      if (t < this.farNext) this.farNext = t;
    } else this.near.push(t, payload, tag, this.counter++);
    if (t < this.next) this.next = t;
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    return this.next;
  }

  /** Pops the earliest event into topTime/topPayload/topTag; false when empty. */
  pop(): boolean {
    const near = this.near;
    const far = this.far;
    let h: EventHeap;
    if (near.size === 0) {
      if (far.size === 0) return false;
      h = far;
    } else {
      const a = near.peekTime();
      const b = this.farNext;
      h = far.size === 0 || a < b || (a === b && near.peekSeq() < far.peekSeq()) ? near : far;
    }
    h.pop();
    this.topTime = h.topTime;
    this.topPayload = h.topPayload;
    this.topTag = h.topTag;
    if (h === far) this.farNext = far.peekTime();
    const a = near.peekTime();
    const b = this.farNext;
    this.next = a < b ? a : b;
    return true;
  }
}
