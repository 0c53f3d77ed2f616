// The `cluster` configuration block (issue 13): a daemon joins a FaaSCell cluster
// when `cluster.nats` is set. docs/cluster.md documents every key.

import { createHash } from 'node:crypto';
import os from 'node:os';
import { z } from 'zod';
import { DEFAULT_PULL_RULE } from './capacity.js';

/** NATS subject tokens and consumer names: no dots, spaces or wildcards. */
export const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export const clusterConfigSchema = z
  .object({
    /** NATS server URL(s) with JetStream; absent: this daemon is a single node. */
    nats: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** This node's name in the cluster (default: host name + a hash of the state directory: stable across restarts). */
    node: z.string().regex(NODE_NAME, 'letters, digits, - and _ (at most 64)').optional(),
    /** NATS credentials: a token, a user and password, or a .creds file (JWT + nkey). */
    token: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    credsFile: z.string().min(1).optional(),
    /** First token of every subject this cluster uses (several clusters can share one NATS). */
    subjectPrefix: z.string().regex(/^[A-Za-z0-9_-]+$/).default('faascell'),
    /** JetStream stream names: the invocation work queue and the outcomes going back to requesters. */
    streams: z
      .object({
        invocations: z.string().regex(/^[A-Za-z0-9_-]+$/).default('FAASCELL_INVOCATIONS'),
        outcomes: z.string().regex(/^[A-Za-z0-9_-]+$/).default('FAASCELL_OUTCOMES'),
      })
      .strict()
      .default({}),
    /** JetStream buckets: function definitions (KV), code archives (object store), node heartbeats (KV), invocation claims (KV). */
    buckets: z
      .object({
        functions: z.string().regex(/^[A-Za-z0-9_-]+$/).default('faascell-functions'),
        code: z.string().regex(/^[A-Za-z0-9_-]+$/).default('faascell-code'),
        nodes: z.string().regex(/^[A-Za-z0-9_-]+$/).default('faascell-nodes'),
        /** issue 18: who answers each invocation (a node that took it, or its ingress at the queue deadline): src/cluster/claims.ts */
        claims: z.string().regex(/^[A-Za-z0-9_-]+$/).default('faascell-claims'),
      })
      .strict()
      .default({}),
    /** Stream and bucket replicas when NATS itself runs as a cluster (1 for a single nats-server). */
    replicas: z.number().int().min(1).max(5).default(1),
    /** A pulled invocation not acknowledged within this time is redelivered (a running one is kept alive with in-progress acks). */
    ackWaitMs: z.number().int().min(1000).default(10_000),
    /** Invocations pulled and not yet answered, at most ('auto': the instances the node has plus the starts it can begin now). */
    maxInFlight: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
    /**
     * What a node counts as room for shared-queue work: only the starts it may begin now (starts), or its instances and
     * free start slots (instances); capacity.ts. Default starts since issue 23: under instances a node with many idle
     * instances pulls work it must cold-start and its queue then stops every pull (docs/cluster-simulation.md, Finding 1).
     */
    pullRule: z.enum(['instances', 'starts']).default(DEFAULT_PULL_RULE),
    /** Send an invocation first to a node that has the function warm or snapshotted. */
    locality: z.boolean().default(true),
    /** A node busy this long hands the invocations addressed to it to the shared queue. */
    localityWaitMs: z.number().int().min(0).default(500),
    /** How often a node publishes its status (instances, queues, memory, capacity). */
    heartbeatMs: z.number().int().min(100).default(1000),
    /** A node silent this long is down: its addressed invocations go to the shared queue. */
    nodeTimeoutMs: z.number().int().min(500).default(5000),
    /** A node that refuses an invocation it pulled (at capacity) hands it back; past this many times the refusal is the answer. */
    maxHandbacks: z.number().int().min(0).default(5),
    /**
     * issue 18: an invocation delivered more than this many times (each node that took it died or hung before answering)
     * is answered with that failure instead of run again; JetStream's max_deliver is this + 2 (a backstop).
     */
    maxDeliveries: z.number().int().min(1).default(5),
    /** How long the node that accepted an invocation waits for its outcome beyond the function's timeout. */
    outcomeTimeoutMs: z.number().int().positive().default(120_000),
    /** Outcomes nobody collected (the requester died) are dropped after this long. */
    outcomeRetentionMs: z.number().int().positive().default(3_600_000),
  })
  .strict();

export type ClusterConfig = z.infer<typeof clusterConfigSchema>;

/** The node name: configured, else host name + a hash of the state directory (three daemons on one host differ). */
export function nodeName(cfg: ClusterConfig, stateDir: string, host = os.hostname()): string {
  if (cfg.node) return cfg.node;
  const h = host.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 48) || 'node';
  return `${h}-${createHash('sha256').update(stateDir).digest('hex').slice(0, 8)}`;
}

export function natsServers(cfg: ClusterConfig): string[] {
  if (!cfg.nats) return [];
  return Array.isArray(cfg.nats) ? cfg.nats : cfg.nats.split(',').map((s) => s.trim()).filter(Boolean);
}
