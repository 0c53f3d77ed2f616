// The stages of one activation as time segments, computed from the finished
// record's timestamps alone (src/perf/activation.ts). Metrics, traces and the
// dashboard all read the same segments, so they always agree.

import type { ActivationRecord } from '../perf/activation.js';

/** Trace span / waterfall names, in the order an invocation passes them. */
export const SEGMENTS = ['received', 'queued', 'admitted', 'boot', 'init', 'snapshot', 'restore', 'resync', 'dispatch', 'run', 'response'] as const;
export type Segment = (typeof SEGMENTS)[number];

export interface StageSegment {
  stage: Segment;
  /** epoch ms */
  startMs: number;
  endMs: number;
}

/**
 * Stages of the latency histograms: the coarse stages (queue = queued + admitted). No "total":
 * faascell_activation_duration_seconds is the whole activation, so a `sum by (stage)` of the
 * stage histogram never counts a second twice (issue 20).
 */
export const HISTOGRAM_STAGES = ['queue', 'boot', 'init', 'snapshot', 'restore', 'resync', 'run'] as const;
export type HistogramStage = (typeof HISTOGRAM_STAGES)[number];

type Stamps = ActivationRecord['timestamps'];

/**
 * Segments of a finished record. Each needs both of its ends stamped; segments
 * are clamped to start no earlier than `received` (an instance started for an
 * earlier request may have begun booting before this one arrived).
 */
export function stageSegments(rec: Pick<ActivationRecord, 'timestamps'>): StageSegment[] {
  const t: Stamps = rec.timestamps;
  const t0 = t.received;
  if (t0 === undefined) return [];
  const out: StageSegment[] = [];
  const add = (stage: Segment, start: number | undefined, end: number | undefined): void => {
    if (start === undefined || end === undefined) return;
    const s = Math.max(start, t0);
    if (end < s) return;
    out.push({ stage, startMs: s, endMs: end });
  };
  add('received', t0, t.queued ?? t.admitted ?? t.instanceAssigned ?? t.responseSent);
  add('queued', t.queued, t.admitted);
  // waiting for an instance: until this request's own start began, or until it got one
  const ownStart = t.vmmSpawned !== undefined && t.admitted !== undefined && t.vmmSpawned >= t.admitted ? t.vmmSpawned : undefined;
  add('admitted', t.admitted, ownStart ?? t.instanceAssigned ?? (t.runStarted === undefined ? t.responseSent : undefined));
  if (t.agentReady !== undefined) add('boot', t.vmmSpawned, t.agentReady);
  add('init', t.agentReady, t.initDone);
  add('snapshot', t.initDone, t.snapshotTaken);
  if (t.snapshotLoaded !== undefined) add('restore', t.snapshotTaken ?? t.vmmSpawned, t.snapshotLoaded);
  add('resync', t.snapshotLoaded, t.resumed);
  add('dispatch', t.instanceAssigned, t.runStarted);
  add('run', t.runStarted, t.runFinished);
  // the answer: after the run, or after whatever came last when the request never ran
  let before = t.runFinished;
  if (before === undefined) {
    for (const s of out) before = Math.max(before ?? s.endMs, s.endMs);
  }
  add('response', before, t.responseSent);
  return out;
}

/** Seconds per histogram stage (only the stages this activation went through). */
export function histogramStages(rec: Pick<ActivationRecord, 'timestamps'>, segs = stageSegments(rec)): Partial<Record<HistogramStage, number>> {
  const ms: Partial<Record<HistogramStage, number>> = {};
  const sum = (s: HistogramStage, x: number): void => {
    ms[s] = (ms[s] ?? 0) + x;
  };
  for (const g of segs) {
    const x = g.endMs - g.startMs;
    if (g.stage === 'queued' || g.stage === 'admitted') sum('queue', x);
    else if (g.stage === 'boot' || g.stage === 'init' || g.stage === 'snapshot' || g.stage === 'restore' || g.stage === 'resync' || g.stage === 'run') sum(g.stage, x);
  }
  const out: Partial<Record<HistogramStage, number>> = {};
  for (const [k, v] of Object.entries(ms)) out[k as HistogramStage] = v / 1000;
  return out;
}
