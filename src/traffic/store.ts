// The node's traffic over a window, from its activation store (PerfManager):
// one row per finished activation (src/traces/invocations.ts). What
// `GET /v1/traffic` serves, `faascell trace export` formats and the what-if
// simulates.

import type { ActorRef } from '../core/actor.js';
import type { ActivationRecord } from '../perf/activation.js';
import type { PerfMsg } from '../perf/perf-manager.js';
import type { Registry } from '../registry/registry.js';
import { rowOf } from '../traces/export.js';
import type { InvocationsFile } from '../traces/invocations.js';
import type { Window } from './window.js';

/** At most this many activations per request (a day of a busy node fits; narrow the window beyond). */
export const MAX_ROWS = 2_000_000;

export async function trafficOf(perf: ActorRef<PerfMsg>, registry: Pick<Registry, 'get'>, w: Window, limit = MAX_ROWS): Promise<InvocationsFile & { truncated: boolean }> {
  const records = await perf.ask<ActivationRecord[]>((reply) => ({ kind: 'range', since: w.since, until: w.until, limit, reply }), 120_000);
  const rows = records.map((r) => rowOf(r, w.since, (fn) => registry.get(fn)?.memoryMiB));
  rows.sort((a, b) => a.arrivalMs - b.arrivalMs);
  return { start: w.since, end: w.until, rows, truncated: records.length >= limit };
}
