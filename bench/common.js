// Shared benchmark plumbing: machine facts, statistics, an in-process daemon in
// a private state directory, and tables. Benchmarks print ratios measured side
// by side in one run; the machine is shared and noisy, so every figure is a
// median and a p99 over repeated runs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../src/cli/client.js';
import { parseConfig } from '../src/config/schema.js';
import { createLogger } from '../src/core/logger.js';
import { startDaemon } from '../src/daemon.js';
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'functions');
export function machine() {
    const cpu = os.cpus()[0]?.model ?? 'unknown';
    let qemu = 'unknown';
    try {
        qemu = execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? qemu;
    }
    catch {
        // not installed
    }
    return { cpu, cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version, qemu, loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' ') };
}
export function summarize(xs) {
    const s = [...xs].sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
    return { n: s.length, median: q(50), p99: q(99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / (s.length || 1) };
}
export function ms(x) {
    if (!Number.isFinite(x))
        return '-';
    return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`;
}
export function table(head, rows) {
    const cells = [head, ...rows.map((r) => r.map(String))];
    const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
    const line = (r) => '| ' + r.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
    return [line(head), '|' + w.map((x) => '-'.repeat(x + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}
export async function benchDaemon(config = {}) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-bench-'));
    const cfg = parseConfig({
        stateDir: path.join(dir, 'state'),
        api: { port: 0 },
        log: { level: 'warn' },
        snapshots: { tiers: [{ name: 'shm', path: `/dev/shm/fc-bench-${path.basename(dir)}`, latencyRank: 0, capacityMiB: 16384 }, { name: 'disk', path: path.join(dir, 'disk-tier'), latencyRank: 1, capacityMiB: 32768 }] },
        ...config,
    });
    const d = await startDaemon({ config: cfg, log: createLogger({ level: cfg.log.level }) });
    return {
        d,
        client: new Client({ url: d.url }),
        dir,
        async close() {
            await d.stop();
            for (const t of cfg.snapshots.tiers ?? [])
                rmSync(t.path, { recursive: true, force: true });
            rmSync(dir, { recursive: true, force: true });
        },
    };
}
export function fixture(name) {
    return readFileSync(path.join(FIXTURES, name));
}
/** Client-side latency of one invocation, plus its activation record. */
export async function timedInvoke(c, fn, params = {}) {
    const t0 = performance.now();
    const r = await c.invoke(fn, params);
    const dt = performance.now() - t0;
    if (r.status !== 200)
        throw new Error(`${fn}: HTTP ${r.status}: ${JSON.stringify(r.body.error)}`);
    return { ms: dt, startPath: r.body.activation?.startPath, body: r.body };
}
export async function evictAndWait(c, fn) {
    await c.call('POST', `/v1/functions/${fn}/evict`);
    for (let i = 0; i < 200; i++) {
        const st = await c.call('GET', '/v1/status');
        if (!st.pool.instances.some((x) => x.fn === fn))
            return;
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`instances of ${fn} did not stop`);
}
/** RSS and PSS (KiB) of every QEMU process whose command line mentions `needle`. */
export function vmmMemory(needle) {
    const out = [];
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
            const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
            if (!cmd.startsWith('qemu-system') && !cmd.includes('/qemu-system'))
                continue;
            if (!cmd.includes(needle))
                continue;
            const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
            const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(roll)?.[1] ?? 0);
            out.push({ pid: Number(pid), rssKiB: kib('Rss'), pssKiB: kib('Pss') });
        }
        catch {
            // raced with exit
        }
    }
    return out;
}
//# sourceMappingURL=common.js.map