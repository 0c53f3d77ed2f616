// Calibrates the simulator on this node: what a cold boot and a restore cost here
// (wall time and the VMM's CPU time), per memory size; the warm dispatch; what an
// idle VM takes of a core; and how concurrent cold boots stretch each other (the
// CPU model's premise). Writes a profile that `faascell simulate --profile FILE`
// and the experiments load (src/sim/profile.ts).
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, benchDaemon, evictAndWait, machine, ms, summarize, table } from './common.js';
const SLEEP = readFileSync(path.join(ROOT, 'examples', 'functions', 'sleep.js'));
async function invoke(b, fn, params = { ms: 1 }) {
    const r = await b.client.invoke(fn, params);
    if (r.status !== 200)
        throw new Error(`${fn}: HTTP ${r.status}: ${JSON.stringify(r.body.error)}`);
    return r.body.activation;
}
/** CPU seconds (utime + stime) of every VMM of this daemon, by pid. */
function vmmCpu(stateDir) {
    const out = new Map();
    const run = path.join(stateDir, 'run');
    for (const d of safeReaddir(run)) {
        try {
            const pid = Number(readFileSync(path.join(run, d, 'qemu.pid'), 'utf8').trim());
            const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
            const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            out.set(pid, (Number(f[11]) + Number(f[12])) / 100);
        }
        catch {
            // gone
        }
    }
    return out;
}
function safeReaddir(d) {
    try {
        return readdirSync(d);
    }
    catch {
        return [];
    }
}
const num = (x) => (typeof x === 'number' ? x : NaN);
const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);
export async function benchProfile(o = {}) {
    const sizes = o.sizes ?? [256, 512];
    const b = await benchDaemon({
        node: { memoryBudgetMiB: 16_384 },
        // the benchmark sets the concurrency itself
        admission: { maxConcurrentStarts: 16, preferWarm: false },
        functionDefaults: { maxInstances: 16 },
        policies: { keepAlive: { policy: 'fixed', ttlSeconds: 3600 } },
    });
    try {
        const stateDir = b.d.config.stateDir;
        const rows = [];
        for (const mem of sizes) {
            const fn = `cal-${mem}`;
            const cold = [];
            const coldCpu = [];
            // every cold run is a new version (env), so it boots and leaves a fresh snapshot
            for (let i = 0; i < (o.coldRuns ?? 3); i++) {
                await b.client.deploy(fn, SLEEP, { codeKind: 'js', memoryMiB: mem, env: { RUN: String(i) } });
                const a = await invoke(b, fn);
                if (a.startPath !== 'cold')
                    throw new Error(`${fn}: expected a cold start, got ${a.startPath}`);
                cold.push(num(a.startDetails?.startMs));
                coldCpu.push(num(a.startDetails?.vmmCpuMs));
            }
            const restore = [];
            const restoreCpu = [];
            const warm = [];
            for (let i = 0; i < (o.restoreRuns ?? 5); i++) {
                await evictAndWait(b.client, fn);
                const a = await invoke(b, fn);
                if (a.startPath !== 'restore')
                    throw new Error(`${fn}: expected a restore, got ${a.startPath}`);
                restore.push(num(a.startDetails?.startMs));
                restoreCpu.push(num(a.startDetails?.vmmCpuMs));
            }
            // warm calls of a function that does nothing: what one invocation costs the host in CPU
            // (this process = daemon + client, and the VMM)
            const vmm0 = sum(vmmCpu(stateDir));
            const cpu0 = process.cpuUsage();
            const n = o.warmRuns ?? 30;
            for (let i = 0; i < n; i++) {
                const a = await invoke(b, fn, { ms: 0 });
                const t = a.timestamps;
                if (t.runStarted !== undefined && t.instanceAssigned !== undefined)
                    warm.push(t.runStarted - t.instanceAssigned);
            }
            const used = process.cpuUsage(cpu0);
            const invokeVmmCpuMs = ((sum(vmmCpu(stateDir)) - vmm0) * 1000) / n;
            const invokeCpuMs = (used.user + used.system) / 1000 / n + invokeVmmCpuMs;
            await evictAndWait(b.client, fn);
            rows.push({ memoryMiB: mem, cold: summarize(cold), coldCpu: summarize(coldCpu), restore: summarize(restore), restoreCpu: summarize(restoreCpu), warm: summarize(warm), invokeCpuMs, invokeVmmCpuMs });
        }
        // idle VMs: the CPU their VMMs take while nothing runs
        const nIdle = o.idleVms ?? 4;
        await b.client.deploy('cal-idle', SLEEP, { codeKind: 'js', memoryMiB: 256, maxInstances: nIdle });
        await Promise.all(Array.from({ length: nIdle }, () => invoke(b, 'cal-idle', { ms: 3000 })));
        await new Promise((r) => setTimeout(r, 2000));
        const before = vmmCpu(stateDir);
        const secs = o.idleSeconds ?? 20;
        await new Promise((r) => setTimeout(r, secs * 1000));
        const after = vmmCpu(stateDir);
        let used = 0;
        let n = 0;
        for (const [pid, c] of after) {
            const c0 = before.get(pid);
            if (c0 === undefined)
                continue;
            used += c - c0;
            n++;
        }
        const idleVmCpu = n > 0 ? used / n / secs : NaN;
        await evictAndWait(b.client, 'cal-idle');
        // K cold boots at once (no snapshots to restore from: each is a new version)
        const cores = Number(machine().cores);
        const concurrency = [];
        let alone = NaN;
        for (const k of o.concurrency ?? [1, 2, 4]) {
            const fns = Array.from({ length: k }, (_, i) => `cal-k${k}-${i}`);
            for (const f of fns)
                await b.client.deploy(f, SLEEP, { codeKind: 'js', memoryMiB: 256 });
            const acts = await Promise.all(fns.map((f) => invoke(b, f)));
            const mean = acts.reduce((s, a) => s + num(a.startDetails?.startMs), 0) / k;
            if (k === 1)
                alone = mean;
            concurrency.push({ k, meanStartMs: mean, stretch: mean / alone, modelStretch: Math.max(1, k / cores) });
            for (const f of fns)
                await b.client.call('DELETE', `/v1/functions/${f}`);
        }
        const status = await b.client.call('GET', '/v1/status');
        const bySize = Object.fromEntries(rows.map((r) => [
            String(r.memoryMiB),
            { coldMs: r.cold.median, coldCpuMs: r.coldCpu.median, restoreMs: r.restore.median, restoreCpuMs: r.restoreCpu.median, warmMs: r.warm.median, invokeCpuMs: r.invokeCpuMs, invokeVmmCpuMs: r.invokeVmmCpuMs, restoreMsByTier: { shm: r.restore.median } },
        ]));
        const base = rows[0];
        const profile = {
            machine: machine(),
            accelerator: status.accelerator,
            node: { cores, idleVmCpu: Number.isFinite(idleVmCpu) ? Number(idleVmCpu.toFixed(4)) : 0 },
            defaults: {
                coldMs: base.cold.median,
                coldCpuMs: base.coldCpu.median,
                restoreMs: base.restore.median,
                restoreCpuMs: base.restoreCpu.median,
                warmMs: base.warm.median,
                invokeCpuMs: Number(base.invokeCpuMs.toFixed(2)),
                invokeVmmCpuMs: Number(base.invokeVmmCpuMs.toFixed(2)),
                runMs: 1000,
                memoryMiB: base.memoryMiB,
                restoreMsByTier: { shm: base.restore.median },
                cpuShare: 0,
            },
            bySize,
            functions: {},
            tiers: [
                { name: 'shm', latencyRank: 0, capacityMiB: 4096 },
                { name: 'disk', latencyRank: 1, capacityMiB: 20480 },
            ],
            notes: 'written by `faascell bench profile`: medians of one run on the machine above (cold: boot + init + snapshot + restore of its own snapshot, as the daemon starts by default; cpu: the VMMs\' CPU time)',
        };
        return { machine: machine(), accelerator: status.accelerator, sizes: rows, idleVmCpu, concurrency, profile };
    }
    finally {
        await b.close();
    }
}
export function formatProfile(r) {
    return [
        `### Node profile (\`faascell bench profile\`), ${r.accelerator}`,
        '',
        table(['memory', 'cold start (median / p99)', 'cold CPU', 'restore (median / p99)', 'restore CPU', 'warm dispatch', 'host CPU per invocation (of it the VMM)'], r.sizes.map((s) => [`${s.memoryMiB} MiB`, `${ms(s.cold.median)} / ${ms(s.cold.p99)}`, ms(s.coldCpu.median), `${ms(s.restore.median)} / ${ms(s.restore.p99)}`, ms(s.restoreCpu.median), ms(s.warm.median), `${ms(s.invokeCpuMs)} (${ms(s.invokeVmmCpuMs)})`])),
        '',
        `Idle VM: ${(r.idleVmCpu * 100).toFixed(2)} % of a core.`,
        '',
        table(['cold boots at once', 'mean start', 'stretch (measured)', 'stretch (CPU model: max(1, k / cores))'], r.concurrency.map((c) => [c.k, ms(c.meanStartMs), c.stretch.toFixed(2), c.modelStretch.toFixed(2)])),
        '',
        `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, load average ${r.machine.loadavg}.`,
    ].join('\n');
}
//# sourceMappingURL=profile-node.js.map