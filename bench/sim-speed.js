// Simulator speed: simulated invocations per second on one core, for a day of a
// 600-function Azure-format trace (synthetic, seeded), with the shared decision
// core in place. Repeated runs on a shared machine: median and the slowest run.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPolicies } from '../src/policies/index.js';
import { DEFAULT_PROFILE } from '../src/sim/profile.js';
import { simulate } from '../src/sim/simulator.js';
import { loadAzureTrace } from '../src/traces/azure.js';
import { writeAzureTrace } from '../src/traces/generate.js';
import { machine, summarize, table } from './common.js';
const CONFIGS = [
    { config: 'daemon defaults (CPU model), fixed TTL', memoryMiB: Infinity, node: {}, keepAlive: 'fixed' },
    { config: 'daemon defaults (CPU model), fixed TTL, 16 GiB', memoryMiB: 16_384, node: {}, keepAlive: 'fixed' },
    { config: 'no CPU model, greedy-dual, 16 GiB', memoryMiB: 16_384, node: { cpuModel: false }, keepAlive: 'greedy-dual' },
];
export async function benchSimSpeed(o = {}) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-simspeed-'));
    try {
        writeAzureTrace(dir, { functions: o.functions ?? 600, seed: o.seed ?? 1 });
        const t0 = performance.now();
        const trace = await loadAzureTrace(dir);
        const traceLoadMs = performance.now() - t0;
        const rows = [];
        for (const c of CONFIGS) {
            const rates = [];
            let last;
            for (let i = 0; i < (o.runs ?? 5); i++) {
                const policies = await createPolicies({ keepAlive: c.keepAlive }, { baseDir: '.' });
                last = simulate({ trace, policies, profile: DEFAULT_PROFILE, memoryMiB: c.memoryMiB, node: c.node });
                rates.push(last.invocationsPerSecond);
            }
            rows.push({
                config: c.config,
                memoryMiB: Number.isFinite(c.memoryMiB) ? c.memoryMiB : null,
                invocations: last.invocations,
                rate: summarize(rates),
                coldBoots: last.coldBoots,
                restores: last.restoresStarted,
                completedFraction: last.goodput,
            });
        }
        return { machine: machine(), functions: trace.functions.length, invocations: trace.totalInvocations, traceLoadMs, rows };
    }
    finally {
        rmSync(dir, { recursive: true, force: true });
    }
}
export function formatSimSpeed(r) {
    const m = (x) => `${(x / 1e6).toFixed(2)} M/s`;
    return [
        `### Simulator speed (\`faascell bench sim\`)`,
        '',
        `Synthetic Azure-format day: ${r.functions} functions, ${r.invocations.toLocaleString('en')} invocations (trace loaded in ${Math.round(r.traceLoadMs)} ms). ` +
            `One core, ${r.rows[0]?.rate.n ?? 0} runs per row. Machine: ${r.machine.cpu}, load average ${r.machine.loadavg}.`,
        '',
        table(['configuration', 'simulated invocations/s, median', 'slowest run', 'fastest run', 'with the trace load (median)', 'cold boots', 'restores', 'completed'], r.rows.map((x) => [
            x.config,
            m(x.rate.median),
            m(x.rate.min),
            m(x.rate.max),
            // the whole job as a user runs it: reading the trace, then simulating
            m(x.invocations / (r.traceLoadMs / 1000 + x.invocations / x.rate.median)),
            x.coldBoots,
            x.restores,
            `${(x.completedFraction * 100).toFixed(1)} %`,
        ])),
    ].join('\n');
}
//# sourceMappingURL=sim-speed.js.map