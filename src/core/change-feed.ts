// Listeners of a store's changes (the cluster's sync publishes each local change).
// A listener may return the promise of its work; `synced()` waits for all of them,
// so an API answers a change only once it reached the cluster.

export type ChangeListener<C> = (c: C) => Promise<void> | void;

export class ChangeFeed<C> {
  private readonly listeners: ChangeListener<C>[] = [];
  private readonly pending = new Set<Promise<void>>();

  on(l: ChangeListener<C>): void {
    this.listeners.push(l);
  }

  emit(c: C): void {
    for (const l of this.listeners) {
      const p = l(c);
      if (!p) continue;
      this.pending.add(p);
      // a failure is reported by synced() to whoever waits; the set only forgets it
      void p.then(
        () => this.pending.delete(p),
        () => this.pending.delete(p),
      );
    }
  }

  /** Resolves when every listener finished with the changes made so far. */
  async synced(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
