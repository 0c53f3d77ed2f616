// What one suite's run (one `node --test` over a list of files) really did, from the structured records
// scripts/test-reporter.mjs wrote. Pure: records in, counts and problems out. The rules:
// - every test:fail counts, whatever node calls it (a cancelled test, a failed hook, a timeout), except the
//   "subtestsFailed" a suite or parent reports for a failure already counted in its children;
// - a skip (or todo) counts as a failure unless its reason is an allowed impossibility (./skips.ts);
// - a file that reports no test, a suite that holds no test, and a file that reports nothing fail;
// - node's exit status is the last word: non-zero with no failure counted is itself a failure.
import path from 'node:path';
import { allowedSkip, type Impossibility } from './skips.js';

/** One line of scripts/test-reporter.mjs's output. */
export interface TestRecord {
  event: 'pass' | 'fail' | 'complete';
  file?: string;
  name: string;
  nesting: number;
  line?: number;
  suite: boolean;
  durationMs?: number;
  /** wall-clock time the record reached the runner */
  at?: number;
  passed?: boolean;
  skip?: string | boolean;
  todo?: string | boolean;
  failureType?: string;
  error?: string;
}

export interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  durationMs?: number;
  /** from its last test's end to its process's exit: time spent after the tests (pending timers, slow after hooks) */
  idleAfterMs?: number;
}

export interface Problem {
  file: string;
  test: string;
  why: string;
}

export interface Skip {
  file: string;
  test: string;
  reason: string;
  /** the documented impossibility it names; undefined: the skip counts as a failure */
  allowed?: Impossibility;
}

export interface SuiteResult {
  suite: string;
  exitCode: number;
  passed: number;
  failed: number;
  skipped: number;
  files: FileResult[];
  failures: Problem[];
  skips: Skip[];
}

const WHY: Record<string, string> = {
  cancelledByParent: 'cancelled: its suite or a hook before it failed, or its parent timed out',
  hookFailed: 'a hook (before/after/beforeEach/afterEach) failed',
  testTimeoutFailure: 'timed out',
  testCodeFailure: 'failed',
  callbackAndPromisePresent: 'failed (callback and promise both used)',
  parentAlreadyFinished: 'ran after its parent had finished',
  uncaughtException: 'an uncaught exception',
  unhandledRejection: 'an unhandled rejection',
};

export function parseRecords(text: string): TestRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TestRecord);
}

/** The synthetic test node gives a whole file: named after the file, at the top. */
function isFileLevel(r: TestRecord): boolean {
  return r.nesting === 0 && r.file !== undefined && r.name === r.file;
}

function skipReason(r: TestRecord): string | undefined {
  if (r.skip !== undefined && r.skip !== false) return typeof r.skip === 'string' ? r.skip : '(no reason given)';
  if (r.todo !== undefined && r.todo !== false) return `todo: ${typeof r.todo === 'string' ? r.todo : '(no reason given)'}`;
  return undefined;
}

export function tally(suite: string, files: readonly string[], records: readonly TestRecord[], exitCode: number, cwd = process.cwd()): SuiteResult {
  const byFile = new Map<string, FileResult>();
  for (const f of files) byFile.set(path.resolve(cwd, f), { file: f, passed: 0, failed: 0, skipped: 0 });
  const fileOf = (r: TestRecord): FileResult => {
    const abs = r.file === undefined ? '(no file)' : path.resolve(cwd, r.file);
    let fr = byFile.get(abs);
    if (!fr) byFile.set(abs, (fr = { file: path.relative(cwd, abs) || abs, passed: 0, failed: 0, skipped: 0 }));
    return fr;
  };
  const failures: Problem[] = [];
  const skips: Skip[] = [];
  // children seen per nesting level since the last record at a lower level, per file: records come
  // children first, so a suite's count is known when the suite itself is reported
  const pending = new Map<FileResult, number[]>();
  const seen = new Set<FileResult>();
  const lastTestAt = new Map<FileResult, number>();
  const fail = (fr: FileResult, test: string, why: string): void => {
    fr.failed++;
    failures.push({ file: fr.file, test, why });
  };

  for (const r of records) {
    const fr = fileOf(r);
    seen.add(fr);
    if (isFileLevel(r)) {
      if (r.durationMs !== undefined) fr.durationMs = r.durationMs;
      const last = lastTestAt.get(fr);
      if (r.at !== undefined && last !== undefined) fr.idleAfterMs = Math.max(0, r.at - last);
      if (r.event === 'fail' && r.failureType !== 'subtestsFailed') fail(fr, '(the file itself)', `the file failed outside its tests (crash, non-zero exit, top-level hook): ${r.error ?? r.failureType ?? ''}`);
      continue;
    }
    if (r.at !== undefined) lastTestAt.set(fr, Math.max(lastTestAt.get(fr) ?? 0, r.at));
    if (r.event === 'complete') continue;
    const levels = pending.get(fr) ?? [];
    pending.set(fr, levels);
    const children = levels[r.nesting + 1] ?? 0;
    levels.length = r.nesting + 1;
    levels[r.nesting] = (levels[r.nesting] ?? 0) + 1;

    const label = r.name;
    const skipped = skipReason(r);
    if (skipped !== undefined) {
      const allowed = allowedSkip(typeof r.skip === 'string' ? r.skip : undefined);
      skips.push({ file: fr.file, test: label, reason: skipped, ...(allowed ? { allowed } : {}) });
      if (allowed) fr.skipped++;
      else fail(fr, label, `skipped without an allowed reason (test/runner/skips.ts): ${skipped}`);
      continue;
    }
    if (r.event === 'fail') {
      if (r.failureType === 'subtestsFailed') continue; // counted in its children
      const why = WHY[r.failureType ?? ''] ?? `failed (${r.failureType ?? 'unknown'})`;
      fail(fr, r.suite ? `${label} (suite)` : label, r.error ? `${why}: ${r.error}` : why);
      continue;
    }
    if (r.suite) {
      if (children === 0) fail(fr, `${label} (suite)`, 'the suite holds no test');
      continue;
    }
    fr.passed++;
  }

  for (const fr of byFile.values()) {
    if (!seen.has(fr)) fail(fr, '(the file itself)', 'the file reported nothing (never ran, or its process was killed)');
    else if (fr.passed + fr.failed + fr.skipped === 0) fail(fr, '(the file itself)', 'the file reports no test');
  }
  const all = [...byFile.values()];
  const sum = (k: 'passed' | 'failed' | 'skipped'): number => all.reduce((n, f) => n + f[k], 0);
  const result: SuiteResult = { suite, exitCode, passed: sum('passed'), failed: sum('failed'), skipped: sum('skipped'), files: all, failures, skips };
  if (exitCode !== 0 && result.failed === 0) {
    result.failed = 1;
    result.failures.push({ file: '(suite)', test: suite, why: `node --test exited with status ${exitCode} though no test failed` });
  }
  return result;
}
