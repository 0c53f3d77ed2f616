// The connection to NATS and the JetStream resources the cluster needs. Every
// resource is created when missing and left as it is when present, so any node
// can start first. The connection reconnects forever: a restarted nats-server
// (file storage) finds the same streams, consumers and buckets.

import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Logger } from '../core/logger.js';
import { natsServers, type ClusterConfig } from './config.js';
import { CLAIM_TTL_MS } from './claims.js';
import { invokeSubjects, nodeConsumer, nodeSubject, outcomeConsumer, outcomeSubject, outcomeSubjects, SHARED_CONSUMER, sharedSubject, type Names } from './subjects.js';

export interface Broker {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: Names;
  cfg: ClusterConfig;
  log: Logger;
}

export class ClusterUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterUnavailableError';
  }
}

export async function connectBroker(cfg: ClusterConfig, clientName: string, log: Logger): Promise<Broker> {
  const servers = natsServers(cfg);
  if (servers.length === 0) throw new ClusterUnavailableError('cluster.nats: no NATS server configured');
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: clientName,
      // a restarted nats-server must find every daemon again
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      timeout: 10_000,
      ...(cfg.token ? { token: cfg.token } : {}),
      ...(cfg.user ? { user: cfg.user, pass: cfg.password } : {}),
      ...(cfg.credsFile ? { authenticator: credsAuthenticator(readFileSync(cfg.credsFile)) } : {}),
    });
  } catch (err) {
    throw new ClusterUnavailableError(`cluster.nats: cannot connect to ${servers.join(', ')}: ${(err as Error).message}`);
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.info(`nats ${s.type}`, { server: 'server' in s ? s.server : undefined });
      else if (s.type === 'error') log.warn('nats error', { err: String(s.error) });
    }
  })().catch(() => undefined);
  const jsm = await jetstreamManager(nc, { timeout: 10_000 }).catch((err: unknown) => {
    void nc.close();
    throw new ClusterUnavailableError(`cluster.nats: JetStream is not enabled on ${servers.join(', ')} (start nats-server with -js): ${(err as Error).message}`);
  });
  return {
    nc,
    js: jetstream(nc, { timeout: 10_000 }),
    jsm,
    names: { prefix: cfg.subjectPrefix, invokeStream: cfg.streams.invocations, outcomeStream: cfg.streams.outcomes },
    cfg,
    log,
  };
}

async function ensureStream(b: Broker, sc: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await b.jsm.streams.info(sc.name);
  } catch {
    try {
      await b.jsm.streams.add(sc);
    } catch (err) {
      // another node created it at the same moment
      await b.jsm.streams.info(sc.name).catch(() => {
        throw err;
      });
    }
  }
}

async function ensureConsumer(b: Broker, stream: string, cc: Partial<ConsumerConfig> & { durable_name: string }): Promise<void> {
  try {
    await b.jsm.consumers.add(stream, cc);
  } catch {
    // present with another configuration (ack wait changed): take the new one
    await b.jsm.consumers.update(stream, cc.durable_name, cc);
  }
}

/** The work queue and the outcome stream (work-queue retention: a message is gone once acknowledged). */
export async function ensureStreams(b: Broker): Promise<void> {
  const { names, cfg } = b;
  await ensureStream(b, {
    name: names.invokeStream,
    subjects: [invokeSubjects(names)],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: cfg.replicas,
  });
  await ensureStream(b, {
    name: names.outcomeStream,
    subjects: [outcomeSubjects(names)],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: cfg.replicas,
    // a requester that died never collects its outcomes
    max_age: nanos(cfg.outcomeRetentionMs),
  });
  await ensureConsumer(b, names.invokeStream, workConsumer(SHARED_CONSUMER, sharedSubject(names), cfg));
}

/**
 * JetStream's bound on deliveries of one message (issue 18): the puller answers a copy past `maxDeliveries` without
 * running it (src/cluster/deadline.ts); the margin leaves that answer a second delivery (the first nak'd at shutdown).
 */
export function jetStreamMaxDeliver(maxDeliveries: number): number {
  return maxDeliveries + 2;
}

function workConsumer(durable: string, filter: string, cfg: Pick<Broker['cfg'], 'ackWaitMs' | 'maxDeliveries'>): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: durable,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(cfg.ackWaitMs),
    max_deliver: jetStreamMaxDeliver(cfg.maxDeliveries),
    max_ack_pending: 10_000,
  };
}

/** A node's addressed queue (locality). */
export async function ensureNodeConsumer(b: Broker, node: string): Promise<void> {
  await ensureConsumer(b, b.names.invokeStream, workConsumer(nodeConsumer(node), nodeSubject(b.names, node), b.cfg));
}

/** Where a requester collects its outcomes. `inactiveMs`: removed by the server when unused that long (clients). */
export async function ensureOutcomeConsumer(b: Broker, requester: string, inactiveMs?: number): Promise<void> {
  await ensureConsumer(b, b.names.outcomeStream, {
    durable_name: outcomeConsumer(requester),
    filter_subject: outcomeSubject(b.names, requester),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_deliver: -1,
    max_ack_pending: 10_000,
    ...(inactiveMs ? { inactive_threshold: nanos(inactiveMs) } : {}),
  });
}

export interface Buckets {
  functions: KV;
  code: ObjectStore;
  nodes: KV;
  /** issue 18: invocation claims (src/cluster/claims.ts) */
  claims: KV;
}

async function openKv(b: Broker, name: string, opts: Record<string, unknown>): Promise<KV> {
  const kvm = new Kvm(b.nc);
  try {
    return await kvm.create(name, { replicas: b.cfg.replicas, storage: StorageType.File, ...opts });
  } catch {
    return kvm.open(name);
  }
}

/** issue 18: one key per invocation a node took or its requester refused at the queue deadline; short-lived (requesters open it too). */
export function openClaims(b: Broker): Promise<KV> {
  return openKv(b, b.cfg.buckets.claims, { history: 1, ttl: CLAIM_TTL_MS });
}

export async function openBuckets(b: Broker): Promise<Buckets> {
  const objm = new Objm(b.nc);
  const { buckets, replicas } = b.cfg;
  const kv = (name: string, opts: Record<string, unknown>): Promise<KV> => openKv(b, name, opts);
  const functions = await kv(buckets.functions, { history: 5 });
  // a node's heartbeat is its key; one gone for an hour is forgotten
  const nodes = await kv(buckets.nodes, { history: 1, ttl: 3_600_000 });
  const claims = await openClaims(b);
  let code: ObjectStore;
  try {
    code = await objm.create(buckets.code, { replicas, storage: StorageType.File });
  } catch {
    code = await objm.open(buckets.code);
  }
  return { functions, code, nodes, claims };
}
