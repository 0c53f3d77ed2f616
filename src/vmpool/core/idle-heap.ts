/** What the idle index needs from an instance. */
export interface Keyed {
  evKey: number;
  lastUsedAt: number;
  seq: number;
  heapPos: number;
}

/**
 * Indexed binary min-heap of idle instances by (evKey, lastUsedAt, seq), with
 * O(log n) removal of an arbitrary member (an idle instance reused or expired).
 * The decision core's fast path for eviction policies that expose orderKey().
 */
export class IdleHeap<T extends Keyed> {
  private a: T[] = [];

  get size(): number {
    return this.a.length;
  }

  peek(): T | undefined {
    return this.a[0];
  }

  push(x: T): void {
    this.a.push(x);
    x.heapPos = this.a.length - 1;
    this.up(x.heapPos);
  }

  remove(x: T): void {
    const i = x.heapPos;
    if (i < 0) return;
    const a = this.a;
    const last = a.pop()!;
    x.heapPos = -1;
    if (last === x) return;
    a[i] = last;
    last.heapPos = i;
    if (!this.up(i)) this.down(i);
  }

  private less(x: T, y: T): boolean {
    if (x.evKey !== y.evKey) return x.evKey < y.evKey;
    if (x.lastUsedAt !== y.lastUsedAt) return x.lastUsedAt < y.lastUsedAt;
    return x.seq < y.seq;
  }

  private up(i: number): boolean {
    const a = this.a;
    const x = a[i]!;
    let moved = false;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const y = a[p]!;
      if (!this.less(x, y)) break;
      a[i] = y;
      y.heapPos = i;
      i = p;
      moved = true;
    }
    a[i] = x;
    x.heapPos = i;
    return moved;
  }

  private down(i: number): void {
    const a = this.a;
    const n = a.length;
    const x = a[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.less(a[r]!, a[l]!)) c = r;
      const y = a[c]!;
      if (!this.less(y, x)) break;
      a[i] = y;
      y.heapPos = i;
      i = c;
    }
    a[i] = x;
    x.heapPos = i;
  }
}
