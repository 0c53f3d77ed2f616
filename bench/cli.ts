// The `faascell` command's own cost (issue 20 item 1): wall time of `--version`, `--help`,
// a warm `invoke` and a daemon's start, for the compiled command (bin/faascell.js → dist/)
// against the former path (the TypeScript sources through tsx's loader), with Node's own
// start (`node -e 0`) as the floor. Variants alternate run by run, so a loaded machine slows
// all of them alike; medians and p99 over the runs, and the ratios to the floor.
//
// The warm invoke needs a VM: an in-process daemon with the hello fixture, invoked once
// (cold) before the measured calls. Run it under the VM lock on a shared machine.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchDaemon, fixture, machine, ms, ROOT, summarize, table, type Summary } from './common.js';

export interface CliBenchOptions {
  runs?: number;
  /** daemon starts per variant (each a fresh state directory; no VM) */
  starts?: number;
}

interface Variant {
  name: string;
  argv: (args: string[]) => string[];
}

const COMPILED: Variant = { name: 'compiled (bin/faascell.js)', argv: (a) => [path.join(ROOT, 'bin', 'faascell.js'), ...a] };
const TSX: Variant = { name: 'sources through tsx (before)', argv: (a) => ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'main.ts'), ...a] };
const FLOOR: Variant = { name: 'node -e 0 (floor)', argv: () => ['-e', '0'] };

export interface CliBenchRow {
  command: string;
  variant: string;
  wall: Summary;
  /** user + system CPU time of the command's process (what its wall time is on an idle machine, give or take I/O) */
  cpu?: Summary;
}

/**
 * CPU time (ms) of this process's waited-for children so far: /proc/self/stat's cutime + cstime,
 * in clock ticks (USER_HZ, 100 on Linux). The commands run one at a time, so the difference
 * across one run is that run's CPU time (10 ms resolution: medians over many runs).
 */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  // after "(comm) ": state is field 3, cutime field 16, cstime field 17
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

export interface CliBenchResult {
  machine: Record<string, string | number>;
  runs: number;
  rows: CliBenchRow[];
}

/** Wall time of one child process, until it exits (or, with `until`, until its stdout matches). */
function timeChild(argv: string[], env: NodeJS.ProcessEnv, until?: RegExp): Promise<{ ms: number; cpuMs?: number; stop?: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuMs();
    const t0 = performance.now();
    const p = spawn(process.execPath, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let done = false;
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (until && !done && until.test(out)) {
        done = true;
        resolve({ ms: performance.now() - t0, stop: async () => { p.kill('SIGTERM'); await exited; } });
      }
    });
    p.once('exit', (code) => {
      if (done) return;
      done = true;
      if (code !== 0 || until) reject(new Error(`${argv.join(' ')}: exit ${code}\n${err.slice(-2000)}`));
      else {
        const ms = performance.now() - t0;
        // the exit event comes after libuv reaped the child: its CPU time is in cutime/cstime now
        resolve({ ms, cpuMs: childrenCpuMs() - cpu0 });
      }
    });
  });
}

