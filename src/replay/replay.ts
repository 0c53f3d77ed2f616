// Open-loop trace replay against a running daemon: every invocation is sent
// at its scheduled (compressed) time whether or not earlier ones answered.
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises';
import { loadTrace, type TraceFormat } from '../traces/index.js';
import { ArrivalExpander, type Spread } from '../traces/expand.js';
import { subsetTrace } from '../traces/transform.js';
import type { Trace } from '../traces/types.js';
import { buildMapping, type Mapping, type MappingOptions } from './mapping.js';
import { numberFlag } from '../cli/flags.js';

export interface ReplayRecord {
  /** ms after the replay started when it was due */
  scheduledMs: number;
  sentMs: number;
  lagMs: number;
  function: string;
  traceFunction: string;
  /** HTTP status; 0 when no answer (network error, timeout, not sent) */
  status: number;
  startPath: string | null;
  /** client-side: answer received − sent */
  latencyMs: number | null;
  /** the activation's own totalMs (from received to response) */
  totalMs: number | null;
  activationId?: string;
  error?: string;
}

export interface ReplaySummary {
  url: string;
  compress: number;
  scheduled: number;
  sent: number;
  completed: number;
  ok: number;
  errors: number;
  /** not sent because --max-inflight requests were outstanding */
  skippedInflight: number;
  byStartPath: Record<string, number>;
  byStatus: Record<string, number>;
  p50LatencyMs: number;
  p99LatencyMs: number;
  meanLatencyMs: number;
  p50TotalMs: number;
  p99TotalMs: number;
  p99LagMs: number;
  maxLagMs: number;
  maxInflight: number;
  wallSeconds: number;
}

