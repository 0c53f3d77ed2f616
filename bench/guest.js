// Shared plumbing of the guest-side benchmarks (idle-cpu, memory, guest-start):
// image variants built side by side (the baseline is the image as it was before
// issue 9's guest tuning, selectable at run time), hello VMs booted with the QEMU
// driver alone (no daemon in the way), and per-process CPU and memory readings.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../src/config/schema.js';
import { buildImage, defaultCacheDir } from '../src/image/builder.js';
import { setupIsolation } from '../src/runtimes/jail/setup.js';
import { memoryLayout } from '../src/runtimes/qemu/cmdline.js';
import { QemuDriver } from '../src/runtimes/qemu/driver.js';
/** The defaults of the image section of the configuration (docs/configuration.md). */
export const TUNED = { tickless: true, rootfs: 'dax', freePageReporting: true };
export const BASELINE = { tickless: false, rootfs: 'squashfs', freePageReporting: false };
export const VARIANTS = {
    baseline: {
        name: 'baseline',
        tuning: BASELINE,
        // the runtime knobs of the image as it was: ESM agent, PIT left running, two helper calls per resync
        cmdline: 'faascell.agent=mjs faascell.pit=keep faascell.resync=separate',
        about: 'before issue 9: 250 Hz periodic tick, squashfs on virtio-blk, no balloon, PIT left running, ESM agent, 1 GiB TCG cache',
    },
    // limits.tcgCodeCacheMiB's default (32) is part of the defaults; tuned+tb0 is QEMU's own 1 GiB
    tuned: { name: 'tuned', tuning: TUNED, tcgCodeCacheMiB: 32, about: 'the defaults: tickless HZ=100 kernel, EROFS root as pmem with DAX, free page reporting, CommonJS agent, PIT stopped, one-call resync, 32 MiB TCG cache' },
};
/**
 * Variant names: a base (baseline, tuned) and optional modifiers after '+':
 *   tbN          TCG translation cache of N MiB (`-accel tcg,tb-size=N`); tb0: QEMU's default (1 GiB)
 *   memfd        anonymous guest RAM as a private memfd mapping (no transparent huge pages)
 *   cjs, mjs     which agent bundle /init starts (kernel argument faascell.agent=)
 *   flags=A:B    extra Node/V8 flags (faascell.node_flags=A,B; ':' because ',' separates variants)
 *   arg=K=V      any kernel argument
 * e.g. tuned+tb32, tuned+cjs+flags=--jitless:--max-lazy.
 */
export function parseVariant(spec) {
    const [baseName, ...mods] = spec.split('+');
    const base = VARIANTS[baseName ?? ''];
    if (!base)
        throw new Error(`unknown variant "${spec}" (bases: ${Object.keys(VARIANTS).join(', ')}; modifiers: +tbN, +memfd, +cjs, +mjs, +flags=A:B, +arg=K=V)`);
    const v = { ...base, name: spec };
    for (const m of mods) {
        const tb = /^tb(\d+)$/.exec(m);
        if (tb) {
            const n = Number(tb[1]);
            if (n === 0)
                delete v.tcgCodeCacheMiB;
            else
                v.tcgCodeCacheMiB = n;
            v.about = `${v.about}; TCG cache ${n === 0 ? '1 GiB (QEMU default)' : `${n} MiB`}`;
        }
        else if (m === 'memfd') {
            v.privateMemfdRam = true;
            v.about = `${v.about}; guest RAM a private memfd (4 KiB host pages)`;
        }
        else if (m === 'cjs' || m === 'mjs') {
            v.cmdline = [v.cmdline, `faascell.agent=${m}`].filter(Boolean).join(' ');
        }
        else if (m.startsWith('flags=')) {
            v.cmdline = [v.cmdline, `faascell.node_flags=${m.slice('flags='.length).replaceAll(':', ',')}`].filter(Boolean).join(' ');
        }
        else if (m.startsWith('arg=')) {
            v.cmdline = [v.cmdline, m.slice('arg='.length)].filter(Boolean).join(' ');
        }
        else
            throw new Error(`unknown variant modifier "+${m}" in "${spec}" (known: +tbN, +memfd, +cjs, +mjs, +flags=A:B, +arg=K=V)`);
    }
    return v;
}
export function pickVariants(names, fallback) {
    const list = names && names.length > 0 ? names : fallback;
    return list.map(parseVariant);
}
/**
 * The daemon's VMM isolation with its default settings (jailed when root and the jail user exist,
 * per-VM cgroups, seccomp), so the guest benchmarks measure VMMs as the daemon runs them.
 * FAASCELL_BENCH_JAIL=0 measures bare VMMs.
 */
