// Traffic export round trip (issue 23 item 1): a trace replayed into a node (the
// real Dispatcher, VmPool, Workers on the fake driver, PerfManager with its
// activation store, on a virtual clock), exported from the activation records in
// each format, read back: the same invocations per function and minute (and in
// the per-invocation file the same arrival times); simulated, the exported
// traffic gives what the node did.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPolicies } from '../../src/policies/index.js';
import { simulate } from '../../src/sim/simulator.js';
import { ArrivalExpander } from '../../src/traces/expand.js';
import { exportFiles, rowOf, type ExportFormat } from '../../src/traces/export.js';
import { loadTrace } from '../../src/traces/index.js';
import type { InvocationsFile } from '../../src/traces/invocations.js';
import { slotsTrace } from '../../src/traces/slots.js';
import type { Trace } from '../../src/traces/types.js';
import { buildMapping } from '../../src/replay/mapping.js';
import { expand, FUNCTIONS, NODE, policies, profile, served, SLOT_MS } from '../helpers/traffic-node.js';

/** Invocations per function name and minute. */
function perMinute(t: Trace, name: (i: number) => string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let s = 0; s < t.nSlots; s++) {
    for (let e = t.slotStart[s]!; e < t.slotStart[s + 1]!; e++) {
      const n = name(t.entryFn[e]!);
      const a = out.get(n) ?? [];
      a[Math.floor((s * t.slotMs) / 60_000)] = (a[Math.floor((s * t.slotMs) / 60_000)] ?? 0) + t.entryCount[e]!;
      out.set(n, a);
    }
  }
  for (const a of out.values()) for (let i = 0; i < a.length; i++) a[i] ??= 0;
  return out;
}

function arrivalsOf(t: Trace, name: (i: number) => string): string[] {
  const x = new ArrivalExpander(t, expand);
  const out: string[] = [];
  for (let s = 0; s < t.nSlots; s++) {
    const n = x.slot(s);
    for (let i = 0; i < n; i++) out.push(`${x.times[i]!.toFixed(3)} ${name(x.fns[i]!)}`);
  }
  return out;
}

async function sim(t: Trace): Promise<ReturnType<typeof simulate>> {
  return simulate({
    trace: t,
    policies: await createPolicies(policies, { baseDir: '.' }),
    profile,
    memoryMiB: NODE.memoryMiB,
    maxInstancesPerFunction: NODE.maxInstances,
    maxQueueDelayMs: NODE.maxQueueDelayMs,
    expand,
    node: { cpuModel: false, maxConcurrentStarts: NODE.maxConcurrentStarts, snapshots: true, preferWarm: true },
  });
}

