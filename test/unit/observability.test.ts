// Logs, stage segments, metrics, /proc sampling, traces, the dashboard hub,
// the activation hook, kept VM consoles and the telemetry config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { parseConfig } from '../../src/config/schema.js';
import { activationLogger, createLogger, humanLine, pinoOf, silentLogger } from '../../src/core/logger.js';
import { NodeMetrics } from '../../src/metrics/metrics.js';
import { parseSmapsRollup, parseStatCpuTicks, sampleVms } from '../../src/metrics/vm-sampler.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import type { PerfMsg } from '../../src/perf/perf-manager.js';
import { QemuDriver, pruneOldest } from '../../src/runtimes/qemu/driver.js';
import { toNodeState, type NodeState } from '../../src/telemetry/node-state.js';
import type { PoolStatus } from '../../src/vmpool/pool.js';
import { histogramStages, stageSegments } from '../../src/telemetry/stages.js';
import { withActivationHook } from '../../src/telemetry/telemetry.js';
import { createActivationTracer, newTraceId, otlpTracesUrl, toTraceId } from '../../src/tracing/tracer.js';
import { DashboardHub, summarize } from '../../src/ui/hub.js';
import type { ActorRef } from '../../src/core/actor.js';

const T0 = 1_800_000_000_000;

/** A cold start that left a snapshot and continued from its own restore. */
function coldRecord(): ActivationRecord {
  const s = { received: 0, queued: 1, admitted: 2, vmmSpawned: 10, vmBooted: 900, agentReady: 3000, initDone: 3300, snapshotTaken: 3400, snapshotLoaded: 3500, resumed: 3800, instanceAssigned: 3805, runStarted: 3810, runFinished: 3830, responseSent: 3832 };
  return record('cold', s, 3832);
}
function warmRecord(): ActivationRecord {
  return record('warm', { received: 0, queued: 1, admitted: 2, instanceAssigned: 3, runStarted: 4, runFinished: 14, responseSent: 15 }, 15);
}
function record(startPath: ActivationRecord['startPath'], rel: Record<string, number>, totalMs: number): ActivationRecord {
  return {
    id: `act-${startPath}`,
    function: 'hello',
    functionVersion: 1,
    startPath,
    runtime: 'qemu',
    vmId: 'vm-1',
    status: 'success',
    timestamps: Object.fromEntries(Object.entries(rel).map(([k, v]) => [k, T0 + v])),
    timings: {},
    totalMs,
    logs: [],
  };
}

// ---- logs ---------------------------------------------------------------

test('pino behind the Logger interface: JSON lines, levels, child fields, trace ids', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', json: true, write: (l) => lines.push(l) });
  log.debug('hidden');
  log.info('hello', { a: 1 });
  log.child({ component: 'x' }).warn('careful', { b: 'two' });
  activationLogger(log, { id: 'act-1', function: 'f', traceId: 'abc' }).error('failed');
  const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(objs.length, 3);
  assert.deepEqual({ level: objs[0]!.level, msg: objs[0]!.msg, a: objs[0]!.a }, { level: 'info', msg: 'hello', a: 1 });
  assert.equal(objs[1]!.component, 'x');
  assert.equal(objs[1]!.level, 'warn');
  assert.deepEqual([objs[2]!.activationId, objs[2]!.fn, objs[2]!.traceId], ['act-1', 'f', 'abc']);
  assert.match(String(objs[0]!.time), /^\d{4}-\d\d-\d\dT/);
  assert.ok(pinoOf(log), 'fastify can log through the same pino instance');
  const plain = { debug() {}, info() {}, warn() {}, error() {}, child: () => plain };
  assert.equal(pinoOf(plain), undefined);
});

test('human lines on a terminal; silentLogger writes nothing', () => {
  const lines: string[] = [];
  createLogger({ json: false, write: (l) => lines.push(l) }).info('started', { port: 8080, host: 'h' });
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} info {2}started port=8080 host=h$/);
  assert.equal(humanLine('not json'), 'not json');
  silentLogger.error('nothing');
});

