import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseCsvLine } from '../../src/traces/csv.js';
import { scaledCounts } from '../../src/traces/faasrail.js';
import { synthesizeAzureFiles } from '../../src/traces/generate.js';
import { ArrivalExpander, arrivals, loadAzureTrace, loadFaasrailSpec, loadTrace, subsetTrace, thinTrace, topFunctions } from '../../src/traces/index.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/traces');
const azureDir = path.join(fixtures, 'azure');

void test('csv parsing with quotes', () => {
  assert.deepEqual(parseCsvLine('a,b,,c'), ['a', 'b', '', 'c']);
  assert.deepEqual(parseCsvLine('x,"{""ms"":3, ""s"":""a,b""}",1'), ['x', '{"ms":3, "s":"a,b"}', '1']);
  assert.deepEqual(parseCsvLine('"",2'), ['', '2']);
});

void test('azure fixture: counts, durations, memory per function', async () => {
  const t = await loadAzureTrace(azureDir);
  assert.equal(t.functions.length, 12);
  assert.equal(t.nSlots, 30);
  assert.equal(t.slotMs, 60_000);
  // Totals agree with the raw file.
  const rows = readFileSync(path.join(azureDir, 'invocations_per_function_md.anon.d01.csv'), 'utf8').trim().split('\n').slice(1);
  const raw = rows.map((r) => r.split(',').slice(4).reduce((s, v) => s + Number(v), 0));
  assert.deepEqual(t.functions.map((f) => f.total), raw);
  assert.equal(t.totalInvocations, raw.reduce((a, b) => a + b, 0));
  // Durations from the Average column, memory = app memory / functions of the app.
  const dur = readFileSync(path.join(azureDir, 'function_durations_percentiles.anon.d01.csv'), 'utf8').trim().split('\n')[1]!.split(',');
  const f0 = t.functions.find((f) => f.name === dur[2])!;
  assert.equal(f0.avgDurationMs, Number(dur[3]));
  const mem = readFileSync(path.join(azureDir, 'app_memory_percentiles.anon.d01.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  for (const f of t.functions) {
    const appMb = Number(mem.find((m) => m[1] === f.app)![3]);
    const n = t.functions.filter((g) => g.app === f.app).length;
    assert.equal(f.memoryMiB, appMb / n);
  }
  // The same with --day and with the file itself.
  assert.equal((await loadAzureTrace(azureDir, { day: 1 })).totalInvocations, t.totalInvocations);
  assert.equal((await loadTrace(path.join(azureDir, 'invocations_per_function_md.anon.d01.csv'), 'azure')).totalInvocations, t.totalInvocations);
  await assert.rejects(loadAzureTrace(azureDir, { day: 'd02' }), /no invocations file for day d02/);
});

void test('azure without companion files: fields undefined', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faascell-tr-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(path.join(azureDir, 'invocations_per_function_md.anon.d01.csv'), path.join(dir, 'invocations_per_function_md.anon.d01.csv'));
  const tr = await loadAzureTrace(dir);
  assert.equal(tr.functions.length, 12);
  assert.ok(tr.functions.every((f) => f.avgDurationMs === undefined && f.memoryMiB === undefined));
});

void test('arrivals: sorted, within their slot, one per counted invocation', async () => {
  const t = await loadAzureTrace(azureDir);
  for (const spread of ['random', 'even'] as const) {
    const seen = new Array<number>(t.functions.length).fill(0);
    let prev = -1;
    let n = 0;
    for (const a of arrivals(t, { spread, seed: 3 })) {
      assert.ok(a.timeMs >= prev);
      prev = a.timeMs;
      seen[a.fn]!++;
      n++;
    }
    assert.equal(n, t.totalInvocations);
    assert.deepEqual(seen, t.functions.map((f) => f.total));
  }
  // even spread: 2 invocations in a slot land at 15 s and 45 s
  const x = new ArrivalExpander(
    { ...t, nSlots: 1, slotStart: Uint32Array.from([0, 1]), entryFn: Uint32Array.from([0]), entryCount: Uint32Array.from([2]) },
    { spread: 'even' },
  );
  assert.equal(x.slot(0), 2);
  assert.deepEqual([x.times[0], x.times[1]], [15_000, 45_000]);
});