async function benchIsolation(log) {
    if (process.env.FAASCELL_BENCH_JAIL === '0')
        return undefined;
    const dir = benchTmp('fc-bench-jail-');
    const cfg = parseConfig({ stateDir: dir });
    const setup = await setupIsolation({ stateDir: cfg.stateDir, jail: cfg.jail, limits: cfg.limits }, { warn: (m, f) => log(`  isolation: ${m} ${JSON.stringify(f ?? {})}`), info: () => undefined });
    const st = setup.isolation();
    log(`  VMMs: ${st.jailed ? `jailed (${st.uids} uids)` : `not jailed (${st.reason})`}, seccomp ${st.seccomp ? 'on' : 'off'}, cgroups ${setup.limits().cgroup.mode}`);
    return { setup, dir };
}
/** Ends what prepareVariants set up for the VMMs (the isolation's cgroup group and state dir); after every VM stopped. */
export async function releaseVariants(rigs) {
    const isos = new Set(rigs.map((r) => r.isolation).filter((i) => i !== undefined));
    for (const iso of isos) {
        await iso.setup.shutdown();
        fs.rmSync(iso.dir, { recursive: true, force: true });
    }
}
/** Builds (or finds) each variant's image without making it the current one, and a driver for it. */
export async function prepareVariants(variants, log) {
    const rigs = [];
    const iso = await benchIsolation(log);
    for (const v of variants) {
        const image = await buildImage({ cacheDir: defaultCacheDir(), ...v.tuning, setCurrent: false, log: (l) => log(`  image ${v.name}: ${l}`) });
        const driver = new QemuDriver({
            log: () => undefined,
            ...(v.tcgCodeCacheMiB ? { tcgCodeCacheMiB: v.tcgCodeCacheMiB } : {}),
            ...(v.privateMemfdRam ? { privateMemfdRam: true } : {}),
            ...(iso ? { isolation: iso.setup.vmm, sandbox: iso.setup.seccomp } : {}),
            connectTimeoutMs: 60_000,
        });
        const accel = await driver.decideAccelerator(image);
        log(`  variant ${v.name}: image ${image.version} (${image.kernelKind} kernel${image.kernelFeatures?.length ? ` + ${image.kernelFeatures.join(', ')}` : ''}, root ${image.rootfsFormat ?? 'squashfs'}), ${accel.accelerator}`);
        rigs.push({ variant: v, image, driver, accelerator: accel.accelerator, ...(iso ? { isolation: iso } : {}) });
    }
    return rigs;
}
export const HELLO_JS = 'function main(p){ return { greeting: `Hello, ${p.name}!` }; }';
let seq = 0;
/** Boots one VM, waits for the agent, loads hello and runs it once. */
export async function bootHello(rig, runRoot, opts = {}) {
    const vmId = `gb-${process.pid}-${++seq}`;
    const t0 = performance.now();
    const vm = await rig.driver.boot({
        vmId,
        memoryMiB: opts.memoryMiB ?? 256,
        vcpus: 1,
        image: rig.image,
        runDir: path.join(runRoot, vmId),
        accelerator: rig.accelerator,
        memory: opts.memory ?? { kind: 'anonymous' },
        ...(rig.variant.cmdline ? { extraCmdline: rig.variant.cmdline } : {}),
    });
    try {
        const ready = await vm.channel.ready(300_000);
        const readyMs = performance.now() - t0;
        if (opts.init !== false) {
            const r = await vm.channel.request({ op: 'init', files: { 'index.js': Buffer.from(HELLO_JS).toString('base64') }, main: 'index.js', entry: 'main', env: {} }, 120_000);
            if (!r.ok)
                throw new Error(`init: ${r.error.message}`);
            const run = await vm.channel.request({ op: 'run', activationId: 'bench', params: { name: 'bench' }, deadlineMs: 60_000 }, 60_000);
            if (!run.ok)
                throw new Error(`run: ${run.error.message}`);
        }
        return { vm, readyMs, ready };
    }
    catch (err) {
        await vm.stop();
        throw err;
    }
}
/** Runs fn over items with at most `limit` at once; the first error is thrown once every started call has ended. */
export async function pool(items, limit, fn) {
    const out = new Array(items.length);
    let next = 0;
    let failed;
    const worker = async () => {
        while (next < items.length && !failed) {
            const i = next++;
            try {
                out[i] = await fn(items[i], i);
            }
            catch (err) {
                failed ??= { err };
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    if (failed)
        throw failed.err;
    return out;
}
/** CPU time (ns) of every thread of a process: the sum of /proc/PID/task/*\/schedstat's first field. */
export function processCpuNs(pid) {
    let total = 0;
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        try {
            total += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
        }
        catch {
            // thread ended between readdir and read
        }
    }
    return total;
}
/**
 * Host memory of a QEMU process by what it holds, from /proc/PID/smaps:
 *   guest RAM            the RAM mapping(s) (anonymous or the RAM file), sized as memoryLayout says
 *   root fs (pmem)       the shared, read-only mapping of the EROFS image
 *   TCG translation cache the anonymous rwx mapping QEMU generates host code into
 *   kernel + initrd      QEMU's mappings of the image's vmlinux / initrd files (page cache, shared)
 *   QEMU binary + libs   file mappings of QEMU and its libraries (shared between VMMs)
 *   QEMU heap + other    the rest (malloc heap, thread stacks, device buffers)
 */
export function memoryBreakdown(pid, guestMiB, image) {
    const text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
    // with a pmem root fs guest RAM is two mappings: main (anonymous or the RAM file) and a small anonymous tail
    const layout = memoryLayout({ memoryMiB: guestMiB, image });
    const ramSizes = new Set([layout.mainMiB * 1048576, ...(layout.tailMiB ? [layout.tailMiB * 1048576] : [])]);
    const parts = {};
    let cat = 'QEMU heap + other';
    let rss = 0;
    let pss = 0;
    for (const line of text.split('\n')) {
        const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
        if (head) {
            const size = parseInt(head[2], 16) - parseInt(head[1], 16);
            const perms = head[3];
            const name = head[4] ?? '';
            if (ramSizes.has(size) && (name === '' || name.startsWith('/dev/shm') || name.includes('mem')) && !perms.includes('x'))
                cat = 'guest RAM';
            else if (name === image.rootfsPath)
                cat = 'root fs (pmem)';
            else if (name === image.kernelPath || name === image.initrdPath)
                cat = 'kernel + initrd files';
            else if (name === '' && perms.startsWith('rwx'))
                cat = 'TCG translation cache';
            else if (name.startsWith('/') && !name.startsWith('/dev/'))
                cat = 'QEMU binary + libs';
            else
                cat = 'QEMU heap + other';
            continue;
        }
        const m = /^(Rss|Pss):\s+(\d+) kB/.exec(line);
        if (!m)
            continue;
        const p = (parts[cat] ??= { rssKiB: 0, pssKiB: 0 });
        if (m[1] === 'Rss') {
            p.rssKiB += Number(m[2]);
            rss += Number(m[2]);
        }
        else {
            p.pssKiB += Number(m[2]);
            pss += Number(m[2]);
        }
    }
    return { rssKiB: rss, pssKiB: pss, parts };
}
export function benchTmp(prefix) {
    return fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), prefix));
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function mib(kib) {
    return `${(kib / 1024).toFixed(1)} MiB`;
}
//# sourceMappingURL=guest.js.map