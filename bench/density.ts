// faascell bench density: N clones of one snapshot restored at once (issue 9, item 6), time until all
// have answered, per N, on three paths:
//   raw, clones stay      the driver alone: N × (restore, resync, run) at once; answered clones idle on
//   raw, clone stops      the same, each clone stopped once it answered (no idle clones competing)
//   daemon                N invocations at once through the daemon (its core admits starts a few at a time)
// Per-clone VMM CPU tells whether a clone costs more when more run at once (contention adds wall time,
// not CPU; CPU that grows with N is extra work, e.g. idle clones' timer ticks under TCG).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildImage, defaultCacheDir } from '../src/image/builder.js';
import { QemuDriver, type QemuVm } from '../src/runtimes/qemu/driver.js';
import type { SnapshotFiles, VmConfig } from '../src/runtimes/types.js';
import { benchDaemon, evictAndWait, fixture, machine, ms, summarize, table, timedInvoke, type Summary } from './common.js';
import { ensureDense } from '../src/runtimes/ram-file.js';

const HELLO = Buffer.from('function main(p){ return { greeting: `Hello, ${p.name}!` }; }').toString('base64');

export interface DensityRow {
  path: 'raw, clones stay' | 'raw, clone stops' | 'daemon';
  n: number;
  allAnsweredMs: number;
  perCloneMs: number;
  failures: number;
  /** a clone's own latency (start → answer) */
  latency?: Summary;
  restoreMs?: Summary;
  resyncMs?: Summary;
  cpuPerCloneMs?: Summary;
  restores?: number;
  firstError?: string;
}

export interface DensityResult {
  machine: Record<string, string | number>;
  accelerator: string;
  rows: DensityRow[];
}

