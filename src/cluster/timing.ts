// The cluster's own clocks, shared by the daemon's broker Source and heartbeat
// (src/sources/broker/, src/cluster/nodes.ts) and the cluster simulator.

/** A heartbeat follows a change (an outcome) after at most this long, and never sooner than this after the previous one. */
export const HEARTBEAT_MIN_GAP_MS = 200;

/** How often a node's forwarder looks at its addressed queue (half the locality wait, within 100 ms … 1 s). */
export function forwarderEveryMs(localityWaitMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(localityWaitMs / 2) || 100));
}

/** Every this many forwarder ticks it also looks for nodes that are down (their addressed queues are rescued). */
export const DEAD_SCAN_TICKS = 8;
