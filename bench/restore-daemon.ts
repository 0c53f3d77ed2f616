// faascell bench restore-daemon: restore → response of hello through the daemon (issue 9, item 4 end
// to end), the VMMs isolated as the daemon's defaults isolate them (jail, seccomp, cgroups when root).
// Two private daemons take turns, one per `snapshots.resync` way:
//   with-run  the resync rides on the clone's first run (one channel round trip; the default)
//   message   a separate resync request before the clone is ready (before issue 9)
// Every round evicts hello on both, so each measured call is a restore from the tmpfs tier.
import { benchDaemon, evictAndWait, fixture, machine, ms, summarize, table, timedInvoke, type BenchDaemon, type Summary } from './common.js';
import { removeTierDir } from '../src/snapshots/tier-gc.js';

export type ResyncWay = 'with-run' | 'message';
const WAYS: ResyncWay[] = ['with-run', 'message'];
const STAGES = ['QEMU restore (spawn → state loaded)', 'state loaded → ready', 'ready → run starts', 'run (with a carried resync)', 'server: spawn → run finished'] as const;

export interface RestoreDaemonResult {
  machine: Record<string, string | number>;
  accelerator: string;
  jailed: boolean;
  runs: number;
  ways: Record<ResyncWay, { client: Summary; stages: Record<string, Summary> }>;
}

export async function benchRestoreDaemon(opts: { runs: number; log?: (s: string) => void }): Promise<RestoreDaemonResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const daemons = new Map<ResyncWay, BenchDaemon>();
  const tiers: string[] = [];
  try {
    for (const way of WAYS) {
      const shm = `/dev/shm/fc-bench-rd-${process.pid}-${way}`;
      tiers.push(shm);
      daemons.set(way, await benchDaemon({ policies: { placement: { policy: 'fixed', tier: 'shm' } }, snapshots: { resync: way, tiers: [{ name: 'shm', path: shm, latencyRank: 0, capacityMiB: 4096 }] } }));
    }
    const status = await daemons.get('with-run')!.client.call<{ limits: { vmm: { jailed: boolean } } }>('GET', '/v1/status');
    const hello = fixture('hello.js');
    for (const way of WAYS) {
      const c = daemons.get(way)!.client;
      await c.deploy('hello', hello, { codeKind: 'js' });
      // the cold start leaves the snapshot
      const first = await timedInvoke(c, 'hello', { name: 'bench' });
      log(`  ${way}: cold start ${ms(first.ms)} (${first.startPath})`);
    }
    const client = new Map<ResyncWay, number[]>(WAYS.map((w) => [w, []]));
    const stages = new Map<ResyncWay, Record<string, number[]>>(WAYS.map((w) => [w, Object.fromEntries(STAGES.map((s) => [s, []]))]));
    for (let i = 0; i < opts.runs; i++) {
      for (const way of i % 2 === 0 ? WAYS : [...WAYS].reverse()) {
        const c = daemons.get(way)!.client;
        await evictAndWait(c, 'hello');
        const r = await timedInvoke(c, 'hello', { name: 'bench' });
        if (r.startPath !== 'restore') throw new Error(`${way}: expected a restore, got ${r.startPath}`);
        const t = r.body.activation!.timestamps;
        const d = (a?: number, b?: number): number => (a !== undefined && b !== undefined ? b - a : NaN);
        const st = stages.get(way)!;
        st[STAGES[0]]!.push(d(t.vmmSpawned, t.snapshotLoaded));
        st[STAGES[1]]!.push(d(t.snapshotLoaded, t.resumed));
        st[STAGES[2]]!.push(d(t.resumed, t.runStarted));
        st[STAGES[3]]!.push(d(t.runStarted, t.runFinished));
        st[STAGES[4]]!.push(d(t.vmmSpawned, t.runFinished));
        client.get(way)!.push(r.ms);
        log(`  ${way} ${i + 1}/${opts.runs}: ${ms(r.ms)}`);
      }
    }
    const ways = Object.fromEntries(
      WAYS.map((w) => [w, { client: summarize(client.get(w)!), stages: Object.fromEntries(Object.entries(stages.get(w)!).map(([k, v]) => [k, summarize(v.filter(Number.isFinite))])) }]),
    ) as RestoreDaemonResult['ways'];
    return { machine: machine(), accelerator: daemons.get('with-run')!.d.accelerator, jailed: status.limits.vmm.jailed, runs: opts.runs, ways };
  } finally {
    for (const b of daemons.values()) await b.close();
    for (const t of tiers) removeTierDir(t);
  }
}

export function formatRestoreDaemon(r: RestoreDaemonResult): string {
  const cell = (s: Summary): string => `${ms(s.median)} / ${ms(s.p99)}`;
  const rows: Array<Array<string | number>> = [
    ['**restore → response, client side**', ...WAYS.map((w) => `**${cell(r.ways[w].client)}**`)],
    ...STAGES.map((s) => [`&nbsp;&nbsp;${s}`, ...WAYS.map((w) => cell(r.ways[w].stages[s]!))]),
  ];
  return [
    `hello, 256 MiB, ${r.accelerator}, VMMs ${r.jailed ? 'jailed' : 'NOT jailed'}; ${r.runs} restores per way, interleaved; median / p99; load average ${r.machine.loadavg}`,
    '',
    table(['', ...WAYS.map((w) => `resync ${w}`)], rows),
  ].join('\n');
}
