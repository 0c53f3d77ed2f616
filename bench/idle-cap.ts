// faascell bench idle-cap (issue 19, "work after the result"): daemons side by side in one process,
// one with the idle CPU cap (limits.idleCpuQuota 0.1, the default) and one without (null: the
// behaviour before issue 19), each with a warm hello instance and a function that keeps spinning
// after it returned its result; a second daemon without the cap is the control (how far two
// identical daemons differ on this machine). Measured in one run, interleaved call by call:
// - what the cap costs the warm path (its cgroup writes: off with the run, on after it), with an
//   idle gap before each call and back to back;
// - the host CPU a spinning function's idle VMM takes with and without the cap, over repeated windows;
// - a warm call to such a spinning VM (the capped one was throttled until the run was assigned).
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import { benchDaemon, fixture, machine, ms, summarize, table, type BenchDaemon, type Summary } from './common.js';


export const IDLE_CAP = 0.1;
const PACES_MS = [20, 0];

export interface IdleCapResult {
  machine: Record<string, string | number>;
  accelerator: string;
  calls: number;
  windowSeconds: number;
  /** control: a second daemon without the cap, against the first (the spread between two identical daemons) */
  warm: Array<{ paceMs: number; capped: Summary; uncapped: Summary; control: Summary; ratio: number; controlRatio: number }>;
  /** host CPU of the spinning function's idle VMM, fraction of a core, per window */
  spinCpu: { capped: Summary; uncapped: Summary };
  /** a warm call to the spinning VM, 200 ms of idleness before each */
  spinCall: { capped: Summary; uncapped: Summary; ratio: number };
}

interface Side {
  b: BenchDaemon;
  call(fn: string): Promise<number>;
  pid(fn: string): Promise<number>;
}

