// The counting half of scripts/test.sh (the shell script runs the steps; this judges them). Each command
// appends its verdict to one results file (JSON lines), and `close` prints the closing summary whose last
// line CI reads: "N passed, N failed, N skipped".
//   main.ts suite <name> <records.jsonl> <node exit status> <results> <files…>   per-file counts and durations
//   main.ts step <name> ok|failed <results> [detail…]                            lint, typecheck, set-up, build
//   main.ts sweep <run id> <root> <results> <label> [--final]                     the run's leftovers (killed, removed)
//   main.ts close <results>                                                       the summary; exit 1 unless green
import fs from 'node:fs';
import { parseRecords, tally, type SuiteResult } from './results.js';
import { sweep } from './ownership.js';

type Verdict = ({ kind: 'suite' } & SuiteResult) | { kind: 'step'; name: string; ok: boolean; detail: string[] };

const append = (file: string, v: Verdict): void => fs.appendFileSync(file, `${JSON.stringify(v)}\n`);
/** time a file may take after its last test (after hooks stopping daemons and VMs) before it is named */
const IDLE_AFTER_WARN_MS = 5000;
const seconds = (ms: number | undefined): string => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);

function printSuite(r: SuiteResult): void {
  const width = Math.max(...r.files.map((f) => f.file.length), 4);
  console.log(`--- ${r.suite}: ${r.files.length} files, ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped (node exited with ${r.exitCode})`);
  console.log(`    ${'file'.padEnd(width)}  pass  fail  skip      time  after tests`);
  for (const f of r.files) {
    const mark = f.failed > 0 ? '✖' : ' ';
    console.log(`  ${mark} ${f.file.padEnd(width)} ${String(f.passed).padStart(5)} ${String(f.failed).padStart(5)} ${String(f.skipped).padStart(5)} ${seconds(f.durationMs).padStart(9)} ${seconds(f.idleAfterMs).padStart(12)}`);
  }
  // not a failure (nothing was hidden), but time the whole suite waits for: name it so it gets fixed
  const idle = r.files.filter((f) => (f.idleAfterMs ?? 0) > IDLE_AFTER_WARN_MS);
  for (const f of idle) console.log(`  ! ${f.file} stayed alive ${seconds(f.idleAfterMs)} after its last test (a pending timer or a slow after hook?)`);
  if (r.failures.length > 0) {
    console.log(`!!! ${r.suite}: ${r.failures.length} failed`);
    for (const p of r.failures) console.log(`  ✖ ${p.file} › ${p.test}: ${p.why.split('\n')[0]}`);
  }
}

function close(file: string): number {
  const verdicts = fs.existsSync(file) ? parseVerdicts(fs.readFileSync(file, 'utf8')) : [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failedSteps: string[] = [];
  console.log('=== summary');
  for (const v of verdicts) {
    if (v.kind === 'step') {
      if (v.ok) passed++;
      else {
        failed++;
        failedSteps.push(v.name);
      }
      console.log(`  ${v.ok ? '✔' : '✖'} ${v.name}${v.detail.length > 0 ? `: ${v.detail.length} item(s)` : ''}`);
      for (const d of v.detail) console.log(`      ${d}`);
      continue;
    }
    passed += v.passed;
    failed += v.failed;
    skipped += v.skipped;
    if (v.failed > 0) failedSteps.push(v.suite);
    const slowest = [...v.files].sort((a, b) => (b.durationMs ?? 0) - (a.durationMs ?? 0))[0];
    console.log(`  ${v.failed > 0 ? '✖' : '✔'} ${v.suite}: ${v.files.length} files, ${v.passed} passed, ${v.failed} failed, ${v.skipped} skipped${slowest ? ` (slowest ${slowest.file} ${seconds(slowest.durationMs)})` : ''}`);
    for (const p of v.failures) console.log(`      ✖ ${p.file} › ${p.test}: ${p.why.split('\n')[0]}`);
  }
  const skips = verdicts.flatMap((v) => (v.kind === 'suite' ? v.skips : []));
  if (skips.length > 0) {
    console.log(`skips (${skips.length}; only the documented impossibilities of test/runner/skips.ts are allowed):`);
    for (const s of skips) console.log(`  ${s.allowed ? `allowed (${s.allowed})` : 'NOT ALLOWED, counted as failed'}: ${s.file} › ${s.test}: ${s.reason}`);
  }
  if (verdicts.length === 0) {
    failed++;
    failedSteps.push('nothing ran');
  }
  if (failedSteps.length > 0) console.log(`failed: ${failedSteps.join(', ')}`);
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  return failed === 0 ? 0 : 1;
}

function parseVerdicts(text: string): Verdict[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Verdict);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'suite': {
      const [name, records, exit, out, ...files] = args;
      if (!name || !records || exit === undefined || !out) break;
      const text = fs.existsSync(records) ? fs.readFileSync(records, 'utf8') : '';
      const r = tally(name, files, parseRecords(text), Number(exit));
      printSuite(r);
      append(out, { kind: 'suite', ...r });
      return 0;
    }
    case 'step': {
      const [name, ok, out, ...detail] = args;
      if (!name || (ok !== 'ok' && ok !== 'failed') || !out) break;
      append(out, { kind: 'step', name, ok: ok === 'ok', detail });
      return 0;
    }
    case 'sweep': {
      const [id, root, out, label, final] = args;
      if (!id || !root || !out || !label) break;
      const r = await sweep({ id, root }, { removeRoot: final === '--final' });
      const left = [...r.processes.map((p) => `process killed: ${p}`), ...r.mounts.map((m) => `mount left: ${m}`), ...r.shm.map((s) => `tmpfs entry removed: ${s}`)];
      // files in the root are the tests' business as long as the root goes with the run: noted, not failed
      if (final === '--final' && r.tmp.length > 0) console.log(`note: ${r.tmp.length} entries left in ${root} by tests (removed with it): ${r.tmp.slice(0, 10).join(' ')}${r.tmp.length > 10 ? ' …' : ''}`);
      append(out, { kind: 'step', name: `no leftovers ${label}`, ok: left.length === 0, detail: left });
      return 0;
    }
    case 'close': {
      const [out] = args;
      if (!out) break;
      return close(out);
    }
  }
  console.error('usage: main.ts suite <name> <records> <exit> <results> <files…> | step <name> ok|failed <results> [detail…] | sweep <id> <root> <results> <label> [--final] | close <results>');
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
