// The alarm feeds (issue 22): schedules (cron through croner, interval, once),
// which firings fire after a gap, and the alarm source on a virtual clock over a
// real SQLite file — including a restart (a new source on the same database):
// no firing twice, firings missed while down skipped (or the latest fired once).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { VirtualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { openDb, type Db } from '../../src/registry/db.js';
import { alarmSpec, dueFirings, nextFiring, type AlarmSpec } from '../../src/sources/alarms/schedule.js';
import { AlarmSource, type AlarmOptions } from '../../src/sources/alarms/source.js';
import { OwEntities } from '../../src/sources/openwhisk/entities.js';

const T0 = Date.parse('2026-01-01T00:00:30.000Z');
const MIN = 60_000;
const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());

void test('cron: five fields (UTC) or six with seconds, time zones, start and stop dates; a 400 naming the parameter', () => {
  const every2 = alarmSpec('alarm', { cron: '*/2 * * * *' }, T0);
  assert.equal(iso(nextFiring(every2, T0)), '2026-01-01T00:02:00.000Z');
  assert.equal(iso(nextFiring(every2, Date.parse('2026-01-01T00:02:00.000Z'))), '2026-01-01T00:04:00.000Z', 'strictly after');
  const secs = alarmSpec('alarm', { cron: '*/30 * * * * *' }, T0);
  assert.equal(iso(nextFiring(secs, T0)), '2026-01-01T00:01:00.000Z');
  const paris = alarmSpec('alarm', { cron: '0 9 * * *', timezone: 'Europe/Paris' }, T0);
  assert.equal(iso(nextFiring(paris, T0)), '2026-01-01T08:00:00.000Z');
  const windowed = alarmSpec('alarm', { cron: '* * * * *', startDate: '2026-01-01T01:00:00Z', stopDate: Date.parse('2026-01-01T01:02:00Z') }, T0);
  assert.equal(iso(nextFiring(windowed, T0)), '2026-01-01T01:00:00.000Z');
  assert.equal(nextFiring(windowed, Date.parse('2026-01-01T01:02:00Z')), undefined, 'nothing after the stop date');
  const bad: [Record<string, unknown>, RegExp][] = [
    [{}, /cron: is required/],
    [{ minutes: 5 }, /cron: is required by \/whisk\.system\/alarms\/alarm/],
    [{ cron: '61 * * * *' }, /cron: /],
    [{ cron: '* * * *' }, /cron: must have five fields/],
    [{ cron: '0 0 31 2 *' }, /cron: never fires/],
    [{ cron: '* * * * *', timezone: 'Mars/Olympus' }, /timezone: /],
    [{ cron: '* * * * *', stopDate: 'yesterday-ish' }, /stopDate: /],
    [{ cron: '* * * * *', startDate: T0 + 2 * MIN, stopDate: T0 + MIN }, /stopDate: must be after startDate/],
  ];
  for (const [p, re] of bad) assert.throws(() => alarmSpec('alarm', p, T0), re, JSON.stringify(p));
});

void test('interval and once: the first interval firing at once (or at startDate); once in the future only', () => {
  const iv = alarmSpec('interval', { minutes: '3' }, T0);
  assert.equal(nextFiring(iv, T0 - 1), T0, 'at once');
  assert.equal(nextFiring(iv, T0), T0 + 3 * MIN);
  assert.equal(nextFiring(iv, T0 + 7 * MIN), T0 + 9 * MIN);
  assert.throws(() => alarmSpec('interval', { minutes: 1.5 }, T0), /minutes: /);
  const once = alarmSpec('once', { date: new Date(T0 + MIN).toISOString() }, T0);
  assert.equal(nextFiring(once, T0), T0 + MIN);
  assert.equal(nextFiring(once, T0 + MIN), undefined);
  assert.throws(() => alarmSpec('once', { date: T0 - 1 }, T0), /date: must be in the future/);
});

void test('due firings after a gap: the latest fires when within the grace (or with fire-once), the others are skipped', () => {
  const everyMin: AlarmSpec = { feed: 'alarm', cron: '* * * * *' };
  const last = Date.parse('2026-01-01T00:00:00Z');
  // on time: one firing due, 10 ms late
  assert.deepEqual(dueFirings(everyMin, last, last + MIN + 10, 60_000, 'skip'), { fire: last + MIN, upTo: last + MIN, skipped: 0, countCapped: false });
  // down for 10 minutes: 10 due, the latest 30 s ago (within the grace) fires, 9 skipped
  assert.deepEqual(dueFirings(everyMin, last, last + 10 * MIN + 30_000, 60_000, 'skip'), { fire: last + 10 * MIN, upTo: last + 10 * MIN, skipped: 9, countCapped: false });
  // the latest is older than the grace: skip all, or fire it once
  assert.deepEqual(dueFirings(everyMin, last, last + 10 * MIN + 50_000, 10_000, 'skip'), { fire: undefined, upTo: last + 10 * MIN, skipped: 10, countCapped: false });
  assert.equal(dueFirings(everyMin, last, last + 10 * MIN + 50_000, 10_000, 'fire-once').fire, last + 10 * MIN);
  // nothing due yet
  assert.deepEqual(dueFirings(everyMin, last, last + 5, 60_000, 'skip'), { skipped: 0, countCapped: false });
  // a once alarm fires late, whatever the policy
  assert.equal(dueFirings({ feed: 'once', date: last + MIN }, last, last + 60 * MIN, 1000, 'skip').fire, last + MIN);
});

