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
  // issue 21: a function that is not Node.js says its runtime
  const fn = a.functionRuntime && a.functionRuntime !== 'nodejs20' ? `${a.function} (${a.functionRuntime})` : a.function;
  const head = `${a.id.slice(0, 8)} ${fn} ${a.status} ${a.startPath ?? '-'}${a.accelerator ? '/' + a.accelerator : ''} total ${fmt(a.totalMs)}`;
  return `${head}${parts.length ? ' (' + parts.join(', ') + ')' : ''}${a.snapshot ? ` snapshot ${a.snapshot.tier}` : ''}`;
}

function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}
