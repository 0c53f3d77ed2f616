import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseCsvLine } from '../../src/traces/csv.js';
import { synthesizeAzureFiles } from '../../src/traces/generate.js';
import { ArrivalExpander, arrivals, loadAzureTrace, loadFaasrailSpec, loadTrace, subsetTrace, topFunctions } from '../../src/traces/index.js';

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