async function side(cap: number | null): Promise<Side> {
  const b = await benchDaemon({ snapshots: { enabled: false }, limits: { idleCpuQuota: cap } });
  const url = new URL(b.d.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await b.client.deploy('hello', fixture('hello.js'), { codeKind: 'js' });
  await b.client.deploy('spin', fixture('spin-after-result.js'), { codeKind: 'js' });
  const call = (fn: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request({ host: url.hostname, port: Number(url.port), path: `/v1/functions/${fn}/invoke`, method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const dt = performance.now() - t0;
          if (res.statusCode !== 200) reject(new Error(`${fn}: HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
          else resolve(dt);
        });
      });
      req.on('error', reject);
      req.end('{"name":"bench"}');
    });
  // the VMM runs as `-name faascell-<vmId>`, its run dir in this daemon's directory
  const pid = async (fn: string): Promise<number> => {
    const st = await b.client.call<{ pool: { instances: Array<{ fn: string; id: string }> } }>('GET', '/v1/status');
    const id = st.pool.instances.find((i) => i.fn === fn)?.id;
    const line = execFileSync('pgrep', ['-a', '-f', 'qemu-system'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.includes(b.dir) && l.includes(`faascell-${id} `));
    if (!id || !line) throw new Error(`no VMM for ${fn}`);
    return Number(line.trim().split(/\s+/)[0]);
  };
  const close = b.close.bind(b);
  b.close = async () => {
    agent.destroy();
    await close();
  };
  return { b, call, pid };
}

function ticks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function benchIdleCap(opts: { calls: number; seconds: number; windows: number; log?: (s: string) => void }): Promise<IdleCapResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const capped = await side(IDLE_CAP);
  let uncapped: Side | undefined;
  let control: Side | undefined;
  try {
    uncapped = await side(null);
    control = await side(null);
    const both = [capped, uncapped] as const;
    const all = [capped, uncapped, control] as const;
    for (const s of all) await s.call('hello'); // cold starts
    for (let i = 0; i < 5; i++) for (const s of all) await s.call('hello'); // translate the run path
    const warm: IdleCapResult['warm'] = [];
    // the three orders rotate, so none always follows another's call
    const orders = [
      [0, 1, 2],
      [1, 2, 0],
      [2, 0, 1],
    ];
    for (const paceMs of PACES_MS) {
      const t: [number[], number[], number[]] = [[], [], []];
      for (let i = 0; i < opts.calls; i++) {
        for (const k of orders[i % 3]!) {
          if (paceMs > 0) await sleep(paceMs);
          t[k as 0 | 1 | 2].push(await all[k]!.call('hello'));
        }
      }
      const [c, u, x] = t.map(summarize) as [Summary, Summary, Summary];
      warm.push({ paceMs, capped: c, uncapped: u, control: x, ratio: c.median / u.median, controlRatio: x.median / u.median });
      log(`  warm, idle ${paceMs} ms: capped ${ms(c.median)}, uncapped ${ms(u.median)}, control ${ms(x.median)}`);
    }
    // the spinning part needs no control (the difference is the point); stop its VM's noise
    await control.b.close();
    control = undefined;
    // the spinning functions: started by one call each, then measured while idle
    for (const s of both) await s.call('spin');
    const pids = await Promise.all(both.map((s) => s.pid('spin')));
    const cpu: [number[], number[]] = [[], []];
    for (let w = 0; w < opts.windows; w++) {
      const t0 = pids.map(ticks);
      const w0 = performance.now();
      await sleep(opts.seconds * 1000);
      const wall = performance.now() - w0;
      pids.forEach((p, k) => cpu[k as 0 | 1].push(((ticks(p) - t0[k]!) * 10) / wall));
      log(`  spinning idle VMM, window ${w + 1}/${opts.windows}: capped ${cpu[0].at(-1)!.toFixed(3)} CPU, uncapped ${cpu[1].at(-1)!.toFixed(3)} CPU`);
    }
    const sc: number[] = [];
    const su: number[] = [];
    for (let i = 0; i < Math.max(10, Math.floor(opts.calls / 5)); i++) {
      const order = i % 2 === 0 ? [0, 1] : [1, 0];
      for (const k of order) {
        await sleep(200);
        (k === 0 ? sc : su).push(await both[k]!.call('spin'));
      }
    }
    return {
      machine: machine(),
      accelerator: capped.b.d.accelerator,
      calls: opts.calls,
      windowSeconds: opts.seconds,
      warm,
      spinCpu: { capped: summarize(cpu[0]), uncapped: summarize(cpu[1]) },
      spinCall: { capped: summarize(sc), uncapped: summarize(su), ratio: summarize(sc).median / summarize(su).median },
    };
  } finally {
    await control?.b.close();
    await uncapped?.b.close();
    await capped.b.close();
  }
}

export function formatIdleCap(r: IdleCapResult): string {
  const row = (name: string, s: Summary): Array<string | number> => [name, ms(s.median), ms(s.p99), ms(s.min), s.n];
  const cpuRow = (name: string, s: Summary): Array<string | number> => [name, s.median.toFixed(3), s.p99.toFixed(3), s.max.toFixed(3), s.n];
  const out = [
    `machine: ${JSON.stringify(r.machine)}`,
    `accelerator: ${r.accelerator}; hello and a spinning function, 256 MiB, 1 vCPU, one daemon with limits.idleCpuQuota ${IDLE_CAP}, one without (null) and, for the warm calls, a second one without as a control; calls interleaved, the order rotating`,
  ];
  for (const w of r.warm) {
    out.push(
      '',
      `warm hello call, idle ${w.paceMs} ms before each (${r.calls} per daemon)`,
      '',
      table(['warm call', 'median', 'p99', 'min', 'n'], [row(`idle cap ${IDLE_CAP}`, w.capped), row('no idle cap (before issue 19)', w.uncapped), row('control: a second daemon without the cap', w.control)]),
      '',
      `capped / uncapped median: ${w.ratio.toFixed(2)}×; control / uncapped (two identical daemons): ${w.controlRatio.toFixed(2)}×`,
    );
  }
  out.push(
    '',
    `host CPU of a function's idle VMM while it spins after its result (fraction of a core, ${r.windowSeconds} s windows)`,
    '',
    table(['idle VMM', 'median', 'p99', 'max', 'windows'], [cpuRow(`idle cap ${IDLE_CAP}`, r.spinCpu.capped), cpuRow('no idle cap', r.spinCpu.uncapped)]),
    '',
    'a warm call to the spinning function (200 ms idle before each; the capped VM was throttled until its run was assigned)',
    '',
    table(['warm call', 'median', 'p99', 'min', 'n'], [row(`idle cap ${IDLE_CAP}`, r.spinCall.capped), row('no idle cap', r.spinCall.uncapped)]),
    '',
    `capped / uncapped median: ${r.spinCall.ratio.toFixed(2)}×`,
  );
  return out.join('\n');
}
