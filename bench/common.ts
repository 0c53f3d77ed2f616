// Shared benchmark plumbing: machine facts, statistics, an in-process daemon in
// a private state directory, and tables. Benchmarks print ratios measured side
// by side in one run; the machine is shared and noisy, so every figure is a
// median and a p99 over repeated runs.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../src/cli/client.js';
import { parseConfig } from '../src/config/schema.js';
import { createLogger } from '../src/core/logger.js';
import { startDaemon, type Daemon } from '../src/daemon.js';
import { projectRoot } from '../src/core/project-root.js';
import { removeTierDir } from '../src/snapshots/tier-gc.js';

export const ROOT = projectRoot();
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'functions');

export function machine(): Record<string, string | number> {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  let qemu = 'unknown';
  try {
    qemu = execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? qemu;
  } catch {
    // not installed
  }
  return { cpu, cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version, qemu, loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' ') };
}

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
  return { n: s.length, median: q(50), p99: q(99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / (s.length || 1) };
}

export function ms(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`;
}

export function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => '| ' + r.map((c, i) => c.padEnd(w[i]!)).join(' | ') + ' |';
  return [line(head), '|' + w.map((x) => '-'.repeat(x + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}

export interface BenchDaemon {
  d: Daemon;
  client: Client;
  dir: string;
  close(): Promise<void>;
}

export async function benchDaemon(config: Record<string, unknown> = {}): Promise<BenchDaemon> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-bench-'));
  const cfg = parseConfig({
    stateDir: path.join(dir, 'state'),
    api: { port: 0 },
    log: { level: 'warn' },
    ...config,
    // the bench's own tiers unless the caller names others: a caller's `snapshots: { enabled }` alone used to
    // replace them with the default tiers, whose shm directory close() did not know and left behind
    snapshots: {
      tiers: [{ name: 'shm', path: `/dev/shm/fc-bench-${path.basename(dir)}`, latencyRank: 0, capacityMiB: 16384 }, { name: 'disk', path: path.join(dir, 'disk-tier'), latencyRank: 1, capacityMiB: 32768 }],
      ...(config.snapshots as Record<string, unknown> | undefined),
    },
  });
  const d = await startDaemon({ config: cfg, log: createLogger({ level: cfg.log.level }) });
  return {
    d,
    client: new Client({ url: d.url }),
    dir,
    async close() {
      await d.stop();
      for (const t of cfg.snapshots.tiers ?? []) removeTierDir(t.path);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A daemon in a process of its own (the benchmarks of several daemons, or of the daemon's own process). */
export interface DaemonProcess {
  url: string;
  client: Client;
  proc: ChildProcess;
  dir: string;
  stop(): Promise<void>;
}

export async function spawnDaemon(name: string, config: Record<string, unknown>): Promise<DaemonProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `fc-bench-${name}-`));
  const shm = `/dev/shm/fc-bench-${path.basename(dir)}`;
  const cfg = {
    stateDir: path.join(dir, 'state'),
    api: { port: 0 },
    log: { level: 'warn' },
    snapshots: { tiers: [{ name: 'shm', path: shm, latencyRank: 0, capacityMiB: 8192 }] },
    ...config,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'faascell.js'), 'serve', '--config', path.join(dir, 'config.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`daemon ${name} did not start: ${err}`)), 120_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`daemon ${name} exited ${c}: ${err}`));
    });
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    url,
    client: new Client({ url }),
    proc,
    dir,
    async stop() {
      proc.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
      clearTimeout(timer);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      removeTierDir(shm);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function fixture(name: string): Buffer {
  return readFileSync(path.join(FIXTURES, name));
}

/** Client-side latency of one invocation, plus its activation record. */
export async function timedInvoke(c: Client, fn: string, params: unknown = {}): Promise<{ ms: number; startPath?: string; body: Awaited<ReturnType<Client['invoke']>>['body'] }> {
  const t0 = performance.now();
  const r = await c.invoke(fn, params);
  const dt = performance.now() - t0;
  if (r.status !== 200) throw new Error(`${fn}: HTTP ${r.status}: ${JSON.stringify(r.body.error)}`);
  return { ms: dt, startPath: r.body.activation?.startPath, body: r.body };
}

export async function evictAndWait(c: Client, fn: string): Promise<void> {
  await c.call('POST', `/v1/functions/${fn}/evict`);
  for (let i = 0; i < 200; i++) {
    const st = await c.call<{ pool: { instances: Array<{ fn: string }> } }>('GET', '/v1/status');
    if (!st.pool.instances.some((x) => x.fn === fn)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`instances of ${fn} did not stop`);
}

/** RSS and PSS (KiB) of every QEMU process whose command line mentions `needle`. */
export function vmmMemory(needle: string): Array<{ pid: number; rssKiB: number; pssKiB: number }> {
  const out: Array<{ pid: number; rssKiB: number; pssKiB: number }> = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.startsWith('qemu-system') && !cmd.includes('/qemu-system')) continue;
      if (!cmd.includes(needle)) continue;
      const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const kib = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(roll)?.[1] ?? 0);
      out.push({ pid: Number(pid), rssKiB: kib('Rss'), pssKiB: kib('Pss') });
    } catch {
      // raced with exit
    }
  }
  return out;
}
