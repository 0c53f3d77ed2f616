// faascell bench cluster (issue 13): a FaaSCell cluster on NATS JetStream, with
// real VMs, on this one machine (nats-server and every daemon are separate
// processes started here).
//   1. warm latency and throughput: straight to one node's HTTP API versus through
//      the broker (a cluster node's HTTP API, and a NATS client), side by side,
//      interleaved, in one run;
//   2. throughput of three nodes versus one on a CPU-bound function;
//   3. locality: the share of warm / restore / cold starts in a cluster run with
//      locality on and off (same seeded workload).
import os from 'node:os';
import { Client } from '../src/cli/client.js';
import { DEFAULT_PULL_RULE, type PullRule } from '../src/cluster/capacity.js';
import { ClusterClient } from '../src/cluster/client.js';
import { MEMORY_DEFAULTS } from '../src/config/schema.js';
import type { ClusterStatus } from '../src/cluster/index.js';
import { createRng } from '../src/policies/rng.js';
import { startNatsServer, type NatsServer } from '../test/cluster-helpers/nats-server.js';
import { fixture, machine, ms, spawnDaemon, summarize, table, type DaemonProcess, type Summary } from './common.js';

export interface ClusterBenchOptions {
  warmRuns: number;
  cpuRuns: number;
  localityRuns: number;
  /** which parts to run (default warm, cpu and locality; heartbeat only when asked) */
  sections?: Array<'warm' | 'cpu' | 'locality' | 'heartbeat'>;
  log?: (s: string) => void;
}

export interface ClusterBenchResult {
  machine: Record<string, string | number>;
  warm: { http: Summary; viaBrokerHttp: Summary; viaBrokerClient: Summary; addedP50Ms: number; addedClientP50Ms: number };
  throughput: { http: number; viaBroker: number; calls: number; concurrency: number };
  cpu: { oneNode: { perSecond: number; wallMs: number }; threeNodes: { perSecond: number; wallMs: number; byNode: Record<string, number> }; runs: number; iterations: number; runMs: Summary };
  locality: Record<'on' | 'off', LocalityRun>;
  heartbeat?: HeartbeatLag;
}

/**
 * How long after an answer reaches the client the ingress that accepted the call
 * sees, in the heartbeat of the node that ran it, the instance idle again (what its
 * locality rule needs to route the next call there warm). One sample per cold
 * start of a fresh function, sequential calls like the locality part.
 */
export interface HeartbeatLag {
  /** ms after the answer; 0: already visible at the first look */
  samples: Array<{ fn: string; ingress: string; node: string; lagMs: number }>;
  lagMs: Summary;
}

/** One locality run: the counts, and every call in order (the cluster simulator replays the same sequence, issue 23). */
export interface LocalityRun {
  warm: number;
  restore: number;
  cold: number;
  n: number;
  byNode: Record<string, number>;
  /** seconds of wall time for the sequence */
  wallSeconds: number;
  /** the daemons' cluster.pullRule (absent in runs before 2026-12-07: those ran under `instances`) */
  pullRule?: PullRule;
  /** the daemons' node.memory.accounting (absent in runs before 2026-12-07: those ran under `nominal`) */
  memoryAccounting?: 'measured' | 'nominal';
  /** load average (1, 5, 15 min) when the sequence began and when it ended: the machine is shared */
  loadavg?: { before: string; after: string };
  /** via: how the node got it (addressed: routed to it for locality; shared: pulled from the shared queue), from the activation's cluster record (absent before 2026-12-07) */
  calls: Array<{ ingress: string; fn: string; node: string; path: string; ms: number; via?: 'shared' | 'addressed'; handbacks?: number; forwardedFrom?: string }>;
}

const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

