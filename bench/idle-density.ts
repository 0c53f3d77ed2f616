// faascell bench idle-density (issue 24): how many 256 MiB VMs one node keeps under one memory budget,
// nominal vs measured accounting side by side in one run (same budget, same daemon settings otherwise),
// for (a) cold-booted hello VMs (snapshots off) and (b) clones restored from one snapshot.
//
// Every VM holds one request that sleeps in the guest (its agent waits on a timer: the guest is idle, as
// an idle VM's), so each new request needs a new VM; requests are sent a few ahead of the VMs that have
// started. A phase stops at the first of:
//   refused   a request waits with no start going on for REFUSE_MS: the budget admits no further VM
//             (measured charges settle within a few samples, so a short wait is not yet a refusal)
//   guard     the daemon's memory guard left level ok (the host ran short)
//   floor     the host's MemAvailable fell below --floor-mib (the bench's own floor)
//   time      the phase ran --phase-seconds (idle VMs cost CPU under TCG: a bounded run)
//   failed    starts failed or requests were refused otherwise
// At the stop: PSS of every VMM (smaps_rollup), MemAvailable, the host's CPU and the VMMs' CPU over a
// window, oom_kill of /proc/vmstat before and after. The simulator's prediction for the same budget comes
// from its memory model (the default profile's, src/sim/profile.ts) on a trace of the same requests.
import fs from 'node:fs';
import os from 'node:os';
import type { Trace } from '../src/traces/types.js';
import { createPolicies } from '../src/policies/index.js';
import { DEFAULT_PROFILE } from '../src/sim/profile.js';
import { simulate } from '../src/sim/simulator.js';
import type { PoolStatus } from '../src/vmpool/pool.js';
import { benchDaemon, machine, summarize, table, type Summary } from './common.js';
import type { MemoryAccounting as Accounting } from '../src/vmpool/core/model.js';

// holds its request for params.holdMs: a VM that stays taken while its guest idles
export const HOLD = Buffer.from('exports.main = async (p) => { const ms = Math.max(0, Math.min((p && p.holdMs) || 0, 1800000)); if (ms) await new Promise((r) => setTimeout(r, ms)); return { held: ms }; };');
export const SIZE_MIB = 256;
const REFUSE_MS = 8000;
/** requests sent ahead of the VMs that have started */
const AHEAD = 3;

export type DensityPath = 'clones' | 'cold';
export type { MemoryAccounting as Accounting } from '../src/vmpool/core/model.js';

export interface IdleDensityPhase {
  path: DensityPath;
  accounting: Accounting;
  /** VMs alive when the phase stopped */
  vms: number;
  stoppedBy: 'refused' | 'guard' | 'floor' | 'time' | 'failed';
  seconds: number;
  pssMiB: Summary;
  pssTotalMiB: number;
  /** the daemon's own sampler: the live VMs' latest PSS added up, and how many it had not measured */
  sampledMiB: number;
  unsampled: number;
  chargedMiB: number;
  nominalMiB: number;
  memAvailableStartMiB: number;
  memAvailableEndMiB: number;
  /** host CPU busy over the window at the stop (cores), and per VMM (% of a core, median) */
  hostCpuCores: number;
  vmmCpuPct: Summary;
  loadavg: string;
  failures: number;
  firstError?: string;
  oomKills: number;
  /** the simulator's count for the same budget and requests */
  simulated: number;
  /** stopped by the guard: what it read (its tightest source, what was available there, PSI avg10) */
  guard?: { levelName: string; source?: string; availableMiB?: number; psiSome10?: number; psiFull10?: number };
}

export interface IdleDensityResult {
  machine: Record<string, string | number>;
  budgetMiB: number;
  highWatermark: number;
  reserve: number;
  phaseSeconds: number;
  floorMiB: number;
  phases: IdleDensityPhase[];
}

function memAvailableMiB(): number {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;
}

function oomKills(): number {
  return Number(/^oom_kill (\d+)/m.exec(fs.readFileSync('/proc/vmstat', 'utf8'))?.[1] ?? 0);
}

function cpuTicks(): { total: number; idle: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), idle: f[3]! + (f[4] ?? 0) };
}

function procTicks(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return NaN;
  }
}

