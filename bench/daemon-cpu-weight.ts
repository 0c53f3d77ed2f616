// The daemon's CPU weight over its VMs (issue 18, limits.daemonCpuWeight): event-loop delay and /healthz latency of
// a daemon under CPU-bound overload, with the daemon in its own cpu cgroup at a larger weight and without
// ('off': the daemon stays where it was started), side by side in one run: rounds of both variants, their order
// alternating, each a fresh daemon process (the weight applies to its own process, so it cannot run in this one).
//   flock /tmp/faascell-vm.lock npx tsx bench/daemon-cpu-weight.ts [--rounds 3] [--seconds 30] [--rate 8] [--weight 1000]
//       [--out bench/runs/2026-12-07-daemon-cpu-weight-s5.md]
// Overload: `cpu-burn` (3·10⁶ square roots, ~0.7 s of CPU under TCG) offered open-loop at --rate per second for
// --seconds (a bounded number of requests, each with a client timeout), maxInstances 6 on 2 cores: several times
// what the node computes. Meanwhile GET /healthz every 200 ms from this process, and the daemon's own event-loop delay
// (prom-client's monitorEventLoopDelay, read from /metrics: reset at the first scrape, read at the second).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fixture, machine, spawnDaemon, type DaemonProcess } from './common.js';
import { probeHealth } from './load-lib.js';

interface Args {
  rounds: number;
  seconds: number;
  rate: number;
  weight: number;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { rounds: 3, seconds: 30, rate: 8, weight: 1000, out: 'bench/runs/2026-12-07-daemon-cpu-weight-s5.md' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${k}: needs a value`);
    if (k === '--out') a.out = v;
    else if (k === '--rounds' || k === '--seconds' || k === '--rate' || k === '--weight') {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${k}: must be a positive number`);
      a[k.slice(2) as 'rounds' | 'seconds' | 'rate' | 'weight'] = n;
    } else throw new Error(`unknown option ${k}`);
  }
  return a;
}

type Variant = 'off' | number;

interface Phase {
  round: number;
  variant: Variant;
  healthz: number[];
  healthzFailed: number;
  eld: { p50: number; p99: number; max: number };
  sent: number;
  ok: number;
  refused: number;
  other: number;
  unanswered: number;
  load: number;
  daemonCgroup: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
};
const median = (xs: number[]): number => q(xs, 50);

async function scrapeLag(url: string): Promise<{ p50: number; p99: number; max: number }> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const get = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return { p50: get('nodejs_eventloop_lag_p50_seconds'), p99: get('nodejs_eventloop_lag_p99_seconds'), max: get('nodejs_eventloop_lag_max_seconds') };
}

/** The daemon of the phase under way: stopped if this benchmark is stopped (no daemon or VM outlives it). */
let current: DaemonProcess | undefined;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
  });
}

