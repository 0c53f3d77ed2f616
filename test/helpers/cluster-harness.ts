// Three (or N) real node stacks — Dispatcher, VmPool with its decision core,
// Workers on a FakeDriver, PerfManager, SnapshotManager (test/helpers/pool-harness.ts)
// — on ONE virtual clock, behind the cluster simulator's broker model
// (src/sim/cluster/broker.ts: the daemon's routing, pull and hand-back rules).
// Each node is a NodePort whose state is read from VmPool's status at every
// broker round and whose deliveries go into the real Dispatcher; outcomes come
// back through a Sink. The cluster conformance test runs the same trace through
// this and through the cluster simulator and compares every decision.
import type { VirtualClock } from '../../src/core/clock.js';
import { pullState, type PullState } from '../../src/cluster/capacity.js';
import type { PoliciesConfigInput } from '../../src/policies/index.js';
import { ClusterBroker, type BrokerOptions, type NodePort } from '../../src/sim/cluster/broker.js';
import type { InvocationResult } from '../../src/sinks/types.js';
import type { ExpandOptions } from '../../src/traces/expand.js';
import { ArrivalExpander } from '../../src/traces/expand.js';
import type { Trace } from '../../src/traces/types.js';
import type { Decision, RejectCode } from '../../src/vmpool/core/model.js';
import type { PoolStatus } from '../../src/vmpool/pool.js';
import { deploy, harness, type Harness, type HarnessOptions } from './pool-harness.js';

class PoolPort implements NodePort {
  private status: PoolStatus | undefined;
  /** instances whose cold start leaves a snapshot (from the start decisions) */
  private readonly snapshotting = new Map<number, string>();
  /** functions with a ready snapshot: a snapshotting start that finished (the test's tier never fills) */
  private readonly snapshots = new Set<string>();

  constructor(
    readonly k: number,
    readonly h: Harness,
    private readonly broker: ClusterBroker,
    private readonly fnNames: readonly string[],
    private readonly params: (fn: number) => unknown,
  ) {}

  /** VmPool's start decisions: which instances make a snapshot. */
  noteDecision(d: Decision): void {
    if (d.kind === 'start' && d.path === 'cold' && d.snapshot) this.snapshotting.set(d.inst, d.fn);
  }

  async refresh(): Promise<void> {
    const s = await this.h.status();
    this.status = s;
    const starting = new Set(s.instances.filter((i) => i.state === 'starting').map((i) => i.inst));
    for (const [inst, fn] of this.snapshotting) {
      if (starting.has(inst)) continue;
      this.snapshots.add(fn);
      this.snapshotting.delete(inst);
    }
  }

  state(): PullState {
    return pullState(this.status!);
  }

  takeDirty(): Iterable<number> {
    return this.fnNames.keys();
  }

  presence(fn: number, out: Int32Array): void {
    const name = this.fnNames[fn]!;
    out.fill(0);
    for (const i of this.status!.instances) {
      if (i.fn !== name || i.stale) continue;
      if (i.state === 'idle') out[0]!++;
      else if (i.state === 'busy') out[1]!++;
      else if (i.state === 'starting') out[2]!++;
    }
    out[3] = this.snapshots.has(name) ? 1 : 0;
  }

  deliver(fn: number, req: number, _now: number): void {
    const clock = this.h.clock;
    this.h.dispatcher.tell({
      kind: 'invoke',
      req: {
        fn: this.fnNames[fn]!,
        params: this.params(fn),
        receivedAt: clock.now(),
        sink: { name: 'cluster-test', deliver: (res: InvocationResult) => this.outcome(req, res) },
      },
    });
  }

  private outcome(req: number, res: InvocationResult): void {
    const now = this.h.clock.now();
    const f = res.failure;
    if (f?.kind === 'rejected') {
      this.broker.refused(this.k, req, f.reason as RejectCode, now);
      return;
    }
    const path = res.activation.startPath;
    this.broker.assigned(this.k, req, path !== 'warm', path === 'restore' ? 'restore' : 'cold');
    this.broker.done(this.k, req, now);
  }

  kill(): void {
    throw new Error('the cluster harness does not kill nodes');
  }

  restart(): void {
    throw new Error('the cluster harness does not restart nodes');
  }
}

export interface ClusterHarnessOptions {
  clock: VirtualClock;
  nodes: number;
  trace: Trace;
  broker: Omit<BrokerOptions, 'names' | 'fnNames'>;
  names: readonly string[];
  expand: ExpandOptions;
  node: HarnessOptions;
  policies: PoliciesConfigInput;
  deploy: (fn: string) => Record<string, unknown>;
  params: (fn: number) => unknown;
  onNodeDecision: (node: number, d: Decision) => void;
}

export interface ClusterHarness {
  broker: ClusterBroker;
  /** run the trace to its end and until every invocation was answered */
  run(): Promise<{ accepted: number; answered: number }>;
  close(): Promise<void>;
}

export async function clusterHarness(o: ClusterHarnessOptions): Promise<ClusterHarness> {
  const fnNames = o.trace.functions.map((f) => f.name);
  const broker = new ClusterBroker({ ...o.broker, names: o.names, fnNames });
  const ports: PoolPort[] = [];
  for (let k = 0; k < o.nodes; k++) {
    const ref: { port?: PoolPort } = {};
    const h = await harness({
      ...o.node,
      clock: o.clock,
      policies: o.policies,
      onDecision: (d) => {
        ref.port!.noteDecision(d);
        o.onNodeDecision(k, d);
      },
    });
    const port = (ref.port = new PoolPort(k, h, broker, fnNames, o.params));
    ports.push(port);
    for (const f of fnNames) deploy(h, f, o.deploy(f));
  }
  await o.clock.settle();
  ports.forEach((p, k) => broker.attach(k, p));

  const run = async (): Promise<{ accepted: number; answered: number }> => {
    const clock = o.clock;
    const t0 = clock.now();
    const trace = o.trace;
    const endMs = trace.nSlots * trace.slotMs;
    const x = new ArrivalExpander(trace, o.expand);
    let slot = -1;
    let n = 0;
    let i = 0;
    const next = (): number => {
      while (i >= n) {
        if (++slot >= trace.nSlots) return Infinity;
        n = x.slot(slot);
        i = 0;
      }
      return x.times[i]!;
    };
    const W = o.broker.roundMs;
    let answered = 0;
    const before = broker.onOutcome;
    broker.onOutcome = (m, t, r) => {
      answered++;
      before(m, t, r);
    };
    let finished!: () => void;
    const done = new Promise<void>((r) => (finished = r));
    // one round every W ms of virtual time, as long as there is anything left to do
    const round = async (T: number): Promise<void> => {
      await Promise.all(ports.map((p) => p.refresh()));
      // the simulator marks a node changed when something happened to it; here every
      // node is read at every round (a beat with nothing new changes nothing)
      for (let k = 0; k < ports.length; k++) broker.markChanged(k, T);
      broker.begin(T);
      for (let t = next(); t <= T; t = next()) {
        broker.accept(x.fns[i]!, t, broker.randomLiveNode());
        i++;
      }
      broker.deliver(T);
      if (next() === Infinity && broker.outstanding === 0) {
        finished();
        return;
      }
      clock.setTimer(t0 + T + W - clock.now(), () => void round(T + W));
    };
    clock.setTimer(W, () => void round(W));
    await clock.run(t0 + endMs + 10 * 60_000);
    void done;
    return { accepted: broker.counters.accepted, answered };
  };

  return {
    broker,
    run,
    close: async () => {
      for (const p of ports) await p.h.close();
    },
  };
}
