// Soak: the load test's open-loop saturation (twice the capacity of one function
// whose instances are capped) held for a long time against the real daemon (its
// own process, real VMs), sampling every --sample-s seconds what the client saw
// (answers by status, latency of the results) and what the daemon holds (RSS,
// open file descriptors, threads, VMM processes, run directories). At the end
// the daemon is stopped and what it left behind is listed (must be nothing).
//
//   npx tsx bench/soak.ts [--minutes 30] [--rate 16] [--run-ms 250] [--instances 2] [--sample-s 60] [--out FILE.md]
//
// Run it under the VM lock: flock /tmp/faascell-vm.lock npx tsx bench/soak.ts
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { machine, table } from './common.js';
import { codeOf, latencyByStatus, openLoop, runDirCount, sampleProcess, vmmCount, type ProcessSample } from './load-lib.js';
import type { ReplayRecord } from '../src/replay/replay.js';
// the e2e tests' daemon launcher: `faascell serve` in its own process and state directory
import { cleanup, leftovers, startDaemon } from '../test/helpers/daemon.js';

const { values: a } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string' },
    'run-ms': { type: 'string', default: '250' },
    instances: { type: 'string', default: '2' },
    'sample-s': { type: 'string', default: '60' },
    out: { type: 'string' },
  },
});
const runMs = Number(a['run-ms']);
const instances = Number(a.instances);
const capacity = (instances * 1000) / runMs;
const rate = a.rate ? Number(a.rate) : 2 * capacity;
const seconds = Math.round(Number(a.minutes) * 60);
const sampleS = Number(a['sample-s']);
const QUEUE_DELAY_MS = 5000;

const SLEEPER = `exports.main = async (p) => { await new Promise((r) => setTimeout(r, p.ms)); return { slept: p.ms }; };`;

const quantile = (xs: number[], p: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
};

interface Window {
  t: number;
  sent: number;
  ok: number;
  r429: number;
  r503: number;
  other: number;
  okLatency: number[];
  proc: ProcessSample;
  vmms: number;
  runDirs: number;
}

const m = machine();
const d = await startDaemon({ log: { level: 'warn' }, admission: { maxQueueDelayMs: QUEUE_DELAY_MS, maxQueueLength: 20 } });
const windows: Window[] = [];
let cur: Omit<Window, 'proc' | 'vmms' | 'runDirs' | 't'> = { sent: 0, ok: 0, r429: 0, r503: 0, other: 0, okLatency: [] };
const t0 = Date.now();
let left: string[] = [];
let records: ReplayRecord[] = [];
let base: ProcessSample;
try {
  await d.client.deploy('soak', Buffer.from(SLEEPER), { codeKind: 'js', maxInstances: instances, timeoutMs: 10_000 });
  await Promise.all(Array.from({ length: instances }, () => d.client.invoke('soak', { ms: 1 })));
  const pid = d.proc.pid!;
  base = sampleProcess(pid);
  const sampler = setInterval(() => {
    windows.push({ t: Math.round((Date.now() - t0) / 1000), ...cur, proc: sampleProcess(pid), vmms: vmmCount(d.dir), runDirs: runDirCount(d.stateDir) });
    cur = { sent: 0, ok: 0, r429: 0, r503: 0, other: 0, okLatency: [] };
    const w = windows.at(-1)!;
    process.stderr.write(`soak ${w.t} s: ok ${w.ok} 429 ${w.r429} 503 ${w.r503} other ${w.other}  rss ${w.proc.rssMiB} MiB  fds ${w.proc.fds}  vmms ${w.vmms}\n`);
  }, sampleS * 1000);
  try {
    const res = await openLoop({
      url: d.url,
      fn: 'soak',
      rate,
      seconds,
      params: { ms: runMs },
      timeoutMs: QUEUE_DELAY_MS + 60_000,
      workDir: d.dir,
      onRecord: (r) => {
        cur.sent++;
        if (r.status === 200) {
          cur.ok++;
          if (r.latencyMs !== null) cur.okLatency.push(r.latencyMs);
        } else if (r.status === 429) cur.r429++;
        else if (r.status === 503) cur.r503++;
        else cur.other++;
      },
    });
    records = res.records;
  } finally {
    clearInterval(sampler);
  }
  await new Promise((r) => setTimeout(r, 2000));
  const end = sampleProcess(pid);
  windows.push({ t: Math.round((Date.now() - t0) / 1000), ...cur, proc: end, vmms: vmmCount(d.dir), runDirs: runDirCount(d.stateDir) });
} finally {
  await d.stop();
  left = leftovers(d);
  const sockets = execFileSync('find', [d.dir, '-type', 's'], { encoding: 'utf8' }).trim();
  if (sockets) left.push(...sockets.split('\n').map((s) => `socket: ${s}`));
  cleanup(d);
}

const hung = records.filter((r) => r.status === 0).length;
const unclear = records.filter((r) => r.status !== 200 && r.status !== 0 && !((r.status === 429 && codeOf(r) === 'too_many_requests') || (r.status === 503 && codeOf(r) === 'unavailable'))).length;
const rss = windows.map((w) => w.proc.rssMiB);
const out = [
  `# Soak: ${a.minutes} min at ${rate}/s (capacity ${capacity}/s: ${instances} instances × ${runMs} ms runs), ${new Date(t0).toISOString()}`,
  '',
  `machine: ${JSON.stringify(m)}`,
  '',
  `requests ${records.length}; hung (no answer) ${hung}; answers neither a result nor a clear 429/503: ${unclear}; left behind after stop: ${left.length ? left.join(', ') : 'nothing'}`,
  `daemon before the load: RSS ${base!.rssMiB} MiB, ${base!.fds} fds, ${base!.threads} threads; RSS over the soak: min ${Math.min(...rss)}, max ${Math.max(...rss)}, last ${rss.at(-1)} MiB`,
  '',
  table(
    ['status', 'n', 'p50', 'p99', 'max'],
    latencyByStatus(records).map((s) => [`${s.status} ${s.code || 'ok'}`, s.n, `${s.p50Ms} ms`, `${s.p99Ms} ms`, `${s.maxMs} ms`]),
  ),
  '',
  table(
    ['t (s)', 'sent', 'ok', '429', '503', 'other', 'ok p50', 'ok p99', 'RSS MiB', 'fds', 'threads', 'VMMs', 'run dirs'],
    windows.map((w) => [w.t, w.sent, w.ok, w.r429, w.r503, w.other, `${Math.round(quantile(w.okLatency, 50))}`, `${Math.round(quantile(w.okLatency, 99))}`, w.proc.rssMiB, w.proc.fds, w.proc.threads, w.vmms, w.runDirs]),
  ),
  '',
].join('\n');
process.stdout.write(out);
if (a.out) writeFileSync(a.out, out);
process.exit(hung || unclear || left.length ? 1 : 0);
