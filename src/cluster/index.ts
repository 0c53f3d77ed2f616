// A daemon as a member of a FaaSCell cluster (issue 13; docs/cluster.md). The
// daemon joins before its VmPool exists (the registry catches up with the cluster
// first), attaches once its actors are up (the broker Source, the ingress its APIs
// use instead of the local Dispatcher, the heartbeat, activation lookups), and
// closes the NATS connection last, after its pool answered what it had accepted.

import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { ActorRef, ActorSystem } from '../core/actor.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { DispatcherMsg } from '../dispatcher/dispatcher.js';
import type { ActivationRecord } from '../perf/activation.js';
import type { PerfMsg } from '../perf/perf-manager.js';
import type { Registry } from '../registry/registry.js';
import type { RuntimeName } from '../runtimes/types.js';
import type { SnapshotMsg, SnapshotRecord } from '../snapshots/types.js';
import { BrokerSource } from '../sources/broker/source.js';
import type { Source } from '../sources/types.js';
import { versionKey, type PoolMsg, type PoolStatus } from '../vmpool/pool.js';
import { queuedOf } from './capacity.js';
import { natsServers, nodeName } from './config.js';
import { connectBroker, ensureStreams, openBuckets, type Broker, type Buckets } from './connection.js';
import { ClusterIngress } from './ingress.js';
import { LocalityBook } from './locality.js';
import { lookupActivation, serveLookups } from './lookup.js';
import { emptyCounters, isLive, presenceOf, type BrokerCounters, type NodeStatus } from './node-status.js';
import { Heartbeat, NodeDirectory } from './nodes.js';
import { OutcomeCollector } from './outcomes.js';
import { Claims } from './claims.js';
import { SCHED_DEFAULTS } from '../config/schema.js';
import { RegistrySync } from './registry-sync.js';
import { EntitySync } from './entity-sync.js';
import type { OwEntities } from '../sources/openwhisk/entities.js';
import { nodeConsumer, nodeOfConsumer, SHARED_CONSUMER } from './subjects.js';

export interface AttachOptions {
  system: ActorSystem;
  pool: ActorRef<PoolMsg>;
  dispatcher: ActorRef<DispatcherMsg>;
  perf: ActorRef<PerfMsg>;
  snapshots?: ActorRef<SnapshotMsg>;
  runtime: RuntimeName;
  accelerator: string;
  version: string;
  startedAt: number;
  /** the node's HTTP API, once listening */
  url: () => string;
}

export interface ClusterStatus {
  node: string;
  nats: { servers: string[]; connected: boolean; serverVersion?: string };
  nodes: Array<NodeStatus & { state: 'up' | 'down'; ageMs: number }>;
  /** invocations waiting (pending: not yet pulled; ackPending: pulled, not yet answered) */
  queues: { shared: { pending: number; ackPending: number }; addressed: Record<string, { pending: number; ackPending: number }> };
  outcomesUnclaimed: number;
}

export class ClusterMember {
  readonly counters: BrokerCounters = emptyCounters();
  readonly book = new LocalityBook();
  readonly directory: NodeDirectory;
  readonly outcomes: OutcomeCollector;
  readonly claims: Claims;
  private source: BrokerSource | undefined;
  private heartbeat: Heartbeat | undefined;
  private lookups: { unsubscribe(): void } | undefined;
  private attached: AttachOptions | undefined;

  constructor(
    readonly node: string,
    readonly broker: Broker,
    readonly buckets: Buckets,
    private readonly sync: RegistrySync,
    private readonly registry: Registry,
    private readonly log: Logger,
    /** issue 22: OpenWhisk's packages, sequences, triggers, rules and alarms, cluster-wide */
    private readonly entitySync?: EntitySync,
    /** issue 18: admission.maxQueueDelayMs, the broker's queue deadline too */
    private readonly maxQueueDelayMs: number = SCHED_DEFAULTS.maxQueueDelayMs,
  ) {
    this.claims = new Claims(buckets.claims);
    this.directory = new NodeDirectory(buckets.nodes, log, () => broker.nc.isClosed(), (n) => this.book.heartbeat(n));
    this.outcomes = new OutcomeCollector(broker, node);
  }

  /** Wire the member to the daemon's actors: returns its Source and the ingress the APIs use. */
  attach(a: AttachOptions): { sources: Source[]; ingress: ActorRef<DispatcherMsg> } {
    this.attached = a;
    this.sync.attach((fn, def) => a.pool.tell({ kind: 'functionChanged', fn, def }));
    const poolStatus = (): Promise<PoolStatus> => a.pool.ask<PoolStatus>((reply) => ({ kind: 'status', reply }), 10_000);
    // issue 18: refusals at the queue deadline this node answered itself are stored like any record
    const record = (rec: ActivationRecord): void => a.perf.tell({ kind: 'activation', record: rec });
    const source = new BrokerSource({
      broker: this.broker,
      node: this.node,
      dispatcher: a.dispatcher,
      registry: this.registry,
      poolStatus,
      directory: this.directory,
      counters: this.counters,
      poke: () => this.heartbeat?.poke(),
      claims: this.claims,
      maxQueueDelayMs: this.maxQueueDelayMs,
      record,
    });
    this.source = source;
    const ingress = a.system.spawn<DispatcherMsg>(
      'cluster-ingress',
      new ClusterIngress({
        broker: this.broker,
        node: this.node,
        registry: this.registry,
        outcomes: this.outcomes,
        directory: this.directory,
        book: this.book,
        counters: this.counters,
        runtime: a.runtime,
        claims: this.claims,
        maxQueueDelayMs: this.maxQueueDelayMs,
        record,
      }),
    );
    this.heartbeat = new Heartbeat(this.buckets.nodes, this.node, () => this.makeStatus(a, poolStatus), this.broker.cfg.heartbeatMs, this.log);
    const wrapper: Source = {
      name: 'broker',
      start: async () => {
        await this.outcomes.start();
        this.lookups = serveLookups(this.broker, this.node, (id) => a.perf.ask<ActivationRecord | undefined>((reply) => ({ kind: 'get', id, reply }), 5000));
        await source.start();
        this.heartbeat?.start();
        this.log.info('cluster: node joined', { node: this.node, nats: natsServers(this.broker.cfg) });
      },
      stop: async () => {
        await source.stop();
        await this.heartbeat?.stop();
      },
    };
    return { sources: [wrapper], ingress };
  }

