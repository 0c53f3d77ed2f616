// Issue 24 follow-up (session 7): does page-cache reclaim alone, with memory plentiful, push PSI memory `some`
// past the guard's psiSomeEvict? Session 6's idle-density runs on the loaded machine were stopped by it at 267–280
// clones with 10 GiB available. Reproduced here without VMs: a memory cgroup of our own (a child of this process's
// memory cgroup, removed after) with a small limit, a reader streaming a file of our own through the page cache in
// it, optional busy loops on every core, and the same readings the guard takes (readHostMemory with that cgroup as
// the VMs' cgroup: the host, the cgroup, PSI avg10 of /proc/pressure/memory), judged by guardVerdict under the
// former rule (PSI `some` counts at any availability) and the current defaults (`psiAvailableBelow`).
// Phases, each `--phase-seconds` long: none (background), busy (loops only), cache-idle (reader, idle cores),
// cache-busy (reader + loops), anon-over-cache-busy (anonymous memory grows to 75 % of the limit over cached
// pages, reader + loops: a clone's pages taken from cache), pressure-busy (anonymous memory held at 85 % of the
// limit (--pressure-anon) and a file of 30 % of it re-read: real pressure, working set larger than what is left).
//   sudo npx tsx bench/psi-reclaim.ts [--limit-mib 768] [--file-mib 2048] [--phase-seconds 40] [--busy 4]
//     [--pressure-anon 0.85] [--phases none,busy,cache-idle,cache-busy,anon-over-cache-busy,pressure-busy]
// Bounded: phases × phase-seconds, two files (file-mib and 30 % of the limit) in a temporary directory, removed.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { detectHostCgroups } from '../src/runtimes/jail/cgroups.js';
import { guardVerdict, readHostMemory, type GuardThresholds, type HostMemoryReading } from '../src/vmpool/host-memory.js';
import { parseConfig } from '../src/config/schema.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}: a number, not ${process.argv[i + 1]}`);
  return v;
};
const limitMiB = arg('limit-mib', 768);
const fileMiB = arg('file-mib', 2048);
const phaseSeconds = arg('phase-seconds', 40);
const busyLoops = arg('busy', 4);
/** pressure-busy's anonymous memory, as a fraction of the limit (the hot file is 30 % of it) */
const pressureAnon = arg('pressure-anon', 0.85);
const phasesAt = process.argv.indexOf('--phases');
const PHASES = ['none', 'busy', 'cache-idle', 'cache-busy', 'anon-over-cache-busy', 'pressure-busy'];
const phases = phasesAt > 0 ? (process.argv[phasesAt + 1] ?? '').split(',') : PHASES;
if (phases.some((p) => !PHASES.includes(p))) throw new Error(`--phases: a comma-separated list of ${PHASES.join(', ')}`);

const mem = detectHostCgroups('auto').controllers.memory;
if (!mem || process.getuid?.() !== 0) throw new Error('needs root and a memory cgroup controller');
const v1 = mem.version === 'v1';
const cgDir = path.join(mem.mount, mem.parent, `psi-reclaim-${process.pid}`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'psi-reclaim-'));
const bigFile = path.join(tmp, 'stream.bin');
const hotFile = path.join(tmp, 'hot.bin');
const children = new Set<ChildProcess>();

const guard = parseConfig({}).node.memory.guard;
const current: GuardThresholds = guard;
const former: GuardThresholds = { ...guard, psiAvailableBelow: 1 };

/** A shell that moves itself into our cgroup first, then runs `script` there. */
function inCgroup(script: string): ChildProcess {
  const procs = path.join(cgDir, 'cgroup.procs');
  return track(spawn('/bin/sh', ['-c', `echo $$ > '${procs}' && exec /bin/sh -c '${script.replaceAll("'", "'\\''")}'`], { stdio: 'ignore' }));
}
function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}
async function stop(cs: ChildProcess[]): Promise<void> {
  await Promise.all(
    cs.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
}
const busy = (): ChildProcess[] => Array.from({ length: busyLoops }, () => track(spawn('/bin/sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' })));
const reader = (file: string): ChildProcess => inCgroup(`while :; do cat '${file}' > /dev/null; done`);
/** Anonymous memory in our cgroup: grows to `mib` over `seconds`, touched, then held. */
const anon = (mib: number, seconds: number): ChildProcess =>
  inCgroup(
    `exec ${process.execPath} -e 'const b=[];const step=16;const n=Math.ceil(${mib}/step);let i=0;const t=setInterval(()=>{if(i++>=n){clearInterval(t);setInterval(()=>b.length,1e6);return;}b.push(Buffer.alloc(step*1048576,1));},${Math.round((seconds * 1000) / Math.max(1, Math.ceil(mib / 16)))});'`,
  );

