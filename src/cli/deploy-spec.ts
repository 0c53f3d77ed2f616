// `faascell deploy-spec SPEC`: deploys everything a FaaSRail spec needs, one
// function per row (named as the trace reader names it, so `faascell replay
// --format faasrail --trace SPEC` finds them), running the FunctionBench-style
// function of the row's benchmark with that benchmark's default memory and timeout.
import { readFileSync } from 'node:fs';
import { benchmarkIn, BENCHMARKS, type BenchLanguage } from '../functionbench/catalog.js';
import type { FunctionRuntime } from '../runtimes/function-runtime.js';
import { loadTrace, type TraceFormat } from '../traces/index.js';
import type { Trace } from '../traces/types.js';
import { Client } from './client.js';

export interface DeployPlanOptions {
  /** Memory for every function (MiB), over the benchmark defaults. */
  memoryMiB?: number;
  /** Memory per benchmark (MiB), over both. */
  memoryFor?: Record<string, number>;
  /** Timeout for every function (ms), over the benchmark defaults. */
  timeoutMs?: number;
  vcpus?: number;
  maxInstances?: number;
  /** issue 21: the FunctionBench-style functions in JavaScript (default) or Python */
  language?: BenchLanguage;
}

export interface PlannedFunction {
  name: string;
  benchmark: string;
  /** the spec's workload name */
  workload: string;
  /** nodejs20 or python3 */
  runtime: FunctionRuntime;
  /** below functions/functionbench/ */
  file: string;
  entry: string;
  memoryMiB: number;
  timeoutMs: number;
  vcpus?: number;
  maxInstances?: number;
}

export class DeploySpecError extends Error {
  override name = 'DeploySpecError';
}

/** Parse "bench=MiB,bench=MiB"; names must be benchmarks. */
export function parseMemoryFor(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [k, v] = part.split('=');
    const n = Number(v);
    if (!k || !BENCHMARKS.has(k)) throw new DeploySpecError(`--memory-for: unknown benchmark '${k}' (${[...BENCHMARKS.keys()].join(', ')})`);
    if (!Number.isInteger(n) || n <= 0) throw new DeploySpecError(`--memory-for: ${k}: not a number of MiB: '${v}'`);
    out[k] = n;
  }
  return out;
}

/** One function per trace function of a FaaSRail spec: what to deploy (pure; no I/O). */
export function planDeployment(trace: Trace, o: DeployPlanOptions = {}): PlannedFunction[] {
  if (trace.format !== 'faasrail') throw new DeploySpecError(`${trace.source}: deploy-spec needs a FaaSRail spec (header avg,mapped_wreq,…); this is a ${trace.format} trace`);
  return trace.functions.map((f) => {
    const b = f.benchmark ? BENCHMARKS.get(f.benchmark) : undefined;
    if (!b) {
      throw new DeploySpecError(`${trace.source}: row ${f.index + 1}: workload '${f.workload ?? f.name}' is none of the FunctionBench benchmarks FaaSCell ships (${[...BENCHMARKS.keys()].join(', ')})`);
    }
    const lang = benchmarkIn(b, o.language ?? 'javascript');
    return {
      name: f.name,
      benchmark: b.name,
      workload: f.workload ?? f.name,
      runtime: o.language === 'python' ? 'python3' : 'nodejs20',
      file: lang.file,
      entry: lang.entry,
      memoryMiB: o.memoryFor?.[b.name] ?? o.memoryMiB ?? lang.memoryMiB,
      timeoutMs: o.timeoutMs ?? lang.timeoutMs,
      ...(o.vcpus !== undefined ? { vcpus: o.vcpus } : {}),
      ...(o.maxInstances !== undefined ? { maxInstances: o.maxInstances } : {}),
    };
  });
}

export interface DeploySpecCommandOptions {
  spec: string;
  format?: TraceFormat;
  url?: string;
  token?: string;
  memory?: string | number;
  memoryFor?: string;
  /** seconds */
  timeout?: string | number;
  vcpus?: string | number;
  maxInstances?: string | number;
  /** javascript | nodejs20 | python | python3 */
  runtime?: string;
  dryRun?: boolean;
  json?: boolean;
  write?: (s: string) => void;
}

const int = (v: string | number | undefined, what: string): number | undefined => {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new DeploySpecError(`--${what}: not a positive number: ${v}`);
  return n;
};

/** --runtime: the language of the functions (nodejs20 and python3, the runtimes' names, are accepted too). */
export function languageOf(runtime: string | undefined): BenchLanguage {
  if (runtime === undefined || runtime === 'javascript' || runtime === 'nodejs20') return 'javascript';
  if (runtime === 'python' || runtime === 'python3') return 'python';
  throw new DeploySpecError(`--runtime: javascript (nodejs20) or python (python3), got '${runtime}'`);
}

export async function runDeploySpec(o: DeploySpecCommandOptions): Promise<PlannedFunction[]> {
  const write = o.write ?? ((s: string) => void process.stdout.write(s));
  const trace = await loadTrace(o.spec, o.format ?? 'faasrail');
  const timeoutS = int(o.timeout, 'timeout');
  const language = languageOf(o.runtime);
  const plan = planDeployment(trace, {
    language,
    memoryMiB: int(o.memory, 'memory'),
    memoryFor: o.memoryFor ? parseMemoryFor(o.memoryFor) : undefined,
    timeoutMs: timeoutS === undefined ? undefined : Math.round(timeoutS * 1000),
    vcpus: int(o.vcpus, 'vcpus'),
    maxInstances: int(o.maxInstances, 'max-instances'),
  });
  if (!o.dryRun) {
    const client = new Client({ url: o.url, token: o.token });
    const code = new Map<string, Buffer>();
    for (const p of plan) {
      let c = code.get(p.file);
      if (!c) code.set(p.file, (c = readFileSync(benchmarkIn(BENCHMARKS.get(p.benchmark)!, language).path)));
      await client.deploy(p.name, c, { codeKind: p.runtime === 'python3' ? 'py' : 'js', runtime: p.runtime, entry: p.entry, memoryMiB: p.memoryMiB, timeoutMs: p.timeoutMs, vcpus: p.vcpus, maxInstances: p.maxInstances });
    }
  }
  if (o.json) write(JSON.stringify(plan) + '\n');
  else {
    const per = new Map<string, number>();
    for (const p of plan) per.set(p.benchmark, (per.get(p.benchmark) ?? 0) + 1);
    write(`${o.dryRun ? 'would deploy' : 'deployed'} ${plan.length} ${language === 'python' ? 'Python' : 'JavaScript'} functions from ${o.spec}: ${[...per].map(([b, n]) => `${b} ${n}`).join(', ')}\n`);
    if (o.dryRun) for (const p of plan) write(`  ${p.name}\t${p.benchmark}\t${p.entry}\t${p.memoryMiB} MiB\t${p.timeoutMs / 1000} s\n`);
  }
  return plan;
}
