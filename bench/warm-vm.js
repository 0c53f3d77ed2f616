// faascell bench warm-vm: a warm call through the daemon against the same request sent straight to a
// guest agent's channel, with real VMs, interleaved call by call in one run (issue 9, item 3). Both
// VMs are cold-booted hello instances of the same image and shape, the daemon's behind its HTTP API
// (a keep-alive client, as a load generator would use), the direct one driven by the driver alone.
// The difference of the medians is what the daemon adds: HTTP, Dispatcher, VmPool, Worker, records.
import http from 'node:http';
import net from 'node:net';
import Database from 'better-sqlite3';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { toCodeFiles, unpackCode } from '../src/registry/code.js';
import { SocketChannel } from '../src/runtimes/channel.js';
import { createDriver } from '../src/runtimes/index.js';
import { benchDaemon, fixture, machine, ms, summarize, table } from './common.js';
/**
 * The host's own after-idle penalty, with no VM and no daemon: the same loopback round trip and the
 * same SQLite commit, back to back and after the bench's idle gap. On a nested-virtualisation host
 * (this machine's /dev/kvm is PVM) a thread that slept pays for its wake-up and cold caches on every
 * syscall; a warm call through the daemon makes a dozen of them that the bare channel call does not.
 */
async function idleProbe(dir, paceMs, n) {
    const srv = net.createServer((s) => s.on('data', (d) => s.write(d)));
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const sock = net.connect(srv.address().port, '127.0.0.1');
    sock.setNoDelay(true);
    await new Promise((r) => sock.once('connect', r));
    const msg = Buffer.alloc(200, 120);
    const rt = () => new Promise((resolve) => {
        const t0 = performance.now();
        sock.once('data', () => resolve(performance.now() - t0));
        sock.write(msg);
    });
    const db = new Database(path.join(dir, 'probe.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE r (id TEXT PRIMARY KEY, record TEXT)');
    const ins = db.prepare('INSERT OR REPLACE INTO r VALUES (?, ?)');
    const record = 'x'.repeat(1500);
    let k = 0;
    const commit = () => {
        const t0 = performance.now();
        db.transaction(() => ins.run(String(k++ % 1000), record))();
        return performance.now() - t0;
    };
    const idle = () => new Promise((r) => setTimeout(r, paceMs));
    try {
        for (let i = 0; i < 50; i++) {
            await rt();
            commit();
        }
        const tcpHot = [];
        const tcpIdle = [];
        const cHot = [];
        const cIdle = [];
        for (let i = 0; i < n; i++)
            tcpHot.push(await rt());
        for (let i = 0; i < n; i++)
            cHot.push(commit());
        for (let i = 0; i < n; i++) {
            await idle();
            tcpIdle.push(await rt());
            await idle();
            cIdle.push(commit());
        }
        return { tcpHot: summarize(tcpHot), tcpAfterIdle: summarize(tcpIdle), commitHot: summarize(cHot), commitAfterIdle: summarize(cIdle) };
    }
    finally {
        db.close();
        sock.destroy();
        srv.close();
    }
}
/**
 * Bench-only instrumentation: the daemon runs in this process, so every channel request of its Worker
 * can be stamped here (wrapping SocketChannel.request), splitting a daemon call into the daemon's part
 * before the channel, the channel round trip itself, and the daemon's part after it.
 */
function stampChannels() {
    const last = new Map();
    const proto = SocketChannel.prototype;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound with .call below
    const orig = proto.request;
    proto.request = function (req, timeoutMs) {
        const sent = performance.now();
        const p = orig.call(this, req, timeoutMs);
        return p.then((r) => {
            last.set(this, { sent, answered: performance.now() });
            return r;
        });
    };
    return { last, restore: () => void (proto.request = orig) };
}
/**
 * Idle gaps measured, the same before every call on both paths: 20 ms (a guest that idles between
 * requests wakes more slowly under TCG, and so does the host) and 0 (back to back, as under load).
 */
const PACES_MS = [20, 0];
export async function benchWarmVm(opts) {
    const log = opts.log ?? ((s) => console.error(s));
    const b = await benchDaemon({ snapshots: { enabled: false }, ...(opts.config ?? {}) });
    let vm;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const stamps = stampChannels();
    try {
        await b.client.deploy('hello', fixture('hello.js'), { codeKind: 'js' });
        const url = new URL(b.d.url);
        const body = JSON.stringify({ name: 'bench' });
        let lastCall = { t0: 0, t1: 0 };
        const viaDaemon = () => new Promise((resolve, reject) => {
            const t0 = performance.now();
            const req = http.request({ host: url.hostname, port: Number(url.port), path: '/v1/functions/hello/invoke', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => {
                    const t1 = performance.now();
                    const dt = t1 - t0;
                    lastCall = { t0, t1 };
                    if (res.statusCode !== 200)
                        reject(new Error(`daemon: HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
                    else
                        resolve(dt);
                });
            });
            req.on('error', reject);
            req.end(body);
        });
        await viaDaemon(); // the cold start
        // the direct VM: same image, shape and function
        const runDir = path.join(b.dir, 'direct');
        mkdirSync(runDir, { recursive: true });
        const driver = await createDriver('qemu');
        vm = await driver.boot({ vmId: 'bench-warm-direct', memoryMiB: 256, vcpus: 1, image: b.d.image, runDir, accelerator: b.d.accelerator, memory: { kind: 'anonymous' } });
        await vm.channel.ready(120_000);
        const code = unpackCode('js', fixture('hello.js'), 1 << 20);
        const init = await vm.channel.request({ op: 'init', files: toCodeFiles(code), main: code.main, entry: 'main', env: {} }, 60_000);
        if (!init.ok)
            throw new Error(`init failed: ${init.error.message}`);
        let seq = 0;
        const direct = async () => {
            const t0 = performance.now();
            const r = await vm.channel.request({ op: 'run', activationId: `d${++seq}`, params: { name: 'bench' }, deadlineMs: 60_000 }, 60_000);
            const dt = performance.now() - t0;
            if (!r.ok)
                throw new Error(`direct: ${r.error.message}`);
            return dt;
        };
        // warm both up: the first runs translate the run path under TCG
        for (let i = 0; i < 5; i++) {
            await viaDaemon();
            await direct();
        }
        const paces = [];
        for (const paceMs of PACES_MS) {
            const pause = () => (paceMs > 0 ? new Promise((r) => setTimeout(r, paceMs)) : Promise.resolve());
            const d = [];
            const x = [];
            const over = [];
            const before = [];
            const chan = [];
            const afterCh = [];
            const split = () => {
                // the daemon's channel: the one stamped inside the last daemon call (not the direct VM's)
                for (const [ch, s] of stamps.last) {
                    if (ch === vm.channel || s.sent < lastCall.t0 || s.answered > lastCall.t1)
                        continue;
                    before.push(s.sent - lastCall.t0);
                    chan.push(s.answered - s.sent);
                    afterCh.push(lastCall.t1 - s.answered);
                }
            };
            for (let i = 0; i < opts.calls; i++) {
                // alternate which goes first, so neither always follows the other's idle gap
                let a;
                let c;
                if (i % 2 === 0) {
                    await pause();
                    a = await viaDaemon();
                    split();
                    await pause();
                    c = await direct();
                }
                else {
                    await pause();
                    c = await direct();
                    await pause();
                    a = await viaDaemon();
                    split();
                }
                d.push(a);
                x.push(c);
                over.push(a - c);
                if ((i + 1) % 50 === 0)
                    log(`  idle ${paceMs} ms, ${i + 1}/${opts.calls}: daemon median ${ms(summarize(d).median)}, direct ${ms(summarize(x).median)}`);
            }
            paces.push({
                paceMs,
                daemon: summarize(d),
                direct: summarize(x),
                overhead: summarize(over),
                ratio: summarize(d).median / summarize(x).median,
                split: { beforeChannel: summarize(before), channel: summarize(chan), afterChannel: summarize(afterCh) },
            });
        }
        log('  the host alone: loopback round trips and SQLite commits, hot and after idle…');
        const probe = await idleProbe(b.dir, PACES_MS[0], opts.calls);
        return { machine: machine(), accelerator: b.d.accelerator, calls: opts.calls, paces, probe };
    }
    finally {
        stamps.restore();
        agent.destroy();
        await vm?.stop();
        await b.close();
        rmSync(path.join(b.dir, 'direct'), { recursive: true, force: true });
    }
}
export function formatWarmVm(r) {
    const row = (name, s) => [name, ms(s.median), ms(s.p99), ms(s.min), s.n];
    const out = [
        `machine: ${JSON.stringify(r.machine)}`,
        `accelerator: ${r.accelerator}; hello, 256 MiB, 1 vCPU; ${r.calls} call pairs per idle gap, interleaved, the order alternating`,
    ];
    for (const p of r.paces) {
        out.push('', `idle before each call: ${p.paceMs} ms`, '', table(['warm call', 'median', 'p99', 'min', 'n'], [
            row('through the daemon (HTTP, keep-alive client)', p.daemon),
            row('  client → the Worker writes to the channel', p.split.beforeChannel),
            row("  channel round trip of the daemon's VM", p.split.channel),
            row('  channel reply → client has the response', p.split.afterChannel),
            row('straight to the agent channel', p.direct),
            row('difference per pair (daemon − direct)', p.overhead),
        ]), '', `whole warm call / direct: ${p.ratio.toFixed(2)}× (goal ≤ 1.15×); daemon overhead median ${ms(p.overhead.median)} (goal ≤ 1 ms)`);
    }
    const q = r.probe;
    const us = (x) => `${Math.round(x * 1000)} µs`;
    out.push('', `the host alone (no VM, no daemon), back to back and after ${r.paces[0]?.paceMs ?? 0} ms idle:`, '', table(['step', 'hot median', 'hot p99', 'after idle median', 'after idle p99'], [
        ['loopback TCP round trip, 200 bytes', us(q.tcpHot.median), us(q.tcpHot.p99), us(q.tcpAfterIdle.median), us(q.tcpAfterIdle.p99)],
        ['SQLite WAL commit, one 1.5 KB record', us(q.commitHot.median), us(q.commitHot.p99), us(q.commitAfterIdle.median), us(q.commitAfterIdle.p99)],
    ]));
    return out.join('\n');
}
//# sourceMappingURL=warm-vm.js.map