// Waiting in tests with a bound that does not outlive the wait (src/core/bounded-wait.ts says why: a
// pending 60 s timer kept image-boot's process alive a minute after its last test).
import { within } from '../../src/core/bounded-wait.js';

export { within };

/** `p`'s value, or a rejection naming `what` once `ms` have passed; the timer is cleared either way. */
export function withinOrThrow<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return within(p, ms, (): never => {
    throw new Error(`${what}: not within ${ms} ms`);
  });
}
