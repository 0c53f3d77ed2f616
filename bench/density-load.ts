// faascell bench density-load (issue 24 item 5): a multi-function load whose working set exceeds the nominal
// memory budget, run on two daemons one after the other with the same budget and settings except
// `node.memory.accounting` (nominal, then measured), and simulated for both (the simulator with the same
// trace, the daemons' configuration and the built-in profile).
//
// The load (density-load-plan.ts): --functions small FunctionBench-style functions (helloworld 128 MiB and a
// light pyaes 256 MiB, alternating), --requests over --seconds with a skewed popularity, written as a FaaSRail
// spec and deployed with deploy-spec. The budget (--budget-mib, default a third of the functions' sizes added
// up) lets nominal accounting keep about a third of them; measured accounting charges what VMs use and keeps more.
//
// Steps, each its own command so that each hold of the machine's VM lock stays short (--step):
//   prep      deploy the functions and invoke each once (a cold boot leaving its snapshot on the disk tier),
//             evicting it at once; resumable (--prep-seconds bounds one run; run it again to go on); timed,
//             outside the load window. Then the daemon's database is kept, so both phases start alike:
//             every snapshot made, no VM, nothing learned by a phase before.
//   nominal, measured   one daemon with that accounting on the prepared state: the load replayed (exact
//             arrivals), the daemon's status sampled (charged, measured, nominal memory, guard level)
//   report    both simulations, the table, raw files to --out; then the work directory is removed
//   all       the four in a row (a machine of one's own)
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../src/cli/client.js';
import { runDeploySpec } from '../src/cli/deploy-spec.js';
import { parseConfig } from '../src/config/schema.js';
import { createLogger } from '../src/core/logger.js';
import { startDaemon } from '../src/daemon.js';
import { replay, type ReplayRecord, type ReplaySummary } from '../src/replay/replay.js';
import { nodeSimulationOptions, simulatedNode } from '../src/sim/cli.js';
import { DEFAULT_PROFILE, type Profile } from '../src/sim/profile.js';
import { simulate } from '../src/sim/simulator.js';
import { loadTrace } from '../src/traces/index.js';
import type { PoolStatus } from '../src/vmpool/pool.js';
import { removeTierDir } from '../src/snapshots/tier-gc.js';
import { machine } from './common.js';
import { figuresOf, outsideSpread, spreadCell, summarizeRepetitions, type FiguresSpread, type PhaseFigures } from './density-load-summary.js';
import { exactTrace, faasrailSpecText, MEMORY_FOR, outcomeOfRecords, planDensityLoad, SimOutcome, type DensityLoadOptions, type LoadOutcome, type LoadRow } from './density-load-plan.js';
import type { MemoryAccounting as Accounting } from '../src/vmpool/core/model.js';

export type DensityLoadStep = 'prep' | 'nominal' | 'measured' | 'report' | 'all';
export type { MemoryAccounting as Accounting } from '../src/vmpool/core/model.js';

export interface DensityLoadArgs extends DensityLoadOptions {
  step: DensityLoadStep;
  work: string;
  /** nominal / measured: which repetition the phase records (1, 2, …) */
  rep?: number;
  /** all: how many repetitions of the two phases */
  repetitions?: number;
  budgetMiB?: number;
  prepSeconds: number;
  out: string;
  log?: (s: string) => void;
}

interface Plan {
  opts: DensityLoadOptions;
  budgetMiB: number;
  rows: LoadRow[];
}

export interface PrepResult {
  deploySeconds: number;
  /** one cold boot leaving its snapshot, per function (s): wall time of its first invocation */
  snapshotSeconds: number[];
  wallSeconds: number;
  done: string[];
  snapshotBytes: number;
  loadavg: string[];
}

export interface PhaseResult {
  accounting: Accounting;
  /** the repetition (1 when the run predates repetitions) */
  rep?: number;
  outcome: LoadOutcome;
  replay: ReplaySummary;
  /** peaks over the status samples (every 2 s) */
  peakChargedMiB: number;
  peakMeasuredMiB: number;
  peakNominalMiB: number;
  peakInstances: number;
  maxGuardLevel: number;
  minMemAvailableMiB: number;
  memAvailableStartMiB: number;
  counters: PoolStatus['counters'];
  snapshotsAtStart: number;
  loadavgStart: string;
  loadavgEnd: string;
  startedAt: string;
  seconds: number;
}

