// Server side of the live dashboard: keeps the activations of the last minutes
// (bounded by count and age) and streams to each connected page, over
// Server-Sent Events, the node's state whenever it changes and every finished
// activation as it happens. The state is read only while a page is connected.

import type { ServerResponse } from 'node:http';
import type { Logger } from '../core/logger.js';
import type { ActivationRecord } from '../perf/activation.js';
import type { VmSample } from '../metrics/vm-sampler.js';
import type { NodeState } from '../telemetry/node-state.js';
import type { StageSegment } from '../telemetry/stages.js';

/** What the page gets per activation: enough for the mix, the latency plot and a waterfall. */
export interface ActivationSummary {
  id: string;
  fn: string;
  /** issue 21: the function's language runtime (nodejs20, python3) */
  runtime: string;
  startPath: string;
  status: string;
  /** epoch ms received */
  at: number;
  totalMs: number;
  vmId?: string;
  traceId?: string;
  error?: string;
  /** stages relative to `at` */
  stages: Array<{ stage: string; offsetMs: number; durMs: number }>;
}

export interface DashboardState {
  node: NodeState;
  vms: VmSample[];
}

export interface HubOptions {
  readState: () => Promise<DashboardState>;
  log: Logger;
  refreshMs: number;
  windowMs: number;
  maxActivations: number;
}

export function summarize(rec: ActivationRecord & { traceId?: string }, segs: StageSegment[]): ActivationSummary {
  const at = rec.timestamps.received ?? Date.now();
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  return {
    id: rec.id,
    fn: rec.function,
    runtime: rec.functionRuntime ?? 'nodejs20',
    startPath: rec.startPath ?? 'none',
    status: rec.status,
    at,
    totalMs: rec.totalMs,
    vmId: rec.vmId,
    traceId: rec.traceId,
    error: rec.error ? `${rec.error.code}: ${rec.error.message}`.slice(0, 300) : undefined,
    stages: segs.map((s) => ({ stage: s.stage, offsetMs: r2(s.startMs - at), durMs: r2(s.endMs - s.startMs) })),
  };
}

export class DashboardHub {
  private readonly recent: ActivationSummary[] = [];
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private lastState = '';
  private reading = false;
  private closed = false;

  constructor(private readonly opts: HubOptions) {}

  get clientCount(): number {
    return this.clients.size;
  }

  push(a: ActivationSummary): void {
    this.recent.push(a);
    this.prune(Date.now());
    this.broadcast('activation', JSON.stringify(a));
    // the instance that served it has changed state too: show that now, not at the next tick
    void this.refresh();
  }

  /** Take over a response as an event stream. */
  async attach(res: ServerResponse): Promise<void> {
    if (this.closed) {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unavailable', message: 'the daemon is stopping' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: 2000\n\n`);
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stopTimer();
    });
    this.prune(Date.now());
    const state = await this.opts.readState().catch(() => undefined);
    send(res, 'hello', JSON.stringify({ windowMs: this.opts.windowMs, now: Date.now(), activations: this.recent, state }));
    this.startTimer();
  }

  /** End every stream (the daemon is stopping: open streams would hold the HTTP server open). */
  close(): void {
    this.closed = true;
    this.stopTimer();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private startTimer(): void {
    if (this.timer) return;
    let beats = 0;
    this.timer = setInterval(() => {
      void this.refresh();
      // a comment line now and then keeps proxies from closing an idle stream
      if (++beats % Math.max(1, Math.round(15_000 / this.opts.refreshMs)) === 0) for (const c of this.clients) c.write(': keep-alive\n\n');
    }, this.opts.refreshMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    if (this.reading || this.clients.size === 0) return;
    this.reading = true;
    try {
      const st = await this.opts.readState();
      // `at` changes on every read: compare without it
      const key = JSON.stringify({ ...st, node: { ...st.node, at: 0 } });
      if (key === this.lastState) return;
      this.lastState = key;
      this.broadcast('state', JSON.stringify(st));
    } catch (err) {
      this.opts.log.debug('dashboard: reading the node state failed', { err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.reading = false;
    }
  }

  private broadcast(event: string, data: string): void {
    for (const c of this.clients) send(c, event, data);
  }

  private prune(now: number): void {
    const minAt = now - this.opts.windowMs;
    let drop = 0;
    while (drop < this.recent.length && (this.recent[drop]!.at < minAt || this.recent.length - drop > this.opts.maxActivations)) drop++;
    if (drop) this.recent.splice(0, drop);
  }
}

function send(res: ServerResponse, event: string, data: string): void {
  res.write(`event: ${event}\ndata: ${data}\n\n`);
}