interface Rig {
  db: Db;
  entities: OwEntities;
  clock: VirtualClock;
  fired: { trigger: string; at: number; now: number }[];
  source: AlarmSource;
}

function rig(db: Db, clock: VirtualClock, options: AlarmOptions, fired: Rig['fired'] = [], entities = new OwEntities(db)): Rig {
  const source = new AlarmSource({
    entities,
    db,
    clock,
    log: silentLogger,
    options,
    fire: async (trigger, _doc, at) => void fired.push({ trigger, at, now: clock.now() }),
  });
  return { db, entities, clock, fired, source };
}

void test('the alarm source on a virtual clock: fires on schedule, survives a restart without firing twice, skips what fell due while down', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-alarms-'));
  try {
    const file = 'alarms.db';
    const clock = new VirtualClock(Date.parse('2026-01-01T00:00:30.000Z'));
    const opts: AlarmOptions = { graceMs: 60_000, missedFirings: 'skip' };
    let db = openDb(dir, file);
    let r = rig(db, clock, opts);
    await r.source.start();
    r.entities.put('alarm', 'tick', { params: { cron: '* * * * *' }, spec: alarmSpec('alarm', { cron: '* * * * *' }, clock.now()), payload: { a: 1 }, deleteAfterFire: false }, clock.now());
    await clock.run(Date.parse('2026-01-01T00:03:10.000Z'));
    assert.deepEqual(r.fired.map((f) => iso(f.at)), ['2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z', '2026-01-01T00:03:00.000Z']);

    // restart 20 s later (within the grace): the firing of 00:03 is not fired again
    await r.source.stop();
    db.close();
    await clock.run(Date.parse('2026-01-01T00:03:30.000Z'));
    db = openDb(dir, file);
    const fired2: Rig['fired'] = [];
    r = rig(db, clock, opts, fired2);
    await r.source.start();
    await clock.run(Date.parse('2026-01-01T00:05:10.000Z'));
    assert.deepEqual(fired2.map((f) => iso(f.at)), ['2026-01-01T00:04:00.000Z', '2026-01-01T00:05:00.000Z']);

    // down across 00:06–00:09: restarted at 00:09:20, the 00:09 firing (20 s late) fires, 00:06–00:08 are skipped
    await r.source.stop();
    db.close();
    await clock.run(Date.parse('2026-01-01T00:09:20.000Z'));
    db = openDb(dir, file);
    const fired3: Rig['fired'] = [];
    r = rig(db, clock, opts, fired3);
    await r.source.start();
    await clock.run(Date.parse('2026-01-01T00:10:10.000Z'));
    assert.deepEqual(fired3.map((f) => iso(f.at)), ['2026-01-01T00:09:00.000Z', '2026-01-01T00:10:00.000Z']);

    // down again, restarted 2 min after the last due firing with a 10 s grace: nothing of the gap fires...
    await r.source.stop();
    db.close();
    await clock.run(Date.parse('2026-01-01T00:12:30.000Z'));
    db = openDb(dir, file);
    const fired4: Rig['fired'] = [];
    r = rig(db, clock, { graceMs: 10_000, missedFirings: 'skip' }, fired4);
    await r.source.start();
    await clock.run(Date.parse('2026-01-01T00:12:40.000Z'));
    assert.deepEqual(fired4, []);
    await r.source.stop();
    db.close();
    // ...unless missedFirings is fire-once: the latest missed firing fires once, at start
    await clock.run(Date.parse('2026-01-01T00:15:30.000Z'));
    db = openDb(dir, file);
    const fired5: Rig['fired'] = [];
    r = rig(db, clock, { graceMs: 10_000, missedFirings: 'fire-once' }, fired5);
    await r.source.start();
    await clock.run(Date.parse('2026-01-01T00:15:40.000Z'));
    assert.deepEqual(fired5.map((f) => iso(f.at)), ['2026-01-01T00:15:00.000Z']);

    // a deleted alarm stops firing and leaves no firing row
    r.entities.delete('alarm', 'tick');
    await clock.run(Date.parse('2026-01-01T00:20:00.000Z'));
    assert.equal(fired5.length, 1);
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM alarm_firings').get() as { n: number }).n, 0);
    await r.source.stop();
    assert.equal(clock.pending, 0, 'no timer left behind');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('two sources on one database (two daemons of a cluster share a claim): each firing fires once', async () => {
  const clock = new VirtualClock(T0);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-alarms-'));
  try {
    const db = openDb(dir, 'a.db');
    const fired: Rig['fired'] = [];
    const a = rig(db, clock, { graceMs: 60_000, missedFirings: 'skip' }, fired);
    const b = rig(db, clock, { graceMs: 60_000, missedFirings: 'skip' }, fired, a.entities);
    await a.source.start();
    await b.source.start();
    a.entities.put('alarm', 'iv', { params: { minutes: 1 }, spec: alarmSpec('interval', { minutes: 1 }, clock.now()), payload: {}, deleteAfterFire: false }, clock.now());
    await clock.run(T0 + 3 * MIN + 5);
    assert.deepEqual(fired.map((f) => f.at - T0), [0, MIN, 2 * MIN, 3 * MIN]);
    await a.source.stop();
    await b.source.stop();
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
