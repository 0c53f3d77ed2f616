// The guest agent's JavaScript clock: what Date reports in a restored clone
// between a deferred resync and the kernel clock being set.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installJsClock } from '../../guest/agent/clock.js';

void test('Date follows the offset and drops it on reset; dates stay real dates', () => {
  const OrigDate = Date;
  const c = installJsClock();
  try {
    assert.equal(c.offsetMs, 0);
    assert.ok(Math.abs(Date.now() - OrigDate.now()) < 50);
    const future = OrigDate.now() + 3_600_000;
    c.correctTo(future);
    assert.ok(Math.abs(Date.now() - future) < 50, 'Date.now corrected');
    assert.ok(Math.abs(new Date().getTime() - future) < 50, 'new Date() corrected');
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
    const s = new Sub();
    assert.ok(s instanceof Sub && s instanceof Date);
    assert.ok(Math.abs(s.getTime() - future) < 50, 'subclasses see the corrected time');
    c.reset();
    assert.equal(c.offsetMs, 0);
    assert.ok(Math.abs(Date.now() - OrigDate.now()) < 50);
  } finally {
    c.uninstall();
  }
  assert.equal(Date, OrigDate);
});
