// faascell bench cold-snapshot: the cold path of a start that leaves a snapshot, old vs new,
// side by side in one run (issue 9, item 1). Three private daemons, one per way, take turns:
//   none     snapshots off: kernel + agent ready + init + run, the floor
//   restore  pause, save, stop the source, serve from a restore of its own snapshot (the former path)
//   copy     pause, save the device state and copy the RAM file, the same VM runs on (the default)
// Each round deploys a new version of hello on every daemon (its snapshot dropped), so every
// measured call is a cold start; the order of the three rotates from round to round.
import { timedInvoke, benchDaemon, evictAndWait, fixture, machine, ms, summarize, table } from './common.js';
const WAYS = ['none', 'restore', 'copy'];
const STAGE_NAMES = ['kernel', 'agent ready', 'init', 'snapshot', 'after snapshot → run', 'run', 'server total'];
export async function benchColdSnapshot(opts) {
    const log = opts.log ?? ((s) => console.error(s));
    const placement = { policies: { placement: { policy: 'fixed', tier: 'shm' } } };
    const daemons = new Map();
    try {
        daemons.set('none', await benchDaemon({ snapshots: { enabled: false } }));
        daemons.set('restore', await benchDaemon({ ...placement, snapshots: { coldSnapshot: 'restore' } }));
        daemons.set('copy', await benchDaemon({ ...placement, snapshots: { coldSnapshot: 'copy' } }));
        const client = new Map(WAYS.map((w) => [w, []]));
        const stages = new Map(WAYS.map((w) => [w, Object.fromEntries(STAGE_NAMES.map((s) => [s, []]))]));
        const extra = new Map(WAYS.map((w) => [w, []]));
        const hello = fixture('hello.js');
        for (let i = 0; i < opts.runs; i++) {
            const order = WAYS.map((_, k) => WAYS[(k + i) % WAYS.length]);
            for (const way of order) {
                const c = daemons.get(way).client;
                // a new version: its instances stop and its snapshot is dropped, so the call below is cold
                await evictAndWait(c, 'hello').catch(() => undefined);
                await c.deploy('hello', Buffer.concat([hello, Buffer.from(`\n// round ${i}\n`)]), { codeKind: 'js' });
                const r = await timedInvoke(c, 'hello', { name: 'bench' });
                if (r.startPath !== 'cold')
                    throw new Error(`${way}: expected a cold start, got ${r.startPath}`);
                const t = r.body.activation.timings;
                const d = (a, b) => (a !== undefined && b !== undefined ? b - a : NaN);
                const st = stages.get(way);
                const kernel = d(t.vmmSpawned, t.vmBooted);
                const agent = d(t.vmBooted, t.agentReady);
                const init = d(t.agentReady, t.initDone);
                const run = d(t.runStarted, t.runFinished);
                const total = d(t.vmmSpawned, t.runFinished);
                st['kernel'].push(kernel);
                st['agent ready'].push(agent);
                st['init'].push(init);
                st['snapshot'].push(d(t.initDone, t.snapshotTaken));
                st['after snapshot → run'].push(d(t.snapshotTaken ?? t.initDone, t.runStarted));
                st['run'].push(run);
                st['server total'].push(total);
                // the goal: cold ≤ kernel + agent ready + init + run + 30 ms
                extra.get(way).push(total - (kernel + agent + init + run));
                client.get(way).push(r.ms);
                if (way !== 'none') {
                    // the instance that served is warm and answers again (the copy way: the source itself)
                    const w = await timedInvoke(c, 'hello', { name: 'again' });
                    if (w.startPath !== 'warm')
                        throw new Error(`${way}: second call not warm (${w.startPath})`);
                }
                log(`  round ${i + 1}/${opts.runs} ${way}: ${ms(r.ms)} (beyond kernel+agent+init+run: ${ms(total - (kernel + agent + init + run))})`);
            }
        }
        const ways = Object.fromEntries(WAYS.map((w) => [w, { client: summarize(client.get(w)), stages: Object.fromEntries(Object.entries(stages.get(w)).map(([k, v]) => [k, summarize(v.filter(Number.isFinite))])), extra: summarize(extra.get(w)) }]));
        return { machine: machine(), accelerator: daemons.get('copy').d.accelerator, runs: opts.runs, ways };
    }
    finally {
        await Promise.allSettled([...daemons.values()].map((b) => b.close()));
    }
}
export function formatColdSnapshot(r) {
    const cell = (s) => (s && s.n > 0 ? `${ms(s.median)} / ${ms(s.p99)}` : '-');
    const rows = [
        ['cold call, client side', ...WAYS.map((w) => cell(r.ways[w].client))],
        ...STAGE_NAMES.map((s) => [`  ${s}`, ...WAYS.map((w) => cell(r.ways[w].stages[s]))]),
        ['beyond kernel + agent + init + run (goal ≤ 30 ms)', ...WAYS.map((w) => cell(r.ways[w].extra))],
    ];
    return [
        `machine: ${JSON.stringify(r.machine)}`,
        `accelerator: ${r.accelerator}; hello, 256 MiB, 1 vCPU; ${r.runs} cold starts per way, interleaved; median / p99`,
        '',
        table(['', 'no snapshot (floor)', 'restore (former path)', 'copy (default)'], rows),
    ].join('\n');
}
//# sourceMappingURL=cold-snapshot.js.map