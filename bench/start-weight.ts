// Starts beside busy VMs (issue 18, limits.startCpuWeight): how long cold starts take while CPU-bound runs keep
// the node's cores busy, with a starting VM's cgroup at a larger CPU weight than a running one's and without
// ('off': one weight throughout), side by side in one run: rounds of both variants, their order alternating, each
// a fresh in-process daemon.
//   flock /tmp/faascell-vm.lock npx tsx bench/start-weight.ts [--rounds 3] [--busy 2] [--starts 3] [--weight 400]
//       [--out bench/runs/2026-12-07-start-weight-s7]
// A round: --busy functions `burn-i` (cpu-burn.js, one vCPU, ~--burn-seconds of CPU each under TCG) are invoked
// once each; when all of them run, --starts functions `hello-j` never started before are invoked at once: their
// cold starts (snapshots off: a boot and the function's init) run beside the busy VMs. Figure per start: the
// request's latency at the client (a start plus a run of a few ms) and the daemon's stages from its record.
// Admission fairness is off here: the fair rule's CPU gate would hold the starts back until a run ends (the
// knob is measured, not the rule). Raw: <out>.md (tables) and <out>.json (every start).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { benchDaemon, fixture, machine, summarize, type BenchDaemon } from './common.js';
import { eachArg } from '../scripts/args.js';

