// What-if on a node's own traffic (issue 23): the traffic of a window (its
// activation records, with the exact arrival times) simulated with the node's
// live cost profile and its configuration first — the simulator's error against
// what the node really did (start paths, refusals, latency) — then under the
// alternatives asked for, side by side. Pure: traffic, costs and configuration in,
// a table out (routes.ts and cli.ts gather the inputs).

import path from 'node:path';
import { parseConfig, type Config } from '../config/schema.js';
import { createPolicies, KEEP_ALIVE_NAMES } from '../policies/index.js';
import { simulatedNode, type SimulatedNode } from '../sim/cli.js';
import type { Profile } from '../sim/profile.js';
import { simulate, type SimulationResult } from '../sim/simulator.js';
import { invocationsTrace, type InvocationsFile } from '../traces/invocations.js';

/** One alternative: the node's configuration with some knobs changed, or another configuration. */
export interface Alternative {
  label?: string;
  /** keep-alive policy by name */
  policy?: string;
  memoryMiB?: number;
  cores?: number;
  /** a daemon configuration (the parsed object of a config file) instead of the node's own */
  config?: unknown;
}

/** What happened (or would have) to the window's invocations. */
export interface WhatIfRow {
  label: string;
  invocations: number;
  warm: number;
  restore: number;
  cold: number;
  /** refused: queue full (429), refused early (overloaded), timed out in the queue, not answered */
  refused: { queueFull: number; overloaded: number; queueTimeout: number; other: number };
  refusedTotal: number;
  p50Ms: number;
  p99Ms: number;
  /** pool level (simulated rows only) */
  coldBoots?: number;
  restoresStarted?: number;
  evictions?: number;
  peakMemoryMiB?: number;
}

export interface WhatIfError {
  /** simulated − actual, as a share of the window's invocations (percentage points) */
  warmPts: number;
  restorePts: number;
  coldPts: number;
  refusedPts: number;
  /** (simulated − actual) / actual */
  p50Rel: number;
  p99Rel: number;
}

export interface WhatIfResult {
  window: { start: number; end: number; invocations: number; functions: number };
  actual: WhatIfRow;
  asConfigured: WhatIfRow;
  error: WhatIfError;
  alternatives: WhatIfRow[];
  notes: string[];
}

export interface WhatIfInput {
  traffic: InvocationsFile;
  profile: Profile;
  /** the node's effective configuration */
  config: Config;
  /** where the configuration's user policy modules are */
  baseDir: string;
  alternatives?: Alternative[];
  /** share the cores between starts (the simulator's CPU model); default off: the live costs were measured under the node's own load */
  cpuModel?: boolean;
}

function pctl(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** What the node did, from its records: start paths of the answered invocations, refusals by code, latency (received → answer). */
export function actualRow(t: InvocationsFile): WhatIfRow {
  const row: WhatIfRow = { label: 'actual (the node)', invocations: t.rows.length, warm: 0, restore: 0, cold: 0, refused: { queueFull: 0, overloaded: 0, queueTimeout: 0, other: 0 }, refusedTotal: 0, p50Ms: 0, p99Ms: 0 };
  const lat: number[] = [];
  for (const r of t.rows) {
    if (r.status === 'rejected') {
      if (r.code === 'queue_full') row.refused.queueFull++;
      else if (r.code === 'overloaded') row.refused.overloaded++;
      else if (r.code === 'queue_timeout') row.refused.queueTimeout++;
      else row.refused.other++;
      row.refusedTotal++;
      continue;
    }
    if (r.startPath) row[r.startPath]++;
    lat.push(r.totalMs);
  }
  lat.sort((a, b) => a - b);
  row.p50Ms = pctl(lat, 50);
  row.p99Ms = pctl(lat, 99);
  return row;
}

function simRow(label: string, r: SimulationResult): WhatIfRow {
  return {
    label,
    invocations: r.invocations,
    warm: r.warm,
    restore: r.restores,
    cold: r.coldStarts,
    refused: { queueFull: r.rejected.queueFull, overloaded: r.rejected.overloaded, queueTimeout: r.rejected.queueTimeout, other: r.rejected.unservedAtEnd },
    refusedTotal: r.dropped,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    coldBoots: r.coldBoots,
    restoresStarted: r.restoresStarted,
    evictions: r.evictions,
    peakMemoryMiB: r.peakMemoryMiB,
  };
}

export function errorOf(sim: WhatIfRow, actual: WhatIfRow): WhatIfError {
  const n = Math.max(1, actual.invocations);
  const rel = (s: number, a: number): number => (a > 0 ? (s - a) / a : s > 0 ? 1 : 0);
  return {
    warmPts: (100 * (sim.warm - actual.warm)) / n,
    restorePts: (100 * (sim.restore - actual.restore)) / n,
    coldPts: (100 * (sim.cold - actual.cold)) / n,
    refusedPts: (100 * (sim.refusedTotal - actual.refusedTotal)) / n,
    p50Rel: rel(sim.p50Ms, actual.p50Ms),
    p99Rel: rel(sim.p99Ms, actual.p99Ms),
  };
}

function labelOf(a: Alternative): string {
  if (a.label) return a.label;
  const parts: string[] = [];
  if (a.config !== undefined) parts.push('config');
  if (a.policy) parts.push(`policy ${a.policy}`);
  if (a.memoryMiB !== undefined) parts.push(`${a.memoryMiB} MiB`);
  if (a.cores !== undefined) parts.push(`${a.cores} cores`);
  return parts.join(', ') || 'as configured';
}

async function run(input: WhatIfInput, node: SimulatedNode, a: Alternative): Promise<SimulationResult> {
  const trace = invocationsTrace(input.traffic, 'whatif');
  const cfg: Record<string, unknown> = { ...node.policies };
  if (a.policy) {
    if (!(KEEP_ALIVE_NAMES as readonly string[]).includes(a.policy)) throw new WhatIfInputError(`policy: unknown keep-alive policy '${a.policy}' (${KEEP_ALIVE_NAMES.join(', ')})`, 'policy');
    cfg.keepAlive = { policy: a.policy };
  }
  const policies = await createPolicies(cfg, { baseDir: input.baseDir });
  return simulate({
    trace,
    policies,
    profile: input.profile,
    memoryMiB: a.memoryMiB ?? node.memoryMiB,
    maxInstancesPerFunction: node.maxInstances,
    maxQueueDelayMs: node.maxQueueDelayMs,
    node: { ...node.node, ...(a.cores !== undefined ? { cores: a.cores } : {}), cpuModel: input.cpuModel ?? false },
  });
}

export class WhatIfInputError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'WhatIfInputError';
  }
}

