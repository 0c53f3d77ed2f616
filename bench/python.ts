// issue 21: the snapshot thesis where it matters. Cold start, restore and warm
// call of Python functions with heavy imports (numpy only, scikit-learn, PyTorch)
// next to hello in Node.js and in Python, through the daemon, side by side in one
// run (every round goes through every function before the next round), medians
// and p99. A cold start pays the VM boot, the interpreter start and the imports;
// a restore resumes a VM whose imports are done. Also: the idle VMM's memory
// (PSS) of each function after a cold start and after a restore, and the images.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ActivationRecord } from '../src/perf/activation.js';
import { readImageManifest } from '../src/image/builder.js';
import { benchDaemon, evictAndWait, FIXTURES, ROOT, machine, ms, summarize, table, timedInvoke, vmmMemory, type BenchDaemon, type Summary } from './common.js';

export interface PythonBenchOptions {
  coldRuns?: number;
  restoreRuns?: number;
  warmRuns?: number;
  /** only these functions (names of FUNCTIONS) */
  only?: string[];
}

interface BenchFunction {
  name: string;
  runtime: 'nodejs20' | 'python3';
  file: string;
  memoryMiB: number;
  /** bounds init (the imports) too */
  timeoutMs: number;
  what: string;
}

/** The functions compared: hello in both languages, then the heavy imports. */
export const FUNCTIONS: BenchFunction[] = [
  { name: 'hello-node', runtime: 'nodejs20', file: path.join(FIXTURES, 'hello.js'), memoryMiB: 256, timeoutMs: 60_000, what: 'hello, Node.js' },
  { name: 'hello-py', runtime: 'python3', file: path.join(FIXTURES, 'python', 'hello.py'), memoryMiB: 256, timeoutMs: 120_000, what: 'hello, Python' },
  { name: 'numpy', runtime: 'python3', file: path.join(FIXTURES, 'python', 'numpy_import.py'), memoryMiB: 512, timeoutMs: 600_000, what: 'import numpy' },
  { name: 'sklearn', runtime: 'python3', file: path.join(FIXTURES, 'python', 'sklearn_import.py'), memoryMiB: 512, timeoutMs: 600_000, what: 'import sklearn (numpy, scipy)' },
  { name: 'torch', runtime: 'python3', file: path.join(FIXTURES, 'python', 'torch_import.py'), memoryMiB: 768, timeoutMs: 900_000, what: 'import torch' },
];

interface Row {
  fn: BenchFunction;
  /** client-side latency of the invocation (request sent → response read) */
  cold: Summary;
  restore: Summary;
  warm: Summary;
  /** the cold start's parts (medians): guest boot to agent ready, the function's init (its imports) */
  bootMs: number;
  initMs: number;
  /** the import time the function measured itself (median over the cold starts) */
  importMs: number;
  /** the idle VMM's PSS after a cold start (a source that ran on after its snapshot) and after a restore, MiB */
  pssColdMiB: number;
  pssRestoredMiB: number;
}

export interface PythonBenchResult {
  machine: Record<string, string | number>;
  accelerator: string;
  loaded: string;
  rows: Row[];
  images: Array<{ runtime: string; version: string; rootfsMiB: number; initrdMiB: number; buildMs?: number; rootfsBuildMs?: number; packages?: number }>;
}

const num = (x: unknown): number => (typeof x === 'number' ? x : NaN);
const median = (xs: number[]): number => summarize(xs.filter(Number.isFinite)).median;

async function invoke(b: BenchDaemon, fn: string): Promise<{ ms: number; rec: ActivationRecord; result: Record<string, unknown> }> {
  const r = await timedInvoke(b.client, fn, { n: 10 });
  return { ms: r.ms, rec: r.body.activation as unknown as ActivationRecord, result: r.body.result as Record<string, unknown> };
}

function pssMiB(vmId: string | undefined): number {
  if (!vmId) return NaN;
  // the VMM's -name argument, whole (cmdline arguments end with a NUL: vm-…-1 is not vm-…-12)
  const m = vmmMemory(`faascell-${vmId}\0`)[0];
  return m ? m.pssKiB / 1024 : NaN;
}

