// faascell bench ksm (issue 24): kernel same-page merging of idle cold-booted VMs'
// guest memory (QEMU marks guest RAM mergeable), side by side on the same VMs:
// N idle VMs are booted and measured with ksmd off (PSS per VM, a warm run's time),
// then ksmd is turned on with the host's scan settings until it has made two full
// scans (bounded), and the same VMs are measured again, with ksmd's own CPU time and
// one more VM's boot time while it runs. KSM is host-wide: the bench refuses to run
// when ksmd is already on, and in every case puts back what it found (run, scan
// settings) after unmerging what it merged (run=2). On a shared machine other
// processes' mergeable memory (other QEMUs) is scanned too: the raw file says so.
import fs from 'node:fs';
import os from 'node:os';
import { machine, summarize, type Summary } from './common.js';
import { benchTmp, bootHello, pickVariants, pool, prepareVariants, releaseVariants, sleep, type HelloVm } from './guest.js';

const KSM = '/sys/kernel/mm/ksm';
const readKsm = (f: string): string => fs.readFileSync(`${KSM}/${f}`, 'utf8').trim();
const writeKsm = (f: string, v: string): void => fs.writeFileSync(`${KSM}/${f}`, v);

export interface KsmPhase {
  pssMiB: Summary;
  /** a warm run (host clock, request to answer) per VM */
  runMs: Summary;
}

export interface KsmResult {
  machine: Record<string, string | number>;
  vms: number;
  settleSeconds: number;
  off: KsmPhase & { bootMs: Summary };
  on: KsmPhase & { bootMs: number; scanSeconds: number; fullScans: number; ksmdCpuPercent: number; pagesShared: number; pagesSharing: number; settings: { pagesToScan: number; sleepMs: number } };
}