export interface SimPhase {
  accounting: Accounting;
  outcome: LoadOutcome;
  peakChargedMiB: number;
  coldBoots: number;
  restoresStarted: number;
  /** during the load (the preparation's taken off) */
  evictions: number;
}

const TTL_SECONDS = 600;
const PREP_SPACING_MS = 5000;
const DB_FILES = ['faascell.db', 'faascell.db-wal', 'faascell.db-shm'];

/** Both daemons' configuration: the same but the accounting. */
export function phaseConfig(work: string, budgetMiB: number, accounting: Accounting): Record<string, unknown> {
  return {
    stateDir: path.join(work, 'state'),
    api: { port: 0 },
    log: { level: 'error' },
    node: { memoryBudgetMiB: budgetMiB, memory: { accounting } },
    // snapshots on disk: 200 snapshots would not fit a tmpfs on a shared 24 GiB host
    snapshots: { tiers: [{ name: 'disk', path: path.join(work, 'tier-disk'), latencyRank: 0, capacityMiB: 65536 }] },
    policies: { placement: { policy: 'fixed', tier: 'disk' }, keepAlive: { policy: 'fixed', ttlSeconds: TTL_SECONDS } },
  };
}

function memAvailableMiB(): number {
  return Math.round(Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024);
}

const loadavg = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');

async function withDaemon<T>(cfg: Record<string, unknown>, fn: (url: string, client: Client) => Promise<T>): Promise<T> {
  const config = parseConfig(cfg);
  const d = await startDaemon({ config, log: createLogger({ level: config.log.level }) });
  try {
    return await fn(d.url, new Client({ url: d.url }));
  } finally {
    await d.stop();
  }
}

function readPlan(work: string): Plan {
  return JSON.parse(readFileSync(path.join(work, 'plan.json'), 'utf8')) as Plan;
}

function dirBytes(dir: string): number {
  let n = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) {
      try {
        // allocated blocks, not the apparent size: the RAM files are sparse
        n += statSync(path.join(e.parentPath, e.name)).blocks * 512;
      } catch {
        // removed meanwhile
      }
    }
  }
  return n;
}

