// faascell bench snapshots: cold vs restore vs warm for functions of different
// memory footprints, per storage tier, with working-set prefetch off and on;
// and density: N clones of one snapshot restored at once.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { benchDaemon, evictAndWait, fixture, machine, ms, summarize, table, timedInvoke, vmmMemory } from './common.js';
export const FUNCTIONS = [
    { name: 'hello', fixture: 'hello.js', memoryMiB: 256, params: { name: 'bench' } },
    { name: 'json', fixture: 'json-heavy.js', memoryMiB: 256, params: { q: 'x' } },
    { name: 'alloc100', fixture: 'allocate.js', memoryMiB: 512, env: { ALLOC_MIB: '100' }, params: {} },
];
async function deploy(c, f, extra = {}) {
    await c.deploy(f.name, fixture(f.fixture), { codeKind: 'js', memoryMiB: f.memoryMiB, env: f.env, ...extra });
}
/** Drop the page cache of every file of every snapshot under `dir` (an honest cold-storage restore). */
function dropCache(dir) {
    for (const snap of safeReaddir(dir)) {
        for (const f of safeReaddir(path.join(dir, snap))) {
            execFileSync('dd', [`if=${path.join(dir, snap, f)}`, 'iflag=nocache', 'count=0', 'status=none']);
        }
    }
}
function safeReaddir(d) {
    try {
        return readdirSync(d);
    }
    catch {
        return [];
    }
}
const stampsOf = (body) => (body.activation?.timestamps ?? {});
/** VMM start -> the agent's first answer: `ready` after a cold boot, the resync reply after a restore. */
function vmLevelMs(t, path) {
    const end = path === 'cold' ? t.agentReady : t.resumed;
    return end !== undefined && t.vmmSpawned !== undefined ? end - t.vmmSpawned : undefined;
}
async function restores(c, f, n, before) {
    const out = [];
    const vm = [];
    for (let i = 0; i < n; i++) {
        await evictAndWait(c, f.name);
        before?.();
        const r = await timedInvoke(c, f.name, f.params);
        if (r.startPath !== 'restore')
            throw new Error(`${f.name}: expected restore, got ${r.startPath}`);
        out.push(r.ms);
        const v = vmLevelMs(stampsOf(r.body), 'restore');
        if (v !== undefined)
            vm.push(v);
    }
    return { ms: out, vmMs: vm };
}
export async function benchSnapshots(opts) {
    const log = opts.log ?? ((s) => console.error(s));
    const rows = [];
    const colds = new Map();
    const coldVms = new Map();
    const restoreVms = new Map();
    let accelerator = '';
    // 1. pure cold boots (no snapshot taken) for the ratio
    {
        const b = await benchDaemon({ snapshots: { enabled: false } });
        accelerator = b.d.accelerator;
        try {
            for (const f of FUNCTIONS) {
                await deploy(b.client, f);
                const xs = [];
                const vm = [];
                for (let i = 0; i < opts.coldRuns; i++) {
                    await evictAndWait(b.client, f.name);
                    const r = await timedInvoke(b.client, f.name, f.params);
                    xs.push(r.ms);
                    const v = vmLevelMs(stampsOf(r.body), 'cold');
                    if (v !== undefined)
                        vm.push(v);
                }
                colds.set(f.name, xs);
                coldVms.set(f.name, vm);
                log(`  ${f.name}: cold median ${ms(summarize(xs).median)}`);
            }
        }
        finally {
            await b.close();
        }
    }
    // 2. restores per tier (and prefetch on the disk tier), warm calls
    const variants = [
        { label: 'shm', tier: 'shm', prefetch: false, dropCache: false },
        { label: 'shm, deferred kernel resync', tier: 'shm', prefetch: false, dropCache: false, kernelResync: 'deferred' },
        { label: 'shm full-stream', tier: 'shm', prefetch: false, dropCache: false, kind: 'full-stream' },
        { label: 'disk (page cache dropped)', tier: 'disk', prefetch: false, dropCache: true },
        { label: 'disk (dropped) + prefetch', tier: 'disk', prefetch: true, dropCache: true },
    ];
    const copyMs = new Map();
    const restoreBy = new Map();
    const warmBy = new Map();
    const sizeBy = new Map();
    for (const v of variants) {
        const b = await benchDaemon({ policies: { placement: { policy: 'fixed', tier: v.tier } }, snapshots: { prefetch: v.prefetch, ...(v.kind ? { kind: v.kind } : {}), ...(v.kernelResync ? { kernelResync: v.kernelResync } : {}) } });
        const tierDir = v.tier === 'disk' ? path.join(b.dir, 'disk-tier') : `/dev/shm/fc-bench-${path.basename(b.dir)}`;
        try {
            for (const f of FUNCTIONS) {
                await deploy(b.client, f);
                await timedInvoke(b.client, f.name, f.params); // cold + snapshot
                if (v.prefetch) {
                    // the first restore records the working set
                    await evictAndWait(b.client, f.name);
                    await timedInvoke(b.client, f.name, f.params);
                }
                const { ms: xs, vmMs } = await restores(b.client, f, opts.restoreRuns, v.dropCache ? () => dropCache(tierDir) : undefined);
                if (v.label === 'shm')
                    restoreVms.set(f.name, vmMs);
                const rec = restoreBy.get(f.name) ?? {};
                rec[v.label] = summarize(xs);
                restoreBy.set(f.name, rec);
                log(`  ${f.name} restore from ${v.label}: median ${ms(rec[v.label].median)}`);
                if (v.label === 'shm') {
                    const w = [];
                    for (let i = 0; i < opts.warmRuns; i++)
                        w.push((await timedInvoke(b.client, f.name, f.params)).ms);
                    warmBy.set(f.name, summarize(w));
                    const st = await b.client.call('GET', '/v1/status');
                    const snap = st.snapshots.find((s) => s.function === f.name);
                    sizeBy.set(f.name, (snap?.sizeBytes ?? 0) / 1048576);
                    // the "copied RAM file" alternative: every restore would first copy the RAM file (then map it shared)
                    if (snap) {
                        const t0 = performance.now();
                        execFileSync('cp', ['--sparse=always', path.join(snap.dir, 'mem'), path.join(snap.dir, 'mem.copy')]);
                        copyMs.set(f.name, performance.now() - t0);
                        execFileSync('rm', ['-f', path.join(snap.dir, 'mem.copy')]);
                    }
                }
                await evictAndWait(b.client, f.name);
            }
        }
        finally {
            await b.close();
        }
    }
    for (const f of FUNCTIONS) {
        const cold = summarize(colds.get(f.name) ?? []);
        const restore = restoreBy.get(f.name) ?? {};
        const cv = coldVms.get(f.name) ?? [];
        const rv = restoreVms.get(f.name) ?? [];
        rows.push({
            fn: f.name,
            memoryMiB: f.memoryMiB,
            cold,
            warm: warmBy.get(f.name),
            restore,
            ratio: (restore.shm?.median ?? NaN) / cold.median,
            ...(cv.length ? { coldVm: summarize(cv) } : {}),
            ...(rv.length ? { restoreVm: summarize(rv) } : {}),
            snapshotMiB: sizeBy.get(f.name) ?? NaN,
            copyRamMs: copyMs.get(f.name) ?? NaN,
        });
    }
    // print the per-function table now: the density runs below push the host to its limits
    log(formatSnapshots({ machine: machine(), accelerator, rows, density: [] }));
    // 3. density: N clones of one snapshot at once
    const density = [];
    if (opts.density.length > 0) {
        const max = Math.max(...opts.density);
        const b = await benchDaemon({
            node: { memoryBudgetMiB: max * 256 + 1024, highWatermark: 1, lowWatermark: 0.9 },
            functionLimits: { maxInstances: max },
            admission: { maxConcurrentInvocations: max + 8, maxQueueDelayMs: 300_000 },
            policies: { placement: { policy: 'fixed', tier: 'shm' } },
        });
        try {
            const f = FUNCTIONS[0];
            await deploy(b.client, f, { maxInstances: max });
            await timedInvoke(b.client, f.name, f.params);
            for (const n of opts.density) {
                await evictAndWait(b.client, f.name);
                const t0 = performance.now();
                const rs = await Promise.all(Array.from({ length: n }, () => b.client.invoke(f.name, f.params)));
                const all = performance.now() - t0;
                await new Promise((r) => setTimeout(r, 1000));
                const mem = vmmMemory(b.dir);
                const pss = mem.reduce((s, m) => s + m.pssKiB, 0) / 1024 / (mem.length || 1);
                const rss = mem.reduce((s, m) => s + m.rssKiB, 0) / 1024 / (mem.length || 1);
                const failures = rs.filter((r) => r.status !== 200).length;
                density.push({ n, allAnsweredMs: all, restores: rs.filter((r) => r.body.activation?.startPath === 'restore').length, pssPerCloneMiB: pss, rssPerCloneMiB: rss, failures });
                log(`  density ${n}: all answered in ${ms(all)}, PSS/clone ${pss.toFixed(1)} MiB, failures ${failures}`);
            }
            await evictAndWait(b.client, f.name);
        }
        finally {
            await b.close();
        }
    }
    return { machine: machine(), accelerator, rows, density };
}
export function formatSnapshots(r) {
    const labels = [...new Set(r.rows.flatMap((x) => Object.keys(x.restore)))];
    const head = ['function', 'guest', 'cold median/p99', ...labels.map((l) => `restore ${l} median/p99`), 'warm median/p99', 'restore(shm)/cold', 'RAM file (allocated)', 'copying it'];
    const mp = (s) => (s ? `${ms(s.median)} / ${ms(s.p99)}` : '-');
    const rows = r.rows.map((x) => [x.fn, `${x.memoryMiB} MiB`, mp(x.cold), ...labels.map((l) => mp(x.restore[l])), mp(x.warm), `1/${(1 / x.ratio).toFixed(0)}`, `${x.snapshotMiB.toFixed(0)} MiB`, ms(x.copyRamMs)]);
    const out = [`machine: ${JSON.stringify(r.machine)}`, `accelerator: ${r.accelerator}`, '', table(head, rows)];
    const vmRows = r.rows.filter((x) => x.coldVm && x.restoreVm);
    if (vmRows.length) {
        out.push('', 'VM level (as in vm-notes): VMM start -> agent ready after a cold boot, VMM start -> first agent reply (the resync) after a restore from shm:', table(['function', 'cold boot -> agent ready median/p99', 'restore -> first reply median/p99', 'restore/cold'], vmRows.map((x) => [x.fn, mp(x.coldVm), mp(x.restoreVm), `1/${(x.coldVm.median / x.restoreVm.median).toFixed(0)}`])));
    }
    if (r.density.length) {
        out.push('', table(['clones at once', 'all answered', 'restored', 'failures', 'PSS per clone', 'RSS per clone'], r.density.map((d) => [d.n, ms(d.allAnsweredMs), d.restores, d.failures, `${d.pssPerCloneMiB.toFixed(1)} MiB`, `${d.rssPerCloneMiB.toFixed(1)} MiB`])));
    }
    return out.join('\n');
}
//# sourceMappingURL=snapshots.js.map