// Where a restored clone's first invocation spends its time, step by step, below
// the daemon: QEMU restore, the first message, the resync, the first and second
// run. Under TCG it also reads QEMU's translation-block count (`info jit`) and the
// VMM's CPU time after each step: a fresh QEMU process starts with an empty
// translation cache, so every guest code path a clone runs for the first time is
// translated again — that, not memory, is what a TCG restore pays for.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildImage, defaultCacheDir } from '../src/image/builder.js';
import { QemuDriver, type QemuVm } from '../src/runtimes/qemu/driver.js';
import type { AgentRequestBody } from '../src/runtimes/agent-protocol.js';
import type { SnapshotFiles, VmConfig } from '../src/runtimes/types.js';
import { machine, ms, summarize, table, type Summary } from './common.js';

const HELLO = Buffer.from('function main(p){ return { greeting: `Hello, ${p.name}!` }; }').toString('base64');

interface Sample {
  ms: number;
  tbs?: number;
  cpuMs: number;
}

export interface RestoreStepsResult {
  machine: Record<string, string | number>;
  accelerator: string;
  coldToReadyMs: Summary;
  runs: number;
  variants: Array<{ name: string; steps: Array<{ step: string; time: Summary; tbs?: Summary; cpuMs: Summary }>; total: Summary }>;
}

