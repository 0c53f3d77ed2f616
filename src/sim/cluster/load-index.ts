/**
 * Nodes ordered by how much they can take (free capacity from their last
 * heartbeat minus what was sent to them since, more first; then shorter queue;
 * then lower index): the "least-loaded" baseline routing of the cluster
 * simulator, O(log n) per update instead of a scan of a thousand nodes per invocation.
 */
export class LoadIndex {
  private readonly heap: number[] = [];
  private readonly pos: Int32Array;
  private readonly free: Float64Array;
  private readonly queued: Float64Array;

  constructor(n: number) {
    this.pos = new Int32Array(n).fill(-1);
    this.free = new Float64Array(n);
    this.queued = new Float64Array(n);
  }

  update(k: number, free: number, queued: number): void {
    this.free[k] = free;
    this.queued[k] = queued;
    if (this.pos[k]! < 0) {
      this.heap.push(k);
      this.pos[k] = this.heap.length - 1;
    }
    const i = this.pos[k]!;
    if (!this.up(i)) this.down(i);
  }

  /** The node with the most room that `ok` accepts (and some room), or -1. */
  best(ok: (k: number) => boolean): number {
    const skipped: number[] = [];
    let found = -1;
    while (this.heap.length > 0) {
      const k = this.heap[0]!;
      if (this.free[k]! <= 0) break;
      if (ok(k)) {
        found = k;
        break;
      }
      skipped.push(k);
      this.removeTop();
    }
    for (const k of skipped) this.update(k, this.free[k]!, this.queued[k]!);
    return found;
  }

  private before(a: number, b: number): boolean {
    const fa = this.free[a]!;
    const fb = this.free[b]!;
    if (fa !== fb) return fa > fb;
    const qa = this.queued[a]!;
    const qb = this.queued[b]!;
    if (qa !== qb) return qa < qb;
    return a < b;
  }

  private removeTop(): void {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    this.pos[top] = -1;
    if (h.length > 0 && last !== top) {
      h[0] = last;
      this.pos[last] = 0;
      this.down(0);
    }
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const a = h[i]!;
    const b = h[j]!;
    h[i] = b;
    h[j] = a;
    this.pos[b] = i;
    this.pos[a] = j;
  }

  private up(i: number): boolean {
    let moved = false;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(this.heap[i]!, this.heap[p]!)) break;
      this.swap(i, p);
      i = p;
      moved = true;
    }
    return moved;
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) return;
      const r = l + 1;
      let c = l;
      if (r < h.length && this.before(h[r]!, h[l]!)) c = r;
      if (!this.before(h[c]!, h[i]!)) return;
      this.swap(i, c);
      i = c;
    }
  }
}
