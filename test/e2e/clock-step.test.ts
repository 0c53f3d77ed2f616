// The host's wall clock stepping backwards and forwards under a running daemon
// (an NTP correction, an operator). Stepping the machine's clock would disturb
// everything else on it, so the daemon alone gets a stepped clock: libfaketime
// (LD_PRELOAD, the offset read from a file at every call) moves its wall clock
// while its monotonic clock runs on, as the kernel's does in a real step. What
// must hold: a run in flight across the step is answered and timed right (no
// negative or hour-long stages); a start after the step is timed right (the
// driver's stamps and the Worker's agree); a restored clone's clock is the host's
// wall clock as it is now; nothing is left behind.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STAGES } from '../../src/perf/activation.js';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import os from 'node:os';
import { assertGuestClockWithin } from '../support/guest-clock.js';
import { until } from '../support/observability.js';

const LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/faketime/libfaketimeMT.so.1'].find((p) => fs.existsSync(p));

const TICK = `exports.main = async (p) => { await new Promise((r) => setTimeout(r, p.ms || 0)); return { now: Date.now() }; };`;

type Rec = { startPath: string; totalMs: number; timings: Record<string, number> };

/** Every stage reached is at or after `received`, in order, and the whole far from the hour a step would add (10 min: a loaded host's start is slow, never that slow). */
function assertSaneTimings(rec: Rec, what: string): void {
  const ts = STAGES.map((s) => rec.timings[s]).filter((x): x is number => x !== undefined);
  assert.ok(rec.totalMs >= 0 && rec.totalMs < 600_000, `${what}: totalMs ${rec.totalMs}`);
  for (const x of ts) assert.ok(x >= 0 && x < 600_000, `${what}: a stage at ${x} ms (${JSON.stringify(rec.timings)})`);
}

void test('the wall clock steps back and forward under the daemon: runs, starts and clones stay right', { skip: LIB ? false : 'libfaketime is not installed (scripts/setup.sh installs the faketime package)', timeout: 10 * 60_000 }, async (t) => {
  let d: TestDaemon | undefined;
  const saved = { LD_PRELOAD: process.env.LD_PRELOAD, FAKETIME_TIMESTAMP_FILE: process.env.FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE: process.env.FAKETIME_NO_CACHE, DONT_FAKE_MONOTONIC: process.env.DONT_FAKE_MONOTONIC };
  const offsetFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fc-e2e-clock-')), 'offset');
  const step = (seconds: number) => fs.writeFileSync(offsetFile, `${seconds >= 0 ? '+' : ''}${seconds}`);
  step(0);
  try {
    // only the daemon's process gets the preload (its VMMs get a clean environment of their own)
    Object.assign(process.env, { LD_PRELOAD: LIB, FAKETIME_TIMESTAMP_FILE: offsetFile, FAKETIME_NO_CACHE: '1', DONT_FAKE_MONOTONIC: '1' });
    try {
      d = await startDaemon({});
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    await d.client.deploy('tick', Buffer.from(TICK), { codeKind: 'js' });
    const first = await d.client.invoke('tick', {});
    assert.equal(first.status, 200, JSON.stringify(first.body));

    // a run in flight while the clock steps back an hour
    const inflight = d.client.invoke('tick', { ms: 2500 });
    const dd = d;
    await until('the run to be in flight', async () => {
      const st = await dd.client.call<{ pool: { instances: Array<{ fn: string; state: string }> } }>('GET', '/v1/status');
      return st.pool.instances.some((i) => i.fn === 'tick' && i.state === 'busy') ? true : undefined;
    }, 60_000, 50);
    step(-3600);
    const r1 = await inflight;
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assertSaneTimings(r1.body.activation as unknown as Rec, 'run across a step back');
    // timed by the host's monotonic clock: about the guest's 2.5 s (a TCG guest's clock may run a little fast), not an hour off
    assert.ok((r1.body.activation as unknown as Rec).totalMs >= 2000, `a 2.5 s run: ${JSON.stringify(r1.body).slice(0, 1500)}`);

    // a start (restore) after the step: the driver's stamps and the Worker's agree; the clone has the host's wall time
    for (const offset of [-3600, 3600]) {
      step(offset);
      await d.client.call('POST', '/v1/functions/tick/evict');
      const before = Date.now() + offset * 1000;
      const r = await d.client.invoke('tick', {});
      const after = Date.now() + offset * 1000;
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const rec = r.body.activation as unknown as Rec;
      assert.equal(rec.startPath, 'restore');
      assertSaneTimings(rec, `restore with the clock ${offset / 3600} h off`);
      const guestNow = (r.body.result as { now: number }).now;
      const hostWall = after;
      // within the call as the (stepped) host wall clock saw it, 30 s either way: an hour off is what it rules out
      assertGuestClockWithin(guestNow, before, after, `the clone's clock (offset ${offset / 3600} h)`, 30_000, 30_000);
      t.diagnostic(`clock ${offset > 0 ? '+' : ''}${offset / 3600} h: restore ${rec.totalMs} ms, clone clock ${guestNow - hostWall} ms from the host's wall clock`);
    }
  } finally {
    await stopAndCheck(d);
    fs.rmSync(path.dirname(offsetFile), { recursive: true, force: true });
  }
});
