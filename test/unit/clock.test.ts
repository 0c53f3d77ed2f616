// The guest agent's JavaScript clock: what Date reports in a restored clone
// between a deferred resync and the kernel clock being set.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installJsClock } from '../../guest/agent/clock.js';

void test('Date follows the offset and drops it on reset; dates stay real dates', () => {
  const OrigDate = Date;
  const c = installJsClock();
  /** `read` lies between two readings of the real clock plus the offset, however long the machine took between them */
  const bracketed = (read: () => number, what: string): void => {
    const before = OrigDate.now();
    const v = read();
    const after = OrigDate.now();
    assert.ok(before + c.offsetMs <= v && v <= after + c.offsetMs, `${what}: ${v} not within [${before}, ${after}] + ${c.offsetMs}`);
  };
  try {
    assert.equal(c.offsetMs, 0);
    bracketed(() => Date.now(), 'Date.now with no offset');
    const asked = OrigDate.now();
    const future = asked + 3_600_000;
    c.correctTo(future);
    const corrected = OrigDate.now();
    // the offset is taken against the real clock when correctTo ran, somewhere in [asked, corrected]
    assert.ok(c.offsetMs <= 3_600_000 && c.offsetMs >= 3_600_000 - (corrected - asked), `offset ${c.offsetMs}`);
    bracketed(() => Date.now(), 'Date.now corrected');
    bracketed(() => new Date().getTime(), 'new Date() corrected');
    assert.match(String(Date()), /\d{2}:\d{2}:\d{2}/, 'Date() still returns a string');
    // explicit arguments are untouched
    assert.equal(new Date(0).getTime(), 0);
    assert.equal(new Date(2020, 0, 1).getFullYear(), 2020);
    assert.equal(Date.UTC(2020, 0, 1), OrigDate.UTC(2020, 0, 1));
    assert.equal(Date.parse('2020-01-01T00:00:00Z'), 1577836800000);
    // instanceof works both ways (Node creates dates with the original constructor)
    assert.ok(new Date() instanceof OrigDate);
    assert.ok(new OrigDate() instanceof Date);
    class Sub extends Date {}
    assert.ok(new Sub() instanceof Sub && new Sub() instanceof Date);
    bracketed(() => new Sub().getTime(), 'subclasses see the corrected time');
    c.reset();
    assert.equal(c.offsetMs, 0);
    bracketed(() => Date.now(), 'Date.now after reset');
  } finally {
    c.uninstall();
  }
  assert.equal(Date, OrigDate);
});
