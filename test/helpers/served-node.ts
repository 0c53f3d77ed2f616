// One node (the real Dispatcher, VmPool, Workers on the fake driver, PerfManager
// with its activation store, SnapshotManager) serving a trace on a virtual clock:
// its activation records and cost statistics afterwards (the traffic export and
// what-if tests start from what a node really served).
import { VirtualClock } from '../../src/core/clock.js';
import type { ActivationRecord } from '../../src/perf/activation.js';
import type { FunctionStats } from '../../src/perf/cost-stats.js';
import { TraceSource } from '../../src/sources/trace.js';
import type { ExpandOptions } from '../../src/traces/expand.js';
import type { Trace } from '../../src/traces/types.js';
import { deploy, harness, type HarnessOptions } from './pool-harness.js';

export interface ServedNode {
  records: ActivationRecord[];
  stats: Record<string, FunctionStats>;
  memoryOf: (fn: string) => number | undefined;
  functions: Array<{ name: string; memoryMiB: number; maxInstances: number }>;
}

export async function serveTrace(o: {
  trace: Trace;
  node: Omit<HarnessOptions, 'clock'>;
  deploy: (fn: string) => Record<string, unknown>;
  params: (fn: number) => unknown;
  expand: ExpandOptions;
}): Promise<ServedNode> {
  const clock = new VirtualClock(0);
  const h = await harness({ ...o.node, clock });
  try {
    for (const f of o.trace.functions) deploy(h, f.name, o.deploy(f.name));
    await clock.settle();
    const src = new TraceSource({ trace: o.trace, dispatcher: h.dispatcher, clock, expand: o.expand, params: o.params });
    const done = src.done();
    await src.start();
    await clock.run();
    await done;
    const records = await h.perf.ask<ActivationRecord[]>((reply) => ({ kind: 'range', since: 0, until: o.trace.nSlots * o.trace.slotMs + 3_600_000, limit: 1_000_000, reply }), 10_000);
    const stats = await h.perf.ask<Record<string, FunctionStats>>((reply) => ({ kind: 'stats', reply }), 10_000);
    const functions = h.registry.list().map((d) => ({ name: d.name, memoryMiB: d.memoryMiB, maxInstances: d.maxInstances }));
    const mem = new Map(functions.map((d) => [d.name, d.memoryMiB]));
    return { records, stats, functions, memoryOf: (fn) => mem.get(fn) };
  } finally {
    await h.close();
  }
}
