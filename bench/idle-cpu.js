// faascell bench idle-cpu: host CPU an idle warm VM costs. N hello VMs are booted
// (agent ready, function loaded, one run), left alone to settle, then the CPU time
// of every thread of each QEMU process is read over a window of wall time. Variants
// (the baseline image of before issue 9 and the tuned one) run side by side in one
// run, for each VM count.
import fs from 'node:fs';
import os from 'node:os';
import { machine, summarize, table } from './common.js';
import { benchTmp, bootHello, pickVariants, pool, prepareVariants, releaseVariants, processCpuNs, sleep } from './guest.js';
export async function benchIdleCpu(opts) {
    const log = opts.log ?? ((s) => console.error(s));
    const settle = opts.settleSeconds ?? 10;
    const memoryMiB = opts.memoryMiB ?? 256;
    const rigs = await prepareVariants(pickVariants(opts.variants, ['baseline', 'tuned']), log);
    const tmp = benchTmp('fc-idle-');
    const rows = [];
    try {
        for (const n of opts.counts) {
            for (const rig of rigs) {
                // the baseline's idle VM holds ~230 MiB: do not push the shared host into swap or OOM
                const needMiB = n * memoryMiB * 1.1;
                if (os.freemem() / 1048576 < needMiB + 2048) {
                    const why = `skipped: ${n} VMs need ~${Math.round(needMiB)} MiB, ${Math.round(os.freemem() / 1048576)} MiB free`;
                    log(`  ${rig.variant.name} x${n}: ${why}`);
                    rows.push({ variant: rig.variant.name, vms: n, perVmPct: summarize([]), totalCores: NaN, skipped: why });
                    continue;
                }
                const vms = [];
                try {
                    const t0 = performance.now();
                    // two boots at a time: cold boots are CPU-bound under TCG (2 cores here)
                    await pool(Array.from({ length: n }, (_, i) => i), 2, async () => void vms.push(await bootHello(rig, tmp, { memoryMiB })));
                    log(`  ${rig.variant.name} x${n}: booted in ${((performance.now() - t0) / 1000).toFixed(1)} s, settling ${settle} s`);
                    await sleep(settle * 1000);
                    const a = vms.map((v) => processCpuNs(v.vm.pid));
                    const w0 = performance.now();
                    await sleep(opts.seconds * 1000);
                    const b = vms.map((v) => processCpuNs(v.vm.pid));
                    const wallNs = (performance.now() - w0) * 1e6;
                    const pct = vms.map((_, i) => ((b[i] - a[i]) / wallNs) * 100);
                    const total = pct.reduce((x, y) => x + y, 0) / 100;
                    rows.push({ variant: rig.variant.name, vms: n, perVmPct: summarize(pct), totalCores: total });
                    log(`  ${rig.variant.name} x${n}: median ${summarize(pct).median.toFixed(3)} % of a core per VM, ${total.toFixed(3)} cores in all`);
                }
                finally {
                    await Promise.allSettled(vms.map((v) => v.vm.stop()));
                }
            }
        }
    }
    finally {
        fs.rmSync(tmp, { recursive: true, force: true });
        await releaseVariants(rigs);
    }
    return { machine: machine(), seconds: opts.seconds, settleSeconds: settle, rows };
}
export function formatIdleCpu(r) {
    const pct = (x) => (Number.isFinite(x) ? `${x.toFixed(3)} %` : '-');
    return [
        `machine: ${JSON.stringify(r.machine)}`,
        `idle hello VMs (256 MiB, agent ready, function loaded, one run; settled ${r.settleSeconds} s), QEMU CPU time of all threads over ${r.seconds} s of wall time`,
        '',
        table(['variant', 'idle VMs', 'per VM median (% of a core)', 'per VM p99', 'all VMs (cores)'], r.rows.map((x) => [x.variant, x.vms, x.skipped ? x.skipped : pct(x.perVmPct.median), pct(x.perVmPct.p99), Number.isFinite(x.totalCores) ? x.totalCores.toFixed(3) : '-'])),
    ].join('\n');
}
//# sourceMappingURL=idle-cpu.js.map