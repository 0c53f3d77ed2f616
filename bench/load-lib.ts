// Open-loop saturation load against a running daemon, shared by the short load
// test (test/e2e/load.test.ts) and the soak benchmark (bench/soak.ts). Requests
// are sent by the project's trace replay (src/replay) from a generated per-slot
// spec: `rate` requests per second, evenly spread, whether or not earlier ones
// were answered. Every request is bounded in time (its own timeout) and the run
// in count (rate × seconds). Besides the client's view it samples what the
// daemon holds: its RSS, open file descriptors and threads, and the VMM
// processes and run directories of its state directory.
import { readFileSync, readdirSync, readlinkSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { replay, type ReplayRecord, type ReplaySummary } from '../src/replay/replay.js';
import { loadTrace } from '../src/traces/index.js';

export interface LoadOptions {
  url: string;
  /** deployed function to invoke */
  fn: string;
  /** requests per second */
  rate: number;
  seconds: number;
  params: unknown;
  /** a request without an answer after this long counts as hung (status 0) */
  timeoutMs: number;
  /** where the generated spec is written */
  workDir: string;
  onRecord?: (r: ReplayRecord) => void;
  token?: string;
}

export async function openLoop(o: LoadOptions): Promise<{ summary: ReplaySummary; records: ReplayRecord[] }> {
  const spec = path.join(o.workDir, `load-${o.fn}-${o.rate}x${o.seconds}.json`);
  writeFileSync(spec, JSON.stringify({ slotSeconds: 1, functions: [{ name: 'load', avgDurationMs: 0, request: o.params, counts: new Array<number>(o.seconds).fill(o.rate) }] }));
  const trace = await loadTrace(spec, 'slots');
  const records: ReplayRecord[] = [];
  const summary = await replay({
    trace,
    url: o.url,
    functions: o.fn,
    spread: 'even',
    timeoutMs: o.timeoutMs,
    token: o.token,
    progress: null,
    onRecord: (r) => {
      records.push(r);
      o.onRecord?.(r);
    },
  });
  return { summary, records };
}

/** The error code of a record (`code: message`), or '' for a success. */
export function codeOf(r: ReplayRecord): string {
  if (r.status === 200) return '';
  return r.error?.split(':')[0] ?? '';
}

function quantile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN;
}

export interface StatusLatency {
  status: number;
  code: string;
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Latency (client side) per HTTP status and error code. */
export function latencyByStatus(records: ReplayRecord[]): StatusLatency[] {
  const groups = new Map<string, { status: number; code: string; xs: number[] }>();
  for (const r of records) {
    const k = `${r.status} ${codeOf(r)}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { status: r.status, code: codeOf(r), xs: [] }));
    if (r.latencyMs !== null) g.xs.push(r.latencyMs);
  }
  return [...groups.values()]
    .sort((a, b) => a.status - b.status)
    .map((g) => {
      const s = g.xs.sort((a, b) => a - b);
      return { status: g.status, code: g.code, n: g.xs.length, p50Ms: Math.round(quantile(s, 50)), p99Ms: Math.round(quantile(s, 99)), maxMs: Math.round(s.at(-1) ?? NaN) };
    });
}

export interface ProcessSample {
  rssMiB: number;
  fds: number;
  /** of `fds`: sockets (client connections among them) */
  sockets: number;
  threads: number;
}

export function sampleProcess(pid: number): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const fds = readdirSync(`/proc/${pid}/fd`);
  let sockets = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed meanwhile
    }
  }
  return { rssMiB: Math.round(kib('VmRSS') / 1024), fds: fds.length, sockets, threads: kib('Threads') };
}

/** VMM processes whose command line mentions `needle` (a state directory). */
export function vmmCount(needle: string): number {
  let n = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('qemu-system') && cmd.includes(needle)) n++;
    } catch {
      // raced with exit
    }
  }
  return n;
}

export function runDirCount(stateDir: string): number {
  const run = path.join(stateDir, 'run');
  return existsSync(run) ? readdirSync(run).filter((n) => !n.startsWith('.')).length : 0;
}

/** Max-min fair split of `capacity` among demands (water-filling). */
export function waterFill(demand: number[], capacity: number): number[] {
  const out = demand.map(() => 0);
  let left = capacity;
  let open = demand.map((_, i) => i).filter((i) => demand[i]! > 0);
  while (open.length > 0 && left > 1e-9) {
    const each = left / open.length;
    const small = open.filter((i) => demand[i]! - out[i]! <= each);
    if (small.length === 0) {
      for (const i of open) out[i]! += each;
      break;
    }
    for (const i of small) {
      left -= demand[i]! - out[i]!;
      out[i] = demand[i]!;
    }
    open = open.filter((i) => !small.includes(i));
  }
  return out;
}

/** One GET /healthz: its status (0: no answer within 10 s) and client-side latency. */
export interface HealthProbe {
  status: number;
  ms: number;
}

/** GET `url`/healthz from this process every `everyMs` until stopped (the HTTP server's answers under load). */
export function probeHealth(url: string, everyMs: number): { stop(): Promise<HealthProbe[]> } {
  const out: HealthProbe[] = [];
  let probing = true;
  const loop = (async () => {
    while (probing) {
      const t0 = performance.now();
      try {
        const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
        await r.text();
        out.push({ status: r.status, ms: performance.now() - t0 });
      } catch {
        out.push({ status: 0, ms: performance.now() - t0 });
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      probing = false;
      await loop;
      return out;
    },
  };
}