export async function whatIf(input: WhatIfInput): Promise<WhatIfResult> {
  const t = input.traffic;
  if (t.rows.length === 0) throw new WhatIfInputError(`no invocations between ${new Date(t.start).toISOString()} and ${new Date(t.end).toISOString()}`, 'since');
  const own = simulatedNode(input.config);
  const actual = actualRow(t);
  const asConfigured = simRow('as configured (simulated)', await run(input, own, {}));
  const alternatives: WhatIfRow[] = [];
  for (const a of input.alternatives ?? []) {
    let node = own;
    if (a.config !== undefined) {
      try {
        node = simulatedNode(parseConfig(a.config, 'alternative configuration'));
      } catch (err) {
        throw new WhatIfInputError((err as Error).message, 'config');
      }
    }
    alternatives.push(simRow(labelOf(a), await run(input, node, a)));
  }
  return {
    window: { start: t.start, end: t.end, invocations: t.rows.length, functions: new Set(t.rows.map((r) => r.function)).size },
    actual,
    asConfigured,
    error: errorOf(asConfigured, actual),
    alternatives,
    notes: [
      'start paths and refusals are per invocation; latency is the node\'s received → answered time (the simulator\'s: queue + start + warm dispatch + run, without the daemon\'s own overhead)',
      `costs: the node's live statistics (cold, restore per tier, warm dispatch, CPU share per function); run times: the window's mean per function; CPU model ${input.cpuModel ? 'on' : 'off'}`,
    ],
  };
}

const pct = (x: number, n: number): string => `${((100 * x) / Math.max(1, n)).toFixed(1)} %`;
const ms = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
const sign = (x: number, unit: string, digits = 1): string => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}${unit}`;

export function formatWhatIf(r: WhatIfResult): string {
  const head = ['', 'warm', 'restore', 'cold', 'refused', 'p50', 'p99', 'boots', 'restores', 'evictions'];
  const rows = [r.actual, r.asConfigured, ...r.alternatives].map((x) => [
    x.label,
    pct(x.warm, x.invocations),
    pct(x.restore, x.invocations),
    pct(x.cold, x.invocations),
    pct(x.refusedTotal, x.invocations),
    ms(x.p50Ms),
    ms(x.p99Ms),
    x.coldBoots === undefined ? '' : String(x.coldBoots),
    x.restoresStarted === undefined ? '' : String(x.restoresStarted),
    x.evictions === undefined ? '' : String(x.evictions),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (c: string[]): string => '| ' + c.map((x, i) => x.padEnd(w[i]!)).join(' | ') + ' |';
  const e = r.error;
  return [
    `window ${new Date(r.window.start).toISOString()} … ${new Date(r.window.end).toISOString()}: ${r.window.invocations} invocations of ${r.window.functions} functions`,
    '',
    line(head),
    '|' + w.map((x) => '-'.repeat(x + 2)).join('|') + '|',
    ...rows.map(line),
    '',
    `"as configured" error (simulated − actual): warm ${sign(e.warmPts, ' pts')}, restore ${sign(e.restorePts, ' pts')}, cold ${sign(e.coldPts, ' pts')}, refused ${sign(e.refusedPts, ' pts')}; p50 ${sign(100 * e.p50Rel, ' %', 0)}, p99 ${sign(100 * e.p99Rel, ' %', 0)}`,
    ...r.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

/** The path of a config file given on the command line, for the label. */
export function configLabel(file: string): string {
  return `config ${path.basename(file)}`;
}
