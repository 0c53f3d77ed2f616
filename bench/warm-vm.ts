// faascell bench warm-vm: a warm call through the daemon against the same request sent straight to a
// guest agent's channel, with real VMs, interleaved call by call in one run (issue 9, item 3). Both
// VMs are cold-booted hello instances of the same image and shape, the daemon's behind its HTTP API
// (a keep-alive client, as a load generator would use), the direct one driven by the driver alone.
// The difference of the medians is what the daemon adds: HTTP, Dispatcher, VmPool, Worker, records.
import http from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { toCodeFiles, unpackCode } from '../src/registry/code.js';
import { SocketChannel } from '../src/runtimes/channel.js';
import { createDriver } from '../src/runtimes/index.js';
import type { VmHandle } from '../src/runtimes/types.js';
import { benchDaemon, fixture, machine, ms, summarize, table, type Summary } from './common.js';

export interface WarmVmResult {
  machine: Record<string, string | number>;
  accelerator: string;
  calls: number;
  daemon: Summary;
  direct: Summary;
  /** per call pair: daemon − direct */
  overhead: Summary;
  ratio: number;
  /** the daemon's call split at its channel request (same process, so one clock): before, the round trip, after */
  split: { beforeChannel: Summary; channel: Summary; afterChannel: Summary };
}

/**
 * Bench-only instrumentation: the daemon runs in this process, so every channel request of its Worker
 * can be stamped here (wrapping SocketChannel.request), splitting a daemon call into the daemon's part
 * before the channel, the channel round trip itself, and the daemon's part after it.
 */
function stampChannels(): { last: Map<SocketChannel, { sent: number; answered: number }>; restore(): void } {
  const last = new Map<SocketChannel, { sent: number; answered: number }>();
  const proto = SocketChannel.prototype;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound with .call below
  const orig = proto.request;
  proto.request = function (this: SocketChannel, req, timeoutMs) {
    const sent = performance.now();
    const p = orig.call(this, req, timeoutMs);
    return p.then((r) => {
      last.set(this, { sent, answered: performance.now() });
      return r;
    });
  };
  return { last, restore: () => void (proto.request = orig) };
}

/** Same idle gap before every measured call on both paths: a guest that idles between requests wakes more slowly under TCG. */
const PACE_MS = 20;
const pause = (): Promise<void> => new Promise((r) => setTimeout(r, PACE_MS));

export async function benchWarmVm(opts: { calls: number; config?: Record<string, unknown>; log?: (s: string) => void }): Promise<WarmVmResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const b = await benchDaemon({ snapshots: { enabled: false }, ...(opts.config ?? {}) });
  let vm: VmHandle | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const stamps = stampChannels();
  try {
    await b.client.deploy('hello', fixture('hello.js'), { codeKind: 'js' });
    const url = new URL(b.d.url);
    const body = JSON.stringify({ name: 'bench' });
    let lastCall = { t0: 0, t1: 0 };
    const viaDaemon = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const t0 = performance.now();
        const req = http.request({ host: url.hostname, port: Number(url.port), path: '/v1/functions/hello/invoke', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const t1 = performance.now();
            const dt = t1 - t0;
            lastCall = { t0, t1 };
            if (res.statusCode !== 200) reject(new Error(`daemon: HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
            else resolve(dt);
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
    if (!init.ok) throw new Error(`init failed: ${init.error.message}`);
    let seq = 0;
    const direct = async (): Promise<number> => {
      const t0 = performance.now();
      const r = await vm!.channel.request({ op: 'run', activationId: `d${++seq}`, params: { name: 'bench' }, deadlineMs: 60_000 }, 60_000);
      const dt = performance.now() - t0;
      if (!r.ok) throw new Error(`direct: ${r.error.message}`);
      return dt;
    };
    // warm both up: the first runs translate the run path under TCG
    for (let i = 0; i < 5; i++) {
      await viaDaemon();
      await direct();
    }
    const d: number[] = [];
    const x: number[] = [];
    const over: number[] = [];
    const before: number[] = [];
    const chan: number[] = [];
    const afterCh: number[] = [];
    const split = (): void => {
      // the daemon's channel: the one stamped inside the last daemon call (not the direct VM's)
      for (const [ch, s] of stamps.last) {
        if (ch === (vm!.channel as unknown) || s.sent < lastCall.t0 || s.answered > lastCall.t1) continue;
        before.push(s.sent - lastCall.t0);
        chan.push(s.answered - s.sent);
        afterCh.push(lastCall.t1 - s.answered);
      }
    };
    for (let i = 0; i < opts.calls; i++) {
      // alternate which goes first, so neither always follows the other's idle gap
      let a: number;
      let c: number;
      if (i % 2 === 0) {
        await pause();
        a = await viaDaemon();
        split();
        await pause();
        c = await direct();
      } else {
        await pause();
        c = await direct();
        await pause();
        a = await viaDaemon();
        split();
      }
      d.push(a);
      x.push(c);
      over.push(a - c);
      if ((i + 1) % 50 === 0) log(`  ${i + 1}/${opts.calls}: daemon median ${ms(summarize(d).median)}, direct ${ms(summarize(x).median)}`);
    }
    return {
      machine: machine(),
      accelerator: b.d.accelerator,
      calls: opts.calls,
      daemon: summarize(d),
      direct: summarize(x),
      overhead: summarize(over),
      ratio: summarize(d).median / summarize(x).median,
      split: { beforeChannel: summarize(before), channel: summarize(chan), afterChannel: summarize(afterCh) },
    };
  } finally {
    stamps.restore();
    agent.destroy();
    await vm?.stop();
    await b.close();
    rmSync(path.join(b.dir, 'direct'), { recursive: true, force: true });
  }
}

export function formatWarmVm(r: WarmVmResult): string {
  const row = (name: string, s: Summary): Array<string | number> => [name, ms(s.median), ms(s.p99), ms(s.min), s.n];
  return [
    `machine: ${JSON.stringify(r.machine)}`,
    `accelerator: ${r.accelerator}; hello, 256 MiB, 1 vCPU; ${r.calls} call pairs, interleaved, ${PACE_MS} ms idle before each call`,
    '',
    table(['warm call', 'median', 'p99', 'min', 'n'], [
      row('through the daemon (HTTP, keep-alive client)', r.daemon),
      row('  client → the Worker writes to the channel', r.split.beforeChannel),
      row('  channel round trip of the daemon\'s VM', r.split.channel),
      row('  channel reply → client has the response', r.split.afterChannel),
      row('straight to the agent channel', r.direct),
      row('difference per pair (daemon − direct)', r.overhead),
    ]),
    '',
    `whole warm call / direct: ${r.ratio.toFixed(2)}× (goal ≤ 1.15×); daemon overhead median ${ms(r.overhead.median)} (goal ≤ 1 ms)`,
  ].join('\n');
}
