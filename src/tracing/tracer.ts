// OpenTelemetry traces: one trace per activation, built after the fact from
// the finished record's timestamps (explicit start and end times), with one
// child span per stage. The trace id is the record's `traceId`, so the record,
// its log lines and the exported trace share it. The SDK is loaded only when
// something consumes spans (an OTLP endpoint, or a test's exporter): with
// neither, `createActivationTracer` returns undefined and nothing runs.

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { SpanProcessor, IdGenerator } from '@opentelemetry/sdk-trace-base';
import type { ActivationRecord } from '../perf/activation.js';
import { stageSegments, type StageSegment } from '../telemetry/stages.js';

export interface TracingOptions {
  /** OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces; a bare host:port URL gets /v1/traces) */
  endpoint?: string;
  headers?: Record<string, string>;
  serviceName?: string;
  serviceVersion?: string;
  /** extra span processors (a test's in-memory exporter) */
  processors?: SpanProcessor[];
}

export interface ActivationTracer {
  /** Emit the trace of one finished record (which must carry its traceId). */
  record(rec: ActivationRecord & { traceId?: string }, segments?: StageSegment[]): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const ZERO_ID = /^0+$/;

/** A new W3C trace id (32 lower-case hex digits, never all zeros). */
export function newTraceId(): string {
  let id: string;
  do id = randomBytes(16).toString('hex');
  while (ZERO_ID.test(id));
  return id;
}

/** The record's trace id as a W3C id: taken as is when valid, a UUID loses its dashes, anything else gets a new one. */
export function toTraceId(id: string | undefined): string {
  const hex = id?.toLowerCase().replace(/-/g, '');
  return hex && TRACE_ID.test(hex) && !ZERO_ID.test(hex) ? hex : newTraceId();
}

export function otlpTracesUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
  return u.toString();
}

/**
 * Hands the tracer the trace id to use for the next root span: the SDK's
 * tracer asks its IdGenerator for one, and span creation is synchronous.
 */
class RecordTraceIds implements IdGenerator {
  next: string | undefined;
  generateTraceId(): string {
    const id = this.next ?? newTraceId();
    this.next = undefined;
    return id;
  }
  generateSpanId(): string {
    let id: string;
    do id = randomBytes(8).toString('hex');
    while (ZERO_ID.test(id));
    return id;
  }
}

export async function createActivationTracer(opts: TracingOptions): Promise<ActivationTracer | undefined> {
  const processors: SpanProcessor[] = [...(opts.processors ?? [])];
  if (!opts.endpoint && processors.length === 0) return undefined;

  const [api, sdk, res, semconv, incubating] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
    import('@opentelemetry/semantic-conventions/incubating'),
  ]);
  if (opts.endpoint) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    processors.push(new sdk.BatchSpanProcessor(new OTLPTraceExporter({ url: otlpTracesUrl(opts.endpoint), headers: opts.headers }), { scheduledDelayMillis: 1000 }));
  }
  const ids = new RecordTraceIds();
  const provider = new sdk.BasicTracerProvider({
    idGenerator: ids,
    resource: res.resourceFromAttributes({
      [semconv.ATTR_SERVICE_NAME]: opts.serviceName ?? 'faascell',
      [semconv.ATTR_SERVICE_VERSION]: opts.serviceVersion ?? '0.1.0',
      [incubating.ATTR_HOST_NAME]: os.hostname(),
    }),
    spanProcessors: processors,
  });
  // not registered globally: this daemon's provider is used through this object only
  const tracer = provider.getTracer('faascell');

  return {
    record(rec, segments = stageSegments(rec)) {
      const t = rec.timestamps;
      if (t.received === undefined || t.responseSent === undefined) return;
      const attrs: Record<string, string | number | boolean> = {
        [incubating.ATTR_FAAS_INVOCATION_ID]: rec.id,
        [incubating.ATTR_FAAS_INVOKED_NAME]: rec.function,
        [incubating.ATTR_FAAS_TRIGGER]: 'http',
        [incubating.ATTR_FAAS_COLDSTART]: rec.startPath === 'cold' || rec.startPath === 'restore',
        'faascell.function.version': rec.functionVersion,
        'faascell.start_path': rec.startPath ?? 'none',
        'faascell.status': rec.status,
        'faascell.runtime': rec.runtime,
        'faascell.total_ms': rec.totalMs,
      };
      if (rec.vmId) attrs['faascell.vm_id'] = rec.vmId;
      if (rec.accelerator) attrs['faascell.accelerator'] = rec.accelerator;
      if (rec.snapshot) {
        attrs['faascell.snapshot.id'] = rec.snapshot.id;
        attrs['faascell.snapshot.tier'] = rec.snapshot.tier;
      }
      if (rec.runMs !== undefined) attrs['faascell.run_ms'] = rec.runMs;
      ids.next = toTraceId(rec.traceId);
      const root = tracer.startSpan(`activation ${rec.function}`, { kind: api.SpanKind.SERVER, startTime: t.received, attributes: attrs }, api.ROOT_CONTEXT);
      ids.next = undefined;
      const ctx = api.trace.setSpan(api.ROOT_CONTEXT, root);
      for (const s of segments) {
        const span = tracer.startSpan(s.stage, { kind: api.SpanKind.INTERNAL, startTime: s.startMs, attributes: { 'faascell.stage': s.stage, 'faascell.start_path': rec.startPath ?? 'none', ...(rec.vmId ? { 'faascell.vm_id': rec.vmId } : {}) } }, ctx);
        span.end(s.endMs);
      }
      if (rec.error) root.setStatus({ code: api.SpanStatusCode.ERROR, message: `${rec.error.code}: ${rec.error.message}` });
      root.end(t.responseSent);
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