async function timed(f: () => Promise<{ status: number; body: { error?: { message: string } } }>): Promise<number> {
  const t0 = performance.now();
  const r = await f();
  const dt = performance.now() - t0;
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.error?.message}`);
  return dt;
}

async function closedLoop(n: number, concurrency: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await call(next++);
    }),
  );
  return performance.now() - t0;
}

async function waitUp(c: Client, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const s = await c.call<ClusterStatus>('GET', '/v1/cluster');
    if (s.nodes.filter((x) => x.state === 'up').length >= n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('cluster nodes did not come up');
}

function clusterCfg(nats: NatsServer, node: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cluster: { nats: nats.url, node, heartbeatMs: 500, ...extra } };
}

export async function benchCluster(o: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const log = o.log ?? ((s: string) => console.error(s));
  const res = { machine: machine() } as ClusterBenchResult;
  const want = new Set<string>(o.sections ?? ['warm', 'cpu', 'locality']);

  // ---- 1. warm: straight HTTP vs through the broker -------------------------------
  if (want.has('warm')) {
    const nats = await startNatsServer();
    const straight = await spawnDaemon('straight', {});
    const member = await spawnDaemon('member', clusterCfg(nats, 'solo'));
    const client = await ClusterClient.connect({ nats: nats.url });
    try {
      for (const d of [straight, member]) await d.client.deploy('hello', fixture('hello.js'), { codeKind: 'js', maxInstances: 2 });
      log('  cluster bench: warming up (cold boots)…');
      for (const d of [straight, member]) await timed(() => d.client.invoke('hello', { name: 'warm' }));
      await timed(() => client.invoke('hello', { name: 'warm' }));
      const http: number[] = [];
      const viaHttp: number[] = [];
      const viaClient: number[] = [];
      for (let i = 0; i < o.warmRuns; i++) {
        // interleaved: the machine's noise hits the three paths alike
        await pause();
        http.push(await timed(() => straight.client.invoke('hello', { name: 'b' })));
        await pause();
        viaHttp.push(await timed(() => member.client.invoke('hello', { name: 'b' })));
        await pause();
        viaClient.push(await timed(() => client.invoke('hello', { name: 'b' })));
      }
      const h = summarize(http);
      const vh = summarize(viaHttp);
      const vc = summarize(viaClient);
      res.warm = { http: h, viaBrokerHttp: vh, viaBrokerClient: vc, addedP50Ms: vh.median - h.median, addedClientP50Ms: vc.median - h.median };
      log(`  warm p50: straight ${ms(h.median)}, via broker (HTTP) ${ms(vh.median)}, via broker (NATS client) ${ms(vc.median)}`);
      // throughput, closed loop, two at a time (two warm instances each)
      const calls = Math.max(40, o.warmRuns);
      for (const d of [straight, member]) await Promise.all([0, 1].map(() => timed(() => d.client.invoke('hello', { name: 'w' }))));
      const tHttp = await closedLoop(calls, 2, () => timed(() => straight.client.invoke('hello', { name: 't' })));
      const tVia = await closedLoop(calls, 2, () => timed(() => member.client.invoke('hello', { name: 't' })));
      res.throughput = { http: (calls / tHttp) * 1000, viaBroker: (calls / tVia) * 1000, calls, concurrency: 2 };
      log(`  warm throughput: straight ${res.throughput.http.toFixed(1)}/s, via broker ${res.throughput.viaBroker.toFixed(1)}/s`);
    } finally {
      await client.close();
      await straight.stop();
      await member.stop();
      await nats.cleanup();
    }
  }

  // ---- 2. CPU-bound: three nodes vs one ----------------------------------------------
  if (want.has('cpu')) {
    const iterations = 3e6;
    const run = async (nodes: number): Promise<{ wallMs: number; byNode: Record<string, number>; runMs: number[] }> => {
      const nats = await startNatsServer();
      const ds: DaemonProcess[] = [];
      const client = await ClusterClient.connect({ nats: nats.url });
      try {
        for (let i = 0; i < nodes; i++) ds.push(await spawnDaemon(`cpu${i}`, { ...clusterCfg(nats, `cpu${i}`), admission: { maxConcurrentStarts: 1 } }));
        await waitUp(ds[0]!.client, nodes);
        await ds[0]!.client.deploy('burn', fixture('cpu-burn.js'), { codeKind: 'js', maxInstances: 2, timeoutMs: 120_000 });
        // every node gets its instances before the clock starts: addressed warm-up calls
        for (let i = 0; i < nodes; i++) await Promise.all([0, 1].map(() => client.invoke('burn', { iterations: 1000 }, { target: `cpu${i}`, timeoutMs: 300_000 })));
        const byNode: Record<string, number> = {};
        const runMs: number[] = [];
        const wallMs = await closedLoop(o.cpuRuns, 2 * nodes, async () => {
          const r = await client.invoke('burn', { iterations }, { timeoutMs: 300_000 });
          if (r.status !== 200) throw new Error(`burn: ${r.status} ${r.body.error?.message}`);
          const a = r.body.activation!;
          byNode[a.node!] = (byNode[a.node!] ?? 0) + 1;
          if (a.runMs !== undefined) runMs.push(a.runMs);
        });
        return { wallMs, byNode, runMs };
      } finally {
        await client.close();
        for (const d of ds) await d.stop();
        await nats.cleanup();
      }
    };
    log('  cluster bench: CPU-bound, one node…');
    const one = await run(1);
    log('  cluster bench: CPU-bound, three nodes…');
    const three = await run(3);
    res.cpu = {
      oneNode: { perSecond: (o.cpuRuns / one.wallMs) * 1000, wallMs: one.wallMs },
      threeNodes: { perSecond: (o.cpuRuns / three.wallMs) * 1000, wallMs: three.wallMs, byNode: three.byNode },
      runs: o.cpuRuns,
      iterations,
      runMs: summarize([...one.runMs, ...three.runMs]),
    };
    log(`  CPU-bound: one node ${res.cpu.oneNode.perSecond.toFixed(2)}/s, three nodes ${res.cpu.threeNodes.perSecond.toFixed(2)}/s`);
  }

  // ---- 3. locality on / off ------------------------------------------------------------
  res.locality = {} as ClusterBenchResult['locality'];
  for (const locality of want.has('locality') ? [true, false] : []) {
    const nats = await startNatsServer();
    const ds: DaemonProcess[] = [];
    try {
      // the pull rule said explicitly and recorded: the simulator's validation replays the run under the same rule
      const pullRule = DEFAULT_PULL_RULE;
      const memoryAccounting = MEMORY_DEFAULTS.accounting;
      for (let i = 0; i < 3; i++) ds.push(await spawnDaemon(`loc${i}`, { ...clusterCfg(nats, `loc${i}`, { locality, pullRule }), node: { memoryBudgetMiB: 768, memory: { accounting: memoryAccounting } }, admission: { maxConcurrentStarts: 1 } }));
      await waitUp(ds[0]!.client, 3);
      const fns = ['fa', 'fb', 'fc', 'fd'];
      for (const f of fns) await ds[0]!.client.deploy(f, fixture('hello.js'), { codeKind: 'js', maxInstances: 1 });
      // every node's registry follows the cluster's: wait until each knows the four (a loaded machine takes a while)
      for (const d of ds) {
        for (let i = 0; ; i++) {
          const { functions } = await d.client.call<{ functions: Array<{ name: string }> }>('GET', '/v1/functions');
          if (fns.every((f) => functions.some((x) => x.name === f))) break;
          if (i > 300) throw new Error('the functions did not reach every node');
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const rng = createRng(13);
      const paths = { warm: 0, restore: 0, cold: 0 };
      const byNode: Record<string, number> = {};
      const calls: LocalityRun['calls'] = [];
      const loadBefore = os.loadavg().map((x) => x.toFixed(2)).join(' ');
      const t0 = performance.now();
      // one at a time, through a random node's HTTP API, a random function: what stays where matters
      for (let i = 0; i < o.localityRuns; i++) {
        const k = rng.int(ds.length);
        const d = ds[k]!;
        const f = fns[rng.int(fns.length)]!;
        const c0 = performance.now();
        const r = await d.client.invoke(f, { name: String(i) });
        if (r.status !== 200) throw new Error(`${f}: ${r.status} ${r.body.error?.message}`);
        const a = r.body.activation!;
        paths[a.startPath ?? 'cold']++;
        byNode[a.node!] = (byNode[a.node!] ?? 0) + 1;
        const cl = a.cluster;
        calls.push({
          ingress: `loc${k}`,
          fn: f,
          node: a.node!,
          path: a.startPath ?? 'cold',
          ms: Math.round((performance.now() - c0) * 10) / 10,
          ...(cl ? { via: cl.via, handbacks: cl.handbacks, ...(cl.forwardedFrom ? { forwardedFrom: cl.forwardedFrom } : {}) } : {}),
        });
      }
      res.locality[locality ? 'on' : 'off'] = { ...paths, n: o.localityRuns, byNode, wallSeconds: (performance.now() - t0) / 1000, pullRule, memoryAccounting, loadavg: { before: loadBefore, after: os.loadavg().map((x) => x.toFixed(2)).join(' ') }, calls };
      log(`  locality ${locality ? 'on' : 'off'}: ${JSON.stringify(paths)}`);
    } finally {
      for (const d of ds) await d.stop();
      await nats.cleanup();
    }
  }
  // ---- 4. heartbeat lag (issue 23 item 4: the simulator shows a beat at once) -------------
  if (want.has('heartbeat')) res.heartbeat = await heartbeatLag(log);
  return res;
}

async function heartbeatLag(log: (s: string) => void): Promise<HeartbeatLag> {
  const nats = await startNatsServer();
  const ds: DaemonProcess[] = [];
  try {
    for (let i = 0; i < 2; i++) ds.push(await spawnDaemon(`hb${i}`, { ...clusterCfg(nats, `hb${i}`), node: { memoryBudgetMiB: 2048 }, admission: { maxConcurrentStarts: 1 } }));
    await waitUp(ds[0]!.client, 2);
    const fns = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
    for (const f of fns) await ds[0]!.client.deploy(f, fixture('hello.js'), { codeKind: 'js', maxInstances: 1 });
    const samples: HeartbeatLag['samples'] = [];
    for (const [i, f] of fns.entries()) {
      const k = i % ds.length;
      const ingress = ds[k]!;
      // the registry follows the cluster's: this node must know the function first
      for (let j = 0; ; j++) {
        const { functions } = await ingress.client.call<{ functions: Array<{ name: string }> }>('GET', '/v1/functions');
        if (functions.some((x) => x.name === f)) break;
        if (j > 300) throw new Error(`${f} did not reach hb${k}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const r = await ingress.client.invoke(f, { name: 'hb' });
      if (r.status !== 200) throw new Error(`${f}: ${r.status} ${r.body.error?.message}`);
      const t0 = performance.now();
      const node = r.body.activation!.node!;
      // look at the ingress's view until the runner's heartbeat shows the instance idle (bounded: 5 s)
      let lagMs = NaN;
      while (performance.now() - t0 < 5000) {
        const t = performance.now();
        const s = await ingress.client.call<ClusterStatus>('GET', '/v1/cluster');
        if ((s.nodes.find((n) => n.node === node)?.functions[f]?.idle ?? 0) > 0) {
          lagMs = t - t0;
          break;
        }
      }
      if (Number.isNaN(lagMs)) throw new Error(`${f}: the ingress hb${k} did not see ${node}'s idle instance within 5 s`);
      samples.push({ fn: f, ingress: `hb${k}`, node, lagMs: Math.round(lagMs * 10) / 10 });
      log(`  heartbeat lag ${f}: ${lagMs.toFixed(1)} ms (ingress hb${k}, ran on ${node})`);
    }
    return { samples, lagMs: summarize(samples.map((x) => x.lagMs)) };
  } finally {
    for (const d of ds) await d.stop();
    await nats.cleanup();
  }
}