/** ksmd's pid (a kernel thread), read from /proc/PID/comm. */
function ksmdPid(): number | undefined {
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/comm`, 'utf8').trim() === 'ksmd') return Number(e);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** utime + stime of a process, seconds. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // USER_HZ
}

function pssMiB(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

async function runMs(v: HelloVm): Promise<number> {
  const t0 = performance.now();
  const r = await v.vm.channel.request({ op: 'run', activationId: `ksm-${Math.random().toString(36).slice(2)}`, params: { name: 'ksm' }, deadlineMs: 60_000 }, 60_000);
  if (!r.ok) throw new Error(`run: ${r.error.message}`);
  return performance.now() - t0;
}

async function measure(vms: HelloVm[]): Promise<KsmPhase> {
  const pss = vms.map((v) => pssMiB(v.vm.pid));
  const runs: number[] = [];
  for (const v of vms) runs.push(await runMs(v));
  return { pssMiB: summarize(pss), runMs: summarize(runs) };
}

export async function benchKsm(opts: { vms: number; settleSeconds?: number; maxScanSeconds?: number; log?: (s: string) => void }): Promise<KsmResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const settle = opts.settleSeconds ?? 8;
  if (!fs.existsSync(`${KSM}/run`)) throw new Error(`${KSM}: this kernel has no KSM`);
  const found = { run: readKsm('run'), pagesToScan: readKsm('pages_to_scan'), sleepMs: readKsm('sleep_millisecs') };
  if (found.run !== '0') throw new Error(`ksmd is already on (${KSM}/run = ${found.run}): the bench compares off and on, and leaves the host as it found it`);
  const [rig] = await prepareVariants(pickVariants(['tuned'], ['tuned']), log);
  const tmp = benchTmp('fc-ksm-');
  const vms: HelloVm[] = [];
  let extra: HelloVm | undefined;
  try {
    await pool(Array.from({ length: opts.vms }, (_, i) => i), 2, async () => void vms.push(await bootHello(rig!, tmp)));
    const bootOff = summarize(vms.map((v) => v.readyMs));
    await sleep(settle * 1000);
    const off = await measure(vms);
    log(`  ksm off: median PSS ${off.pssMiB.median.toFixed(1)} MiB over ${vms.length} idle VMs`);

    const pid = ksmdPid();
    const cpu0 = pid !== undefined ? cpuSeconds(pid) : NaN;
    const scans0 = Number(readKsm('full_scans'));
    const t0 = performance.now();
    writeKsm('run', '1');
    // one more VM boots while ksmd scans
    extra = await bootHello(rig!, tmp);
    const limit = (opts.maxScanSeconds ?? 180) * 1000;
    while (Number(readKsm('full_scans')) < scans0 + 2 && performance.now() - t0 < limit) await sleep(1000);
    const scanSeconds = (performance.now() - t0) / 1000;
    const cpu = pid !== undefined ? cpuSeconds(pid) - cpu0 : NaN;
    const on = await measure(vms);
    const result: KsmResult = {
      machine: machine(),
      vms: vms.length,
      settleSeconds: settle,
      off: { ...off, bootMs: bootOff },
      on: {
        ...on,
        bootMs: extra.readyMs,
        scanSeconds,
        fullScans: Number(readKsm('full_scans')) - scans0,
        ksmdCpuPercent: (100 * cpu) / scanSeconds,
        pagesShared: Number(readKsm('pages_shared')),
        pagesSharing: Number(readKsm('pages_sharing')),
        settings: { pagesToScan: Number(found.pagesToScan), sleepMs: Number(found.sleepMs) },
      },
    };
    log(`  ksm on: median PSS ${on.pssMiB.median.toFixed(1)} MiB after ${result.on.fullScans} full scans in ${scanSeconds.toFixed(0)} s`);
    return result;
  } finally {
    // unmerge what was merged and stop ksmd, then put every setting back as found
    try {
      writeKsm('run', '2');
      writeKsm('run', found.run);
      writeKsm('pages_to_scan', found.pagesToScan);
      writeKsm('sleep_millisecs', found.sleepMs);
    } catch (err) {
      log(`  could not restore ${KSM}: ${String(err)} — check it by hand (found: ${JSON.stringify(found)})`);
    }
    await Promise.allSettled([...vms, ...(extra ? [extra] : [])].map((v) => v.vm.stop()));
    await releaseVariants(rig ? [rig] : []);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatKsm(r: KsmResult): string {
  const f = (s: Summary) => `${s.median.toFixed(1)} (p99 ${s.p99.toFixed(1)})`;
  return [
    `KSM on ${r.vms} idle cold-booted 256 MiB VMs (tuned image), the same VMs measured with ksmd off, then on (host settings: pages_to_scan ${r.on.settings.pagesToScan}, sleep_millisecs ${r.on.settings.sleepMs})`,
    '',
    '| | ksmd off | ksmd on |',
    '|---|---|---|',
    `| PSS per VM, MiB, median (p99) | ${f(r.off.pssMiB)} | ${f(r.on.pssMiB)} |`,
    `| warm run (host → agent → host), ms, median (p99) | ${f(r.off.runMs)} | ${f(r.on.runMs)} |`,
    `| cold boot to agent ready, ms | ${f(r.off.bootMs)} (the ${r.vms} VMs) | ${r.on.bootMs.toFixed(0)} (one VM, while ksmd scans) |`,
    `| ksmd CPU, % of one core | — | ${r.on.ksmdCpuPercent.toFixed(1)} over ${r.on.scanSeconds.toFixed(0)} s (${r.on.fullScans} full scans) |`,
    `| pages shared / sharing (host-wide) | — | ${r.on.pagesShared} / ${r.on.pagesSharing} |`,
    '',
    `PSS saved per VM: ${(r.off.pssMiB.median - r.on.pssMiB.median).toFixed(1)} MiB (median). Host-wide: other processes' mergeable memory was scanned and merged too.`,
    `machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (a shared machine: other work ran beside)`,
  ].join('\n');
}
