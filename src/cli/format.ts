// Human-readable rendering of activation records.

import type { InvokeBody } from './client.js';

type Act = NonNullable<InvokeBody['activation']>;

export function formatActivation(a: Act): string {
  const t = a.timings ?? {};
  const parts: string[] = [];
  const span = (from: string, to: string, label: string): void => {
    const x = t[from];
    const y = t[to];
    if (x !== undefined && y !== undefined) parts.push(`${label} ${fmt(y - x)}`);
  };
  if (a.startPath === 'cold' || a.startPath === 'restore') {
    span('received', 'vmmSpawned', 'wait');
    if (a.startPath === 'cold') {
      span('vmmSpawned', 'vmBooted', 'kernel');
      span('vmBooted', 'agentReady', 'agent start');
      span('agentReady', 'initDone', 'init');
      span('initDone', 'snapshotTaken', 'snapshot');
      span('snapshotTaken', 'resumed', 'self-restore');
    } else {
      span('vmmSpawned', 'snapshotLoaded', 'load');
      span('snapshotLoaded', 'resumed', 'resume+resync');
    }
  } else {
    span('received', 'instanceAssigned', 'queue');
  }
  span('runStarted', 'runFinished', 'run');
  const head = `${a.id.slice(0, 8)} ${a.function} ${a.status} ${a.startPath ?? '-'}${a.accelerator ? '/' + a.accelerator : ''} total ${fmt(a.totalMs)}`;
  return `${head}${parts.length ? ' (' + parts.join(', ') + ')' : ''}${a.snapshot ? ` snapshot ${a.snapshot.tier}` : ''}`;
}

function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

/**
 * What went wrong, for a person (issue 20): the error with its code, the function's logs,
 * and how to see the record again. `faascell invoke` prints it on stderr for a failed call,
 * `faascell activation ID` for any record.
 */
export function formatFailure(error: { code?: string; message?: string } | undefined, a: Act | undefined, status?: number): string {
  const lines: string[] = [];
  if (error) lines.push(`error${status !== undefined || error.code ? ` (${[status, error.code].filter((x) => x !== undefined).join(' ')})` : ''}: ${error.message ?? 'unknown error'}`);
  // logs only of an activation that reached an instance (a refused request has none to show)
  if (a && (a.startPath !== undefined || a.logs.length > 0)) lines.push(...formatLogs(a.logs));
  return lines.join('\n');
}

export function formatLogs(logs: readonly string[] | undefined): string[] {
  if (!logs || logs.length === 0) return ['logs: (none)'];
  return ['logs:', ...logs.map((l) => `  ${l}`)];
}

/** `faascell activation ID`: the summary line, then the error and the logs. */
export function formatActivationDetail(a: Act & { error?: { code?: string; message?: string }; node?: string; vmId?: string; traceId?: string; consoleLogPath?: string }): string {
  const lines = [`${formatActivation(a)}${a.node ? ` node=${a.node}` : ''}`, `id ${a.id}${a.vmId ? `  vm ${a.vmId}` : ''}${a.traceId ? `  trace ${a.traceId}` : ''}`];
  if (a.error) lines.push(`error (${a.error.code ?? '?'}): ${a.error.message ?? ''}`);
  if (a.consoleLogPath) lines.push(`VM console: ${a.consoleLogPath}`);
  lines.push(...formatLogs(a.logs));
  return lines.join('\n');
}

interface StatusBody {
  version?: string;
  startedAt?: number;
  runtime?: string;
  accelerator?: string;
  acceleratorReason?: string;
  image?: { version?: string; kernel?: string };
  policies?: Record<string, string>;
  pool?: {
    memoryUsedMiB: number;
    memoryBudgetMiB: number;
    snapshotsEnabled?: boolean;
    busy: number;
    starting: number;
    startSlots: number;
    instances: Array<{ fn: string; state: string; workerState?: string }>;
    queues: Record<string, number>;
    tiers: Array<{ name: string; usedBytes: number; capacityBytes: number; snapshots: number }>;
    counters: Record<string, number>;
  };
  snapshots?: Array<{ function: string; tier: string; status: string; sizeBytes?: number }>;
}

/** `faascell status`: a short summary (the full object with --json). */
export function formatStatus(s: StatusBody, now = Date.now()): string {
  const lines: string[] = [];
  const up = s.startedAt ? ` up ${duration(now - s.startedAt)}` : '';
  lines.push(`faascell ${s.version ?? '?'}${up}: ${s.runtime ?? '?'}/${s.accelerator ?? '?'}${s.acceleratorReason ? ` (${s.acceleratorReason})` : ''}, image ${s.image?.version ?? '?'}${s.image?.kernel ? ` (${s.image.kernel} kernel)` : ''}`);
  const p = s.pool;
  if (p) {
    const pct = p.memoryBudgetMiB > 0 ? ` (${Math.round((100 * p.memoryUsedMiB) / p.memoryBudgetMiB)} %)` : '';
    lines.push(`memory     ${p.memoryUsedMiB} of ${p.memoryBudgetMiB} MiB reserved${pct}; ${p.busy} running, ${p.starting} starting (${p.startSlots} start slots)`);
    const byFn = new Map<string, Map<string, number>>();
    for (const i of p.instances) {
      const m = byFn.get(i.fn) ?? new Map<string, number>();
      const st = i.state === 'stopping' ? 'stopping' : (i.workerState ?? i.state);
      m.set(st, (m.get(st) ?? 0) + 1);
      byFn.set(i.fn, m);
    }
    lines.push(`instances  ${p.instances.length}${byFn.size ? ': ' + [...byFn].map(([fn, m]) => `${fn} ${[...m].map(([st, n]) => `${n} ${st}`).join(', ')}`).join('; ') : ''}`);
    const q = Object.entries(p.queues).filter(([, n]) => n > 0);
    lines.push(`queued     ${q.length ? q.map(([fn, n]) => `${fn} ${n}`).join(', ') : 'none'}`);
    if (p.snapshotsEnabled === false) lines.push('snapshots  off (snapshots.enabled: false)');
    else {
      const snaps = s.snapshots ?? [];
      lines.push(`snapshots  ${snaps.length}${snaps.length ? ': ' + snaps.map((x) => `${x.function} on ${x.tier}${x.status !== 'ready' ? ` (${x.status})` : ''}`).join(', ') : ''}`);
      lines.push(`tiers      ${p.tiers.map((t) => `${t.name} ${mib(t.usedBytes)} of ${mib(t.capacityBytes)}`).join(', ') || 'none'}`);
    }
    const c = p.counters;
    const n = (k: string): number => c[k] ?? 0;
    const refused = ['rejectedQueueFull', 'rejectedOverloaded', 'rejectedQueueTimeout', 'rejectedDeleted', 'rejectedStartFailed', 'rejectedStartBackoff', 'rejectedShutdown'].reduce((a, k) => a + n(k), 0);
    lines.push(`since start ${n('arrivals')} requests (${n('warm')} warm, ${n('freshCold')} waited for a cold start, ${n('freshRestore')} for a restore); ${n('coldStarts')} cold starts, ${n('restoreStarts')} restores, ${n('startFailures')} failed starts, ${n('initFailures')} failed inits of a function; ${n('evictions')} evictions; ${refused} refused`);
  }
  if (s.policies) lines.push(`policies   ${Object.entries(s.policies).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push('(faascell status --json: the whole object)');
  return lines.join('\n');
}

function mib(b: number): string {
  return b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(1)} GiB` : `${(b / 1024 ** 2).toFixed(0)} MiB`;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