  private async makeStatus(a: AttachOptions, poolStatus: () => Promise<PoolStatus>): Promise<NodeStatus> {
    const pool = await poolStatus();
    let snaps: SnapshotRecord[] = [];
    if (a.snapshots) snaps = await a.snapshots.ask<SnapshotRecord[]>((reply) => ({ kind: 'list', reply }), 5000).catch(() => []);
    // a snapshot counts for locality only if it is of the function's current version
    const current = snaps.filter((s) => {
      const def = this.registry.get(s.function);
      return def !== undefined && s.status === 'ready' && s.versionKey === versionKey(def);
    });
    const free = this.source ? await this.source.free().catch(() => 0) : 0;
    return {
      node: this.node,
      url: a.url() || undefined,
      startedAt: a.startedAt,
      at: Date.now(),
      version: a.version,
      accelerator: a.accelerator,
      memoryUsedMiB: pool.memoryUsedMiB,
      memoryBudgetMiB: pool.memoryBudgetMiB,
      instances: pool.instances.length,
      busy: pool.busy,
      starting: pool.starting,
      startSlots: pool.startSlots,
      queued: queuedOf(pool),
      queues: pool.queues,
      functions: presenceOf(pool, current),
      inFlight: this.source?.inFlight ?? 0,
      free,
      load: os.loadavg().map((x) => Math.round(x * 100) / 100),
      counters: { ...this.counters },
    };
  }

  /** issue 22: claim an alarm's firing for this node (one node of the cluster fires each). */
  async claimAlarm(trigger: string, scheduledAt: number): Promise<boolean> {
    return this.entitySync ? this.entitySync.claimFiring(trigger, scheduledAt) : true;
  }

  /** Cluster-wide lookup (after the local one missed). */
  async activation(id: string): Promise<ActivationRecord | undefined> {
    const live = this.directory.live(Date.now(), this.broker.cfg.nodeTimeoutMs).length;
    return lookupActivation(this.broker, id, Math.max(1, live));
  }

  async status(): Promise<ClusterStatus> {
    const b = this.broker;
    const now = Date.now();
    const nodes = [...this.directory.nodes.values()]
      .sort((x, y) => x.node.localeCompare(y.node))
      .map((n) => ({ ...n, state: isLive(n, now, b.cfg.nodeTimeoutMs) ? ('up' as const) : ('down' as const), ageMs: now - n.at }));
    const queues: ClusterStatus['queues'] = { shared: { pending: 0, ackPending: 0 }, addressed: {} };
    try {
      for await (const ci of b.jsm.consumers.list(b.names.invokeStream)) {
        const q = { pending: ci.num_pending, ackPending: ci.num_ack_pending };
        if (ci.name === SHARED_CONSUMER) queues.shared = q;
        const n = nodeOfConsumer(ci.name);
        if (n) queues.addressed[n] = q;
      }
    } catch (err) {
      this.log.debug('cluster: queue lengths unavailable', { err: (err as Error).message });
    }
    return {
      node: this.node,
      nats: { servers: natsServers(b.cfg), connected: !b.nc.isClosed(), serverVersion: b.nc.info?.version },
      nodes,
      queues,
      outcomesUnclaimed: this.outcomes.unclaimed,
    };
  }

  registerRoutes(app: FastifyInstance): void {
    app.get('/v1/cluster', async () => this.status());
  }

  /** After the pool answered everything it accepted: stop following, close the connection. */
  async close(): Promise<void> {
    await this.source?.drained(15_000);
    this.sync.stop();
    this.entitySync?.stop();
    this.directory.stop();
    this.lookups?.unsubscribe();
    await this.outcomes.stop();
    await this.broker.nc.drain().catch(() => undefined);
    void this.attached;
  }

  /** This node's addressed consumer name (for tests and status). */
  get addressedConsumer(): string {
    return nodeConsumer(this.node);
  }
}

/** Connect, make sure the streams and buckets exist, and bring the registry up to date with the cluster's. */
export async function joinCluster(o: { cfg: Config; registry: Registry; entities?: OwEntities; log: Logger }): Promise<ClusterMember> {
  const cc = o.cfg.cluster;
  const node = nodeName(cc, o.cfg.stateDir);
  const log = o.log.child({ node });
  const broker = await connectBroker(cc, `faascell-${node}`, log);
  try {
    await ensureStreams(broker);
    const buckets = await openBuckets(broker);
    const sync = new RegistrySync(buckets, o.registry, log, () => broker.nc.isClosed());
    await sync.start();
    const entitySync = o.entities ? new EntitySync(buckets.functions, o.entities, log, () => broker.nc.isClosed()) : undefined;
    await entitySync?.start();
    const member = new ClusterMember(node, broker, buckets, sync, o.registry, log, entitySync, o.cfg.admission.maxQueueDelayMs);
    await member.directory.start();
    return member;
  } catch (err) {
    await broker.nc.close().catch(() => undefined);
    throw err;
  }
}
