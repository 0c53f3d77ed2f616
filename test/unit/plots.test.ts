// Vega-Lite plots rendered to SVG and PNG, and `faascell plot` on replay records and experiment results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { plottedPath, readExperimentCsv, runPlotCommand } from '../../src/plots/cli.js';
import { renderSvg, svgToPng } from '../../src/plots/render.js';
import { coldStartsPerPolicySpec, coldStartVsMemorySpec, latencyCdfSpec } from '../../src/plots/specs.js';

test('a Vega-Lite spec renders to SVG with its labels, and to PNG', async () => {
  const spec = coldStartVsMemorySpec(
    [
      { policy: 'fixed', memoryGiB: 8, coldStartFraction: 0.5 },
      { policy: 'fixed', memoryGiB: 16, coldStartFraction: 0.05 },
      { policy: 'none', memoryGiB: 8, coldStartFraction: 0 },
      { policy: 'none', memoryGiB: 16, coldStartFraction: 1 },
    ],
    'Cold starts',
  );
  const svg = await renderSvg(spec);
  assert.match(svg, /^<svg/);
  for (const t of ['Cold starts', 'keep-alive policy', 'fixed', 'memory budget']) assert.ok(svg.includes(t), `SVG has "${t}"`);
  assert.match(svg, /<path /, 'marks drawn');
  const png = svgToPng(svg);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(png.length > 5000);
});

test('latency CDF: one panel per run when several runs are plotted', async () => {
  const pts = [1, 2, 3].flatMap((i) => [{ startPath: 'warm', latencyMs: 10 * i, run: 'a' }, { startPath: 'cold', latencyMs: 3000 * i, run: 'b' }]);
  const svg = await renderSvg(latencyCdfSpec(pts, 'CDF'));
  assert.ok(svg.includes('warm (n=3)') || svg.includes('CDF'));
  assert.ok('facet' in latencyCdfSpec(pts, 'CDF'));
  assert.ok(!('facet' in latencyCdfSpec(pts.map(({ run: _r, ...p }) => p), 'CDF')));
});

test('faascell plot: replay records and an experiment results.csv', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-plot-'));
  try {
    const recs = Array.from({ length: 40 }, (_, i) => ({ scheduledMs: i * 500, sentMs: i * 500 + 1, lagMs: 1, function: 'f', traceFunction: 't', status: i === 7 ? 429 : 200, startPath: i === 7 ? null : i % 10 === 0 ? 'cold' : i % 5 === 0 ? 'restore' : 'warm', latencyMs: i % 10 === 0 ? 3000 + i : 12 + i, totalMs: 10 }));
    writeFileSync(path.join(dir, 'run1.jsonl'), recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
    writeFileSync(path.join(dir, 'run2.jsonl'), recs.slice(0, 20).map((r) => JSON.stringify(r)).join('\n') + '\n');
    writeFileSync(
      path.join(dir, 'results.csv'),
      ['variant,policy,memoryGiB,invocations,coldStartFraction', 'no-snapshots,fixed,8,10,0.5', 'no-snapshots,fixed,16,10,0.1', 'no-snapshots,none,8,10,0.9', 'no-snapshots,none,unlimited,10,1', 'snapshots,fixed,8,10,0.2'].join('\n') + '\n',
    );
    const out = path.join(dir, 'plots');
    let printed = '';
    const files = await runPlotCommand({ files: ['run1.jsonl', 'run2.jsonl', 'results.csv'].map((f) => path.join(dir, f)), out, format: 'svg,png,json', write: (s) => (printed += s) });
    const names = files.map((f) => path.relative(out, f)).sort();
    for (const n of ['run1-latency-cdf.svg', 'run1-latency-cdf.png', 'run1-start-path-mix.svg', 'run2-latency-cdf.png', 'results-coldstart-vs-memory.svg', 'results-coldstarts-per-policy.png', 'latency-cdf-by-run.svg', 'run1-latency-cdf.vl.json']) {
      assert.ok(names.includes(n), `${n} written (got ${names.join(', ')})`);
    }
    assert.equal(printed.trim().split('\n').length, files.length);
    const spec = JSON.parse(readFileSync(path.join(out, 'run1-latency-cdf.vl.json'), 'utf8')) as { data: { values: Array<{ startPath: string }> } };
    assert.ok(spec.data.values.some((v) => v.startPath === 'error'), 'a refused request is plotted as error');
    assert.deepEqual(readExperimentCsv(path.join(dir, 'results.csv')).map((p) => p.memoryGiB), [8, 16, 8, Infinity, 8], 'unlimited is read (its own bar; named in the log-axis plot\'s title)');
    await assert.rejects(runPlotCommand({ files: [path.join(dir, 'x.txt')], out }), /expected replay records/);
    await assert.rejects(runPlotCommand({ files: [path.join(dir, 'run1.jsonl')], out, format: 'gif' }), /--format: gif/);
    writeFileSync(path.join(dir, 'bad.jsonl'), '{"a":1}\n');
    await assert.rejects(runPlotCommand({ files: [path.join(dir, 'bad.jsonl')], out }), /bad\.jsonl:1: not a replay record/);
    assert.equal(plottedPath({ status: 200, startPath: 'warm' }), 'warm');
    assert.equal(plottedPath({ status: 502, startPath: 'warm' }), 'error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('small percentages keep their digits, "unlimited" rows are plotted, few CDF samples are drawn as points', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-plot-small-'));
  try {
    const csv = path.join(dir, 'results.csv');
    writeFileSync(csv, 'variant,policy,memoryGiB,coldStartFraction\nsnapshots,fixed,8,0.0004\nsnapshots,fixed,16,0.0002\nsnapshots,fixed,unlimited,0.0001\nsnapshots,none,8,0.0009\nsnapshots,none,unlimited,0.0008\n');
    const pts = readExperimentCsv(csv);
    assert.equal(pts.length, 5, 'the unlimited rows are read');
    assert.equal(pts.filter((p) => p.memoryGiB === Infinity).length, 2);
    const bars = await renderSvg(coldStartsPerPolicySpec(pts, 'bars'));
    assert.ok(bars.includes('unlimited'), 'an "unlimited" bar group');
    const ticks = [...bars.matchAll(/>([0-9.]+%)</g)].map((m) => m[1]!);
    assert.ok(ticks.length > 2 && ticks.some((t) => t !== '0%'), `y ticks tell the values apart: ${ticks.join(' ')}`);
    assert.ok(new Set(ticks).size === ticks.length, `no two y ticks read the same: ${ticks.join(' ')}`);
    const line = await renderSvg(coldStartVsMemorySpec(pts, 'line'));
    assert.match(line, /unlimited: fixed 0\.010 %, none 0\.080 %/, 'the unlimited values in the title of the log-axis plot');

    const two = latencyCdfSpec([{ startPath: 'cold', latencyMs: 2000 }, { startPath: 'cold', latencyMs: 2600 }, ...Array.from({ length: 60 }, (_, i) => ({ startPath: 'warm', latencyMs: 5 + i }))], 'cdf');
    assert.ok('layer' in two && Array.isArray(two.layer) && two.layer.length === 2, 'a line and a point layer');
    const svg = await renderSvg(two);
    const symbols = (svg.match(/<path[^>]*class="[^"]*"|role="graphics-symbol"/g) ?? []).length;
    assert.ok(symbols >= 2, 'points drawn');
    assert.ok(svg.includes('cold (n=2)') || svg.includes('cdf'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