export async function benchCli(opts: CliBenchOptions = {}): Promise<CliBenchResult> {
  const runs = Math.max(3, Math.min(opts.runs ?? 20, 200));
  const starts = Math.max(2, Math.min(opts.starts ?? 5, 20));
  const rows: CliBenchRow[] = [];
  const env = { ...process.env };
  const measure = async (command: string, args: string[], variants: Variant[], e: NodeJS.ProcessEnv = env): Promise<void> => {
    const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const cpus = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    for (const v of variants) await timeChild(v.argv(args), e); // load the page cache and the build once
    for (let i = 0; i < runs; i++) {
      for (const v of variants) {
        const r = await timeChild(v.argv(args), e);
        times.get(v.name)!.push(r.ms);
        if (r.cpuMs !== undefined) cpus.get(v.name)!.push(r.cpuMs);
      }
    }
    for (const v of variants) rows.push({ command, variant: v.name, wall: summarize(times.get(v.name)!), cpu: summarize(cpus.get(v.name)!) });
  };
  await measure('--version', ['--version'], [FLOOR, COMPILED, TSX]);
  await measure('--help', ['--help'], [COMPILED, TSX]);

  const b = await benchDaemon();
  try {
    await b.client.deploy('hello', fixture('hello.js'), { codeKind: 'js' });
    const first = await b.client.invoke('hello', { name: 'bench' });
    if (first.status !== 200) throw new Error(`hello: HTTP ${first.status}`);
    const withUrl = { ...env, FAASCELL_URL: b.d.url };
    await measure('invoke hello (warm)', ['invoke', 'hello', '{"name":"bench"}'], [COMPILED, TSX], withUrl);
    // the same call from inside this process: what the daemon and the VM take, without any command
    const inProcess: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await b.client.invoke('hello', { name: 'bench' });
      inProcess.push(performance.now() - t0);
    }
    rows.push({ command: 'invoke hello (warm)', variant: 'HTTP call from this process (no command)', wall: summarize(inProcess) });
  } finally {
    await b.close();
  }

  // a daemon's start until it prints "listening" (its own state directory each time, no VM)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-bench-cli-'));
  try {
    const times = new Map<string, number[]>([COMPILED, TSX].map((v) => [v.name, []]));
    for (let i = 0; i < starts; i++) {
      for (const v of [COMPILED, TSX]) {
        const cfg = path.join(dir, `c${i}-${v === COMPILED ? 'a' : 'b'}.json`);
        const stateDir = path.join(dir, `s${i}-${v === COMPILED ? 'a' : 'b'}`);
        writeFileSync(cfg, JSON.stringify({ stateDir, api: { port: 0 }, log: { level: 'warn' }, snapshots: { enabled: false }, telemetry: { consoleLogs: { keep: 0 } } }));
        const r = await timeChild(v.argv(['serve', '--config', cfg]), env, /listening on/);
        times.get(v.name)!.push(r.ms);
        await r.stop?.();
      }
    }
    for (const v of [COMPILED, TSX]) rows.push({ command: 'serve until listening', variant: v.name, wall: summarize(times.get(v.name)!) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { machine: machine(), runs, rows };
}

export function formatCli(r: CliBenchResult): string {
  const m = r.machine;
  const floor = r.rows.find((x) => x.command === '--version' && x.variant.startsWith('node -e'))?.wall.median;
  const body = table(
    ['command', 'variant', 'wall median', 'wall p99', 'wall min', 'vs node -e 0', 'CPU median', 'CPU p99'],
    r.rows.map((x) => [x.command, x.variant, ms(x.wall.median), ms(x.wall.p99), ms(x.wall.min), floor ? `${(x.wall.median / floor).toFixed(2)}×` : '-', x.cpu ? ms(x.cpu.median) : '-', x.cpu ? ms(x.cpu.p99) : '-']),
  );
  const ratio = (cmd: string): string => {
    const a = r.rows.find((x) => x.command === cmd && x.variant === COMPILED.name)?.wall.median;
    const b = r.rows.find((x) => x.command === cmd && x.variant === TSX.name)?.wall.median;
    return a && b ? `${cmd}: compiled ${(a / b).toFixed(2)}× the tsx path` : '';
  };
  return [
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, load average at the end ${m.loadavg} (a shared machine: other work ran beside)`,
    `${r.runs} runs per variant, variants alternating; wall time of the whole process (spawn to exit; serve: spawn to "listening"),`,
    'and its CPU time (user + system, from the reaped child; 10 ms ticks): on an idle machine a start-up like this one is CPU-bound, so its CPU time is about its wall time there',
    '',
    body,
    '',
    ['--version', '--help', 'invoke hello (warm)', 'serve until listening'].map(ratio).filter(Boolean).join('; '),
  ].join('\n');
}