async function prep(a: DensityLoadArgs, log: (s: string) => void): Promise<PrepResult> {
  mkdirSync(a.work, { recursive: true });
  const planFile = path.join(a.work, 'plan.json');
  if (!existsSync(planFile)) {
    const rows = planDensityLoad(a);
    const nominalSum = rows.reduce((s, r) => s + r.memoryMiB, 0);
    const plan: Plan = { opts: { functions: a.functions, requests: a.requests, seconds: a.seconds, skew: a.skew, seed: a.seed }, budgetMiB: a.budgetMiB ?? Math.round(nominalSum / 3), rows };
    writeFileSync(planFile, JSON.stringify(plan));
    writeFileSync(path.join(a.work, 'spec.csv'), faasrailSpecText(rows, a.seconds));
  }
  const prepFile = path.join(a.work, 'prep.json');
  const prev: PrepResult = existsSync(prepFile) ? (JSON.parse(readFileSync(prepFile, 'utf8')) as PrepResult) : { deploySeconds: 0, snapshotSeconds: [], wallSeconds: 0, done: [], snapshotBytes: 0, loadavg: [] };
  if (a.functions < readPlan(a.work).rows.length) {
    // fewer functions than planned (the preparation ran out of time): the load on the first rows only, planned
    // again with these options (the same rows keep their names, so their snapshots serve)
    const rows = planDensityLoad(a);
    const nominalSum = rows.reduce((s, r) => s + r.memoryMiB, 0);
    writeFileSync(planFile, JSON.stringify({ opts: { functions: a.functions, requests: a.requests, seconds: a.seconds, skew: a.skew, seed: a.seed }, budgetMiB: a.budgetMiB ?? Math.round(nominalSum / 3), rows } satisfies Plan));
    writeFileSync(path.join(a.work, 'spec.csv'), faasrailSpecText(rows, a.seconds));
    const names = new Set((await loadTrace(path.join(a.work, 'spec.csv'), 'faasrail')).functions.map((f) => f.name));
    prev.done = prev.done.filter((n) => names.has(n));
    log(`  prep: the load planned again on ${rows.length} functions (${prev.done.length} prepared)`);
  }
  const plan = readPlan(a.work);
  const t0 = Date.now();
  const wallBefore = prev.wallSeconds;
  const r = await withDaemon(phaseConfig(a.work, plan.budgetMiB, 'measured'), async (url, client) => {
    const spec = path.join(a.work, 'spec.csv');
    const trace = await loadTrace(spec, 'faasrail');
    const names = trace.functions.map((f) => f.name);
    const have = new Set(((await client.call<{ functions: Array<{ name: string }> }>('GET', '/v1/functions')).functions ?? []).map((f) => f.name));
    if (names.some((n) => !have.has(n))) {
      const d0 = Date.now();
      await runDeploySpec({ spec, url, memoryFor: Object.entries(MEMORY_FOR).map(([b, m]) => `${b}=${m}`).join(','), write: (s) => log(`  ${s.trim()}`) });
      prev.deploySeconds += (Date.now() - d0) / 1000;
    }
    const done = new Set(prev.done);
    const todo = names.filter((n) => !done.has(n));
    const deadline = t0 + a.prepSeconds * 1000;
    // progress saved after every snapshot: a run stopped in any way (its time bound, a kill, the lock holder's
    // timeout) resumes from the last one made
    const save = (): void => writeFileSync(prepFile, JSON.stringify({ ...prev, done: [...done], wallSeconds: wallBefore + (Date.now() - t0) / 1000 } satisfies PrepResult));
    // two at a time: the machine has two cores
    const worker = async (): Promise<void> => {
      for (let name = todo.shift(); name !== undefined && Date.now() < deadline; name = todo.shift()) {
        const s0 = Date.now();
        const res = await client.invoke(name, trace.functions[names.indexOf(name)]!.request);
        if (res.status !== 200) {
          // left for the next run (not done), the others go on
          log(`  prep: ${name}: HTTP ${res.status} ${JSON.stringify(res.body.error)} (left for the next --step prep)`);
          continue;
        }
        prev.snapshotSeconds.push((Date.now() - s0) / 1000);
        await client.call('POST', `/v1/functions/${name}/evict`);
        done.add(name);
        save();
        if (done.size % 10 === 0) log(`  prep: ${done.size}/${names.length} snapshots (${((Date.now() - t0) / 1000).toFixed(0)} s, load ${loadavg()})`);
      }
    };
    await Promise.all([worker(), worker()]);
    for (let i = 0; i < 300 && (await client.call<{ pool: PoolStatus }>('GET', '/v1/status')).pool.instances.length > 0; i++) await new Promise((res) => setTimeout(res, 200));
    const st = (await client.call<{ pool: PoolStatus }>('GET', '/v1/status')).pool;
    prev.done = [...done];
    log(`  prep: ${done.size}/${names.length} done, ${st.tiers.reduce((s, t) => s + t.snapshots, 0)} snapshots on the tiers`);
    return prev;
  });
  r.wallSeconds = wallBefore + (Date.now() - t0) / 1000;
  r.snapshotBytes = dirBytes(path.join(a.work, 'tier-disk'));
  r.loadavg.push(loadavg());
  writeFileSync(prepFile, JSON.stringify(r));
  // the prepared database: both phases start from it
  mkdirSync(path.join(a.work, 'prepared'), { recursive: true });
  for (const f of DB_FILES) {
    const src = path.join(a.work, 'state', f);
    rmSync(path.join(a.work, 'prepared', f), { force: true });
    if (existsSync(src)) cpSync(src, path.join(a.work, 'prepared', f));
  }
  return r;
}

const phaseFile = (work: string, accounting: Accounting, rep: number): string => path.join(work, `phase-${accounting}-r${rep}.json`);
const recordsName = (accounting: Accounting, rep: number): string => `records-${accounting}-r${rep}.jsonl`;