export interface ReplayOptions extends MappingOptions {
  trace: Trace;
  url: string;
  /** Trace time / replay time (60: a minute of trace per second). Default 1. */
  compress?: number;
  /** Stop scheduling after this many seconds of replay time. */
  durationS?: number;
  /** Skip the first S seconds of trace time. */
  fromS?: number;
  token?: string;
  /** Safety valve (default 2000): beyond it requests are not sent (counted). */
  maxInflight?: number;
  timeoutMs?: number;
  spread?: Spread;
  seed?: number;
  /** Receives every record (e.g. to write JSONL). */
  onRecord?: (r: ReplayRecord) => void;
  /** Progress output (default process.stderr); pass null to silence. */
  progress?: NodeJS.WriteStream | null;
  signal?: AbortSignal;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Request body for a trace function: the FaaSRail request, else {"ms": average duration} when known. */
export function requestBody(trace: Trace, fn: number): string {
  const f = trace.functions[fn]!;
  if (f.request !== undefined) return JSON.stringify(f.request);
  return f.avgDurationMs !== undefined ? JSON.stringify({ ms: Math.round(f.avgDurationMs) }) : '{}';
}

export async function replay(o: ReplayOptions): Promise<ReplaySummary> {
  const compress = o.compress ?? 1;
  if (!(compress > 0)) throw new Error('--compress must be > 0');
  let trace = o.trace;
  if (o.fromS) trace = subsetTrace(trace, { fromSlot: Math.floor((o.fromS * 1000) / trace.slotMs) });
  const mapping: Mapping = await buildMapping(trace, o);
  const base = o.url.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const bodies = trace.functions.map((_, i) => requestBody(trace, i));
  const urls = mapping.map((name) => (name === undefined ? '' : `${base}/v1/functions/${encodeURIComponent(name)}/invoke`));
  const maxInflight = o.maxInflight ?? 2000;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const endMs = o.durationS !== undefined ? o.durationS * 1000 : Infinity;

  const latencies: number[] = [];
  const totals: number[] = [];
  const lags: number[] = [];
  const byStartPath: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  let scheduled = 0;
  let sent = 0;
  let completed = 0;
  let ok = 0;
  let errors = 0;
  let skipped = 0;
  let inflight = 0;
  let maxSeen = 0;
  const pending = new Set<Promise<void>>();

  const progress = o.progress === undefined ? process.stderr : o.progress;
  const t0 = performance.now();
  const elapsed = (): number => performance.now() - t0;
  const showProgress = (final: boolean): void => {
    if (!progress) return;
    const line = `replay ${(elapsed() / 1000).toFixed(1)} s  sent ${sent}  completed ${completed}  errors ${errors}  in flight ${inflight}${skipped ? `  skipped ${skipped}` : ''}`;
    if (progress.isTTY) progress.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else progress.write(line + '\n');
  };
  const timer = setInterval(() => showProgress(false), progress?.isTTY ? 250 : 5000);
  timer.unref();

  /** A record for a request of trace function `fn` before any answer. */
  const unsent = (fn: number, scheduledMs: number, sentMs: number): ReplayRecord => ({
    scheduledMs: round(scheduledMs),
    sentMs: round(sentMs),
    lagMs: round(sentMs - scheduledMs),
    function: mapping[fn]!,
    traceFunction: trace.functions[fn]!.name,
    status: 0,
    startPath: null,
    latencyMs: null,
    totalMs: null,
  });

  const emit = (r: ReplayRecord): void => {
    o.onRecord?.(r);
    byStatus[String(r.status)] = (byStatus[String(r.status)] ?? 0) + 1;
    if (r.startPath) byStartPath[r.startPath] = (byStartPath[r.startPath] ?? 0) + 1;
  };

  const fire = async (fn: number, scheduledMs: number): Promise<void> => {
    const sentMs = elapsed();
    const lag = sentMs - scheduledMs;
    lags.push(lag);
    const rec = unsent(fn, scheduledMs, sentMs);
    try {
      const res = await fetch(urls[fn]!, { method: 'POST', headers, body: bodies[fn], signal: AbortSignal.timeout(timeoutMs) });
      const text = await res.text();
      const latency = elapsed() - sentMs;
      rec.status = res.status;
      rec.latencyMs = round(latency);
      let body: { activation?: { id?: string; startPath?: string; totalMs?: number }; error?: { code?: string; message?: string } } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        /* not JSON: keep the status */
      }
      const act = body.activation;
      if (act) {
        rec.startPath = act.startPath ?? null;
        rec.totalMs = typeof act.totalMs === 'number' ? act.totalMs : null;
        if (act.id) rec.activationId = act.id;
      }
      if (res.ok) {
        ok++;
        latencies.push(latency);
        if (rec.totalMs !== null) totals.push(rec.totalMs);
      } else {
        errors++;
        rec.error = body.error ? `${body.error.code ?? ''}: ${body.error.message ?? ''}` : text.slice(0, 200);
      }
    } catch (err) {
      errors++;
      rec.latencyMs = round(elapsed() - sentMs);
      // fetch hides the transport's reason (refused, reset, connect timeout) in `cause`
      const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
      const why = cause ? ` (${cause.code ?? cause.message ?? ''})` : '';
      rec.error = err instanceof Error ? `${err.name}: ${err.message}${why}` : String(err);
    } finally {
      inflight--;
      completed++;
      emit(rec);
    }
  };

