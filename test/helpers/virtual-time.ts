// Virtual time for tests of actors over a FakeDriver: nothing in them depends on how fast the machine is.
import type { VirtualClock } from '../../src/core/clock.js';

/**
 * Let virtual time run on by itself while a test awaits: whenever every pending promise and immediate has
 * settled, the clock fires its next timers (at most `stepMs` of virtual time at a go). Timers set by the test
 * (`clock.sleep`) and by the actors fire in one time order, so "20 ms later" means exactly that. Bounded:
 * it stops at `maxMs` of virtual time even if the test never calls stop().
 */
export function autoAdvance(clock: VirtualClock, opts: { stepMs?: number; maxMs?: number } = {}): { stop(): Promise<void> } {
  const step = opts.stepMs ?? 5;
  const limit = clock.now() + (opts.maxMs ?? 600_000);
  let stopped = false;
  const loop = (async () => {
    while (!stopped && clock.now() < limit) await clock.run(clock.now() + step);
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Move virtual time on until `p` settles (at most `maxMs` of it), then return p. */
export async function settleOn<T>(clock: VirtualClock, p: Promise<T>, maxMs = 60_000): Promise<T> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  const end = clock.now() + maxMs;
  while (!settled && clock.now() < end) await clock.run(clock.now() + 5);
  return p;
}