// ---- stages ---------------------------------------------------------------

test('stage segments of a cold start that left a snapshot', () => {
  const segs = stageSegments(coldRecord());
  assert.deepEqual(
    segs.map((s) => [s.stage, s.startMs - T0, s.endMs - T0]),
    [
      ['received', 0, 1],
      ['queued', 1, 2],
      ['admitted', 2, 10],
      ['boot', 10, 3000],
      ['init', 3000, 3300],
      ['snapshot', 3300, 3400],
      ['restore', 3400, 3500],
      ['resync', 3500, 3800],
      ['dispatch', 3805, 3810],
      ['run', 3810, 3830],
      ['response', 3830, 3832],
    ],
  );
  const h = histogramStages(coldRecord(), segs);
  assert.equal(h.queue, 0.009);
  assert.equal(h.boot, 2.99);
  assert.equal('total' in h, false, 'the whole activation is faascell_activation_duration_seconds, not a stage');
  assert.equal(h.run, 0.02);
});

test('stage segments: warm, restore, a rejection, and a start begun before the request', () => {
  assert.deepEqual(stageSegments(warmRecord()).map((s) => s.stage), ['received', 'queued', 'admitted', 'dispatch', 'run', 'response']);
  const restore = record('restore', { received: 0, queued: 1, admitted: 2, vmmSpawned: 3, snapshotLoaded: 100, resumed: 400, instanceAssigned: 401, runStarted: 402, runFinished: 450, responseSent: 451 }, 451);
  const rs = stageSegments(restore);
  assert.deepEqual(rs.map((s) => s.stage), ['received', 'queued', 'admitted', 'restore', 'resync', 'dispatch', 'run', 'response']);
  assert.equal(rs.find((s) => s.stage === 'restore')!.startMs, T0 + 3);
  assert.equal(histogramStages(restore).boot, undefined);
  const rejected = record(undefined, { received: 0, queued: 1, responseSent: 2 }, 2);
  assert.deepEqual(stageSegments(rejected).map((s) => s.stage), ['received', 'response']);
  // an instance started for an earlier request: nothing starts before this request arrived
  const early = record('cold', { received: 100, queued: 101, admitted: 102, vmmSpawned: 50, agentReady: 2000, initDone: 2100, instanceAssigned: 2101, runStarted: 2102, runFinished: 2110, responseSent: 2111 }, 2011);
  for (const s of stageSegments(early)) assert.ok(s.startMs >= T0 + 100 && s.endMs >= s.startMs, s.stage);
  assert.deepEqual(stageSegments({ timestamps: {} }), []);
});

// ---- metrics ----------------------------------------------------------------

function nodeState(instances: NodeState['instances']): NodeState {
  return {
    at: T0,
    memoryUsedBytes: instances.reduce((a, i) => a + i.memoryBytes, 0),
    memoryBudgetBytes: 1024 * 1048576,
    instances,
    queues: { hello: 2 },
    counters: { starts: { cold: 3, restore: 1 }, startFailures: 1, initFailures: 2, prewarms: 0, stops: { memory_pressure: 2, keepalive_expired: 5 }, rejections: { queue_full: 4, overloaded: 0 } },
    tiers: [{ name: 'shm', usedBytes: 1500, capacityBytes: 4096 }, { name: 'disk', usedBytes: 0, capacityBytes: 8192 }],
    snapshots: [
      { id: 's1', fn: 'hello', tier: 'shm', bytes: 1000, status: 'ready' },
      { id: 's2', fn: 'other', tier: 'shm', bytes: 500, status: 'ready' },
    ],
  };
}