/** Translation blocks QEMU holds so far (TCG only) and the VMM's user+system CPU time in ms. */
async function counters(vm: QemuVm, tcg: boolean): Promise<{ tbs?: number; cpuMs: number }> {
  let tbs: number | undefined;
  if (tcg) {
    const out = await vm.qmp.execute<string>('human-monitor-command', { 'command-line': 'info jit' });
    const m = /TB count\s+(\d+)/.exec(String(out));
    if (m) tbs = Number(m[1]);
  }
  const stat = fs.readFileSync(`/proc/${vm.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return { tbs, cpuMs: (ticks * 1000) / 100 };
}

export async function benchRestoreSteps(opts: { runs: number; log?: (s: string) => void }): Promise<RestoreStepsResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const image = await buildImage({ cacheDir: defaultCacheDir(), log: (l) => log(`  image: ${l}`) });
  const tmp = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fc-restore-steps-'));
  const driver = new QemuDriver({ log: () => undefined });
  const accel = await driver.decideAccelerator(image);
  const tcg = accel.accelerator === 'tcg';
  let seq = 0;
  const cfg = (memory: VmConfig['memory']): VmConfig => {
    const vmId = `steps-${process.pid}-${++seq}`;
    return { vmId, memoryMiB: 256, vcpus: 1, image, runDir: path.join(tmp, 'run', vmId), accelerator: accel.accelerator, memory };
  };
  const live = new Set<QemuVm>();
  try {
    const snap: SnapshotFiles = { kind: 'shared-memory', statePath: path.join(tmp, 'state'), memoryPath: path.join(tmp, 'mem') };
    const coldReady: number[] = [];
    // a few cold boots for the baseline; the last one is snapshotted after init
    for (let i = 0; i < 3; i++) {
      const last = i === 2;
      const t0 = performance.now();
      const vm = await driver.boot(cfg(last ? { kind: 'file', path: snap.memoryPath, share: true } : { kind: 'anonymous' }));
      live.add(vm);
      await vm.channel.ready(120_000);
      coldReady.push(performance.now() - t0);
      if (last) {
        const r = await vm.channel.request({ op: 'init', files: { 'index.js': HELLO }, main: 'index.js', entry: 'main', env: {} }, 60_000);
        if (!r.ok) throw new Error(`init failed: ${r.error.message}`);
        await vm.snapshot(snap);
      }
      await vm.stop();
      live.delete(vm);
    }
    log(`  cold boot -> agent ready: median ${ms(summarize(coldReady).median)}`);

    const resync = (kernel: 'now' | 'deferred'): AgentRequestBody => ({ op: 'resync', epochMs: Date.now(), seed: randomBytes(32).toString('base64'), kernel });
    const run = (): AgentRequestBody => ({ op: 'run', activationId: 'steps', params: { name: 'steps' }, deadlineMs: 30_000 });
    const plans: Array<{ name: string; steps: Array<[string, () => AgentRequestBody]> }> = [
      { name: 'first ping only (as in vm-notes)', steps: [['first ping', () => ({ op: 'ping' })]] },
      {
        name: 'daemon path, kernelResync before-run',
        steps: [
          ['resync (kernel now)', () => resync('now')],
          ['first run', run],
          ['second run', run],
        ],
      },
      {
        name: 'daemon path, kernelResync deferred',
        steps: [
          ['resync (deferred)', () => resync('deferred')],
          ['first run', run],
          ['second run (kernel part just ran)', run],
        ],
      },
    ];
    const variants: RestoreStepsResult['variants'] = [];
    for (const plan of plans) {
      const samples = new Map<string, Sample[]>();
      const totals: number[] = [];
      const add = (k: string, s: Sample): void => void (samples.get(k) ?? samples.set(k, []).get(k)!).push(s);
      for (let i = 0; i < opts.runs; i++) {
        const t0 = performance.now();
        const vm = (await driver.restore(cfg({ kind: 'file', path: snap.memoryPath, share: false }), snap));
        live.add(vm);
        let prev = { t: performance.now(), ...(await counters(vm, tcg)) };
        add('QEMU restore (spawn, load, cont)', { ms: prev.t - t0, tbs: prev.tbs, cpuMs: prev.cpuMs });
        let stepsMs = prev.t - t0;
        for (const [name, req] of plan.steps) {
          const a = performance.now();
          const r = await vm.channel.request(req(), 60_000);
          const dt = performance.now() - a;
          if (!r.ok) throw new Error(`${name}: ${r.error.message}`);
          stepsMs += dt;
          // counters are read between steps, outside the timed request
          const c = await counters(vm, tcg);
          add(name, { ms: dt, tbs: c.tbs !== undefined && prev.tbs !== undefined ? c.tbs - prev.tbs : undefined, cpuMs: c.cpuMs - prev.cpuMs });
          prev = { t: performance.now(), ...c };
        }
        totals.push(stepsMs);
        await vm.stop();
        live.delete(vm);
      }
      const steps = [...samples.entries()].map(([step, xs]) => {
        const tb = xs.map((x) => x.tbs).filter((x): x is number => x !== undefined);
        return { step, time: summarize(xs.map((x) => x.ms)), ...(tb.length ? { tbs: summarize(tb) } : {}), cpuMs: summarize(xs.map((x) => x.cpuMs)) };
      });
      variants.push({ name: plan.name, steps, total: summarize(totals) });
      log(`  ${plan.name}: median total ${ms(summarize(totals).median)}`);
    }
    return { machine: machine(), accelerator: accel.accelerator, coldToReadyMs: summarize(coldReady), runs: opts.runs, variants };
  } finally {
    await Promise.allSettled([...live].map((v) => v.stop()));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatRestoreSteps(r: RestoreStepsResult): string {
  const out = [`machine: ${JSON.stringify(r.machine)}`, `accelerator: ${r.accelerator}; ${r.runs} restores per variant; cold boot -> agent ready median ${ms(r.coldToReadyMs.median)} (p99 ${ms(r.coldToReadyMs.p99)})`];
  for (const v of r.variants) {
    out.push(
      '',
      `${v.name}: total median ${ms(v.total.median)} / p99 ${ms(v.total.p99)}, 1/${(r.coldToReadyMs.median / v.total.median).toFixed(0)} of the cold boot to agent ready`,
      table(
        ['step', 'median', 'p99', 'translation blocks (median)', 'VMM CPU (median)'],
        v.steps.map((s) => [s.step, ms(s.time.median), ms(s.time.p99), s.tbs ? String(Math.round(s.tbs.median)) : '-', ms(s.cpuMs.median)]),
      ),
    );
  }
  return out.join('\n');
}