async function phase(a: DensityLoadArgs, accounting: Accounting, rep: number, log: (s: string) => void): Promise<PhaseResult> {
  if (!(Number.isInteger(rep) && rep >= 1)) throw new Error(`--rep: ${rep} is not a whole number ≥ 1`);
  const plan = readPlan(a.work);
  const prepRes = JSON.parse(readFileSync(path.join(a.work, 'prep.json'), 'utf8')) as PrepResult;
  if (prepRes.done.length < plan.rows.length) throw new Error(`prep not finished: ${prepRes.done.length} of ${plan.rows.length} snapshots; run --step prep again`);
  for (const f of DB_FILES) {
    rmSync(path.join(a.work, 'state', f), { force: true });
    const src = path.join(a.work, 'prepared', f);
    if (existsSync(src)) cpSync(src, path.join(a.work, 'state', f));
  }
  const spec = await loadTrace(path.join(a.work, 'spec.csv'), 'faasrail');
  const trace = exactTrace(spec, plan.rows);
  const result = await withDaemon(phaseConfig(a.work, plan.budgetMiB, accounting), async (url, client) => {
    const status = async (): Promise<PoolStatus> => (await client.call<{ pool: PoolStatus }>('GET', '/v1/status')).pool;
    const st0 = await status();
    const res: Omit<PhaseResult, 'outcome' | 'replay' | 'counters' | 'seconds' | 'loadavgEnd'> = {
      accounting,
      rep,
      peakChargedMiB: 0,
      peakMeasuredMiB: 0,
      peakNominalMiB: 0,
      peakInstances: 0,
      maxGuardLevel: 0,
      minMemAvailableMiB: memAvailableMiB(),
      memAvailableStartMiB: memAvailableMiB(),
      snapshotsAtStart: st0.tiers.reduce((s, t) => s + t.snapshots, 0),
      loadavgStart: loadavg(),
      startedAt: new Date().toISOString(),
    };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const st = await status();
        const m = st.memory;
        res.peakChargedMiB = Math.max(res.peakChargedMiB, m?.chargedMiB ?? st.memoryUsedMiB);
        res.peakMeasuredMiB = Math.max(res.peakMeasuredMiB, m?.measuredMiB ?? 0);
        res.peakNominalMiB = Math.max(res.peakNominalMiB, m?.nominalMiB ?? 0);
        res.peakInstances = Math.max(res.peakInstances, st.instances.length);
        res.maxGuardLevel = Math.max(res.maxGuardLevel, m?.guard?.level ?? 0);
        res.minMemAvailableMiB = Math.min(res.minMemAvailableMiB, memAvailableMiB());
        await new Promise((r) => setTimeout(r, 2000));
      }
    })();
    const records: ReplayRecord[] = [];
    const t0 = Date.now();
    let summary: ReplaySummary;
    try {
      summary = await replay({ trace, url, timeoutMs: 120_000, progress: null, onRecord: (r) => records.push(r) });
    } finally {
      sampling = false;
      await sampler;
    }
    const end = await status();
    writeFileSync(path.join(a.work, recordsName(accounting, rep)), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out: PhaseResult = { ...res, outcome: outcomeOfRecords(records), replay: summary, counters: end.counters, seconds: (Date.now() - t0) / 1000, loadavgEnd: loadavg() };
    writeFileSync(phaseFile(a.work, accounting, rep), JSON.stringify(out));
    log(`  ${accounting} (repetition ${rep}): ${JSON.stringify(out.outcome)}`);
    return out;
  });
  // the phase's database (every activation's timings: where a start waited), kept until the report step
  const kept = path.join(a.work, `db-${accounting}-r${rep}`);
  mkdirSync(kept, { recursive: true });
  for (const f of DB_FILES) if (existsSync(path.join(a.work, 'state', f))) cpSync(path.join(a.work, 'state', f), path.join(kept, f));
  return result;
}

/**
 * The simulator on the same load: preparation (each function once, one every PREP_SPACING_MS: slow enough for
 * the modelled cold boots, so that none is refused and every function has its snapshot), a pause past the
 * keep-alive, then the load.
 */