export function formatCluster(r: ClusterBenchResult): string {
  const m = r.machine;
  const pct = (x: number, n: number): string => `${((100 * x) / n).toFixed(0)} %`;
  const out = [`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ${m.qemu}, load ${m.loadavg}`];
  if (r.warm) {
    out.push(
      '',
      `warm invocation of hello, client-side, ${r.warm.http.n} interleaved rounds:`,
      '',
      table(
        ['path', 'median', 'p99'],
        [
          ['straight to one node (HTTP)', ms(r.warm.http.median), ms(r.warm.http.p99)],
          ['HTTP to a cluster node → broker → node → broker', ms(r.warm.viaBrokerHttp.median), ms(r.warm.viaBrokerHttp.p99)],
          ['NATS client → broker → node → broker', ms(r.warm.viaBrokerClient.median), ms(r.warm.viaBrokerClient.p99)],
        ],
      ),
      '',
      `broker hop added at p50: ${ms(r.warm.addedP50Ms)} (HTTP ingress), ${ms(r.warm.addedClientP50Ms)} (NATS client)`,
      `warm throughput, ${r.throughput.calls} calls, ${r.throughput.concurrency} at a time: straight ${r.throughput.http.toFixed(1)}/s, through the broker ${r.throughput.viaBroker.toFixed(1)}/s`,
    );
  }
  if (r.cpu) {
    out.push(
      '',
      `CPU-bound (cpu-burn, ${r.cpu.iterations} iterations, run ${ms(r.cpu.runMs.median)} median), ${r.cpu.runs} invocations, maxInstances 2 per node:`,
      '',
      table(
        ['nodes', 'invocations/s', 'wall'],
        [
          ['1', r.cpu.oneNode.perSecond.toFixed(2), ms(r.cpu.oneNode.wallMs)],
          ['3', r.cpu.threeNodes.perSecond.toFixed(2), ms(r.cpu.threeNodes.wallMs)],
        ],
      ),
      `three nodes: ${JSON.stringify(r.cpu.threeNodes.byNode)}`,
    );
  }
  if (r.locality.on) {
    out.push(
      '',
      `locality, three nodes, 4 functions (maxInstances 1, 768 MiB per node), ${r.locality.on.n} sequential invocations through random nodes:`,
      '',
      table(
        ['locality', 'warm', 'restore', 'cold', 'wall'],
        (['on', 'off'] as const).map((k) => [k, pct(r.locality[k].warm, r.locality[k].n), pct(r.locality[k].restore, r.locality[k].n), pct(r.locality[k].cold, r.locality[k].n), `${r.locality[k].wallSeconds.toFixed(1)} s`]),
      ),
    );
  }
  if (r.heartbeat) {
    const h = r.heartbeat.lagMs;
    out.push(
      '',
      `heartbeat lag, two nodes, ${h.n} cold starts of fresh functions: after the answer reached the client, the ingress saw the runner's instance idle after median ${ms(h.median)} (min ${ms(h.min)}, max ${ms(h.max)})`,
      `samples (ms): ${r.heartbeat.samples.map((x) => `${x.fn} ${x.ingress}→${x.node} ${x.lagMs}`).join(', ')}`,
    );
  }
  return out.join('\n');
}
