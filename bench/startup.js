// faascell bench startup: cold boot vs warm invocation through the daemon, the
// same warm invocation sent straight to the guest agent's channel (so the
// daemon's own overhead is a ratio), and host memory per idle VM.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { toCodeFiles, unpackCode } from '../src/registry/code.js';
import { createDriver } from '../src/runtimes/index.js';
import { benchDaemon, evictAndWait, fixture, machine, ms, summarize, table, timedInvoke, vmmMemory } from './common.js';
export async function benchStartup(opts) {
    const log = opts.log ?? ((s) => console.error(s));
    const b = await benchDaemon({ snapshots: { enabled: false } });
    try {
        const c = b.client;
        await c.deploy('hello', fixture('hello.js'), { codeKind: 'js' });
        const cold = [];
        const stages = { kernel: [], agentStart: [], init: [], run: [] };
        for (let i = 0; i < opts.coldRuns; i++) {
            await evictAndWait(c, 'hello');
            const r = await timedInvoke(c, 'hello', { name: 'bench' });
            if (r.startPath !== 'cold')
                throw new Error(`expected a cold start, got ${r.startPath}`);
            cold.push(r.ms);
            const t = r.body.activation.timings;
            stages.kernel.push((t.vmBooted ?? 0) - (t.vmmSpawned ?? 0));
            stages.agentStart.push((t.agentReady ?? 0) - (t.vmBooted ?? 0));
            stages.init.push((t.initDone ?? 0) - (t.agentReady ?? 0));
            stages.run.push((t.runFinished ?? 0) - (t.runStarted ?? 0));
            log(`  cold ${i + 1}/${opts.coldRuns}: ${ms(r.ms)}`);
        }
        const warm = [];
        await timedInvoke(c, 'hello', { name: 'bench' });
        for (let i = 0; i < opts.warmRuns; i++) {
            await pause();
            warm.push((await timedInvoke(c, 'hello', { name: 'bench' })).ms);
        }
        await new Promise((r) => setTimeout(r, 500));
        const mem = vmmMemory(b.dir);
        const direct = await directChannel(b.d.image, b.d.accelerator, path.join(b.dir, 'direct'), opts.warmRuns);
        const res = {
            machine: machine(),
            accelerator: b.d.accelerator,
            kernel: b.d.image.kernelKind,
            cold: summarize(cold),
            coldStages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, summarize(v)])),
            warm: summarize(warm),
            direct: summarize(direct),
            overheadRatio: summarize(warm).median / summarize(direct).median,
            coldToWarmRatio: summarize(cold).median / summarize(warm).median,
            idleVm: { rssMiB: (mem[0]?.rssKiB ?? NaN) / 1024, pssMiB: (mem[0]?.pssKiB ?? NaN) / 1024, guestMiB: 256 },
        };
        return res;
    }
    finally {
        await b.close();
    }
}
/** Boot one VM with the driver alone and time `run` requests over its channel: the floor under the daemon. */
async function directChannel(image, accelerator, runDir, n) {
    mkdirSync(runDir, { recursive: true });
    const driver = await createDriver('qemu');
    const vm = await driver.boot({ vmId: 'bench-direct', memoryMiB: 256, vcpus: 1, image, runDir, accelerator, memory: { kind: 'anonymous' } });
    try {
        await vm.channel.ready(120_000);
        const code = unpackCode('js', fixture('hello.js'), 1 << 20);
        const init = await vm.channel.request({ op: 'init', files: toCodeFiles(code), main: code.main, entry: 'main', env: {} }, 30_000);
        if (!init.ok)
            throw new Error(`init failed: ${init.error.message}`);
        const out = [];
        await vm.channel.request({ op: 'run', activationId: 'warmup', params: { name: 'bench' }, deadlineMs: 10_000 }, 10_000);
        for (let i = 0; i < n; i++) {
            await pause();
            const t0 = performance.now();
            const r = await vm.channel.request({ op: 'run', activationId: `d${i}`, params: { name: 'bench' }, deadlineMs: 10_000 }, 10_000);
            out.push(performance.now() - t0);
            if (!r.ok)
                throw new Error(r.error.message);
        }
        return out;
    }
    finally {
        await vm.stop();
        rmSync(runDir, { recursive: true, force: true });
    }
}
/** Same idle gap before every measured call on both paths: a guest that idles between requests wakes more slowly under TCG. */
const PACE_MS = 20;
function pause() {
    return new Promise((r) => setTimeout(r, PACE_MS));
}
export function formatStartup(r) {
    const row = (name, s) => [name, ms(s.median), ms(s.p99), ms(s.min), s.n];
    return [
        `machine: ${JSON.stringify(r.machine)}`,
        `accelerator: ${r.accelerator}, guest kernel: ${r.kernel}`,
        '',
        table(['hello, 256 MiB, 1 vCPU', 'median', 'p99', 'min', 'n'], [
            row('cold boot → response (client)', r.cold),
            row('  kernel (QEMU start → /init)', r.coldStages.kernel),
            row('  /init + Node + agent ready', r.coldStages.agentStart),
            row('  function init (load code)', r.coldStages.init),
            row('  first run', r.coldStages.run),
            row('warm invocation (client → daemon → VM)', r.warm),
            row('warm run, direct on the agent channel', r.direct),
        ]),
        '',
        `daemon overhead on a warm call: ${r.overheadRatio.toFixed(2)}× the direct channel round trip (median ${ms(r.warm.median)} vs ${ms(r.direct.median)})`,
        `cold / warm: ${r.coldToWarmRatio.toFixed(0)}×`,
        `host memory of one idle 256 MiB VM: RSS ${r.idleVm.rssMiB.toFixed(0)} MiB, PSS ${r.idleVm.pssMiB.toFixed(0)} MiB`,
    ].join('\n');
}
//# sourceMappingURL=startup.js.map