void test('faasrail specs: CSV and JSON give the same trace', async () => {
  const c = await loadFaasrailSpec(path.join(fixtures, 'faasrail.csv'));
  const j = await loadFaasrailSpec(path.join(fixtures, 'faasrail.json'));
  assert.equal(c.functions.length, 6);
  assert.deepEqual(
    c.functions.map((f) => [f.name, f.avgDurationMs, f.total, f.request]),
    j.functions.map((f) => [f.name, f.avgDurationMs, f.total, f.request]),
  );
  assert.equal(c.totalInvocations, j.totalInvocations);
  assert.deepEqual(c.functions[0]!.request, { ms: c.functions[0]!.avgDurationMs });
  assert.equal((await loadFaasrailSpec(path.join(fixtures, 'faasrail.csv'), { slotSeconds: 10 })).slotMs, 10_000);
});

void test('faasrail CSV with a counts column and errors', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faascell-fr-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'spec.csv');
  writeFileSync(f, 'name,avgDurationMs,request,counts\nresize,120,"{""w"":64}",3;0;2\nping,5,,1 1 1\n');
  const tr = await loadFaasrailSpec(f);
  assert.deepEqual(tr.functions.map((x) => [x.name, x.total, x.request]), [['resize', 5, { w: 64 }], ['ping', 3, {}]]);
  assert.equal(tr.nSlots, 3);
  writeFileSync(f, 'name,avgDurationMs,request\nx,abc,\n');
  await assert.rejects(loadFaasrailSpec(f), /bad avgDurationMs/);
  writeFileSync(f, 'name,request\n');
  await assert.rejects(loadFaasrailSpec(f), /lacks column 'avgDurationMs'/);
});

void test('subset and top functions', async () => {
  const t = await loadAzureTrace(azureDir);
  const top = topFunctions(t, 3);
  const s = subsetTrace(t, { functions: top, fromSlot: 5, toSlot: 15 });
  assert.equal(s.functions.length, 3);
  assert.equal(s.nSlots, 10);
  assert.equal(s.functions[0]!.name, t.functions[top[0]!]!.name);
  let n = 0;
  for (const _ of arrivals(s)) n++;
  assert.equal(n, s.totalInvocations);
  assert.ok(s.functions[0]!.total <= t.functions[top[0]!]!.total);
  assert.equal((await loadAzureTrace(azureDir, { topFunctions: 2, maxMinutes: 10 })).nSlots, 10);
});

void test('generator is seeded', () => {
  const a = synthesizeAzureFiles({ functions: 20, slots: 60, seed: 9 });
  const b = synthesizeAzureFiles({ functions: 20, slots: 60, seed: 9 });
  const c = synthesizeAzureFiles({ functions: 20, slots: 60, seed: 10 });
  assert.equal(a.invocations, b.invocations);
  assert.notEqual(a.invocations, c.invocations);
  assert.equal(a.invocations.trim().split('\n').length, 21);
});

void test('FaaSRail specs as FaaSRail writes them: one function per row, minute columns by position', async () => {
  const f = path.join(fixtures, 'faasrail-spec.csv');
  const t = await loadTrace(f, 'faasrail');
  assert.equal(t.format, 'faasrail');
  assert.equal(t.functions.length, 5);
  assert.equal(t.nSlots, 2);
  assert.equal(t.slotMs, 60_000);
  assert.deepEqual(t.slotLabels, ['1-720', '721-1440']);
  assert.deepEqual(
    t.functions.map((x) => [x.name, x.benchmark, x.total]),
    [
      ['helloworld-44136fa355b36-r1', 'helloworld', 5],
      ['pyaes-6065425fe65f28f182-r2', 'pyaes', 9],
      ['chameleon-11b3876aba620c-r3', 'chameleon', 2],
      // the same workload in another row is another function deploying the same code
      ['pyaes-6065425fe65f28f182-r4', 'pyaes', 3],
      [t.functions[4]!.name, 'json_serdes', 2],
    ],
  );
  assert.equal(t.totalInvocations, 21);
  const py = t.functions[1]!;
  assert.deepEqual(py.request, { message_length: 64, num_iterations: 2 });
  assert.equal(py.workload, 'pyaes-6065425fe65f28f182');
  assert.equal(py.avgDurationMs, 96.1); // the workload's mean: what actually runs
  assert.equal(py.traceAvgMs, 95.4);
  assert.equal(py.memoryMiB, 256);
  // first minute: 3 + 4 + 2 + 0 + 1 arrivals, all inside it
  const firstMinute = [...arrivals(t, { spread: 'even' })].filter((a) => a.timeMs < 60_000);
  assert.equal(firstMinute.length, 10);
  assert.equal((await loadTrace(f, 'faasrail', { slotSeconds: 1 })).slotMs, 1000);
  // a range of minutes keeps its labels
  assert.deepEqual(subsetTrace(t, { fromSlot: 1 }).slotLabels, ['721-1440']);
});

