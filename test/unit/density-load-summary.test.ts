// bench density-load's repetitions summed up (issue 24 item 5): medians and spread per figure, the simulator's
// prediction checked against the spread, the order the phases run in, and the summary table. No VM.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { figuresOf, outsideSpread, spreadCell, spreadOf, summarizeRepetitions, type PhaseFigures } from '../../bench/density-load-summary.js';
import { formatRepetitionSummary, phaseOrder, type PhaseResult, type SimPhase } from '../../bench/density-load.js';
import type { LoadOutcome } from '../../bench/density-load-plan.js';

test('spread: median of an odd count, mean of the two middle ones for an even count, NaN left out', () => {
  assert.deepEqual(spreadOf([30, 10, 20]), { median: 20, min: 10, max: 30, n: 3 });
  assert.deepEqual(spreadOf([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, n: 4 });
  assert.deepEqual(spreadOf([NaN, 5, NaN]), { median: 5, min: 5, max: 5, n: 1 });
  const none = spreadOf([NaN]);
  assert.equal(none.n, 0);
  assert.ok(Number.isNaN(none.median));
});

const outcome = (o: Partial<LoadOutcome>): LoadOutcome => ({ offered: 10, served: 10, warm: 0, restore: 0, cold: 0, refused: {}, failed: 0, goodput: 1, p50Ms: 100, p99Ms: 1000, ...o });

test('a phase\'s figures: refusals of every code added up, unknown peaks NaN', () => {
  const f = figuresOf(outcome({ warm: 6, restore: 3, cold: 1, refused: { overloaded: 2, queue_full: 1 } }), { peakChargedMiB: 900, evictions: 4 });
  assert.deepEqual([f.warm, f.restore, f.cold, f.refused, f.peakChargedMiB, f.evictions], [6, 3, 1, 3, 900, 4]);
  assert.ok(Number.isNaN(f.peakMeasuredMiB) && Number.isNaN(f.peakVMs) && Number.isNaN(f.guardLevel));
});

test('repetitions summed up figure by figure; a prediction inside or outside their spread', () => {
  const reps: PhaseFigures[] = [
    figuresOf(outcome({ warm: 180, restore: 130, p99Ms: 900 }), { peakVMs: 80, guardLevel: 0 }),
    figuresOf(outcome({ warm: 190, restore: 120, p99Ms: 700 }), { peakVMs: 84, guardLevel: 1 }),
    figuresOf(outcome({ warm: 185, restore: 125, p99Ms: 5000 }), { peakVMs: 79, guardLevel: 0 }),
  ];
  const s = summarizeRepetitions(reps);
  assert.deepEqual(s.warm, { median: 185, min: 180, max: 190, n: 3 });
  assert.deepEqual(s.restore, { median: 125, min: 120, max: 130, n: 3 });
  assert.deepEqual(s.p99Ms, { median: 900, min: 700, max: 5000, n: 3 });
  assert.deepEqual(s.guardLevel, { median: 0, min: 0, max: 1, n: 3 });
  assert.equal(s.peakMeasuredMiB.n, 0, 'no repetition measured it');
  assert.equal(outsideSpread(s.warm, 186), 0);
  assert.equal(outsideSpread(s.warm, 190), 0, 'the ends are inside');
  assert.equal(outsideSpread(s.warm, 200), 10 / 185);
  assert.equal(outsideSpread(s.warm, 170), 10 / 185);
  assert.ok(Number.isNaN(outsideSpread(s.warm, NaN)));
  assert.ok(Number.isNaN(outsideSpread(s.peakMeasuredMiB, 5)));
  assert.equal(spreadCell(s.warm, String), '185 (180–190)');
  assert.equal(spreadCell(spreadOf([7, 7]), String), '7');
  assert.equal(spreadCell(s.peakMeasuredMiB, String), '-');
});

test('the phases alternate which accounting goes first from one repetition to the next', () => {
  assert.deepEqual(phaseOrder(3), [
    ['nominal', 1],
    ['measured', 1],
    ['measured', 2],
    ['nominal', 2],
    ['nominal', 3],
    ['measured', 3],
  ]);
  assert.deepEqual(phaseOrder(1), [
    ['nominal', 1],
    ['measured', 1],
  ]);
  assert.throws(() => phaseOrder(0), /--repetitions/);
});

function phase(accounting: 'nominal' | 'measured', rep: number, o: Partial<LoadOutcome>, peakInstances: number, evictions: number): PhaseResult {
  return {
    accounting,
    rep,
    outcome: outcome(o),
    replay: {} as PhaseResult['replay'],
    peakChargedMiB: 6400,
    peakMeasuredMiB: accounting === 'measured' ? 5000 : 2000,
    peakNominalMiB: accounting === 'measured' ? 15000 : 6400,
    peakInstances,
    maxGuardLevel: 0,
    minMemAvailableMiB: 16000,
    memAvailableStartMiB: 22000,
    counters: { evictions } as PhaseResult['counters'],
    snapshotsAtStart: 200,
    loadavgStart: '1 1 1',
    loadavgEnd: '2 2 2',
    startedAt: `2026-12-07T10:0${rep}:00.000Z`,
    seconds: 240,
  };
}

const sim = (accounting: 'nominal' | 'measured', o: Partial<LoadOutcome>, evictions: number): SimPhase => ({ accounting, outcome: outcome(o), peakChargedMiB: 6400, coldBoots: 0, restoresStarted: 0, evictions });

test('the summary table: a median (spread) row per accounting, the simulation beside it, where it falls outside, the ratios', () => {
  const phases = [
    phase('nominal', 1, { warm: 130, restore: 180, p50Ms: 500 }, 35, 150),
    phase('nominal', 2, { warm: 140, restore: 170, p50Ms: 400 }, 36, 140),
    phase('nominal', 3, { warm: 135, restore: 175, p50Ms: 450 }, 35, 145),
    phase('measured', 1, { warm: 190, restore: 120, p50Ms: 40 }, 80, 60),
    phase('measured', 2, { warm: 185, restore: 125, p50Ms: 45 }, 81, 58),
    phase('measured', 3, { warm: 188, restore: 122, p50Ms: 38 }, 79, 61),
  ];
  const text = formatRepetitionSummary(phases, [sim('nominal', { warm: 142, restore: 168, p50Ms: 325 }, 218), sim('measured', { warm: 186, restore: 124, p50Ms: 42 }, 59)]);
  const lines = text.split('\n');
  const row = (acc: string, run: string): string[] => lines.find((l) => l.startsWith(`| ${acc} | ${run}`))!.split(' | ');
  const nReal = row('nominal', 'real');
  assert.equal(nReal[1], 'real, median (lowest–highest) of 3');
  assert.equal(nReal[4], '135 (130–140)', 'warm');
  assert.equal(nReal[3], '175 (170–180)', 'restore');
  assert.equal(row('measured', 'simulated')[4], '186');
  assert.match(text, /nominal: the simulator's prediction outside the real spread for restore 168 vs 175 \(170–180\); warm 142 vs 135 \(130–140\); p50 325 ms vs 450 ms \(400 ms–500 ms\)/);
  assert.match(text, /measured: the simulator's prediction within the real spread for every figure it gives/);
  assert.match(text, /measured ÷ nominal, medians: warm 1\.39×, restores 0\.70×, peak VMs 2\.29×, evictions 0\.41×/);
});