export async function simulatePhase(spec: Parameters<typeof exactTrace>[0], plan: Plan, work: string, accounting: Accounting): Promise<SimPhase & { prepServed: number; prepEvictions: number }> {
  const prepMs = plan.rows.length * PREP_SPACING_MS;
  const offsetMs = Math.ceil((prepMs + TTL_SECONDS * 1000 + 60_000) / 60_000) * 60_000;
  const trace = exactTrace(spec, plan.rows, { prepMs, offsetMs });
  const cfg = phaseConfig(work, plan.budgetMiB, accounting);
  const node = simulatedNode(parseConfig(cfg));
  // the built-in profile, its disk tier as large as the daemons' (its default 20 GiB would drop snapshots)
  const profile: Profile = { ...DEFAULT_PROFILE, tiers: [{ name: 'disk', latencyRank: 0, capacityMiB: 65536 }] };
  const run = async (t: typeof trace, hooks: Parameters<typeof simulate>[0]['hooks']) =>
    simulate({ trace: t, profile, ...(await nodeSimulationOptions(node, process.cwd())), hooks });
  const collect = new SimOutcome(trace, plan.rows.length);
  let prepServed = 0;
  const r = await run(trace, { ...collect.hooks, onDone: (req: number, now: number) => (req <= plan.rows.length ? prepServed++ : collect.hooks.onDone(req, now)) });
  // the load's evictions: the preparation's, simulated alone (the same start, so the same decisions), taken off
  const prepOnly = await run(exactTrace(spec, plan.rows.map((row) => ({ ...row, arrivalsMs: [] })), { prepMs, offsetMs }), undefined);
  return { accounting, prepServed, outcome: collect.outcome(), peakChargedMiB: Math.round(r.peakMemoryMiB), coldBoots: r.coldBoots, restoresStarted: r.restoresStarted, evictions: r.evictions - prepOnly.evictions, prepEvictions: prepOnly.evictions };
}

const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '-');
const sec = (ms: number): string => (Number.isFinite(ms) ? (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`) : '-');
const refusals = (o: LoadOutcome): string => {
  const n = Object.values(o.refused).reduce((s, x) => s + x, 0);
  return n ? `${n} (${Object.entries(o.refused).map(([k, v]) => `${k} ${v}`).join(', ')})` : '0';
};

const ACCOUNTINGS = ['nominal', 'measured'] as const;
const repOf = (p: PhaseResult): number => p.rep ?? 1;
const realFigures = (p: PhaseResult): PhaseFigures => figuresOf(p.outcome, { peakChargedMiB: p.peakChargedMiB, peakMeasuredMiB: p.peakMeasuredMiB, peakNominalMiB: p.peakNominalMiB, peakVMs: p.peakInstances, evictions: p.counters.evictions, guardLevel: p.maxGuardLevel });
const simFigures = (s: SimPhase): PhaseFigures => figuresOf(s.outcome, { peakChargedMiB: s.peakChargedMiB, evictions: s.evictions });
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
/** how each figure is printed, in the tables' column order */
const SHOWN: ReadonlyArray<[keyof PhaseFigures, string, (x: number) => string]> = [
  ['cold', 'cold', f0],
  ['restore', 'restore', f0],
  ['warm', 'warm', f0],
  ['goodput', 'goodput (served ÷ offered)', pct],
  ['p50Ms', 'p50', sec],
  ['p99Ms', 'p99', sec],
  ['refused', 'refused', f0],
  ['failed', 'failed / unanswered', f0],
  ['peakChargedMiB', 'peak charged MiB', f0],
  ['peakMeasuredMiB', 'peak measured (PSS) MiB', f0],
  ['peakNominalMiB', 'peak nominal MiB', f0],
  ['peakVMs', 'peak VMs', f0],
  ['evictions', 'evictions', f0],
  ['guardLevel', 'guard level (max)', f0],
];
const mdTable = (head: string[], rows: string[][]): string => [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');

/** Per accounting: the repetitions' medians and spread, the simulator's prediction beside them. */
export function formatRepetitionSummary(phases: readonly PhaseResult[], sims: readonly SimPhase[]): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  const medians: Partial<Record<Accounting, FiguresSpread>> = {};
  for (const acc of ACCOUNTINGS) {
    const reps = phases.filter((p) => p.accounting === acc);
    const sim = sims.find((x) => x.accounting === acc);
    const sum = summarizeRepetitions(reps.map(realFigures));
    if (reps.length) {
      medians[acc] = sum;
      rows.push([acc, `real, median (lowest–highest) of ${reps.length}`, ...SHOWN.map(([k, , fmt]) => spreadCell(sum[k], fmt))]);
    }
    if (sim) {
      const f = simFigures(sim);
      rows.push([acc, 'simulated', ...SHOWN.map(([k, , fmt]) => (Number.isFinite(f[k]) ? fmt(f[k]) : '-'))]);
      if (reps.length) {
        const out = SHOWN.filter(([k]) => outsideSpread(sum[k], f[k]) > 0).map(([k, name, fmt]) => `${name} ${fmt(f[k])} vs ${spreadCell(sum[k], fmt)}`);
        notes.push(`${acc}: the simulator's prediction ${out.length ? `outside the real spread for ${out.join('; ')}` : 'within the real spread for every figure it gives'}.`);
      }
    }
  }
  const n = medians.nominal;
  const m = medians.measured;
  if (n && m) {
    const ratio = (k: keyof PhaseFigures): string => (n[k].median > 0 ? `${(m[k].median / n[k].median).toFixed(2)}×` : '-');
    notes.push(`measured ÷ nominal, medians: warm ${ratio('warm')}, restores ${ratio('restore')}, peak VMs ${ratio('peakVMs')}, evictions ${ratio('evictions')}, p50 ${ratio('p50Ms')}, p99 ${ratio('p99Ms')}.`);
  }
  return [mdTable(['accounting', 'run', ...SHOWN.map(([, name]) => name)], rows), '', ...notes].join('\n');
}

