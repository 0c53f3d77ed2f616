// A wait with a bound that is cleared when the wait ends. `Promise.race([p, sleep(ms)])` leaves the sleep's
// timer pending after `p` wins: harmless-looking, but each one holds a timer for its whole bound (a 30 s
// timer per snapshot), and a process whose work is done stays alive until the last of them fires.

/** `p`'s value, or `onTimeout()`'s once `ms` have passed; the timer is cleared either way. */
export async function within<T, U>(p: Promise<T>, ms: number, onTimeout: () => U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<U>((resolve) => (timer = setTimeout(() => resolve(onTimeout()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
