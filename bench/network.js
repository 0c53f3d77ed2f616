// `faascell bench network`: what networking costs (docs/network.md).
//  1. host operations of one slot (create, apply an allowlist, recycle, destroy), no VM
//  2. restore → response through the daemon for a function without network, with
//     network and the slot pool, and with network but no pool (pool size 0): the
//     network set-up on a start's critical path, interleaved in one run
//  3. one VM in a slot, driven through the driver: an HTTP request from the guest
//     through tap + NAT to a server in a test namespace, against a round trip on
//     the host–guest serial channel
//  4. cold boots with and without the guest's network set-up in /init
// Everything stays on this machine (a test-owned namespace, see test/fixtures/netns.ts).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCidr } from '../src/network/ipv4.js';
import { applyRules, createSlot, destroySlot, hostDown, hostUp, recycleSlot } from '../src/network/host.js';
import { daemonNetworkId } from '../src/network/network-manager.js';
import { protectedRanges, rulesTransaction, slotPlan, GUEST_KERNEL_IP_ARG, GUEST_NET_ARG, TAP } from '../src/network/plan.js';
import { normalizeNetworkSpec, rulesOf } from '../src/network/spec.js';
import { unpackCode, toCodeFiles } from '../src/registry/code.js';
import { createDriver } from '../src/runtimes/index.js';
import { freeTestSubnet, TestServerNs } from '../test/fixtures/netns.js';
import { benchDaemon, evictAndWait, fixture, machine, ms, summarize, table, timedInvoke } from './common.js';
const sleep = (msec) => new Promise((r) => setTimeout(r, msec));
async function hostOps(runs, allow) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-bench-net-'));
    const c = parseCidr('10.204.0.0/16');
    const plan = { id: daemonNetworkId(dir), hostCidr: { addr: c.addr, prefix: c.prefix } };
    const rules = rulesTransaction({ rules: rulesOf(normalizeNetworkSpec({ mode: 'egress', allow: [allow] })), hostCidr: plan.hostCidr, protected: protectedRanges(plan.hostCidr, []) });
    const t = { create: [], apply: [], recycle: [], destroy: [] };
    const time = async (into, f) => {
        const t0 = performance.now();
        await f();
        into.push(performance.now() - t0);
    };
    try {
        await hostUp(plan);
        for (let i = 0; i < runs; i++) {
            const p = slotPlan(plan, i % 4);
            await time(t.create, () => createSlot(p));
            await time(t.apply, () => applyRules(p, rules));
            await time(t.recycle, () => recycleSlot(p));
            await time(t.destroy, () => destroySlot(p));
        }
    }
    finally {
        for (let i = 0; i < 4; i++)
            await destroySlot(slotPlan(plan, i)).catch(() => undefined);
        await hostDown(plan);
        rmSync(dir, { recursive: true, force: true });
    }
    return { create: summarize(t.create), apply: summarize(t.apply), recycle: summarize(t.recycle), destroy: summarize(t.destroy) };
}
async function restores(runs, srv) {
    const placement = { placement: { policy: 'fixed', tier: 'shm' } };
    // two daemons at once: disjoint VM ranges (each slot's /30 is a host route)
    const pooled = await benchDaemon({ network: { poolSize: 2, hostCidr: '10.202.0.0/16' }, policies: placement });
    const unpooled = await benchDaemon({ network: { poolSize: 0, hostCidr: '10.203.0.0/16' }, policies: placement });
    const allow = { network: { mode: 'egress', allow: [`${srv.server}:8080`] } };
    const code = fixture('net-fetch.js').toString('base64');
    const url = `http://${srv.server}:8080/bench`;
    const out = { none: [], pooled: [], unpooled: [], setupPooled: [], setupUnpooled: [], firstFetch: [] };
    try {
        await pooled.client.call('PUT', '/v1/functions/plain', { code, codeKind: 'js' });
        await pooled.client.call('PUT', '/v1/functions/net', { code, codeKind: 'js', ...allow });
        await unpooled.client.call('PUT', '/v1/functions/net', { code, codeKind: 'js', ...allow });
        // first call: the cold start that leaves the snapshot
        for (const [b, fn] of [[pooled, 'plain'], [pooled, 'net'], [unpooled, 'net']]) {
            await timedInvoke(b.client, fn, { urls: fn === 'net' ? [url] : [] });
            await evictAndWait(b.client, fn);
        }
        // interleaved: each round restores each configuration once; the restore's own call
        // does no I/O (the same work for all three), a second call then fetches once
        for (let i = 0; i < runs; i++) {
            for (const [b, fn, into, setup] of [
                [pooled, 'plain', out.none, undefined],
                [pooled, 'net', out.pooled, out.setupPooled],
                [unpooled, 'net', out.unpooled, out.setupUnpooled],
            ]) {
                await sleep(300); // the pool refills between starts, as it would between requests
                const r = await timedInvoke(b.client, fn, { urls: [] });
                if (r.startPath !== 'restore')
                    throw new Error(`${fn}: expected a restore, got ${r.startPath}`);
                into.push(r.ms);
                const s = r.body.activation?.startDetails?.networkSetupMs;
                if (setup && typeof s === 'number')
                    setup.push(s);
                if (fn === 'net') {
                    const f = await timedInvoke(b.client, fn, { urls: [url] });
                    const res = f.body.result;
                    if (!res.results[0]?.ok)
                        throw new Error(`fetch failed: ${JSON.stringify(res)}`);
                    out.firstFetch.push(res.results[0].ms);
                }
                await evictAndWait(b.client, fn);
            }
        }
        return {
            accelerator: pooled.d.accelerator,
            restore: { none: summarize(out.none), pooled: summarize(out.pooled), unpooled: summarize(out.unpooled) },
            setup: { pooled: summarize(out.setupPooled), unpooled: summarize(out.setupUnpooled) },
            firstFetch: summarize(out.firstFetch),
        };
    }
    finally {
        await pooled.close();
        await unpooled.close();
    }
}
async function vmLevel(runs, boots, srv, image, accelerator) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-bench-netvm-'));
    const c = parseCidr('10.205.0.0/16');
    const plan = { id: daemonNetworkId(dir), hostCidr: { addr: c.addr, prefix: c.prefix } };
    const driver = await createDriver('qemu');
    const slot = slotPlan(plan, 0);
    let vm;
    try {
        await hostUp(plan);
        await createSlot(slot);
        await applyRules(slot, rulesTransaction({ rules: rulesOf(normalizeNetworkSpec({ mode: 'egress', allow: [`${srv.server}:8080`] })), hostCidr: plan.hostCidr, protected: [] }));
        mkdirSync(path.join(dir, 'run'), { recursive: true });
        vm = await driver.boot({ vmId: 'bench-net', memoryMiB: 256, vcpus: 1, image, runDir: path.join(dir, 'run', 'vm'), accelerator, memory: { kind: 'anonymous' }, network: { netnsPath: slot.netnsPath, tap: TAP } });
        await vm.channel.ready(120_000);
        const code = unpackCode('js', fixture('net-fetch.js'), 1 << 20);
        const init = await vm.channel.request({ op: 'init', files: toCodeFiles(code), main: code.main, entry: 'main', env: {} }, 30_000);
        if (!init.ok)
            throw new Error(`init failed: ${init.error.message}`);
        const url = `http://${srv.server}:8080/x`;
        const run = async (params) => {
            const r = await vm.channel.request({ op: 'run', activationId: 'b', params, deadlineMs: 60_000 }, 60_000);
            if (!r.ok)
                throw new Error(r.error.message);
            return r.result;
        };
        // warm both paths up (TCG translates each code path the first time)
        await run({ urls: [url], repeat: 3 });
        await run({ urls: [url], repeat: 3, keepAlive: true });
        const ping = [];
        const chanRun = [];
        const httpNew = [];
        const httpKeep = [];
        for (let i = 0; i < runs; i++) {
            await sleep(20);
            let t0 = performance.now();
            await vm.channel.request({ op: 'ping' }, 10_000);
            ping.push(performance.now() - t0);
            await sleep(20);
            t0 = performance.now();
            await run({ urls: [] });
            chanRun.push(performance.now() - t0);
            const a = await run({ urls: [url] });
            const b = await run({ urls: [url], keepAlive: true });
            if (!a.results[0]?.ok || !b.results[0]?.ok)
                throw new Error(`fetch failed: ${JSON.stringify([a, b])}`);
            httpNew.push(a.results[0].ms);
            httpKeep.push(b.results[0].ms);
        }
        await vm.stop();
        vm = undefined;
        // cold boots with and without the network lines of /init (same NIC either way)
        const withNet = [];
        const withoutNet = [];
        const readyWith = [];
        const readyWithout = [];
        const noNetImage = { ...image, cmdline: image.cmdline.replace(GUEST_NET_ARG, '').replace(GUEST_KERNEL_IP_ARG, '').replace(/\s+/g, ' ').trim() };
        for (let i = 0; i < boots; i++) {
            for (const [img, into, ready] of [
                [image, withNet, readyWith],
                [noNetImage, withoutNet, readyWithout],
            ]) {
                const t0 = performance.now();
                const v = await driver.boot({ vmId: `bench-boot-${i}`, memoryMiB: 256, vcpus: 1, image: img, runDir: path.join(dir, 'run', `boot-${i}`), accelerator, memory: { kind: 'anonymous' } });
                try {
                    const r = await v.channel.ready(120_000);
                    ready.push(performance.now() - t0);
                    into.push(r.uptimeMs.agentStart - r.uptimeMs.init);
                }
                finally {
                    await v.stop();
                }
            }
        }
        return {
            latency: { channelPing: summarize(ping), channelRun: summarize(chanRun), httpNewConnection: summarize(httpNew), httpKeepAlive: summarize(httpKeep) },
            initNet: { withNet: summarize(withNet), withoutNet: summarize(withoutNet), readyWithNet: summarize(readyWith), readyWithoutNet: summarize(readyWithout) },
        };
    }
    finally {
        await vm?.stop();
        await destroySlot(slot).catch(() => undefined);
        await hostDown(plan);
        rmSync(dir, { recursive: true, force: true });
    }
}
export async function benchNetwork(o) {
    const srv = new TestServerNs(freeTestSubnet());
    await srv.start();
    try {
        const ops = await hostOps(o.runs, `${srv.server}:8080`);
        const r = await restores(o.runs, srv);
        const { buildImage, defaultCacheDir } = await import('../src/image/builder.js');
        const image = await buildImage({ cacheDir: defaultCacheDir() });
        const accelerator = r.accelerator === 'kvm' ? 'kvm' : 'tcg';
        const v = await vmLevel(o.runs, o.boots, srv, image, accelerator);
        return { machine: machine(), accelerator: r.accelerator, hostOps: ops, restore: r.restore, setup: r.setup, firstFetch: r.firstFetch, latency: v.latency, initNet: v.initNet };
    }
    finally {
        srv.stop();
    }
}
export function formatNetwork(r) {
    const row = (name, s) => [name, ms(s.median), ms(s.p99), ms(s.min), s.n];
    const head = ['', 'median', 'p99', 'min', 'n'];
    return [
        `machine: ${JSON.stringify(r.machine)}`,
        `accelerator: ${r.accelerator}`,
        '',
        table(head, [
            row('host: create a slot (netns, veth, tap, nft table)', r.hostOps.create),
            row('host: apply an allowlist (nft, in the namespace)', r.hostOps.apply),
            row('host: recycle a used slot (conntrack, neighbours, rules)', r.hostOps.recycle),
            row('host: destroy a slot', r.hostOps.destroy),
        ]),
        '',
        table(head, [
            row('restore → response, no network', r.restore.none),
            row('restore → response, egress, pooled slot', r.restore.pooled),
            row('restore → response, egress, no pool', r.restore.unpooled),
            row('  network set-up in that start, pooled', r.setup.pooled),
            row('  network set-up in that start, no pool', r.setup.unpooled),
            row('first HTTP GET in a restored clone (guest)', r.firstFetch),
        ]),
        '',
        table(head, [
            row('host → agent ping on the serial channel', r.latency.channelPing),
            row('host → agent empty run on the serial channel', r.latency.channelRun),
            row('guest HTTP GET through tap + NAT, new connection', r.latency.httpNewConnection),
            row('guest HTTP GET through tap + NAT, kept-alive connection', r.latency.httpKeepAlive),
        ]),
        '',
        table(head, [
            row('cold boot, /init start → agent JS start, network configured', r.initNet.withNet),
            row('cold boot, /init start → agent JS start, no ip= nor faascell.net=', r.initNet.withoutNet),
            row('cold boot, QEMU start → agent ready, network configured', r.initNet.readyWithNet),
            row('cold boot, QEMU start → agent ready, no ip= nor faascell.net=', r.initNet.readyWithoutNet),
        ]),
    ].join('\n');
}
//# sourceMappingURL=network.js.map