void test('export → read back: every format keeps the invocations per function and minute; the per-invocation file keeps the arrival times; simulated, it gives what the node did', { timeout: 120_000 }, async () => {
  const trace = slotsTrace(FUNCTIONS, SLOT_MS, 'export-roundtrip');
  const { records, memoryOf } = await served(trace);
  assert.equal(records.length, trace.totalInvocations, 'one record per invocation');
  const file: InvocationsFile = { start: 0, end: trace.nSlots * SLOT_MS, rows: records.map((r) => rowOf(r, 0, memoryOf)).sort((a, b) => a.arrivalMs - b.arrivalMs) };
  const want = perMinute(trace, (i) => trace.functions[i]!.name);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-export-'));
  try {
    const back: Partial<Record<ExportFormat, Trace>> = {};
    for (const format of ['invocations', 'azure', 'faasrail'] as ExportFormat[]) {
      const sub = path.join(dir, format);
      const files = exportFiles(file, format);
      const { mkdirSync } = await import('node:fs');
      mkdirSync(sub);
      for (const [name, text] of Object.entries(files)) writeFileSync(path.join(sub, name), text);
      const p = format === 'azure' ? sub : path.join(sub, Object.keys(files)[0]!);
      const t = await loadTrace(p, format);
      back[format] = t;
      // FaaSRail rows are named "{bench}-r{row}": the workload is the function
      const names = format === 'faasrail' ? await buildMapping(t, { workloadNames: true }) : t.functions.map((f) => f.name);
      assert.deepEqual(perMinute(t, (i) => names[i]!), want, `${format}: invocations per function and minute`);
      assert.equal(t.totalInvocations, trace.totalInvocations, format);
      for (const f of FUNCTIONS) {
        const i = names.indexOf(f.name);
        assert.ok(Math.abs(t.functions[i]!.avgDurationMs! - f.avgDurationMs) < 1e-3, `${format}: mean run time of ${f.name}`);
        if (format !== 'faasrail') assert.equal(t.functions[i]!.memoryMiB, f.memoryMiB, `${format}: memory of ${f.name}`);
      }
    }
    const inv = back.invocations!;
    assert.deepEqual(arrivalsOf(inv, (i) => inv.functions[i]!.name), arrivalsOf(trace, (i) => trace.functions[i]!.name), 'the same arrival times');
    // the simulator on the exported traffic: the node's own decisions (the conformance test's claim), so the same start paths
    const fromExport = await sim(inv);
    const fromTrace = await sim(trace);
    const did = { warm: 0, restore: 0, cold: 0, refused: 0 };
    for (const r of file.rows) {
      if (r.startPath) did[r.startPath]++;
      else did.refused++;
    }
    assert.deepEqual({ warm: fromExport.warm, restore: fromExport.restores, cold: fromExport.coldStarts, refused: fromExport.dropped }, did, 'simulated export = what the node did');
    assert.deepEqual([fromExport.warm, fromExport.restores, fromExport.coldStarts], [fromTrace.warm, fromTrace.restores, fromTrace.coldStarts]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('cluster export merges every node\'s rows into one window; windows and files with mistakes are refused naming what is wrong', async () => {
  const { mergeRows } = await import('../../src/traces/export.js');
  const { parseInvocations, InvocationsFormatError } = await import('../../src/traces/invocations.js');
  const { parseWhen, parseWindow, WindowError } = await import('../../src/traffic/window.js');
  const m = mergeRows([
    { start: 1000, end: 61_000, rows: [{ arrivalMs: 5, function: 'a', status: 'success', totalMs: 3, node: 'n1' }] },
    { start: 2000, end: 62_000, rows: [{ arrivalMs: 1, function: 'b', status: 'success', totalMs: 3, node: 'n2' }] },
  ]);
  assert.deepEqual([m.start, m.end], [1000, 62_000]);
  assert.deepEqual(
    m.rows.map((r) => [r.function, r.arrivalMs]),
    [
      ['a', 5],
      ['b', 1001],
    ],
  );
  const now = Date.parse('2026-12-06T12:00:00Z');
  assert.equal(parseWhen('1h', now, 'since'), now - 3_600_000);
  assert.equal(parseWhen('90s', now, 'since'), now - 90_000);
  assert.equal(parseWhen('now', now, 'until'), now);
  assert.equal(parseWhen('2026-12-06T11:00:00Z', now, 'since'), now - 3_600_000);
  assert.equal(parseWhen(String(now - 5), now, 'since'), now - 5);
  assert.throws(() => parseWhen('yesterdayish', now, 'since'), (e: unknown) => e instanceof WindowError && e.field === 'since');
  assert.throws(() => parseWindow('now', '1h', now), (e: unknown) => e instanceof WindowError && e.field === 'until');
  const head = '# faascell invocations start=2026-12-06T11:00:00.000Z end=2026-12-06T12:00:00.000Z\narrivalMs,function,durationMs,memoryMiB,startPath,status,code,totalMs,node\n';
  assert.equal(parseInvocations(head + '12.5,hello,3.2,256,warm,success,,9.8,\n').rows[0]!.startPath, 'warm');
  assert.throws(() => parseInvocations(head + '12.5,hello,3.2,256,tepid,success,,9.8,\n', 'f.csv'), (e: unknown) => e instanceof InvocationsFormatError && /f\.csv:3: startPath/.test(e.message));
  assert.throws(() => parseInvocations(head + '-1,hello,3.2,256,warm,success,,9.8,\n', 'f.csv'), /f\.csv:3: arrivalMs/);
  assert.throws(() => parseInvocations('a,b\n', 'f.csv'), /f\.csv:1: not a faascell invocations file/);
});