test('metrics: invocations, stage histograms, node state and per-VM series that leave with their VM', async () => {
  const m = new NodeMetrics({ defaultMetrics: false });
  m.observe(coldRecord());
  m.observe(warmRecord());
  m.observe({ ...warmRecord(), status: 'rejected', startPath: undefined });
  m.applyState(nodeState([{ id: 'vm-1', fn: 'hello', state: 'idle', memoryBytes: 256 * 1048576, createdAt: T0, invocations: 2 }]), [{ vmId: 'vm-1', pid: 42, rssBytes: 200e6, pssBytes: 150e6, cpuSeconds: 3.5 }]);
  const text = await m.render();
  const has = (line: string): void => assert.ok(text.split('\n').includes(line), `metrics contain: ${line}`);
  has('faascell_activations_total{function="hello",start_path="cold",status="success"} 1');
  has('faascell_activations_total{function="hello",start_path="none",status="rejected"} 1');
  has('faascell_activation_stage_duration_seconds_count{stage="boot",start_path="cold"} 1');
  has('faascell_activation_stage_duration_seconds_bucket{le="5",stage="boot",start_path="cold"} 1');
  has('faascell_activation_stage_duration_seconds_bucket{le="2.5",stage="boot",start_path="cold"} 0');
  has('faascell_activation_duration_seconds_count{function="hello",start_path="warm"} 1');
  has('faascell_instances{function="hello",state="idle"} 1');
  has('faascell_instances{function="hello",state="booting"} 0');
  has('faascell_queue_length{function="hello"} 2');
  has(`faascell_memory_used_bytes ${256 * 1048576}`);
  has('faascell_snapshots{tier="shm",status="ready"} 2');
  has('faascell_snapshot_bytes{tier="shm"} 1500');
  has('faascell_instance_stops_total{cause="keepalive_expired"} 5');
  has('faascell_snapshot_tier_capacity_bytes{tier="disk"} 8192');
  has('faascell_snapshot_bytes{tier="disk"} 0');
  has('faascell_admission_rejections_total{reason="queue_full"} 4');
  has('faascell_instance_starts_total{start_path="restore"} 1');
  has('faascell_vm_resident_memory_bytes{slot="0",function="hello"} 200000000');
  has('faascell_vm_cpu_seconds_total{slot="0",function="hello"} 3.5');
  has(`faascell_vm_guest_memory_bytes{slot="0",function="hello"} ${256 * 1048576}`);
  assert.doesNotMatch(text, /vm_id=/, 'no VM id in a label: one series per slot, not per VM ever started');
  assert.doesNotMatch(text, /stage="boot",start_path="warm"/);
  // the VM is gone: its series go with it; the function's instance series stay at 0
  m.applyState(nodeState([]), []);
  const after = await m.render();
  assert.doesNotMatch(after, /slot=/);
  assert.match(after, /^faascell_instances\{function="hello",state="idle"\} 0$/m);
});

