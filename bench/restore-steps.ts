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
import type { QemuVm } from '../src/runtimes/qemu/driver.js';
import type { AgentRequestBody, ResyncFields } from '../src/runtimes/agent-protocol.js';
import type { SnapshotFiles, VmConfig } from '../src/runtimes/types.js';
import { machine, ms, summarize, table, type Summary } from './common.js';
import { pickVariants, prepareVariants, releaseVariants, type VariantRig } from './guest.js';
import { ensureDense } from '../src/runtimes/ram-file.js';

const HELLO = Buffer.from('function main(p){ return { greeting: `Hello, ${p.name}!` }; }').toString('base64');

interface Sample {
  ms: number;
  tbs?: number;
  cpuMs: number;
}

export interface RestoreStepsResult {
  machine: Record<string, string | number>;
  accelerator: string;
  runs: number;
  /** one entry per image variant (bench/guest.ts), compared side by side */
  images: Array<{ variant: string; about: string; coldToReadyMs: Summary; plans: PlanResult[] }>;
}

interface PlanResult {
  name: string;
  steps: Array<{ step: string; time: Summary; tbs?: Summary; cpuMs: Summary }>;
  total: Summary;
  /** the agent's own timings of the resync (ms after it received the message): reseedMs, clockMs, kernelSeedMs, durationMs */
  resyncGuest?: Record<string, Summary>;
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

export async function benchRestoreSteps(opts: { runs: number; variants?: string[]; log?: (s: string) => void }): Promise<RestoreStepsResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  // default: the tuned image alone (its resync in one helper round trip) vs the same with two calls
  const rigs = await prepareVariants(pickVariants(opts.variants, ['tuned']), log);
  const images: RestoreStepsResult['images'] = [];
  try {
    for (const rig of rigs) images.push(await restoreStepsOf(rig, opts.runs, log));
  } finally {
    await releaseVariants(rigs);
  }
  return { machine: machine(), accelerator: rigs[0]?.accelerator ?? 'tcg', runs: opts.runs, images };
}

async function restoreStepsOf(rig: VariantRig, runs: number, log: (s: string) => void): Promise<RestoreStepsResult['images'][number]> {
  const { image, driver } = rig;
  const tmp = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fc-restore-steps-'));
  const accel = { accelerator: rig.accelerator };
  const tcg = accel.accelerator === 'tcg';
  let seq = 0;
  const cfg = (memory: VmConfig['memory']): VmConfig => {
    const vmId = `steps-${process.pid}-${++seq}`;
    return { vmId, memoryMiB: 256, vcpus: 1, image, runDir: path.join(tmp, 'run', vmId), accelerator: accel.accelerator, memory, ...(rig.variant.cmdline ? { extraCmdline: rig.variant.cmdline } : {}) };
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
    await ensureDense(snap.memoryPath); // as the SnapshotManager does after a commit (issue 19)
    log(`  ${rig.variant.name}: cold boot -> agent ready: median ${ms(summarize(coldReady).median)}`);

    const resyncFields = (kernel: 'now' | 'deferred'): ResyncFields => ({ epochMs: Date.now(), seed: randomBytes(32).toString('base64'), kernel });
    const resync = (kernel: 'now' | 'deferred'): AgentRequestBody => ({ op: 'resync', ...resyncFields(kernel) });
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
      // issue 9: the resync carried by the first run (one message instead of two)
      {
        name: 'first run carries the resync (kernel now)',
        steps: [
          ['run + resync (kernel now)', () => ({ ...run(), resync: resyncFields('now') })],
          ['second run', run],
        ],
      },
      {
        name: 'first run carries the resync (kernel deferred)',
        steps: [
          ['run + resync (deferred)', () => ({ ...run(), resync: resyncFields('deferred') })],
          ['second run (kernel part just ran)', run],
        ],
      },
    ];
    const variants: PlanResult[] = [];
    for (const plan of plans) {
      const samples = new Map<string, Sample[]>();
      const totals: number[] = [];
      const guest = new Map<string, number[]>();
      const add = (k: string, s: Sample): void => void (samples.get(k) ?? samples.set(k, []).get(k)!).push(s);
      for (let i = 0; i < runs; i++) {
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
          if (name.startsWith('resync') || r.resync) {
            const res = name.startsWith('resync') ? { ...((r.result ?? {}) as Record<string, number>), durationMs: r.durationMs ?? NaN } : r.resync!;
            for (const [k, v] of Object.entries(res)) if (typeof v === 'number') (guest.get(k) ?? guest.set(k, []).get(k)!).push(v);
          }
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
      variants.push({ name: plan.name, steps, total: summarize(totals), ...(guest.size ? { resyncGuest: Object.fromEntries([...guest].map(([k, v]) => [k, summarize(v)])) } : {}) });
      log(`  ${rig.variant.name}, ${plan.name}: median total ${ms(summarize(totals).median)}`);
    }
    return { variant: rig.variant.name, about: rig.variant.about, coldToReadyMs: summarize(coldReady), plans: variants };
  } finally {
    await Promise.allSettled([...live].map((v) => v.stop()));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatRestoreSteps(r: RestoreStepsResult): string {
  const out = [`machine: ${JSON.stringify(r.machine)}`, `accelerator: ${r.accelerator}; ${r.runs} restores per plan and image variant`];
  for (const img of r.images) {
    out.push('', `### image variant ${img.variant} (${img.about}); cold boot -> agent ready median ${ms(img.coldToReadyMs.median)} (p99 ${ms(img.coldToReadyMs.p99)})`);
    for (const v of img.plans) {
      out.push(
        '',
        `${v.name}: total median ${ms(v.total.median)} / p99 ${ms(v.total.p99)}, 1/${(img.coldToReadyMs.median / v.total.median).toFixed(0)} of the cold boot to agent ready`,
        table(
          ['step', 'median', 'p99', 'translation blocks (median)', 'VMM CPU (median)'],
          v.steps.map((s) => [s.step, ms(s.time.median), ms(s.time.p99), s.tbs ? String(Math.round(s.tbs.median)) : '-', ms(s.cpuMs.median)]),
        ),
      );
      if (v.resyncGuest) out.push(`  in the guest (ms after receipt, median): ${Object.entries(v.resyncGuest).map(([k, s]) => `${k} ${s.median.toFixed(1)}`).join(', ')}`);
    }
  }
  if (r.images.length > 1) {
    const plans = r.images[0]!.plans.map((p) => p.name);
    out.push(
      '',
      'side by side, total median / p99:',
      table(['plan', ...r.images.map((i) => i.variant)], plans.map((p) => [p, ...r.images.map((i) => {
        const x = i.plans.find((q) => q.name === p);
        return x ? `${ms(x.total.median)} / ${ms(x.total.p99)}` : '-';
      })])),
    );
  }
  return out.join('\n');
}