interface Args {
  rounds: number;
  busy: number;
  starts: number;
  weight: number;
  burnIterations: number;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { rounds: 3, busy: 2, starts: 3, weight: 400, burnIterations: 1.2e8, out: 'bench/runs/2026-12-07-start-weight-s7' };
  eachArg(argv, (k, value) => {
    if (k === '--out') a.out = value();
    else if (k === '--rounds' || k === '--busy' || k === '--starts' || k === '--weight') {
      const n = Number(value());
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${k}: must be a positive integer`);
      a[k.slice(2) as 'rounds' | 'busy' | 'starts' | 'weight'] = n;
    } else if (k === '--burn-iterations') a.burnIterations = Number(value());
    else throw new Error(`unknown option ${k}`);
  });
  return a;
}

type Variant = 'off' | number;

interface StartFigure {
  round: number;
  variant: Variant;
  fn: string;
  /** client latency of the function's first request (its cold start and a short run), ms */
  ms: number;
  /** the record's stages (ms from arrival) */
  stages: Record<string, number>;
}

interface RoundLoad {
  round: number;
  variant: Variant;
  load1: number;
  /** host CPU taken by processes other than this one over the starts (cores), from /proc/stat and process.cpuUsage */
  busyRunning: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function busyCount(b: BenchDaemon): Promise<number> {
  const st = await b.client.call<{ pool: { instances: Array<{ fn: string; state: string }> } }>('GET', '/v1/status');
  return st.pool.instances.filter((i) => i.fn.startsWith('burn-') && i.state === 'busy').length;
}

async function round(a: Args, r: number, variant: Variant): Promise<{ starts: StartFigure[]; load: RoundLoad }> {
  const b = await benchDaemon({ limits: { startCpuWeight: variant }, admission: { fairness: 'off' }, snapshots: { enabled: false } });
  try {
    for (let i = 0; i < a.busy; i++) await b.client.deploy(`burn-${i}`, fixture('cpu-burn.js'), { codeKind: 'js', vcpus: 1, timeoutMs: 300_000 });
    for (let j = 0; j < a.starts; j++) await b.client.deploy(`hello-${j}`, fixture('hello.js'), { codeKind: 'js', vcpus: 1 });
    const burns = Array.from({ length: a.busy }, (_, i) => b.client.invoke(`burn-${i}`, { iterations: a.burnIterations }));
    // the busy VMs first: their own starts done, their runs under way
    for (let k = 0; k < 600 && (await busyCount(b)) < a.busy; k++) await sleep(100);
    await sleep(1000);
    const busyRunning = await busyCount(b);
    const t0 = performance.now();
    const starts = await Promise.all(
      Array.from({ length: a.starts }, async (_, j) => {
        const res = await b.client.invoke(`hello-${j}`, {});
        const ms = performance.now() - t0;
        if (res.status !== 200) throw new Error(`hello-${j}: HTTP ${res.status}`);
        const stages = (res.body.activation as { timings?: Record<string, number> } | undefined)?.timings ?? {};
        return { round: r, variant, fn: `hello-${j}`, ms, stages };
      }),
    );
    const stillBusy = await busyCount(b);
    if (stillBusy < a.busy) console.error(`round ${r} ${variant}: only ${stillBusy} of ${a.busy} burners still busy at the end of the starts`);
    await Promise.all(burns);
    return { starts, load: { round: r, variant, load1: os.loadavg()[0]!, busyRunning: Math.min(busyRunning, stillBusy) } };
  } finally {
    await b.close();
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const m = machine();
  const all: StartFigure[] = [];
  const loads: RoundLoad[] = [];
  const began = new Date().toISOString();
  for (let r = 1; r <= a.rounds; r++) {
    const order: Variant[] = r % 2 === 1 ? ['off', a.weight] : [a.weight, 'off'];
    for (const v of order) {
      const { starts, load } = await round(a, r, v);
      all.push(...starts);
      loads.push(load);
      console.error(`round ${r} ${v}: starts ${starts.map((s) => (s.ms / 1000).toFixed(2)).join(' ')} s, load ${load.load1.toFixed(2)}, busy VMs ${load.busyRunning}`);
    }
  }
  const fmt = (x: number): string => `${(x / 1000).toFixed(2)} s`;
  const rows = (['off', a.weight] as Variant[]).map((v) => {
    const s = summarize(all.filter((x) => x.variant === v).map((x) => x.ms));
    return { v, s };
  });
  const off = rows[0]!.s;
  const on = rows[1]!.s;
  const md = [
    `# Cold starts beside busy VMs, with and without limits.startCpuWeight (issue 18)`,
    '',
    `Began ${began}, ended ${new Date().toISOString()}. Command: \`flock /tmp/faascell-vm.lock npx tsx bench/start-weight.ts ${process.argv.slice(2).join(' ')}\`.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.qemu}, load average at the end ${m.loadavg}. **The machine is shared with other agents' work** (load per round below).`,
    `Per round and variant a fresh daemon (snapshots off, admission.fairness off): ${a.busy} CPU-bound runs (cpu-burn.js, ${a.burnIterations} iterations, one vCPU each) keep the cores busy, then ${a.starts} functions never started are invoked at once; figure: each one's first request latency (a cold boot, its init, a run of a few ms).`,
    '',
    '| variant | starts | median | p99 | min | max |',
    '|---|---|---|---|---|---|',
    ...rows.map(({ v, s }) => `| startCpuWeight ${v} | ${s.n} | ${fmt(s.median)} | ${fmt(s.p99)} | ${fmt(s.min)} | ${fmt(s.max)} |`),
    '',
    `Ratio (weight ${a.weight} / off): median ${(on.median / off.median).toFixed(2)}, p99 ${(on.p99 / off.p99).toFixed(2)}.`,
    '',
    '| round | variant | load (1 min) | burners busy through the starts | starts (s) |',
    '|---|---|---|---|---|',
    ...loads.map((l) => `| ${l.round} | ${l.variant} | ${l.load1.toFixed(2)} | ${l.busyRunning} | ${all.filter((x) => x.round === l.round && x.variant === l.variant).map((x) => (x.ms / 1000).toFixed(2)).join(' ')} |`),
    '',
  ].join('\n');
  writeFileSync(`${a.out}.md`, md);
  writeFileSync(`${a.out}.json`, JSON.stringify({ args: a, machine: m, began, starts: all, loads }, null, 1));
  console.log(md);
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