async function phase(a: Args, round: number, variant: Variant): Promise<Phase> {
  const d: DaemonProcess = (current = await spawnDaemon(`cpuw-${variant}`, {
    node: { memoryBudgetMiB: 2048 },
    admission: { maxQueueDelayMs: 10_000 },
    limits: { daemonCpuWeight: variant },
  }));
  try {
    await d.client.deploy('burn', fixture('cpu-burn.js'), { codeKind: 'js', maxInstances: 6, memoryMiB: 128, timeoutMs: 60_000 });
    const st = await d.client.call<{ limits?: { daemonCgroup?: { path: string } | null } }>('GET', '/v1/status');
    const probe = probeHealth(d.url, 200);
    await scrapeLag(d.url); // resets the daemon's event-loop histogram: what follows is the overload's
    const n = Math.round(a.rate * a.seconds);
    const answers: Array<Promise<number>> = [];
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      const due = t0 + (i * 1000) / a.rate;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      answers.push(
        fetch(`${d.url}/v1/functions/burn/invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(120_000) })
          .then(async (r) => {
            await r.text();
            return r.status;
          })
          .catch(() => 0),
      );
    }
    const eld = await scrapeLag(d.url); // the overload window's delay (before the tail drains)
    const statuses = await Promise.all(answers);
    const probes = await probe.stop();
    const healthz = probes.filter((h) => h.status === 200).map((h) => h.ms);
    const healthzFailed = probes.length - healthz.length;
    return {
      round,
      variant,
      healthz,
      healthzFailed,
      eld,
      sent: n,
      ok: statuses.filter((s) => s === 200).length,
      refused: statuses.filter((s) => s === 429 || s === 503).length,
      other: statuses.filter((s) => s !== 0 && s !== 200 && s !== 429 && s !== 503).length,
      unanswered: statuses.filter((s) => s === 0).length,
      load: os.loadavg()[0]!,
      daemonCgroup: st.limits?.daemonCgroup?.path ?? '(none: the daemon stays in its cgroup)',
    };
  } finally {
    current = undefined;
    await d.stop();
  }
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '–');

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const started = new Date().toISOString();
  const load0 = os.loadavg();
  const phases: Phase[] = [];
  for (let r = 1; r <= a.rounds; r++) {
    // alternate the order: a load drift during the run hits both variants alike
    const order: Variant[] = r % 2 === 1 ? ['off', a.weight] : [a.weight, 'off'];
    for (const v of order) {
      const p = await phase(a, r, v);
      phases.push(p);
      report(a, phases, started, load0);
      process.stderr.write(`round ${r} ${v}: healthz p50 ${f1(q(p.healthz, 50))} p99 ${f1(q(p.healthz, 99))} ms, event loop p99 ${f1(p.eld.p99)} max ${f1(p.eld.max)} ms, ok ${p.ok}/${p.sent}, load ${p.load.toFixed(2)}\n`);
    }
  }
  process.stdout.write(report(a, phases, started, load0));
}

function report(a: Args, phases: Phase[], started: string, load0: number[]): string {
  const rows = phases.map(
    (p) =>
      `| ${p.round} | ${p.variant === 'off' ? 'off' : `${p.variant}`} | ${f1(q(p.healthz, 50))} / ${f1(q(p.healthz, 99))} / ${f1(Math.max(...p.healthz))} (${p.healthzFailed}) | ${f1(p.eld.p50)} / ${f1(p.eld.p99)} / ${f1(p.eld.max)} | ${p.sent} | ${p.ok} | ${p.refused} | ${p.other} | ${p.unanswered} | ${p.load.toFixed(2)} |`,
  );
  const agg = (v: Variant): { hz50: number; hz99: number; eld99: number; eldMax: number } => {
    const ps = phases.filter((p) => p.variant === v);
    return { hz50: median(ps.map((p) => q(p.healthz, 50))), hz99: median(ps.map((p) => q(p.healthz, 99))), eld99: median(ps.map((p) => p.eld.p99)), eldMax: median(ps.map((p) => p.eld.max)) };
  };
  const off = agg('off');
  const on = agg(a.weight);
  const m = machine();
  const md = [
    `# The daemon's CPU weight over its VMs (issue 18), ${started}`,
    '',
    `Command: \`flock /tmp/faascell-vm.lock npx tsx bench/daemon-cpu-weight.ts --rounds ${a.rounds} --seconds ${a.seconds} --rate ${a.rate} --weight ${a.weight}\``,
    '',
    `Machine: ${JSON.stringify(m)}; load average at the start ${load0.map((x) => x.toFixed(2)).join(' / ')}. **Shared and loaded**: other agents' daemons, VMs and builds ran beside this benchmark (the load column is the 1-min load average at the end of each phase).`,
    '',
    `Each phase: a fresh daemon process (limits.daemonCpuWeight as in the column; 'off': the daemon stays in its cgroup), \`cpu-burn\` (maxInstances 6, 128 MiB) offered open-loop at ${a.rate}/s for ${a.seconds} s (${Math.round(a.rate * a.seconds)} requests, admission.maxQueueDelayMs 10 s), GET /healthz every 200 ms from the benchmark process, the daemon's event-loop delay from its /metrics (prom-client's monitorEventLoopDelay over the offered window).`,
    '',
    '| round | daemonCpuWeight | /healthz p50 / p99 / max ms (failed) | event-loop delay p50 / p99 / max ms | sent | 200 | refused (429/503) | other errors | unanswered | load |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Medians of the rounds: /healthz p50 ${f1(off.hz50)} → ${f1(on.hz50)} ms, p99 ${f1(off.hz99)} → ${f1(on.hz99)} ms (ratio ${f1(off.hz99 / on.hz99)}×); event-loop delay p99 ${f1(off.eld99)} → ${f1(on.eld99)} ms (ratio ${f1(off.eld99 / on.eld99)}×), max ${f1(off.eldMax)} → ${f1(on.eldMax)} ms (off → ${a.weight}).`,
    '',
    `The daemon's cgroup with the weight: ${phases.find((p) => p.variant !== 'off')?.daemonCgroup ?? '?'}`,
    '',
  ].join('\n');
  // rewritten after every phase: a benchmark stopped midway leaves the phases it finished
  writeFileSync(a.out, md);
  return md;
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
