// Prometheus metrics of one node (prom-client, on a registry of its own).
// Two inputs only: every finished activation record (`observe`), and, at
// scrape time, the node's state through the status adapter plus the latest
// per-VM /proc samples (`applyState`). Label sets are bounded: function,
// start path, status, stage, state, tier, cause, and on the per-VM series a
// `slot` (issue 20): the lowest number free when the VM appeared, reused after
// it goes, so the series count stays within the most VMs ever alive at once
// instead of growing with every VM id (the id is in /v1/status and the records).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ActivationRecord } from '../perf/activation.js';
import type { NodeState } from '../telemetry/node-state.js';
import { histogramStages, type StageSegment } from '../telemetry/stages.js';
import type { VmSample } from './vm-sampler.js';

/** 1 ms … 2 min: warm runs (ms) to cold boots under TCG (seconds) */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Instance states always exported (0 when none), so a function's series exist before and after its VMs. */
const INSTANCE_STATES = ['pending', 'booting', 'restoring', 'initializing', 'snapshotting', 'idle', 'running', 'failed', 'stopping'];

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly activations: Counter<'function' | 'start_path' | 'status' | 'runtime'>;
  private readonly stage: Histogram<'stage' | 'start_path'>;
  private readonly duration: Histogram<'function' | 'start_path' | 'runtime'>;
  private readonly instances: Gauge<'function' | 'state'>;
  private readonly queue: Gauge<'function'>;
  private readonly memUsed: Gauge;
  private readonly memBudget: Gauge;
  private readonly memNominal: Gauge;
  private readonly memMeasured: Gauge;
  private readonly memUnmeasured: Gauge;
  private readonly memIdleFit: Gauge<'size_mib'>;
  private readonly memGuard: Gauge;
  private readonly snapCount: Gauge<'tier' | 'status'>;
  private readonly snapBytes: Gauge<'tier'>;
  private readonly starts: Counter<'start_path'>;
  private readonly startFailures: Counter;
  private readonly initFailures: Counter;
  private readonly prewarms: Counter;
  private readonly stops: Counter<'cause'>;
  private readonly tierCapacity: Gauge<'tier'>;
  private readonly rejections: Counter<'reason'>;
  private readonly lateRefusals: Counter<'function'>;
  private readonly clusterExpired: Counter<'function' | 'by'>;
  private readonly vmRss: Gauge<'slot' | 'function'>;
  private readonly vmPss: Gauge<'slot' | 'function'>;
  private readonly vmCpu: Counter<'slot' | 'function'>;
  private readonly vmGuest: Gauge<'slot' | 'function'>;
  /** VM id -> its slot while it lives */
  private readonly slots = new Map<string, number>();
  /** functions seen so far: their instance series are exported even at zero */
  private readonly functions = new Set<string>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const r = [this.registry];
    this.activations = new Counter({ name: 'faascell_activations_total', help: 'Finished activations (invocations) by function, start path (none: never ran), status and language runtime', labelNames: ['function', 'start_path', 'status', 'runtime'], registers: r });
    this.stage = new Histogram({ name: 'faascell_activation_stage_duration_seconds', help: 'Time an activation spent in each stage (queue, boot, init, snapshot, restore, resync, run), by start path; the whole activation is faascell_activation_duration_seconds', labelNames: ['stage', 'start_path'], buckets: LATENCY_BUCKETS, registers: r });
    this.duration = new Histogram({ name: 'faascell_activation_duration_seconds', help: 'Activation latency from received to response sent, by function, start path and language runtime', labelNames: ['function', 'start_path', 'runtime'], buckets: LATENCY_BUCKETS, registers: r });
    this.instances = new Gauge({ name: 'faascell_instances', help: 'Instances (microVMs) by function and lifecycle state', labelNames: ['function', 'state'], registers: r });
    this.queue = new Gauge({ name: 'faascell_queue_length', help: 'Requests waiting for an instance, by function', labelNames: ['function'], registers: r });
    this.memUsed = new Gauge({ name: 'faascell_memory_used_bytes', help: 'Memory live instances count against the budget: their sizes (node.memory.accounting nominal) or measured costs plus reserve (measured)', registers: r });
    this.memBudget = new Gauge({ name: 'faascell_memory_budget_bytes', help: 'Memory budget of the node (node.memoryBudgetMiB)', registers: r });
    // issue 24: capacity (docs/density.md)
    this.memNominal = new Gauge({ name: 'faascell_memory_nominal_bytes', help: "Live instances' guest memory sizes added up", registers: r });
    this.memMeasured = new Gauge({ name: 'faascell_memory_measured_bytes', help: "Live instances' latest measured PSS added up (node.memory.sampleIntervalMs; those measured)", registers: r });
    this.memUnmeasured = new Gauge({ name: 'faascell_memory_unmeasured_instances', help: 'Live instances without a memory measurement yet', registers: r });
    this.memIdleFit = new Gauge({ name: 'faascell_memory_idle_fit', help: 'How many more idle VMs of a guest memory size (MiB) the budget admits now', labelNames: ['size_mib'], registers: r });
    this.memGuard = new Gauge({ name: 'faascell_memory_guard_level', help: "The host-memory guard's level: 0 ok, 1 evict idle, 2 refuse starts, 3 stop the newest growing (node.memory.guard)", registers: r });
    this.snapCount = new Gauge({ name: 'faascell_snapshots', help: 'Snapshots by storage tier and status', labelNames: ['tier', 'status'], registers: r });
    this.snapBytes = new Gauge({ name: 'faascell_snapshot_bytes', help: 'Bytes of snapshots on each storage tier (allocated)', labelNames: ['tier'], registers: r });
    this.starts = new Counter({ name: 'faascell_instance_starts_total', help: 'Instances started, by start path (cold, restore)', labelNames: ['start_path'], registers: r });
    this.startFailures = new Counter({ name: 'faascell_instance_start_failures_total', help: "Instance starts that failed through the platform (boot, snapshot, restore; not the function's init)", registers: r });
    this.initFailures = new Counter({ name: 'faascell_function_init_failures_total', help: "Instance starts whose function failed to initialise (its code: the function's failure, not the platform's)", registers: r });
    this.prewarms = new Counter({ name: 'faascell_instance_prewarms_total', help: 'Instances started ahead of demand by the keep-alive policy', registers: r });
    this.stops = new Counter({ name: 'faascell_instance_stops_total', help: 'Instances the node ended, by cause (memory_pressure: evicted for memory, memory_guard: stopped by the host-memory guard, keepalive_expired, keepalive_unload, prewarm_unload, definition_changed, requested, lost)', labelNames: ['cause'], registers: r });
    this.rejections = new Counter({ name: 'faascell_admission_rejections_total', help: 'Requests refused, by reason (queue_full: 429; overloaded, queue_timeout, shutdown: 503; deleted: 404; start_failed; start_backoff: 503)', labelNames: ['reason'], registers: r });
    this.lateRefusals = new Counter({ name: 'faascell_admission_late_refusals_total', help: 'Requests admitted, then refused at their queueing deadline: admission estimated they would start in time and they did not (issue 18)', labelNames: ['function'], registers: r });
    this.clusterExpired = new Counter({ name: 'faascell_cluster_queue_deadline_refusals_total', help: "Invocations refused (503 queue_timeout) because no node of the cluster took them within admission.maxQueueDelayMs: by this node as their ingress, or as a node that pulled them too late (issue 18)", labelNames: ['function', 'by'], registers: r });
    this.tierCapacity = new Gauge({ name: 'faascell_snapshot_tier_capacity_bytes', help: 'Capacity of each snapshot storage tier', labelNames: ['tier'], registers: r });
    this.vmRss = new Gauge({ name: 'faascell_vm_resident_memory_bytes', help: 'Resident set size of each VMM process (sampled from /proc), by VM slot', labelNames: ['slot', 'function'], registers: r });
    this.vmPss = new Gauge({ name: 'faascell_vm_proportional_memory_bytes', help: 'Proportional set size of each VMM process: shared snapshot pages split among their users (sampled from /proc)', labelNames: ['slot', 'function'], registers: r });
    this.vmCpu = new Counter({ name: 'faascell_vm_cpu_seconds_total', help: 'User + system CPU time of each VMM process (sampled from /proc)', labelNames: ['slot', 'function'], registers: r });
    this.vmGuest = new Gauge({ name: 'faascell_vm_guest_memory_bytes', help: 'Guest memory size of each VM', labelNames: ['slot', 'function'], registers: r });
    // process_* and nodejs_* (event-loop lag, heap, GC, handles) of the daemon itself
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** One finished activation. */
  observe(rec: ActivationRecord, segments?: StageSegment[]): void {
    const path = rec.startPath ?? 'none';
    this.functions.add(rec.function);
    // issue 21: the function's language runtime (nodejs20, python3)
    const runtime = rec.functionRuntime ?? 'nodejs20';
    this.activations.inc({ function: rec.function, start_path: path, status: rec.status, runtime });
    if (rec.admission?.refusedLate) this.lateRefusals.inc({ function: rec.function });
    if (rec.cluster?.expired) this.clusterExpired.inc({ function: rec.function, by: rec.cluster.expired });
    if (!rec.startPath) return; // never ran: no stage worth a latency sample
    for (const [stage, s] of Object.entries(histogramStages(rec, segments))) this.stage.observe({ stage, start_path: path }, s);
    this.duration.observe({ function: rec.function, start_path: path, runtime }, rec.totalMs / 1000);
  }

  /** The node's state at scrape time (every value here is absolute: series of gone things disappear). */
  applyState(st: NodeState, vms: VmSample[]): void {
    for (const i of st.instances) this.functions.add(i.fn);
    for (const f of Object.keys(st.queues)) this.functions.add(f);
    this.instances.reset();
    for (const f of this.functions) for (const s of INSTANCE_STATES) this.instances.set({ function: f, state: s }, 0);
    for (const i of st.instances) this.instances.inc({ function: i.fn, state: i.state });
    this.queue.reset();
    for (const f of this.functions) this.queue.set({ function: f }, st.queues[f] ?? 0);
    this.memUsed.set(st.memoryUsedBytes);
    this.memBudget.set(st.memoryBudgetBytes);
    this.memIdleFit.reset();
    this.memGuard.reset();
    const m = st.memory;
    if (m) {
      this.memNominal.set(m.nominalBytes);
      this.memMeasured.set(m.measuredBytes);
      this.memUnmeasured.set(m.unmeasured);
      // Infinity (no budget) is not a count: the series is left out
      for (const [size, n] of Object.entries(m.idleFit)) if (Number.isFinite(n)) this.memIdleFit.set({ size_mib: size }, n);
      if (m.guardLevel !== undefined) this.memGuard.set(m.guardLevel);
    }

    this.snapCount.reset();
    this.snapBytes.reset();
    this.tierCapacity.reset();
    for (const t of st.tiers) {
      this.tierCapacity.set({ tier: t.name }, t.capacityBytes);
      this.snapBytes.set({ tier: t.name }, 0);
    }
    for (const s of st.snapshots) {
      this.snapCount.inc({ tier: s.tier, status: s.status });
      this.snapBytes.inc({ tier: s.tier }, s.bytes);
    }
    // cumulative counts kept by the pool: exported as counters with their absolute value
    setCounter(this.starts, st.counters.starts, 'start_path');
    setCounter(this.stops, st.counters.stops, 'cause');
    setCounter(this.rejections, st.counters.rejections, 'reason');
    this.startFailures.reset();
    this.startFailures.inc(st.counters.startFailures);
    this.initFailures.reset();
    this.initFailures.inc(st.counters.initFailures);
    this.prewarms.reset();
    this.prewarms.inc(st.counters.prewarms);

    const fnOf = new Map(st.instances.map((i) => [i.id, i]));
    for (const g of [this.vmRss, this.vmPss, this.vmGuest]) g.reset();
    this.vmCpu.reset();
    const live = new Set(vms.map((v) => v.vmId));
    for (const id of this.slots.keys()) if (!live.has(id)) this.slots.delete(id);
    for (const v of vms) {
      const inst = fnOf.get(v.vmId);
      const labels = { slot: String(this.slotOf(v.vmId)), function: inst?.fn ?? '' };
      this.vmRss.set(labels, v.rssBytes);
      this.vmPss.set(labels, v.pssBytes);
      this.vmCpu.inc(labels, v.cpuSeconds);
      if (inst) this.vmGuest.set(labels, inst.memoryBytes);
    }
  }

  /** The VM's slot: the lowest one no living VM holds. */
  private slotOf(vmId: string): number {
    let s = this.slots.get(vmId);
    if (s === undefined) {
      const taken = new Set(this.slots.values());
      for (s = 0; taken.has(s); s++);
      this.slots.set(vmId, s);
    }
    return s;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

function setCounter<L extends string>(c: Counter<L>, values: Record<string, number>, label: L): void {
  c.reset();
  for (const [k, v] of Object.entries(values)) c.inc({ [label]: k } as Record<L, string>, v);
}