export function formatDensityLoad(plan: Plan, prepRes: PrepResult, phases: PhaseResult[], sims: SimPhase[]): string {
  const nominalSum = plan.rows.reduce((s, r) => s + r.memoryMiB, 0);
  const requests = plan.rows.reduce((s, r) => s + r.arrivalsMs.length, 0);
  const snap = [...prepRes.snapshotSeconds].sort((x, y) => x - y);
  const byRun = [...phases].sort((x, y) => x.startedAt.localeCompare(y.startedAt));
  const perRep = ACCOUNTINGS.flatMap((acc) =>
    phases
      .filter((p) => p.accounting === acc)
      .sort((x, y) => repOf(x) - repOf(y))
      .map((p) => {
        const f = realFigures(p);
        // refusals by their error code here
        return [acc, String(repOf(p)), String(p.outcome.offered), ...SHOWN.map(([k, , fmt]) => (k === 'refused' ? refusals(p.outcome) : fmt(f[k])))];
      }),
  );
  return [
    `machine: ${Object.entries(machine()).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    `Load: ${plan.rows.length} functions (${plan.rows.filter((r) => r.memoryMiB === 128).length} helloworld at 128 MiB, ${plan.rows.filter((r) => r.memoryMiB === 256).length} pyaes at 256 MiB, alternating), ${requests} requests over ${plan.opts.seconds} s (popularity r^-${plan.opts.skew}, every function at least once, seed ${plan.opts.seed}), exact arrivals replayed open-loop, the same in every repetition; sizes added up ${nominalSum} MiB; budget node.memoryBudgetMiB ${plan.budgetMiB} MiB (high watermark the default); keep-alive fixed ${TTL_SECONDS} s; snapshots on a disk tier; everything else the daemon's defaults (guard on).`,
    `Preparation (outside the load window): deploy ${prepRes.deploySeconds.toFixed(0)} s; ${prepRes.done.length} first invocations (cold boot leaving a snapshot) two at a time, ${prepRes.wallSeconds.toFixed(0)} s in all, per function median ${(snap[Math.floor(snap.length / 2)] ?? NaN).toFixed(1)} s, p99 ${(snap[Math.min(snap.length - 1, Math.ceil(0.99 * snap.length) - 1)] ?? NaN).toFixed(1)} s; snapshots ${(prepRes.snapshotBytes / 1048576).toFixed(0)} MiB on disk (allocated); load average ${prepRes.loadavg.join(' / ')}.`,
    '',
    `Phases in the order they ran (each from the prepared state: every snapshot made, no VM):`,
    ...byRun.map((p) => `- ${p.accounting} repetition ${repOf(p)}: started ${p.startedAt}, ${p.seconds.toFixed(0)} s, ${p.snapshotsAtStart} snapshots at its start, load average ${p.loadavgStart} → ${p.loadavgEnd}, MemAvailable ${p.memAvailableStartMiB} MiB at the start, lowest ${p.minMemAvailableMiB} MiB; replay send lag p99 ${sec(p.replay.p99LagMs)}; counters ${JSON.stringify({ coldStarts: p.counters.coldStarts, restoreStarts: p.counters.restoreStarts, evictions: p.counters.evictions, pressureEvictions: p.counters.pressureEvictions, pressureStops: p.counters.pressureStops, expirations: p.counters.expirations })}.`),
    '',
    '### Summary: medians and spread over the repetitions, the simulator beside them',
    '',
    formatRepetitionSummary(phases, sims),
    '',
    '### Each repetition',
    '',
    mdTable(['accounting', 'repetition', 'offered', ...SHOWN.map(([, name]) => name)], perRep),
    '',
    'cold / restore / warm: the start path of the VM that served each answered request. Refused: 429/503 answers (simulated: the core\'s rejections). Latency: answered requests, client side (simulated: arrival to the end of the run). Peaks: the daemon\'s /v1/status every 2 s (charged: what counts against the budget; measured: the live VMs\' latest PSS added up; nominal: their sizes added up). The simulator: the same trace, preceded by one invocation per function and a pause past the keep-alive (so it too starts the load with every snapshot and no VM), the daemons\' configuration (src/sim/cli.ts simulatedNode), the built-in profile (DEFAULT_PROFILE) with its disk tier as large as the daemons\'; it is deterministic, so one simulation per accounting; its evictions are the load\'s (those of its preparation, simulated alone, taken off), its peak charge covers the whole simulation (the preparation included).',
  ].join('\n');
}

