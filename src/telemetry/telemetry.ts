// Observability of one daemon, wired in one place: every finished activation
// record (`onActivation`) feeds the log, the Prometheus metrics, the
// OpenTelemetry trace and the live dashboard; the node's state is read through
// the status adapter (node-state.ts) at scrape time and for the dashboard, and
// the VMM processes are sampled from /proc every few seconds.

import { existsSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ActorRef } from '../core/actor.js';
import type { Logger } from '../core/logger.js';
import { NodeMetrics } from '../metrics/metrics.js';
import { sampleVms, type VmSample } from '../metrics/vm-sampler.js';
import type { ActivationRecord } from '../perf/activation.js';
import type { PerfMsg } from '../perf/perf-manager.js';
import type { SnapshotMsg } from '../snapshots/types.js';
import { createActivationTracer, newTraceId, type ActivationTracer } from '../tracing/tracer.js';
import { DashboardHub, summarize } from '../ui/hub.js';
import { registerDashboard } from '../ui/routes.js';
import type { PoolMsg } from '../vmpool/pool.js';
import { readNodeState, type NodeState } from './node-state.js';
import { stageSegments } from './stages.js';

export interface TelemetryConfig {
  metrics: { enabled: boolean };
  sampleIntervalMs: number;
  otlp: { endpoint?: string; headers?: Record<string, string>; serviceName: string };
  dashboard: { enabled: boolean; refreshMs: number; windowMinutes: number; maxActivations: number };
}

export interface TelemetryDeps {
  config: TelemetryConfig;
  log: Logger;
  stateDir: string;
  /** where VM console logs are kept (the driver's consoleDir) */
  consoleDir?: string;
  pool: ActorRef<PoolMsg>;
  snapshots?: ActorRef<SnapshotMsg>;
  /** extra span processors, e.g. a test's in-memory exporter */
  spanProcessors?: SpanProcessor[];
}

/** A record as the telemetry sees it (`consoleLogPath` is set here for failed VMs). */
export type TracedRecord = ActivationRecord;

const FAILED_VM = new Set(['vm_error', 'crashed', 'timeout', 'init_error']);

export class Telemetry {
  readonly metrics: NodeMetrics | undefined;
  private readonly hub: DashboardHub | undefined;
  private samples: VmSample[] = [];
  private sampler: NodeJS.Timeout | undefined;
  private readonly runRoot: string;

  private constructor(
    private readonly deps: TelemetryDeps,
    readonly tracer: ActivationTracer | undefined,
  ) {
    const c = deps.config;
    this.runRoot = path.join(deps.stateDir, 'run');
    this.metrics = c.metrics.enabled ? new NodeMetrics() : undefined;
    this.hub = c.dashboard.enabled
      ? new DashboardHub({
          readState: async () => ({ node: await this.state(), vms: this.samples }),
          log: deps.log,
          refreshMs: c.dashboard.refreshMs,
          windowMs: c.dashboard.windowMinutes * 60_000,
          maxActivations: c.dashboard.maxActivations,
        })
      : undefined;
  }

  static async create(deps: TelemetryDeps): Promise<Telemetry> {
    const o = deps.config.otlp;
    const tracer = await createActivationTracer({ endpoint: o.endpoint, headers: o.headers, serviceName: o.serviceName, processors: deps.spanProcessors });
    if (tracer) deps.log.info('tracing on', { otlpEndpoint: o.endpoint ?? '(none: in-process exporters only)' });
    const t = new Telemetry(deps, tracer);
    t.startSampler();
    return t;
  }

  /**
   * The hook the daemon calls for every finished activation record, before the
   * record is stored. Never throws: observability must not fail an invocation.
   */
  readonly onActivation = (rec: TracedRecord): void => {
    try {
      rec.traceId ??= newTraceId();
      if (FAILED_VM.has(rec.status) && rec.vmId && this.deps.consoleDir && !rec.consoleLogPath) {
        // the driver keeps the VM's console there once the VM has stopped
        rec.consoleLogPath = path.join(this.deps.consoleDir, `${rec.vmId}.log`);
      }
      const segs = stageSegments(rec);
      this.deps.log.info('activation', {
        activationId: rec.id,
        fn: rec.function,
        traceId: rec.traceId,
        startPath: rec.startPath,
        status: rec.status,
        totalMs: rec.totalMs,
        vmId: rec.vmId,
        ...(rec.error ? { error: rec.error.code } : {}),
        ...(rec.consoleLogPath ? { consoleLog: rec.consoleLogPath } : {}),
      });
      this.metrics?.observe(rec, segs);
      this.tracer?.record(rec, segs);
      this.hub?.push(summarize(rec, segs));
    } catch (err) {
      this.deps.log.error('telemetry: activation hook failed', { activationId: rec.id, err: err instanceof Error ? err.message : String(err) });
    }
  };

  /** GET /metrics and the dashboard's routes. */
  register(app: FastifyInstance): void {
    const m = this.metrics;
    if (m) {
      app.get('/metrics', async (_req, reply) => {
        m.applyState(await this.state(), this.samples);
        return reply.header('content-type', m.contentType).send(await m.render());
      });
    }
    if (this.hub) {
      const hub = this.hub;
      registerDashboard(app, { hub, readState: async () => ({ node: await this.state(), vms: this.samples }) });
      // open event streams would keep the HTTP server from closing
      app.addHook('preClose', (done) => {
        hub.close();
        done();
      });
    }
  }

  /** The newest per-VM samples (taken every sampleIntervalMs). */
  get vmSamples(): VmSample[] {
    return this.samples;
  }

  async stop(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = undefined;
    this.hub?.close();
    await this.tracer?.shutdown().catch((err: unknown) => this.deps.log.warn('telemetry: flushing traces failed', { err: err instanceof Error ? err.message : String(err) }));
  }

  private state(): Promise<NodeState> {
    return readNodeState(this.deps.pool, this.deps.snapshots);
  }

  private startSampler(): void {
    if (!this.metrics && !this.hub) return;
    const tick = (): void => {
      if (!existsSync(this.runRoot)) return;
      sampleVms(this.runRoot).then(
        (s) => (this.samples = s),
        (err: unknown) => this.deps.log.debug('telemetry: sampling VMs failed', { err: err instanceof Error ? err.message : String(err) }),
      );
    };
    tick();
    this.sampler = setInterval(tick, this.deps.config.sampleIntervalMs);
    this.sampler.unref();
  }
}

/**
 * PerfManager's ref with the telemetry hook in front: every finished record
 * passes through `hook` (which may add its trace id) before it is stored.
 */
export function withActivationHook(perf: ActorRef<PerfMsg>, hook: (rec: ActivationRecord) => void): ActorRef<PerfMsg> {
  return {
    get name() {
      return perf.name;
    },
    get stopped() {
      return perf.stopped;
    },
    tell(msg) {
      if (msg.kind === 'activation') hook(msg.record);
      perf.tell(msg);
    },
    ask: (build, timeoutMs) => perf.ask(build, timeoutMs),
  };
}