function pssMiB(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

/** The VMM process of each VM id (QEMU's `-name faascell-<id>`, the id being vm-…). */
export function vmmPids(ids: string[]): number[] {
  const want = new Set(ids.map((id) => `faascell-${id}`));
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const args = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const i = args.indexOf('-name');
      if (i >= 0 && want.has(args[i + 1]!.split(',')[0]!)) pids.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Host CPU (cores busy) and each pid's CPU (% of a core) over `ms`. */
async function cpuWindow(pids: number[], ms: number): Promise<{ host: number; perPid: number[] }> {
  const hz = 100;
  const h0 = cpuTicks();
  const p0 = pids.map(procTicks);
  await new Promise((r) => setTimeout(r, ms));
  const h1 = cpuTicks();
  const p1 = pids.map(procTicks);
  const host = ((h1.total - h0.total - (h1.idle - h0.idle)) / Math.max(1, h1.total - h0.total)) * os.cpus().length;
  const perPid = pids.map((_, i) => ((p1[i]! - p0[i]!) / hz / (ms / 1000)) * 100).filter(Number.isFinite);
  return { host, perPid };
}

/** The simulator's count: the same requests (one a second, each held for longer than the run), the same budget. */
export async function simulatedCount(path: DensityPath, accounting: Accounting, budgetMiB: number, reserve: number, maxVms: number): Promise<number> {
  const n = maxVms;
  const slotStart = new Uint32Array(n + 1);
  for (let s = 0; s <= n; s++) slotStart[s] = s;
  const trace: Trace = {
    format: 'slots',
    source: 'idle-density',
    slotMs: 1000,
    nSlots: n,
    functions: [{ index: 0, name: 'hold', app: '', owner: '', trigger: 'http', avgDurationMs: 3_600_000, memoryMiB: SIZE_MIB, request: {}, total: n }],
    totalInvocations: n,
    slotStart,
    entryFn: new Uint32Array(n),
    entryCount: new Uint32Array(n).fill(1),
  };
  const r = simulate({
    trace,
    policies: await createPolicies({ placement: { policy: 'fixed', tier: 'shm' } }, { baseDir: process.cwd() }),
    profile: DEFAULT_PROFILE,
    memoryMiB: budgetMiB,
    maxInstancesPerFunction: n,
    maxQueueDelayMs: 600_000,
    node: { maxConcurrentInvocations: n + 16, maxQueueLength: n + 16, highWatermark: 0.95, snapshots: path === 'clones', preferWarm: false, memoryAccounting: accounting, memoryReserve: reserve, memorySampleMs: 1000 },
  });
  // with snapshots, the simulator's first VM is the cold boot that leaves the snapshot (the bench evicts it)
  return r.coldBoots + r.restoresStarted;
}

export async function benchIdleDensity(opts: { paths: DensityPath[]; accountings?: Accounting[]; budgetMiB: number; phaseSeconds: number; floorMiB: number; maxVms: number; psiSomeEvict?: number; log?: (s: string) => void }): Promise<IdleDensityResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const phases: IdleDensityPhase[] = [];
  const reserve = 0.1;
  const highWatermark = 0.95;
  for (const path of opts.paths) {
    // both by default; one alone when a phase needs a VM-lock hold of its own (a long measured phase)
    for (const accounting of opts.accountings ?? (['nominal', 'measured'] as const)) {
      const simulated = await simulatedCount(path, accounting, opts.budgetMiB, reserve, opts.maxVms);
      const b = await benchDaemon({
        log: { level: 'error' },
        // --psi-some-evict: the guard's PSI `some` level for evicting (0 ignores PSI `some`; the daemon's default otherwise)
        node: { memoryBudgetMiB: opts.budgetMiB, highWatermark, memory: { accounting, reserve, sampleIntervalMs: 1000, ...(opts.psiSomeEvict !== undefined ? { guard: { psiSomeEvict: opts.psiSomeEvict } } : {}) } },
        functionLimits: { maxInstances: opts.maxVms, maxTimeoutMs: 30 * 60_000 },
        admission: { maxConcurrentInvocations: opts.maxVms + 16, maxQueueLength: opts.maxVms + 16, maxQueueDelayMs: 120_000, preferWarm: false },
        snapshots: { enabled: path === 'clones' },
        policies: { placement: { policy: 'fixed', tier: 'shm' }, keepAlive: { policy: 'fixed', ttlSeconds: 3600 } },
      });
      const oom0 = oomKills();
      const avail0 = memAvailableMiB();
      const status = (): Promise<{ pool: PoolStatus }> => b.client.call<{ pool: PoolStatus }>('GET', '/v1/status');
      let failures = 0;
      let firstError: string | undefined;
      // the held requests are dropped at the phase's end (the daemon's stop answers what is in flight first)
      const abort = new AbortController();
      try {
        await b.client.deploy('hold', HOLD, { codeKind: 'js', memoryMiB: SIZE_MIB, maxInstances: opts.maxVms, timeoutMs: 30 * 60_000 });
        if (path === 'clones') {
          // the first start is a cold boot that leaves the snapshot; then every VM is a clone of it
          const first = await b.client.invoke('hold', {});
          if (first.status !== 200) throw new Error(`first invoke: HTTP ${first.status} ${JSON.stringify(first.body.error)}`);
          for (let i = 0; i < 600 && (await status()).pool.tiers.every((t) => t.snapshots === 0); i++) await new Promise((r) => setTimeout(r, 100));
          await b.client.call('POST', '/v1/functions/hold/evict');
          for (let i = 0; i < 600 && (await status()).pool.instances.length > 0; i++) await new Promise((r) => setTimeout(r, 100));
        }
        const t0 = Date.now();
        const holdUntil = t0 + (opts.phaseSeconds + 90) * 1000;
        let ended = false;
        let shown = '';
        let sent = 0;
        let stoppedBy: IdleDensityPhase['stoppedBy'] | undefined;
        let waitingSince = 0;
        let st = (await status()).pool;
        for (;;) {
          st = (await status()).pool;
          const live = st.instances.filter((x) => x.state !== 'stopping').length;
          const queued = Object.values(st.queues).reduce((a, c) => a + c, 0);
          const c = st.counters;
          if (failures > 0 || c.startFailures > 0 || c.rejectedQueueFull + c.rejectedOverloaded + c.rejectedQueueTimeout + c.rejectedStartFailed > 0) stoppedBy = 'failed';
          else if ((st.memory?.guard?.level ?? 0) > 0) stoppedBy = 'guard';
          else if (memAvailableMiB() < opts.floorMiB) stoppedBy = 'floor';
          else if (Date.now() - t0 > opts.phaseSeconds * 1000 || live >= opts.maxVms) stoppedBy = 'time';
          else if (queued > 0 && st.starting === 0) {
            waitingSince ||= Date.now();
            if (Date.now() - waitingSince >= REFUSE_MS) stoppedBy = 'refused';
          } else waitingSince = 0;
          const now = `${live} VMs, ${queued} queued, ${st.starting} starting, charged ${st.memory?.chargedMiB ?? st.memoryUsedMiB} MiB`;
          if (now !== shown && (live % 10 === 0 || queued > 0)) log(`    ${path} ${accounting}: ${now} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
          shown = now;
          if (stoppedBy) break;
          while (sent < live + AHEAD && sent < opts.maxVms) {
            sent++;
            void fetch(`${b.d.url}/v1/functions/hold/invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ holdMs: holdUntil - Date.now() }), signal: abort.signal }).then(
              async (r) => {
                if (r.status !== 200 && !ended) {
                  failures++;
                  firstError ??= `HTTP ${r.status} ${(await r.text()).slice(0, 200)}`;
                }
              },
              () => undefined,
            );
          }
          await new Promise((r) => setTimeout(r, 250));
        }
        const seconds = (Date.now() - t0) / 1000;
        const g = st.memory?.guard;
        const guard = stoppedBy === 'guard' && g ? { levelName: g.levelName, source: g.source, availableMiB: g.availableMiB, psiSome10: g.psiSome10, psiFull10: g.psiFull10 } : undefined;
        const vms = st.instances.filter((x) => x.state === 'busy' || x.state === 'idle');
        const pids = vmmPids(vms.map((x) => x.id));
        const cpu = await cpuWindow(pids, 10_000);
        const pss = pids.map(pssMiB).filter(Number.isFinite);
        const end = (await status()).pool;
        ended = true;
        abort.abort();
        const phase: IdleDensityPhase = {
          path,
          accounting,
          vms: vms.length,
          stoppedBy: stoppedBy,
          seconds,
          pssMiB: summarize(pss),
          pssTotalMiB: Math.round(pss.reduce((a, x) => a + x, 0)),
          sampledMiB: end.memory?.measuredMiB ?? NaN,
          unsampled: end.memory?.unmeasured ?? NaN,
          chargedMiB: end.memory?.chargedMiB ?? end.memoryUsedMiB,
          nominalMiB: end.memory?.nominalMiB ?? NaN,
          memAvailableStartMiB: Math.round(avail0),
          memAvailableEndMiB: Math.round(memAvailableMiB()),
          hostCpuCores: cpu.host,
          vmmCpuPct: summarize(cpu.perPid),
          loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
          failures,
          ...(firstError ? { firstError } : {}),
          oomKills: oomKills() - oom0,
          simulated,
          ...(guard ? { guard } : {}),
        };
        phases.push(phase);
        log(`  ${path} ${accounting}: ${phase.vms} VMs (stopped by ${phase.stoppedBy}${guard ? ` ${JSON.stringify(guard)}` : ''} after ${seconds.toFixed(0)} s; simulator ${simulated}), PSS median ${phase.pssMiB.median.toFixed(1)} MiB, MemAvailable ${phase.memAvailableEndMiB} MiB, host CPU ${cpu.host.toFixed(2)} cores`);
      } finally {
        abort.abort();
        await b.close();
      }
    }
  }
  return { machine: machine(), budgetMiB: opts.budgetMiB, highWatermark, reserve, phaseSeconds: opts.phaseSeconds, floorMiB: opts.floorMiB, phases };
}

