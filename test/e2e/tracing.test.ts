// OpenTelemetry traces around real invocations: the real daemon (in this
// process, so the SDK's in-memory exporter can be handed to it) runs real VMs
// on the cold (leaving a snapshot), warm and restore paths. It also exports
// over OTLP/HTTP to a receiver this test listens with on 127.0.0.1, and its
// pino log lines carry the same trace ids.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ATTR_FAAS_INVOCATION_ID } from '@opentelemetry/semantic-conventions/incubating';
import { Client, type InvokeBody } from '../../src/cli/client.js';
import { parseConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/core/logger.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';
import { FIXTURES, qemuProcessesUnder, requireImage } from '../helpers/daemon.js';
import { removeTierDir } from '../../src/snapshots/tier-gc.js';
import { runShmPath } from '../support/test-run.js';

type Activation = NonNullable<InvokeBody['activation']> & { traceId?: string; timestamps: Record<string, number> };

describe('OpenTelemetry traces of real activations', { timeout: 10 * 60_000 }, () => {
  const exporter = new InMemorySpanExporter();
  const lines: string[] = [];
  const otlpBodies: Array<{ contentType: string; body: string }> = [];
  let receiver: http.Server;
  let dir: string;
  let d: Daemon | undefined;
  let client: Client;

  before(async () => {
    await requireImage();
    // the OTLP/HTTP receiver: records what the exporter posts
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        otlpBodies.push({ contentType: req.headers['content-type'] ?? '', body: req.url === '/v1/traces' ? body : `wrong path ${req.url}` });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as { port: number }).port;
    dir = mkdtempSync(path.join(os.tmpdir(), 'fc-trace-'));
    const config = parseConfig({
      stateDir: path.join(dir, 'state'),
      api: { port: 0 },
      snapshots: { tiers: [{ name: 'shm', path: runShmPath(`trace-${path.basename(dir)}`), latencyRank: 0, capacityMiB: 4096 }] },
      telemetry: { otlp: { endpoint: `http://127.0.0.1:${port}` } },
    });
    d = await startDaemon({ config, log: createLogger({ level: 'info', json: true, write: (l) => lines.push(l) }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
    client = new Client({ url: d.url });
    await client.deploy('hello', readFileSync(path.join(FIXTURES, 'hello.js')), { codeKind: 'js' });
  });

  after(async () => {
    await d?.stop();
    receiver?.close();
    const left = qemuProcessesUnder(dir);
    removeTierDir(runShmPath(`trace-${path.basename(dir)}`)); // and its owner marker
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(left, [], 'no VMM left behind');
  });

  const invoke = async (): Promise<Activation> => {
    const r = await client.invoke('hello', { name: 'trace' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.activation as Activation;
  };

  /** the spans of one trace: its root and its stage children */
  const traceOf = (traceId: string): { root: ReadableSpan; stages: Map<string, ReadableSpan> } => {
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const roots = spans.filter((s) => !s.parentSpanContext);
    assert.equal(roots.length, 1, `one root span in trace ${traceId}`);
    const root = roots[0]!;
    const stages = new Map<string, ReadableSpan>();
    for (const s of spans) {
      if (s === root) continue;
      assert.equal(s.parentSpanContext?.spanId, root.spanContext().spanId, `${s.name} is a child of the activation span`);
      assert.ok(!stages.has(s.name), `one ${s.name} span`);
      stages.set(s.name, s);
    }
    return { root, stages };
  };
  const ms = (t: [number, number]): number => t[0] * 1000 + t[1] / 1e6;
  const durMs = (s: ReadableSpan): number => ms(s.endTime) - ms(s.startTime);

  const checkTrace = (a: Activation, want: string[], absent: string[]): void => {
    assert.match(a.traceId ?? '', /^[0-9a-f]{32}$/, 'the activation carries a W3C trace id');
    const { root, stages } = traceOf(a.traceId!);
    assert.equal(root.name, 'activation hello');
    assert.equal(root.attributes['faascell.start_path'], a.startPath);
    assert.equal(root.attributes['faascell.vm_id'], a.vmId);
    assert.equal(root.attributes[ATTR_FAAS_INVOCATION_ID], a.id);
    assert.equal(root.resource.attributes['service.name'], 'faascell');
    // the root spans the record: received → response sent
    assert.ok(Math.abs(ms(root.startTime) - a.timestamps.received!) < 1);
    assert.ok(Math.abs(durMs(root) - a.totalMs) < 1, `root ${durMs(root)} ms vs record ${a.totalMs} ms`);
    for (const s of want) assert.ok(stages.has(s), `${a.startPath} trace has a ${s} span (has ${[...stages.keys()].join(', ')})`);
    for (const s of absent) assert.ok(!stages.has(s), `${a.startPath} trace has no ${s} span`);
    for (const s of stages.values()) {
      assert.equal(s.attributes['faascell.start_path'], a.startPath);
      assert.ok(ms(s.startTime) >= ms(root.startTime) - 0.01 && ms(s.endTime) <= ms(root.endTime) + 0.01, `${s.name} within the activation`);
    }
    const run = stages.get('run')!;
    assert.ok(Math.abs(durMs(run) - (a.timestamps.runFinished! - a.timestamps.runStarted!)) < 1, 'run span = runStarted → runFinished');
  };

  test('cold start leaving a snapshot, then warm, then restore: one trace each, a span per stage', async () => {
    const cold = await invoke();
    assert.equal(cold.startPath, 'cold');
    // snapshots.coldSnapshot copy (the default): the VM that took the snapshot runs on, no restore of it;
    // restore (the former path): it continues from a restore of its own snapshot, then a resync
    const afterSnapshot = cold.startDetails?.coldSnapshot === 'copy' ? { want: [], absent: ['restore', 'resync'] } : { want: ['restore', 'resync'], absent: [] };
    checkTrace(cold, ['received', 'queued', 'admitted', 'boot', 'init', 'snapshot', ...afterSnapshot.want, 'dispatch', 'run', 'response'], afterSnapshot.absent);
    const { stages } = traceOf(cold.traceId!);
    assert.ok(durMs(stages.get('boot')!) > durMs(stages.get('run')!), 'a boot takes longer than a hello run');

    const warm = await invoke();
    assert.equal(warm.startPath, 'warm');
    checkTrace(warm, ['received', 'queued', 'admitted', 'dispatch', 'run', 'response'], ['boot', 'init', 'restore', 'resync', 'snapshot']);
    assert.notEqual(warm.traceId, cold.traceId);

    await client.call('POST', '/v1/functions/hello/evict');
    for (let i = 0; i < 600; i++) {
      const st = await client.call<{ pool: { instances: unknown[] } }>('GET', '/v1/status');
      if (st.pool.instances.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const restored = await invoke();
    assert.equal(restored.startPath, 'restore');
    checkTrace(restored, ['received', 'restore', 'resync', 'run', 'response'], ['boot', 'init', 'snapshot']);

    // the stored records carry the same trace ids
    for (const a of [cold, warm, restored]) {
      const stored = await client.call<Activation>('GET', `/v1/activations/${a.id}`);
      assert.equal(stored.traceId, a.traceId);
    }
    // and so do the daemon's log lines
    for (const a of [cold, warm, restored]) {
      const mine = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o.traceId === a.traceId);
      assert.ok(mine.some((o) => o.msg === 'activation' && o.activationId === a.id && o.level === 'info'), `a log line of activation ${a.id} with its trace id`);
    }
  });

  test('the same traces reach an OTLP/HTTP endpoint', async () => {
    const ids = new Set(exporter.getFinishedSpans().map((s) => s.spanContext().traceId));
    await d!.telemetry.tracer!.forceFlush();
    const posted = otlpBodies.map((b) => b.body).join('\n');
    assert.ok(otlpBodies.length > 0, 'the exporter posted');
    assert.ok(otlpBodies.every((b) => !b.body.startsWith('wrong path')), 'posted to /v1/traces');
    for (const id of ids) assert.ok(posted.includes(id), `trace ${id} was exported over OTLP`);
    assert.match(posted, /"faascell\.start_path"/);
  });
});