void test('--format faasrail still reads the older per-slot files; --format slots reads them too', async () => {
  for (const file of ['faasrail.csv', 'faasrail.json']) {
    const a = await loadTrace(path.join(fixtures, file), 'faasrail');
    const b = await loadTrace(path.join(fixtures, file), 'slots');
    assert.equal(a.format, 'slots');
    assert.equal(a.totalInvocations, b.totalInvocations);
    assert.equal(a.functions[0]!.name, 'fn-000');
  }
  await assert.rejects(loadTrace(path.join(fixtures, 'faasrail-spec.csv'), 'slots'), /lacks column 'name'/);
});

void test('FaaSRail spec errors name the line and the field', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faascell-frs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'spec.csv');
  const wreq = (o: unknown): string => `"${JSON.stringify(o).replace(/"/g, '""')}"`;
  const ok = wreq({ mean: 2, bench: 'pyaes-00aa', payload: '{"message_length": 16, "num_iterations": 1}' });
  const cases: [string, RegExp][] = [
    [`avg,mapped_wreq,1\nx,${ok},1\n`, /spec\.csv:2: avg: not a non-negative number/],
    [`avg,mapped_wreq,1\n1,{nope},1\n`, /spec\.csv:2: mapped_wreq: not JSON/],
    [`avg,mapped_wreq,1\n1,${wreq({ mean: 2, payload: '{}' })},1\n`, /mapped_wreq\.bench: Required/],
    [`avg,mapped_wreq,1\n1,${wreq({ bench: 'x', payload: '[1]' })},1\n`, /mapped_wreq\.payload: must encode a JSON object/],
    [`avg,mapped_wreq,1\n1,${wreq({ bench: 'x', payload: '{' })},1\n`, /mapped_wreq\.payload: not a JSON string/],
    [`avg,mapped_wreq,1-2,3-4\n1,${ok},1\n`, /2 fields|3 fields, the header has 4/],
    [`avg,mapped_wreq,1-2\n1,${ok},-1\n`, /column '1-2': not a count: '-1'/],
    [`avg,mapped_wreq\n`, /no minute columns/],
  ];
  for (const [text, re] of cases) {
    writeFileSync(f, text);
    await assert.rejects(loadTrace(f, 'faasrail'), re, text);
  }
  // no mean: avg is the run time; stdev kept; a workload name that is no benchmark has none
  writeFileSync(f, `avg,mapped_wreq,1\n7.5,${wreq({ bench: 'my/fn', payload: '{}', stdev: 1 })},2\n`);
  const tr = await loadTrace(f, 'faasrail');
  assert.equal(tr.functions[0]!.avgDurationMs, 7.5);
  assert.equal(tr.functions[0]!.stdevMs, 1);
  assert.equal(tr.functions[0]!.benchmark, undefined);
  assert.equal(tr.functions[0]!.name, 'my_fn-r1');
});

void test('thinning keeps about the fraction, per function, deterministically', async () => {
  const t = await loadAzureTrace(azureDir);
  const a = thinTrace(t, 0.3, 5);
  assert.deepEqual(thinTrace(t, 0.3, 5).entryCount, a.entryCount);
  assert.ok(Math.abs(a.totalInvocations / t.totalInvocations - 0.3) < 0.05, `${a.totalInvocations} of ${t.totalInvocations}`);
  assert.equal(a.functions.reduce((s, f) => s + f.total, 0), a.totalInvocations);
  assert.ok(a.functions.every((f, i) => f.total <= t.functions[i]!.total));
  assert.equal(thinTrace(t, 1), t);
  assert.throws(() => thinTrace(t, 0), /sample fraction/);
});

void test('scaledCounts: each minute rounded down, the remainder carried, the sum kept within one', () => {
  assert.deepEqual(scaledCounts([1, 1, 1, 1], 0.5), [0, 1, 0, 1]);
  assert.deepEqual(scaledCounts([3, 0, 2], 1), [3, 0, 2]);
  const c = scaledCounts([7, 11, 13, 5], 0.37);
  assert.ok(Math.abs(c.reduce((s, x) => s + x, 0) - 36 * 0.37) < 1);
});
