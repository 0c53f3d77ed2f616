// Starts the real `faascell serve` process (real QEMU VMs) in a private state
// directory for end-to-end tests, and checks that stopping it leaves nothing behind.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/core/project-root.js';
import { Client } from '../../src/cli/client.js';
import { findImage } from '../../src/image/builder.js';
import { defaultCacheDir } from '../../src/config/schema.js';
import { removeTierDir } from '../../src/snapshots/tier-gc.js';
import { runShmPath } from '../support/test-run.js';

export const ROOT = projectRoot();
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'functions');

export interface TestDaemon {
  url: string;
  client: Client;
  proc: ChildProcess;
  dir: string;
  stateDir: string;
  /** the API's unix socket (issue 19: stateDir/api.sock unless the config says otherwise) */
  socket: string;
  shmTier: string;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** deploy a fixture by file name */
  deploy(name: string, fixture: string, opts?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** Fails loudly (never skips silently) when the guest image is missing: setup builds it. */
export async function requireImage(): Promise<void> {
  const img = await findImage(defaultCacheDir());
  if (!img) throw new Error(`no guest image in ${defaultCacheDir()}: run \`npm run setup\` (or \`faascell image build\`) first`);
}

export async function startDaemon(config: Record<string, unknown> = {}, reuseDir?: string): Promise<TestDaemon> {
  await requireImage();
  const dir = reuseDir ?? mkdtempSync(path.join(os.tmpdir(), 'fc-e2e-'));
  const stateDir = path.join(dir, 'state');
  const shmTier = runShmPath(`e2e-${path.basename(dir)}`);
  const cfg = {
    stateDir,
    api: { port: 0 },
    log: { level: 'debug' },
    ...config,
    // admission's wait estimate follows the machine's load: under a foreign load of 10 on 2 cores a lone cold
    // start was estimated at 62 s and refused (> the default 60 s), failing tests about other things. A test
    // about admission names its own bound; the others get a generous one.
    admission: { maxQueueDelayMs: 300_000, ...(config.admission as Record<string, unknown> | undefined) },
    // the test's own tiers unless it names its own: other snapshot settings keep them
    snapshots: { tiers: [{ name: 'shm', path: shmTier, latencyRank: 0, capacityMiB: 4096 }, { name: 'disk', path: path.join(dir, 'disk-tier'), latencyRank: 1, capacityMiB: 8192 }], ...(config.snapshots as Record<string, unknown> | undefined) },
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const logFile = path.join(dir, 'daemon.log');
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'faascell.js'), 'serve', '--config', path.join(dir, 'config.json')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAASCELL_URL: '' } });
  let out = '';
  let logs = '';
  proc.stderr.on('data', (d: Buffer) => (logs += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start in 120 s:\n${logs.slice(-3000)}`)), 120_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on ((?:http:\/\/|unix:)\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code} before listening:\n${logs.slice(-3000)}`));
    });
  });
  const client = new Client({ url });
  await client.waitHealthy(10_000);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    url,
    client,
    proc,
    dir,
    stateDir,
    socket: apiSocketOf(cfg.api as { socket?: unknown }, stateDir),
    shmTier,
    logs: () => logs,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      // the bound must not outlive the stop: a pending timer keeps the test process alive for 30 s
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (bound = setTimeout(r, 30_000)))]);
      clearTimeout(bound);
      writeFileSync(logFile, logs);
    },
    deploy(name, fixture, opts = {}) {
      return client.deploy(name, readFileSync(path.join(FIXTURES, fixture)), { codeKind: 'js', ...opts });
    },
  };
}

function apiSocketOf(api: { socket?: unknown }, stateDir: string): string {
  return typeof api.socket === 'string' ? api.socket : path.join(stateDir, 'api.sock');
}

/** QEMU processes whose command line mentions `needle` (a test's private directory). */
export function qemuProcessesUnder(needle: string): string[] {
  try {
    return execFileSync('pgrep', ['-a', '-f', 'qemu-system'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(needle));
  } catch {
    return [];
  }
}

/** What a stopped daemon left behind in its directory: VMM processes, run dirs, sockets. */
export function leftovers(d: TestDaemon): string[] {
  const found: string[] = [];
  found.push(...qemuProcessesUnder(d.dir).map((p) => `process: ${p}`));
  const run = path.join(d.stateDir, 'run');
  if (existsSync(run)) found.push(...readdirSync(run).map((f) => `run dir: ${f}`));
  return found;
}

export function cleanup(d: TestDaemon): void {
  // a test that failed before stopping its daemon must not leave it running (its pipes would keep the
  // test process, and with it the whole suite, alive)
  if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
  for (const p of qemuProcessesUnder(d.dir)) {
    const pid = Number(p.trim().split(/\s+/)[0]);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  removeTierDir(d.shmTier); // and its owner marker beside it
  rmSync(d.dir, { recursive: true, force: true });
}

/** Stop the daemon, then fail if it left any VMM process or run directory behind; always clean up. */
export async function stopAndCheck(d: TestDaemon | undefined): Promise<void> {
  if (!d) return;
  await d.stop();
  const left = leftovers(d);
  cleanup(d);
  if (left.length > 0) throw new Error(`left behind after the daemon stopped:\n${left.join('\n')}`);
}
