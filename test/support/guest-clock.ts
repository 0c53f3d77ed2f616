// A guest's clock, checked against the host's without a timing threshold: the guest's reading must lie
// between two host readings taken around it, widened only by what the host's load cannot shrink.
import assert from 'node:assert/strict';

/**
 * `now` (the guest's Date.now()) lies in [from - lagMs, to + aheadMs], where [from, to] are host readings
 * before and after the guest read its clock. lagMs: the guest's clock was set from a message that took up
 * to that long to arrive (4 s covers a loaded host; a clone left on its snapshot's clock is later than
 * that, the tests see to it); aheadMs: rounding between the host's clocks.
 */
export function assertGuestClockWithin(now: number, from: number, to: number, what: string, lagMs = 4000, aheadMs = 1000): void {
  assert.ok(now >= from - lagMs && now <= to + aheadMs, `${what}: guest clock ${now} outside the host's [${from}, ${to}] (-${lagMs} ms, +${aheadMs} ms): ${now - from} ms from the start`);
}