test('default metrics include the event-loop lag', async () => {
  const m = new NodeMetrics();
  assert.match(await m.render(), /^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
});

test('the status adapter maps the pool status and the snapshot list', () => {
  const zero = Object.fromEntries(
    ['arrivals', 'warm', 'freshCold', 'freshRestore', 'coldStarts', 'restoreStarts', 'prewarms', 'startFailures', 'evictions', 'expirations', 'keepAliveStops', 'staleStops', 'requestedStops', 'lostInstances', 'rejectedQueueFull', 'rejectedOverloaded', 'rejectedQueueTimeout', 'rejectedDeleted', 'rejectedStartFailed', 'rejectedShutdown', 'snapshotsCreated', 'snapshotsDropped', 'snapshotsSkipped', 'peakMemoryMiB'].map((k) => [k, 0]),
  ) as unknown as PoolStatus['counters'];
  const inst = { inst: 1, path: 'cold' as const, memoryMiB: 256, createdAt: 1, lastUsedAt: 2, cpuSlot: 0 };
  const st = toNodeState(
    {
      memoryUsedMiB: 512,
      memoryBudgetMiB: 1024,
      snapshotsEnabled: true,
      busy: 1,
      starting: 0,
      startSlots: 2,
      instances: [
        { ...inst, id: 'vm-a', fn: 'f', state: 'busy', workerState: 'running', invocations: 3, stale: false },
        { ...inst, id: 'vm-b', fn: 'f', state: 'stopping', workerState: 'idle', invocations: 0, stale: true },
      ],
      queues: { f: 1 },
      tiers: [{ name: 'shm', usedBytes: 99, capacityBytes: 1000, snapshots: 1 }],
      counters: { ...zero, coldStarts: 2, restoreStarts: 1, evictions: 1, expirations: 2, requestedStops: 6, rejectedQueueFull: 3, rejectedOverloaded: 4 },
    },
    [{ id: 's', function: 'f', codeSha256: 'x', versionKey: 'k', imageVersion: 'v', memoryMiB: 256, vcpus: 1, kind: 'shared-memory', tier: 'shm', dir: '/d', sizeBytes: 99, createdAt: 1, lastUsedAt: 1, restoreCount: 0, createMs: 5, status: 'ready' }],
    7,
  );
  assert.equal(st.memoryUsedBytes, 512 * 1048576);
  assert.deepEqual(st.instances.map((i) => i.state), ['running', 'stopping']);
  assert.deepEqual(st.counters.starts, { cold: 2, restore: 1 });
  assert.equal(st.counters.stops.memory_pressure, 1);
  assert.equal(st.counters.stops.keepalive_expired, 2);
  assert.equal(st.counters.stops.requested, 6);
  assert.equal(st.counters.rejections.queue_full, 3);
  assert.equal(st.counters.rejections.overloaded, 4);
  assert.deepEqual(st.tiers, [{ name: 'shm', usedBytes: 99, capacityBytes: 1000 }]);
  assert.deepEqual(st.snapshots, [{ id: 's', fn: 'f', tier: 'shm', bytes: 99, status: 'ready' }]);
});

// ---- /proc sampling ---------------------------------------------------------

test('/proc parsers', () => {
  assert.deepEqual(parseSmapsRollup('00400000-7ff [rollup]\nRss:              233 kB\nPss:              120 kB\nPss_Anon: 3 kB\n'), { rssBytes: 233 * 1024, pssBytes: 120 * 1024 });
  const stat = '1234 (qemu (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0 100';
  assert.equal(parseStatCpuTicks(stat), 300);
});

test('sampleVms reads the processes named by the run directories, and only those', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'fc-sample-'));
  const mine = path.join(root, 'vm-a');
  const foreign = path.join(root, 'vm-b');
  mkdirSync(mine);
  mkdirSync(foreign);
  // a process whose command line names its run dir (as QEMU's does), and one that does not
  const p = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', mine], { stdio: 'ignore' });
  try {
    writeFileSync(path.join(mine, 'qemu.pid'), String(p.pid));
    writeFileSync(path.join(foreign, 'qemu.pid'), String(process.pid));
    const s = await sampleVms(root);
    assert.equal(s.length, 1);
    assert.equal(s[0]!.vmId, 'vm-a');
    assert.ok(s[0]!.rssBytes > 1e6 && s[0]!.pssBytes > 0 && s[0]!.cpuSeconds >= 0);
    assert.deepEqual(await sampleVms(path.join(root, 'missing')), []);
  } finally {
    p.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});

// ---- traces -------------------------------------------------------------------

test('tracing is off (no SDK) without an endpoint or a processor', async () => {
  assert.equal(await createActivationTracer({}), undefined);
});

test('trace ids and OTLP URLs', () => {
  assert.match(newTraceId(), /^[0-9a-f]{32}$/);
  assert.equal(toTraceId('0123456789abcdef0123456789ABCDEF'), '0123456789abcdef0123456789abcdef');
  assert.equal(toTraceId('01234567-89ab-cdef-0123-456789abcdef'), '0123456789abcdef0123456789abcdef');
  assert.match(toTraceId('nope'), /^[0-9a-f]{32}$/);
  assert.notEqual(toTraceId('0'.repeat(32)), '0'.repeat(32));
  assert.equal(otlpTracesUrl('http://127.0.0.1:4318'), 'http://127.0.0.1:4318/v1/traces');
  assert.equal(otlpTracesUrl('http://h:1/custom/path'), 'http://h:1/custom/path');
});