  try {
    const x = new ArrivalExpander(trace, { spread: o.spread, seed: o.seed });
    outer: for (let s = 0; s < trace.nSlots; s++) {
      if ((s * trace.slotMs) / compress >= endMs) break;
      const n = x.slot(s);
      for (let i = 0; i < n; i++) {
        const fn = x.fns[i]!;
        if (urls[fn] === '') continue;
        const due = x.times[i]! / compress;
        if (due >= endMs) break outer;
        if (o.signal?.aborted) break outer;
        scheduled++;
        const wait = due - elapsed();
        if (wait > 1) await sleep(wait, undefined, { signal: o.signal }).catch(() => undefined);
        // Behind schedule: still let answers and socket writes through now and then.
        else if ((scheduled & 63) === 0) await yieldLoop();
        if (o.signal?.aborted) break outer;
        if (inflight >= maxInflight) {
          skipped++;
          emit({ ...unsent(fn, due, elapsed()), error: 'not sent: max-inflight reached' });
          continue;
        }
        inflight++;
        sent++;
        if (inflight > maxSeen) maxSeen = inflight;
        const p = fire(fn, due);
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
    }
    await Promise.all(pending);
  } finally {
    clearInterval(timer);
  }
  showProgress(true);

  latencies.sort((a, b) => a - b);
  totals.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  return {
    url: base,
    compress,
    scheduled,
    sent,
    completed,
    ok,
    errors,
    skippedInflight: skipped,
    byStartPath,
    byStatus,
    p50LatencyMs: round(percentile(latencies, 50)),
    p99LatencyMs: round(percentile(latencies, 99)),
    meanLatencyMs: round(latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : 0),
    p50TotalMs: round(percentile(totals, 50)),
    p99TotalMs: round(percentile(totals, 99)),
    p99LagMs: round(percentile(lags, 99)),
    maxLagMs: round(lags.length ? lags[lags.length - 1]! : 0),
    maxInflight: maxSeen,
    wallSeconds: round(elapsed() / 1000),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface ReplayCommandOptions extends Omit<ReplayOptions, 'trace' | 'onRecord' | 'compress' | 'durationS' | 'fromS' | 'maxInflight' | 'timeoutMs' | 'seed'> {
  trace: string;
  format?: TraceFormat;
  day?: string;
  slotSeconds?: number | string;
  compress?: number | string;
  duration?: number | string;
  from?: number | string;
  maxInflight?: number | string;
  timeoutMs?: number | string;
  seed?: number | string;
  /** JSONL records file. */
  out?: string;
  json?: boolean;
  write?: (s: string) => void;
}


/** `faascell replay`: load the trace, replay it, write records, print the summary. */
export async function runReplayCommand(opts: ReplayCommandOptions): Promise<ReplaySummary> {
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  const trace = await loadTrace(opts.trace, opts.format ?? 'azure', { day: opts.day, slotSeconds: numberFlag(opts.slotSeconds, 'slot-seconds') });
  let out: WriteStream | undefined;
  if (opts.out) {
    out = createWriteStream(opts.out);
    await once(out, 'open');
  }
  const { trace: _t, format: _f, day: _d, slotSeconds: _s, out: _o, json: _j, write: _w, ...rest } = opts;
  let summary: ReplaySummary;
  try {
    summary = await replay({
      ...rest,
      trace,
      compress: numberFlag(opts.compress, 'compress'),
      durationS: numberFlag(opts.duration, 'duration'),
      fromS: numberFlag(opts.from, 'from'),
      maxInflight: numberFlag(opts.maxInflight, 'max-inflight'),
      timeoutMs: numberFlag(opts.timeoutMs, 'timeout-ms'),
      seed: numberFlag(opts.seed, 'seed'),
      onRecord: out ? (r) => void out.write(JSON.stringify(r) + '\n') : undefined,
    });
  } finally {
    if (out) {
      out.end();
      await once(out, 'finish');
    }
  }
  if (opts.json) write(JSON.stringify(summary) + '\n');
  else write(formatSummary(summary));
  return summary;
}

export function formatSummary(s: ReplaySummary): string {
  const paths = Object.entries(s.byStartPath).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const statuses = Object.entries(s.byStatus).map(([k, v]) => `${k === '0' ? 'no answer' : k} ${v}`).join(', ');
  return [
    `replayed      ${s.sent} of ${s.scheduled} scheduled in ${s.wallSeconds.toFixed(1)} s (compress ${s.compress}×) against ${s.url}`,
    `answers       ${s.ok} ok, ${s.errors} errors; status ${statuses}`,
    `start paths   ${paths}`,
    `latency       p50 ${s.p50LatencyMs.toFixed(1)} ms, p99 ${s.p99LatencyMs.toFixed(1)} ms, mean ${s.meanLatencyMs.toFixed(1)} ms (activation totalMs p50 ${s.p50TotalMs.toFixed(1)}, p99 ${s.p99TotalMs.toFixed(1)})`,
    `send lag      p99 ${s.p99LagMs.toFixed(1)} ms, max ${s.maxLagMs.toFixed(1)} ms; max in flight ${s.maxInflight}${s.skippedInflight ? `; ${s.skippedInflight} not sent (max-inflight)` : ''}`,
  ].join('\n') + '\n';
}
