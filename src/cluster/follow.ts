// Follow a KV bucket: every entry from the current values on, and a watch that is
// made again (from the last revision seen) whenever it ends, e.g. when the NATS
// connection was lost. Entries are handled one at a time, in revision order.

import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';

export interface Follower {
  stop(): void;
}

export function followBucket(kv: KV, key: string, fromRevision: number, onEntry: (e: KvEntry) => Promise<void> | void, log: Logger, closed: () => boolean): Follower {
  let stopped = false;
  let last = fromRevision - 1;
  let current: { stop(): void } | undefined;
  const run = async (): Promise<void> => {
    // a closed connection never comes back (only a lost one does)
    while (!stopped && !closed()) {
      try {
        const w = await kv.watch({ key, ...(last > 0 ? { resumeFromRevision: last + 1 } : {}) });
        current = w;
        if (stopped) w.stop();
        for await (const e of w) {
          if (e.revision <= last) continue;
          try {
            await onEntry(e);
          } catch (err) {
            log.warn('cluster: handling a bucket entry failed', { bucket: e.bucket, key: e.key, err: (err as Error).message });
          }
          last = e.revision;
        }
      } catch (err) {
        if (!stopped) log.warn('cluster: watching a bucket failed; watching again', { key, err: (err as Error).message });
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 500));
    }
  };
  void run();
  return {
    stop() {
      stopped = true;
      current?.stop();
    },
  };
}