export async function benchPython(o: PythonBenchOptions = {}): Promise<PythonBenchResult> {
  const fns = FUNCTIONS.filter((f) => !o.only || o.only.includes(f.name));
  const b = await benchDaemon({
    node: { memoryBudgetMiB: 16_384 },
    admission: { maxConcurrentStarts: 1, preferWarm: false },
    // instances stay until evicted: restores and warm calls are the benchmark's choice
    policies: { keepAlive: { policy: 'fixed', ttlSeconds: 3600 } },
    image: { python: 'build' },
  });
  try {
    const status = await b.client.call<{ accelerator: string; images?: { python3?: unknown } }>('GET', '/v1/status');
    if (!status.images?.python3) throw new Error('the daemon has no Python image (faascell image build --runtime python3)');
    const code = new Map(fns.map((f) => [f.name, readFileSync(f.file)]));
    const cold = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    const boot = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    const init = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    const imports = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    const pssCold = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    // cold: every round is a new version of every function (env), so each boots and leaves a fresh snapshot
    for (let round = 0; round < (o.coldRuns ?? 5); round++) {
      for (const f of fns) {
        await b.client.deploy(f.name, code.get(f.name)!, { runtime: f.runtime, memoryMiB: f.memoryMiB, timeoutMs: f.timeoutMs, env: { ROUND: String(round) } });
        const r = await invoke(b, f.name);
        if (r.rec.startPath !== 'cold') throw new Error(`${f.name}: expected a cold start, got ${r.rec.startPath}`);
        cold.get(f.name)!.push(r.ms);
        const t = r.rec.timestamps;
        boot.get(f.name)!.push(num(t.agentReady) - num(t.vmmSpawned));
        init.get(f.name)!.push(num(t.initDone) - num(t.agentReady));
        imports.get(f.name)!.push(num(r.result.import_ms));
        // the idle VM after its first call (it ran on from its snapshot)
        await new Promise((res) => setTimeout(res, 1000));
        pssCold.get(f.name)!.push(pssMiB(r.rec.vmId));
      }
    }
    const restore = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    const pssRestored = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    for (let round = 0; round < (o.restoreRuns ?? 10); round++) {
      for (const f of fns) {
        await evictAndWait(b.client, f.name);
        const r = await invoke(b, f.name);
        if (r.rec.startPath !== 'restore') throw new Error(`${f.name}: expected a restore, got ${r.rec.startPath}`);
        restore.get(f.name)!.push(r.ms);
        if (round < 3) {
          await new Promise((res) => setTimeout(res, 1000));
          pssRestored.get(f.name)!.push(pssMiB(r.rec.vmId));
        }
      }
    }
    const warm = new Map<string, number[]>(fns.map((f) => [f.name, []]));
    for (let i = 0; i < (o.warmRuns ?? 20); i++) {
      for (const f of fns) {
        const r = await invoke(b, f.name);
        if (r.rec.startPath !== 'warm') throw new Error(`${f.name}: expected a warm call, got ${r.rec.startPath}`);
        warm.get(f.name)!.push(r.ms);
      }
    }
    const rows: Row[] = fns.map((f) => ({
      fn: { ...f, file: path.relative(ROOT, f.file) }, // the raw output names no path of this machine
      cold: summarize(cold.get(f.name)!),
      restore: summarize(restore.get(f.name)!),
      warm: summarize(warm.get(f.name)!),
      bootMs: median(boot.get(f.name)!),
      initMs: median(init.get(f.name)!),
      importMs: median(imports.get(f.name)!),
      pssColdMiB: median(pssCold.get(f.name)!),
      pssRestoredMiB: median(pssRestored.get(f.name)!),
    }));
    const images: PythonBenchResult['images'] = [];
    for (const [runtime, img] of [['nodejs20', b.d.image], ['python3', b.d.images.python3]] as const) {
      if (!img) continue;
      const m = readImageManifest(img.dir) as ReturnType<typeof readImageManifest> & { python?: { closure: number; rootfsBuildMs?: number } };
      images.push({ runtime, version: img.version, rootfsMiB: img.sizes.rootfsBytes / 1048576, initrdMiB: img.sizes.initrdBytes / 1048576, buildMs: m.build.buildMs, ...(m.python ? { packages: m.python.closure, rootfsBuildMs: m.python.rootfsBuildMs } : {}) });
    }
    return { machine: machine(), accelerator: status.accelerator, loaded: 'shared 2-core machine: other agents\' VMs, builds and tests ran during the measurement (run under the VM lock)', rows, images };
  } finally {
    await b.close();
  }
}

export function formatPython(r: PythonBenchResult): string {
  const ratio = (row: Row): string => (row.cold.median > 0 ? `1/${(row.cold.median / row.restore.median).toFixed(0)}` : '-');
  return [
    `### Python functions: cold, restore, warm through the daemon (\`faascell bench python\`), ${r.accelerator}`,
    '',
    table(
      ['function', 'runtime', 'memory', 'cold (median / p99)', 'restore (median / p99)', 'warm (median / p99)', 'restore ÷ cold', 'cold: boot to agent ready', 'cold: init (imports)'],
      r.rows.map((row) => [row.fn.what, row.fn.runtime, `${row.fn.memoryMiB} MiB`, `${ms(row.cold.median)} / ${ms(row.cold.p99)}`, `${ms(row.restore.median)} / ${ms(row.restore.p99)}`, `${ms(row.warm.median)} / ${ms(row.warm.p99)}`, ratio(row), ms(row.bootMs), ms(row.initMs)]),
    ),
    '',
    `Latencies are the client's (request sent → response read), through the daemon's HTTP API; runs: cold ${r.rows[0]?.cold.n ?? 0}, restore ${r.rows[0]?.restore.n ?? 0}, warm ${r.rows[0]?.warm.n ?? 0} per function, interleaved.`,
    '',
    table(
      ['function', 'import measured in the guest (median)', 'idle VMM PSS after a cold start', 'idle VMM PSS after a restore'],
      r.rows.map((row) => [row.fn.what, Number.isFinite(row.importMs) ? ms(row.importMs) : '-', `${row.pssColdMiB.toFixed(1)} MiB`, `${row.pssRestoredMiB.toFixed(1)} MiB`]),
    ),
    '',
    table(
      ['image', 'version', 'root fs', 'initramfs', 'Debian packages', 'build (root fs / image)'],
      r.images.map((i) => [i.runtime, i.version, `${i.rootfsMiB.toFixed(0)} MiB`, `${i.initrdMiB.toFixed(1)} MiB`, i.packages ?? '-', `${i.rootfsBuildMs !== undefined ? ms(i.rootfsBuildMs) : '(cached)'} / ${i.buildMs !== undefined ? ms(i.buildMs) : '-'}`]),
    ),
    '',
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, load average ${r.machine.loadavg} at the end; ${r.loaded}.`,
  ].join('\n');
}