test('one trace per record: the record trace id, a child span per stage with its times', async () => {
  const exporter = new InMemorySpanExporter();
  const tracer = (await createActivationTracer({ processors: [new SimpleSpanProcessor(exporter)] }))!;
  const rec = { ...coldRecord(), traceId: '1'.repeat(32), error: undefined };
  tracer.record(rec);
  tracer.record({ ...warmRecord(), status: 'application_error', error: { code: 'function_error', message: 'boom' } });
  const spans = exporter.getFinishedSpans();
  const mine = spans.filter((s) => s.spanContext().traceId === rec.traceId);
  const root = mine.find((s) => !s.parentSpanContext)!;
  assert.equal(root.name, 'activation hello');
  assert.deepEqual(root.startTime, [Math.floor(T0 / 1000), 0]);
  assert.equal(root.attributes['faascell.start_path'], 'cold');
  assert.equal(root.attributes['faascell.vm_id'], 'vm-1');
  assert.equal(mine.length, 12);
  const boot = mine.find((s) => s.name === 'boot')!;
  assert.equal(boot.parentSpanContext?.spanId, root.spanContext().spanId);
  assert.deepEqual(boot.endTime, [Math.floor((T0 + 3000) / 1000), ((T0 + 3000) % 1000) * 1e6]);
  const other = spans.filter((s) => s.spanContext().traceId !== rec.traceId);
  assert.equal(other.find((s) => !s.parentSpanContext)!.status.code, 2, 'an error status on a failed activation');
  await tracer.shutdown();
});

// ---- the activation hook -----------------------------------------------------

test('withActivationHook: the hook sees each record before PerfManager does; other messages pass', () => {
  const seen: string[] = [];
  const told: PerfMsg[] = [];
  const perf = { name: 'perf', stopped: false, tell: (m: PerfMsg) => told.push(m), ask: () => Promise.reject(new Error('no')) } as unknown as ActorRef<PerfMsg>;
  const ref = withActivationHook(perf, (r) => {
    (r as { traceId?: string }).traceId = 'x';
    seen.push(r.id);
  });
  const rec = warmRecord();
  ref.tell({ kind: 'activation', record: rec });
  assert.deepEqual(seen, [rec.id]);
  assert.equal((told[0] as { record: { traceId?: string } }).record.traceId, 'x', 'stored with its trace id');
  assert.equal(ref.name, 'perf');
});

// ---- dashboard hub ---------------------------------------------------------------