export function formatIdleDensity(r: IdleDensityResult): string {
  const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
  return [
    `machine: ${JSON.stringify(r.machine)}`,
    `budget ${r.budgetMiB} MiB (high watermark ${r.highWatermark}: nominal admits ${Math.floor(r.budgetMiB / SIZE_MIB)} VMs of ${SIZE_MIB} MiB); measured reserve ${r.reserve}; phase cap ${r.phaseSeconds} s; host floor ${r.floorMiB} MiB MemAvailable; every VM holds one sleeping request (guest idle); swap: ${/^SwapTotal:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? '?'} kB`,
    '',
    table(
      ['VMs', 'accounting', 'count', 'simulator', 'stopped by', 'seconds', 'PSS/VM median (p99) MiB', 'PSS total MiB', 'daemon sampler: PSS total MiB (VMs not measured)', 'charged MiB', 'nominal MiB', 'MemAvailable start → end MiB', 'host CPU (cores)', 'VMM CPU/VM median (p99) %', 'OOM kills', 'failures'],
      r.phases.map((p) => [
        p.path === 'clones' ? 'clones of one snapshot' : 'cold-booted',
        p.accounting,
        p.vms,
        p.simulated,
        p.stoppedBy,
        p.seconds.toFixed(0),
        `${f1(p.pssMiB.median)} (${f1(p.pssMiB.p99)})`,
        p.pssTotalMiB,
        `${p.sampledMiB} (${p.unsampled})`,
        p.chargedMiB,
        p.nominalMiB,
        `${p.memAvailableStartMiB} → ${p.memAvailableEndMiB}`,
        p.hostCpuCores.toFixed(2),
        `${f1(p.vmmCpuPct.median)} (${f1(p.vmmCpuPct.p99)})`,
        p.oomKills,
        p.failures + (p.firstError ? `: ${p.firstError}` : ''),
      ]),
    ),
    '',
    'ratios measured / nominal (same path, same budget): ' +
      (['clones', 'cold'] as const)
        .map((path) => {
          const n = r.phases.find((p) => p.path === path && p.accounting === 'nominal');
          const m = r.phases.find((p) => p.path === path && p.accounting === 'measured');
          if (!n || !m) return '';
          // a nominal phase cut by the time cap never reached its refusal: no density ratio
          const cut = n.stoppedBy === 'time' ? ' (nominal cut by the time cap: not a density ratio)' : m.stoppedBy === 'time' ? ' (at least: measured cut by the time cap)' : '';
          return `${path} ${(m.vms / Math.max(1, n.vms)).toFixed(2)}×${cut}`;
        })
        .filter(Boolean)
        .join(', '),
  ].join('\n');
}
