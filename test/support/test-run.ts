// Which test run a test belongs to, and where it puts what it makes, so the runner (scripts/test.sh)
// can tell the run's own processes and files from everything else on the machine and clean up only
// those. The runner gives each run an id and a root directory and passes both down as environment:
// FAASCELL_TEST_RUN=<id>, and TMPDIR=<root> so that every os.tmpdir() (test dirs, daemon state dirs,
// run dirs, nats and prometheus stores, chromium profiles) lands under the root. tmpfs directories
// cannot live there; they are named /dev/shm/fc-test-<id>-… instead. A file run by hand (no runner)
// gets an id of its own.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const RUN_ID_ENV = 'FAASCELL_TEST_RUN';
export const SHM_ROOT = '/dev/shm';

export function runId(env: NodeJS.ProcessEnv = process.env): string {
  return env[RUN_ID_ENV] || `solo${process.pid}`;
}

/** The prefix of every tmpfs entry a run makes (a file or directory name in SHM_ROOT). */
export function shmPrefix(id: string): string {
  return `fc-test-${id}-`;
}

/** A tmpfs path owned by this test run, not created (e.g. a daemon's snapshot tier); `name` must be unique in the run. */
export function runShmPath(name: string): string {
  return path.join(SHM_ROOT, `${shmPrefix(runId())}${name}`);
}

/** A fresh tmpfs directory owned by this test run (the caller removes it). */
export function runShmDir(name: string): string {
  return mkdtempSync(path.join(SHM_ROOT, `${shmPrefix(runId())}${name}-`));
}

/** A fresh directory under the run's root (the caller removes it). */
export function runTmpDir(name: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `${name}-`));
}