export async function benchDensity(opts: { ns: number[]; daemon: boolean; raw?: boolean; log?: (s: string) => void }): Promise<DensityResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const image = await buildImage({ cacheDir: defaultCacheDir(), log: (l) => log(`  image: ${l}`) });
  const tmp = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fc-density-'));
  const driver = new QemuDriver({ log: () => undefined, restoreTimeoutMs: 300_000, connectTimeoutMs: 120_000 });
  const accel = await driver.decideAccelerator(image);
  let seq = 0;
  const cfg = (memory: VmConfig['memory']): VmConfig => {
    const vmId = `dens-${process.pid}-${++seq}`;
    return { vmId, memoryMiB: 256, vcpus: 1, image, runDir: path.join(tmp, 'run', vmId), accelerator: accel.accelerator, memory };
  };
  const live = new Set<QemuVm>();
  const rows: DensityRow[] = [];
  try {
    const snap: SnapshotFiles = { kind: 'shared-memory', statePath: path.join(tmp, 'state'), memoryPath: path.join(tmp, 'mem') };
    const src = await driver.boot(cfg({ kind: 'file', path: snap.memoryPath, share: true }));
    live.add(src);
    await src.channel.ready(120_000);
    const init = await src.channel.request({ op: 'init', files: { 'index.js': HELLO }, main: 'index.js', entry: 'main', env: {} }, 60_000);
    if (!init.ok) throw new Error(`init failed: ${init.error.message}`);
    await src.snapshot(snap);
    await src.stop();
    await ensureDense(snap.memoryPath); // as the SnapshotManager does after a commit (issue 19)
    live.delete(src);

    for (const stopAfter of opts.raw === false ? [] : [false, true]) {
      for (const n of opts.ns) {
        const t0 = performance.now();
        const clones = await Promise.all(
          Array.from({ length: n }, async () => {
            const a = performance.now();
            let vm: QemuVm | undefined;
            try {
              vm = await driver.restore(cfg({ kind: 'file', path: snap.memoryPath, share: false }), snap);
              live.add(vm);
              const b = performance.now();
              const rs = await vm.channel.request({ op: 'resync', epochMs: Date.now(), seed: randomBytes(32).toString('base64'), kernel: 'now' }, 300_000);
              if (!rs.ok) throw new Error(`resync: ${rs.error.message}`);
              const c = performance.now();
              const r = await vm.channel.request({ op: 'run', activationId: 'dens', params: { name: 'd' }, deadlineMs: 300_000 }, 300_000);
              if (!r.ok) throw new Error(`run: ${r.error.message}`);
              const done = performance.now();
              const cpu = vm.cpuMs() ?? NaN;
              if (stopAfter) {
                await vm.stop();
                live.delete(vm);
              }
              return { ok: true as const, done, latency: done - a, restore: b - a, resync: c - b, cpu };
            } catch (e) {
              if (vm && stopAfter) {
                await vm.stop();
                live.delete(vm);
              }
              return { ok: false as const, done: performance.now(), error: (e as Error).message.split('\n')[0] };
            }
          }),
        );
        const all = Math.max(...clones.map((c) => c.done)) - t0;
        const ok = clones.filter((c) => c.ok);
        const failed = clones.filter((c) => !c.ok);
        const row: DensityRow = {
          path: stopAfter ? 'raw, clone stops' : 'raw, clones stay',
          n,
          allAnsweredMs: all,
          perCloneMs: all / n,
          failures: failed.length,
          latency: summarize(ok.map((c) => c.latency)),
          restoreMs: summarize(ok.map((c) => c.restore)),
          resyncMs: summarize(ok.map((c) => c.resync)),
          cpuPerCloneMs: summarize(ok.map((c) => c.cpu)),
          ...(failed[0] && !failed[0].ok ? { firstError: failed[0].error } : {}),
        };
        rows.push(row);
        log(`  ${row.path} N=${n}: all answered in ${ms(all)} (${ms(all / n)} per clone), failures ${failed.length}, CPU per clone ${ms(row.cpuPerCloneMs!.median)}`);
        await Promise.allSettled([...live].map((v) => v.stop()));
        live.clear();
      }
    }
  } finally {
    await Promise.allSettled([...live].map((v) => v.stop()));
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  if (opts.daemon) {
    const max = Math.max(...opts.ns);
    // every request holds its clone (stateful.js holdMs) long enough that none is free before all have
    // started, and preferWarm is off: N requests need N clones. What is timed is t0 → the last run started
    // (its record's runStarted), i.e. until all N clones were restored and serving; the hold is not counted.
    const b = await benchDaemon({
      node: { memoryBudgetMiB: max * 256 + 1024, highWatermark: 1, lowWatermark: 0.9 },
      functionLimits: { maxInstances: max },
      admission: { maxConcurrentInvocations: max + 8, maxQueueDelayMs: 300_000, preferWarm: false },
      policies: { placement: { policy: 'fixed', tier: 'shm' } },
    });
    try {
      // the hold below must stay within the function's timeout (30 s by default)
      await b.client.deploy('stateful', fixture('stateful.js'), { codeKind: 'js', maxInstances: max, timeoutMs: 300_000 });
      await timedInvoke(b.client, 'stateful', {});
      for (const n of opts.ns) {
        await evictAndWait(b.client, 'stateful');
        const holdMs = 2000 + n * 400;
        const t0 = Date.now();
        const rs = await Promise.all(
          Array.from({ length: n }, async () => {
            const a = performance.now();
            const r = await b.client.invoke('stateful', { holdMs });
            return { r, ms: performance.now() - a };
          }),
        );
        const started = rs.map((x) => x.r.body.activation?.timestamps.runStarted ?? NaN).filter(Number.isFinite);
        const all = Math.max(...started) - t0;
        const failures = rs.filter((x) => x.r.status !== 200);
        const row: DensityRow = {
          path: 'daemon',
          n,
          allAnsweredMs: all,
          perCloneMs: all / n,
          failures: failures.length,
          latency: summarize(started.map((t) => t - t0)),
          restores: rs.filter((x) => x.r.body.activation?.startPath === 'restore').length,
          ...(failures[0] ? { firstError: JSON.stringify(failures[0].r.body.error).slice(0, 200) } : {}),
        };
        rows.push(row);
        log(`  daemon N=${n}: all ${n} running after ${ms(all)}, restores ${row.restores}, failures ${failures.length}`);
      }
      await evictAndWait(b.client, 'stateful');
    } finally {
      await b.close();
    }
  }
  return { machine: machine(), accelerator: accel.accelerator, rows };
}

export function formatDensity(r: DensityResult): string {
  const s = (x?: Summary): string => (x && x.n ? `${ms(x.median)} / ${ms(x.p99)}` : '-');
  return [
    `machine: ${JSON.stringify(r.machine)}`,
    `accelerator: ${r.accelerator}; hello (daemon: stateful.js holding its clone), 256 MiB, 1 vCPU; clone latency (daemon: until its run started), restore, resync, CPU: median / p99`,
    '',
    table(
      ['path', 'N', 'all answered', 'per clone', 'failures', 'clone latency', 'QEMU restore', 'resync', 'VMM CPU per clone', 'restores'],
      r.rows.map((x) => [x.path, x.n, ms(x.allAnsweredMs), ms(x.perCloneMs), x.failures, s(x.latency), s(x.restoreMs), s(x.resyncMs), s(x.cpuPerCloneMs), x.restores ?? '-']),
    ),
  ].join('\n');
}
