// Real observability back ends started by the end-to-end tests themselves:
// a Prometheus server (Debian's `prometheus`) on 127.0.0.1 that scrapes the
// daemon, and a headless Chromium (Debian's `chromium`) driven by playwright-core.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { within } from './bounded.js';

export const PROMETHEUS = '/usr/bin/prometheus';
export const CHROMIUM = '/usr/bin/chromium';

/** Flags that keep Chromium quiet on a closed network (no background fetches, no QUIC, no sync). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Fails loudly (never skips) when a back end is not installed: scripts/setup.sh installs both. */
export function requireBinary(bin: string, pkg: string): void {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: install Debian's ${pkg} package (npm run setup does, as root)`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : JSON.stringify(err);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Prometheus {
  url: string;
  proc: ChildProcess;
  logs(): string;
  /** instant query through the HTTP API */
  query(q: string): Promise<PromSample[]>;
  stop(): Promise<void>;
}

export async function startPrometheus(opts: { dir: string; target: string; metricsPath?: string; scrapeIntervalS?: number }): Promise<Prometheus> {
  requireBinary(PROMETHEUS, 'prometheus');
  mkdirSync(opts.dir, { recursive: true });
  const port = await freePort();
  const every = `${opts.scrapeIntervalS ?? 1}s`;
  const cfg = path.join(opts.dir, 'prometheus.yml');
  writeFileSync(
    cfg,
    [
      'global:',
      `  scrape_interval: ${every}`,
      `  evaluation_interval: ${every}`,
      'scrape_configs:',
      '  - job_name: faascell',
      `    metrics_path: ${opts.metricsPath ?? '/metrics'}`,
      `    scrape_timeout: ${every}`,
      '    static_configs:',
      `      - targets: ['${opts.target}']`,
      '',
    ].join('\n'),
  );
  const proc = spawn(PROMETHEUS, [`--config.file=${cfg}`, `--storage.tsdb.path=${path.join(opts.dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1h', '--query.lookback-delta=3s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stdout.on('data', (d: Buffer) => (logs += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const p: Prometheus = {
    url,
    proc,
    logs: () => logs,
    async query(q) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
      if (body.status !== 'success') throw new Error(`prometheus query ${q}: ${body.error ?? res.status}`);
      return body.data!.result;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await within(exited, 10_000, () => undefined);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
  try {
    await until('prometheus to be ready', async () => ((await fetch(`${url}/-/ready`).catch(() => undefined))?.ok ? true : undefined), 30_000);
  } catch (err) {
    await p.stop();
    throw new Error(`${(err as Error).message}\n${logs.slice(-2000)}`);
  }
  return p;
}
