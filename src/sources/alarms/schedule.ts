// When an alarm fires (pure): OpenWhisk's /whisk.system/alarms feeds —
// `alarm` (cron, 5 fields or 6 with seconds, UTC unless `timezone`), `interval`
// (every `minutes`, the first firing at once or at `startDate`) and `once` (`date`) —
// and which of the firings due at a moment fire after a gap (a daemon that was down).
// Cron expressions are evaluated by croner (no dependencies, 5/6-field crontab with
// seconds and IANA time zones, Vixie cron's day-of-month OR day-of-week rule), the
// syntax OpenWhisk's alarm provider documents.

import { Cron } from 'croner';
import { badRequest } from '../../core/errors.js';

export type AlarmFeed = 'alarm' | 'interval' | 'once';
export const ALARM_FEEDS: readonly AlarmFeed[] = ['alarm', 'interval', 'once'];

export type AlarmSpec =
  | { feed: 'alarm'; cron: string; timezone?: string; startDate?: number; stopDate?: number }
  /** firings at anchor + k × minutes (k ≥ 0): anchor = startDate, or when the feed was created */
  | { feed: 'interval'; minutes: number; anchor: number; stopDate?: number }
  | { feed: 'once'; date: number };

/** What happens to firings that fell due while nobody could fire them (the daemon was down). */
export type MissedFirings = 'skip' | 'fire-once';

/** A date parameter: epoch ms or an ISO 8601 string (as the alarm package accepts). */
export function dateParam(field: string, v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const t = typeof v === 'number' ? v : typeof v === 'string' ? (/^\d+$/.test(v) ? Number(v) : Date.parse(v)) : NaN;
  if (!Number.isFinite(t)) throw badRequest(field, `must be epoch milliseconds or an ISO 8601 date (got ${JSON.stringify(v)})`);
  return t;
}

function cronOf(expr: string, timezone: string | undefined): Cron {
  return new Cron(expr, { paused: true, timezone, mode: '5-or-6-parts' });
}

/** The schedule of a feed from its parameters (a 400 naming the parameter when one is wrong). */
export function alarmSpec(feed: AlarmFeed, p: Record<string, unknown>, now: number): AlarmSpec {
  const startDate = dateParam('startDate', p.startDate);
  const stopDate = dateParam('stopDate', p.stopDate);
  if (startDate !== undefined && stopDate !== undefined && stopDate <= startDate) throw badRequest('stopDate', 'must be after startDate');
  if (stopDate !== undefined && stopDate <= now) throw badRequest('stopDate', 'must be in the future');
  switch (feed) {
    case 'alarm': {
      if (typeof p.cron !== 'string' || p.cron.trim() === '') {
        throw badRequest('cron', p.minutes !== undefined ? 'is required by /whisk.system/alarms/alarm (an interval in minutes is the /whisk.system/alarms/interval feed)' : 'is required: a crontab expression, e.g. "*/5 * * * *"');
      }
      const cron = p.cron.trim();
      const parts = cron.split(/\s+/).length;
      if (parts !== 5 && parts !== 6) throw badRequest('cron', `must have five fields (or six, with seconds first); got ${parts}`);
      if (p.timezone !== undefined && typeof p.timezone !== 'string') throw badRequest('timezone', 'must be an IANA time zone name');
      const timezone = p.timezone === undefined || p.timezone === '' ? undefined : p.timezone;
      if (timezone !== undefined) {
        try {
          new Intl.DateTimeFormat('en', { timeZone: timezone });
        } catch {
          throw badRequest('timezone', `not a time zone: ${timezone} (an IANA name such as Europe/Paris)`);
        }
      }
      let c: Cron;
      try {
        c = cronOf(cron, timezone);
      } catch (err) {
        throw badRequest('cron', (err as Error).message);
      }
      if (c.nextRun(new Date(Math.max(now, startDate ?? now))) === null) throw badRequest('cron', 'never fires');
      return { feed, cron, timezone, startDate, stopDate };
    }
    case 'interval': {
      const minutes = typeof p.minutes === 'string' && /^\d+$/.test(p.minutes) ? Number(p.minutes) : p.minutes;
      if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1) throw badRequest('minutes', 'is required: a whole number of minutes, at least 1');
      return { feed, minutes, anchor: startDate ?? now, stopDate };
    }
    case 'once': {
      const date = dateParam('date', p.date);
      if (date === undefined) throw badRequest('date', 'is required: when to fire (epoch ms or ISO 8601)');
      if (date <= now) throw badRequest('date', 'must be in the future');
      return { feed, date };
    }
  }
}

/** The first firing strictly after `after`, or undefined when the alarm fires no more. */
export function nextFiring(spec: AlarmSpec, after: number): number | undefined {
  switch (spec.feed) {
    case 'alarm': {
      const from = spec.startDate !== undefined && spec.startDate - 1 > after ? spec.startDate - 1 : after;
      const next = cronOf(spec.cron, spec.timezone).nextRun(new Date(from));
      const t = next?.getTime();
      return t === undefined || (spec.stopDate !== undefined && t > spec.stopDate) ? undefined : t;
    }
    case 'interval': {
      const period = spec.minutes * 60_000;
      const t = after < spec.anchor ? spec.anchor : spec.anchor + (Math.floor((after - spec.anchor) / period) + 1) * period;
      return spec.stopDate !== undefined && t > spec.stopDate ? undefined : t;
    }
    case 'once':
      return spec.date > after ? spec.date : undefined;
  }
}

/** How many firings to count at most when a long gap is looked at (a seconds cron over days). */
const COUNT_MAX = 100_000;

export interface DueFirings {
  /** the firing to fire now (the latest one due), if any */
  fire?: number;
  /** the scheduled time the alarm has dealt with up to: the next look starts after it */
  upTo?: number;
  /** firings due but not fired (missed while down); `countCapped`: at least that many */
  skipped: number;
  countCapped: boolean;
}

/**
 * The firings due at `now` after the last one dealt with (`last`). The latest one
 * fires when it is at most `graceMs` late (a timer delayed by load, a restart within
 * the grace), or in every case with `missed: fire-once`, or for a `once` alarm (its
 * one firing happens, late); every earlier one was missed and is skipped: a gap never
 * causes a burst of firings.
 */
export function dueFirings(spec: AlarmSpec, last: number, now: number, graceMs: number, missed: MissedFirings): DueFirings {
  let latest: number | undefined;
  let count = 0;
  for (let t = nextFiring(spec, last); t !== undefined && t <= now && count < COUNT_MAX; t = nextFiring(spec, t)) {
    latest = t;
    count++;
  }
  if (latest === undefined) return { skipped: 0, countCapped: false };
  const fires = missed === 'fire-once' || spec.feed === 'once' || now - latest <= graceMs;
  // a capped count stopped early: the next look starts at now (the firings between are missed too)
  const upTo = count >= COUNT_MAX ? now : latest;
  return { fire: fires ? latest : undefined, upTo, skipped: count - (fires ? 1 : 0), countCapped: count >= COUNT_MAX };
}
