// A time window of the node's traffic, as the CLI and the API take it: `since`
// and `until` are "now", a duration ago (90s, 30m, 1h, 2d, 1500ms), an ISO date
// or epoch milliseconds.

export class WindowError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'WindowError';
  }
}

const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Epoch ms of `v` relative to `now`; `field` names the parameter in the error. */
export function parseWhen(v: string | number, now: number, field: string): number {
  if (typeof v === 'number') return v;
  const s = v.trim();
  if (s === 'now') return now;
  const rel = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s);
  if (rel) return now - Number(rel[1]) * UNIT[rel[2]!]!;
  if (/^\d{10,}$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (Number.isFinite(t)) return t;
  throw new WindowError(`${field}: expected now, a duration ago (90s, 30m, 1h, 2d), an ISO date or epoch ms (got '${v}')`, field);
}

export interface Window {
  since: number;
  until: number;
}

/** The window [since, until) (default: the last hour up to now). */
export function parseWindow(since: string | number | undefined, until: string | number | undefined, now: number): Window {
  const w = { since: parseWhen(since ?? '1h', now, 'since'), until: parseWhen(until ?? 'now', now, 'until') };
  if (!(w.until > w.since)) throw new WindowError(`until (${new Date(w.until).toISOString()}) must be after since (${new Date(w.since).toISOString()})`, 'until');
  return w;
}
