// The cluster's nodes: each publishes a heartbeat (its NodeStatus) into the nodes
// bucket, and follows everyone's. A node whose last heartbeat is older than
// `nodeTimeoutMs` is down.

import type { KV } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';
import { followBucket, type Follower } from './follow.js';
import { isLive, type NodeStatus } from './node-status.js';
import { HEARTBEAT_MIN_GAP_MS } from './timing.js';

export class NodeDirectory {
  readonly nodes = new Map<string, NodeStatus>();
  private follower: Follower | undefined;

  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
    private readonly closed: () => boolean,
    private readonly onHeartbeat: (n: NodeStatus) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    // the current heartbeats first, so a starting node knows the others at once
    for await (const k of await this.kv.keys()) {
      const e = await this.kv.get(k);
      if (e?.operation === 'PUT') this.take(e.json<NodeStatus>());
    }
    this.follower = followBucket(
      this.kv,
      '>',
      0,
      (e) => {
        if (e.operation === 'PUT') this.take(e.json<NodeStatus>());
        else this.nodes.delete(e.key);
      },
      this.log,
      this.closed,
    );
  }

  private take(n: NodeStatus): void {
    const had = this.nodes.get(n.node);
    if (had && had.at > n.at) return;
    this.nodes.set(n.node, n);
    this.onHeartbeat(n);
  }

  live(now: number, timeoutMs: number): NodeStatus[] {
    return [...this.nodes.values()].filter((n) => isLive(n, now, timeoutMs));
  }

  stop(): void {
    this.follower?.stop();
  }
}

/** Publishes this node's status every `everyMs`, and soon after `poke()` (at most every `minGapMs`). */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private lastAt = 0;
  private stopped = false;
  private busy = false;

  constructor(
    private readonly kv: KV,
    private readonly node: string,
    private readonly make: () => Promise<NodeStatus>,
    private readonly everyMs: number,
    private readonly log: Logger,
    private readonly minGapMs = HEARTBEAT_MIN_GAP_MS,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.everyMs);
    void this.beat();
  }

  poke(): void {
    if (this.soon || this.stopped) return;
    const wait = Math.max(0, this.lastAt + this.minGapMs - Date.now());
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.beat();
    }, wait);
  }

  async beat(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const s = await this.make();
      this.lastAt = s.at;
      await this.kv.put(this.node, JSON.stringify(s));
    } catch (err) {
      this.log.debug('cluster: heartbeat not published', { err: (err as Error).message });
    } finally {
      this.busy = false;
    }
  }

  /** Stop beating and say so: the node leaves the status at once instead of turning `down`. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    await this.kv.delete(this.node).catch(() => undefined);
  }
}