interface Sample {
  t: number;
  r: HostMemoryReading;
}
async function phase(name: string, start: () => ChildProcess[]): Promise<void> {
  if (!phases.includes(name)) return;
  const cs = start();
  const samples: Sample[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < phaseSeconds * 1000) {
    await sleep(1000);
    samples.push({ t: (Date.now() - t0) / 1000, r: await readHostMemory({ cgroup: { version: mem!.version, dir: cgDir } }) });
  }
  await stop(cs);
  const row = (s: Sample): string => {
    const host = s.r.sources.find((x) => x.name === 'host');
    const cg = s.r.sources.find((x) => x.name === cgDir);
    const pct = (x: { availableMiB: number; limitMiB: number } | undefined): string => (x ? `${((100 * x.availableMiB) / x.limitMiB).toFixed(1)}` : '-');
    return `${name.padEnd(22)} ${s.t.toFixed(0).padStart(3)} s  some ${String(s.r.psiSome10 ?? '-').padStart(6)}  full ${String(s.r.psiFull10 ?? '-').padStart(6)}  host avail ${pct(host)} %  cgroup avail ${pct(cg)} % (${cg ? Math.round(cg.availableMiB) : '-'} MiB)  level former ${guardVerdict(s.r, former).level} current ${guardVerdict(s.r, current).level}`;
  };
  for (const s of samples) console.log(row(s));
  // avg10 needs ~10 s to follow a change: judge the phase on its samples after the first 15 s
  const late = samples.filter((s) => s.t >= 15);
  const some = late.map((s) => s.r.psiSome10 ?? 0).sort((a, b) => a - b);
  const full = late.map((s) => s.r.psiFull10 ?? 0);
  const tight = late.map((s) => Math.min(...s.r.sources.map((x) => x.availableMiB / x.limitMiB)));
  const evictFormer = late.filter((s) => guardVerdict(s.r, former).level > 0).length;
  const evictCurrent = late.filter((s) => guardVerdict(s.r, current).level > 0).length;
  summary.push(
    `| ${name} | ${some[Math.floor(some.length / 2)]?.toFixed(2)} | ${Math.max(...some).toFixed(2)} | ${Math.max(...full).toFixed(2)} | ${(100 * Math.min(...tight)).toFixed(1)} – ${(100 * Math.max(...tight)).toFixed(1)} | ${evictFormer} / ${late.length} | ${evictCurrent} / ${late.length} |`,
  );
}

const summary: string[] = [];
async function cleanup(): Promise<void> {
  await stop([...children]);
  for (let i = 0; i < 50 && fs.existsSync(cgDir); i++) {
    try {
      fs.rmdirSync(cgDir);
    } catch {
      await sleep(100);
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  fs.mkdirSync(cgDir);
  fs.writeFileSync(path.join(cgDir, v1 ? 'memory.limit_in_bytes' : 'memory.max'), String(limitMiB * 1048576));
  const loadStart = os.loadavg();
  console.log(`# ${new Date().toISOString()} load ${loadStart.map((x) => x.toFixed(2)).join(' ')}; ${os.cpus().length} cores; cgroup ${mem.version} limit ${limitMiB} MiB; stream file ${fileMiB} MiB; busy loops ${busyLoops}; ${phaseSeconds} s per phase; pressure-busy anonymous ${pressureAnon} of the limit`);
  console.log(`# guard thresholds (defaults): ${JSON.stringify(current)}; former rule: psiAvailableBelow 1`);
  // the files are written from inside the cgroup: their dirty pages are charged to it, not to the host
  const write = inCgroup(`head -c ${fileMiB * 1048576} /dev/zero > '${bigFile}' && head -c ${Math.round(0.3 * limitMiB) * 1048576} /dev/zero > '${hotFile}' && sync '${bigFile}' '${hotFile}'`);
  await new Promise((resolve) => write.once('exit', resolve));
  await phase('none', () => []);
  await phase('busy', busy);
  await phase('cache-idle', () => [reader(bigFile)]);
  await phase('cache-busy', () => [reader(bigFile), ...busy()]);
  await phase('anon-over-cache-busy', () => [reader(bigFile), anon(Math.round(0.75 * limitMiB), phaseSeconds * 0.6), ...busy()]);
  await phase('pressure-busy', () => [anon(Math.round(pressureAnon * limitMiB), 5), reader(hotFile), ...busy()]);
  const oom = v1 ? /under_oom \d+[\s\S]*oom_kill (\d+)/.exec(fs.readFileSync(path.join(cgDir, 'memory.oom_control'), 'utf8'))?.[1] : /oom_kill (\d+)/.exec(fs.readFileSync(path.join(cgDir, 'memory.events'), 'utf8'))?.[1];
  console.log(`\n# ${new Date().toISOString()} load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; OOM kills in the cgroup: ${oom ?? '?'}`);
  console.log('\n| phase | PSI some avg10 median | max | PSI full avg10 max | tightest source available % (min – max) | evict, former rule | evict, current defaults |');
  console.log('|---|---|---|---|---|---|---|');
  for (const l of summary) console.log(l);
} finally {
  await cleanup();
}