/**
 * The phases of `repetitions` repetitions, in the order to run them: which accounting goes first alternates from
 * one repetition to the next (N1 M1 M2 N2 N3 M3 …), so that a drift of the machine's load favours neither.
 */
export function phaseOrder(repetitions: number): Array<[Accounting, number]> {
  if (!(Number.isInteger(repetitions) && repetitions >= 1)) throw new Error(`--repetitions: ${repetitions} is not a whole number ≥ 1`);
  return Array.from({ length: repetitions }, (_, i): Array<[Accounting, number]> => (i % 2 ? [['measured', i + 1], ['nominal', i + 1]] : [['nominal', i + 1], ['measured', i + 1]])).flat();
}

export async function benchDensityLoad(a: DensityLoadArgs): Promise<string | undefined> {
  const log = a.log ?? ((s: string) => console.error(s));
  const steps: Array<DensityLoadStep | [Accounting, number]> = a.step === 'all' ? ['prep', ...phaseOrder(a.repetitions ?? 1), 'report'] : a.step === 'nominal' || a.step === 'measured' ? [[a.step, a.rep ?? 1]] : [a.step];
  let text: string | undefined;
  for (const step of steps) {
    log(`bench density-load: ${Array.isArray(step) ? `${step[0]} repetition ${step[1]}` : step} (work directory ${a.work})`);
    if (Array.isArray(step)) await phase(a, step[0], step[1], log);
    else if (step === 'prep') await prep(a, log);
    else {
      const plan = readPlan(a.work);
      const prepRes = JSON.parse(readFileSync(path.join(a.work, 'prep.json'), 'utf8')) as PrepResult;
      const phases = readdirSync(a.work)
        .filter((f) => /^phase-(nominal|measured)-r\d+\.json$/.test(f))
        .map((f) => JSON.parse(readFileSync(path.join(a.work, f), 'utf8')) as PhaseResult);
      const spec = await loadTrace(path.join(a.work, 'spec.csv'), 'faasrail');
      const sims = [await simulatePhase(spec, plan, a.work, 'nominal'), await simulatePhase(spec, plan, a.work, 'measured')];
      text = formatDensityLoad(plan, prepRes, phases, sims);
      mkdirSync(a.out, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      writeFileSync(path.join(a.out, `density-load-${stamp}.md`), text + '\n');
      writeFileSync(path.join(a.out, `density-load-${stamp}.json`), JSON.stringify({ plan: { ...plan, rows: undefined }, prep: prepRes, phases, sims }, null, 2));
      cpSync(path.join(a.work, 'spec.csv'), path.join(a.out, `density-load-${stamp}-spec.csv`));
      for (const p of phases) {
        const f = path.join(a.work, recordsName(p.accounting, repOf(p)));
        if (existsSync(f)) cpSync(f, path.join(a.out, `density-load-${stamp}-${recordsName(p.accounting, repOf(p))}`));
      }
      removeTierDir(path.join(a.work, 'tier-disk'));
      rmSync(a.work, { recursive: true, force: true });
      log(`results in ${a.out}/density-load-${stamp}.{md,json}`);
    }
  }
  return text;
}