test('dashboard hub: a page gets the recent activations and state, then each new activation', async () => {
  const state = { node: nodeState([]), vms: [] };
  const hub = new DashboardHub({ readState: async () => state, log: silentLogger, refreshMs: 50, windowMs: 60_000, maxActivations: 2 });
  const now = Date.now();
  for (const n of [1, 2, 3]) hub.push({ ...summarize(warmRecord(), stageSegments(warmRecord())), id: `a${n}`, at: now });
  const srv = http.createServer((_req, res) => void hub.attach(res));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(srv.address() as { port: number }).port}/`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    const next = async (event: string): Promise<Record<string, unknown>> => {
      for (;;) {
        const m = new RegExp(`event: ${event}\\ndata: (.*)\\n\\n`).exec(buf);
        if (m) {
          buf = buf.slice(m.index + m[0].length);
          return JSON.parse(m[1]!) as Record<string, unknown>;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buf += value;
      }
    };
    const hello = await next('hello');
    assert.deepEqual((hello.activations as Array<{ id: string }>).map((a) => a.id), ['a2', 'a3'], 'bounded to maxActivations');
    assert.ok(hello.state);
    hub.push({ ...summarize(coldRecord(), stageSegments(coldRecord())), at: Date.now() });
    const a = await next('activation');
    assert.equal(a.startPath, 'cold');
    assert.equal((a.stages as Array<{ stage: string; offsetMs: number }>).find((s) => s.stage === 'boot')!.offsetMs, 10);
    assert.equal(hub.clientCount, 1);
    hub.close();
    await reader.read().catch(() => undefined);
  } finally {
    hub.close();
    srv.close();
  }
});

// ---- kept VM consoles --------------------------------------------------------------

test('a stopped VM console is kept: appended across restores, bounded in size, old files pruned', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-console-'));
  try {
    const consoles = path.join(dir, 'consoles');
    const driver = new QemuDriver({ consoleDir: consoles, consoleMaxBytes: 1024, consoleKeep: 3 });
    const run = path.join(dir, 'console.log');
    writeFileSync(run, 'boot line\n');
    driver.keepConsole('vm-x', run);
    writeFileSync(run, 'after restore\n');
    driver.keepConsole('vm-x', run);
    assert.equal(readFileSync(path.join(consoles, 'vm-x.log'), 'utf8'), 'boot line\nafter restore\n');
    writeFileSync(run, 'y'.repeat(5000) + 'END');
    driver.keepConsole('vm-x', run);
    const kept = readFileSync(path.join(consoles, 'vm-x.log'), 'utf8');
    assert.equal(kept.length, 1024);
    assert.ok(kept.endsWith('END'));
    assert.equal(driver.keptConsolePath('vm-x'), path.join(consoles, 'vm-x.log'));
    for (const [i, n] of ['a', 'b', 'c', 'd', 'e'].entries()) {
      const f = path.join(consoles, `vm-${n}.log`);
      writeFileSync(f, n);
      utimesSync(f, new Date(1e6 * (i + 1)), new Date(1e6 * (i + 1)));
    }
    pruneOldest(consoles, 3);
    assert.deepEqual(readdirSync(consoles).sort(), ['vm-d.log', 'vm-e.log', 'vm-x.log'], 'the newest three');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- configuration -------------------------------------------------------------------

test('telemetry configuration: defaults, and a bad endpoint names its key', () => {
  const c = parseConfig({});
  assert.equal(c.telemetry.metrics.enabled, true);
  assert.equal(c.telemetry.otlp.endpoint, undefined);
  assert.equal(c.telemetry.sampleIntervalMs, 5000);
  assert.equal(c.telemetry.dashboard.windowMinutes, 10);
  assert.equal(c.telemetry.consoleLogs.keep, 200);
  assert.throws(() => parseConfig({ telemetry: { otlp: { endpoint: 'not a url' } } }), /telemetry\.otlp\.endpoint/);
  assert.throws(() => parseConfig({ telemetry: { bogus: 1 } }), /telemetry/);
});

// ---- the API's logger and public paths ------------------------------------------------

test('fastify logs through the daemon pino (each request only at debug); the dashboard page needs no token', async () => {
  const { buildApi } = await import('../../src/api/server.js');
  const api = async (level: 'info' | 'debug' | 'silent', lines: string[]) =>
    buildApi({ registry: {} as never, dispatcher: {} as never, pool: {} as never, perf: {} as never, bodyLimitBytes: 1000, maxCodeBytes: 1000, token: 't'.repeat(16), publicPaths: new Set(['/ui']), info: () => ({}), log: createLogger({ level, json: true, write: (l) => lines.push(l) }) });
  const info: string[] = [];
  const a = await api('info', info);
  assert.equal((await a.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  assert.equal((await a.inject({ method: 'GET', url: '/v1/status' })).statusCode, 401, 'data routes need the token');
  assert.equal((await a.inject({ method: 'GET', url: '/ui?x=1' })).statusCode, 404, 'a public path passes the token check (no route here)');
  assert.deepEqual(info, [], 'no request lines at info');
  await a.close();
  const debug: string[] = [];
  const b = await api('debug', debug);
  await b.inject({ method: 'GET', url: '/healthz' });
  const objs = debug.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(objs.some((o) => o.component === 'api' && o.msg === 'incoming request'), 'fastify request lines at debug, through the same pino');
  await b.close();
  const silent: string[] = [];
  const c = await api('silent', silent);
  await c.inject({ method: 'GET', url: '/nope' });
  assert.deepEqual(silent, []);
  await c.close();
});
