// When the late refusals of an overload series were sent, and when each function was first served (issue 18): from
// the replay records scripts/overload-experiment.ts leaves (records-run*.jsonl). A refusal is late when the daemon
// held it more than 1 s (its record's totalMs); times in whole seconds from the start of the replay.
//   npx tsx bench/overload-timing.ts bench/results/overload-s7     (prints a Markdown table)
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ReplayRecord } from '../src/replay/replay.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: overload-timing.ts <results directory with records-run*.jsonl>');
const files = readdirSync(dir)
  .filter((f) => /^records-run\d+\.jsonl$/.test(f))
  .sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
const short = (fn: string): string => fn.replace(/-[0-9a-f]{12}-r\d+$/, '');
console.log('| run | late refusals, sent at (s) | first answer per function (s) |');
console.log('|---|---|---|');
for (const f of files) {
  const recs = readFileSync(path.join(dir, f), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ReplayRecord);
  const late = recs
    .filter((r) => (r.status === 429 || r.status === 503) && (r.totalMs ?? 0) > 1000)
    .map((r) => Math.round(r.sentMs / 1000))
    .sort((a, b) => a - b);
  const first = new Map<string, number>();
  for (const r of recs) {
    if (r.status !== 200 || r.latencyMs === null) continue;
    const at = Math.round((r.sentMs + r.latencyMs) / 1000);
    const fn = short(r.function);
    if (!first.has(fn) || at < first.get(fn)!) first.set(fn, at);
  }
  const firsts = [...first].sort((a, b) => a[1] - b[1]).map(([fn, t]) => `${fn} ${t}`);
  const unserved = [...new Set(recs.map((r) => short(r.function)))].filter((fn) => !first.has(fn)).map((fn) => `${fn} never`);
  console.log(`| ${/\d+/.exec(f)![0]} | ${late.join(' ') || '—'} | ${[...firsts, ...unserved].join(', ')} |`);
}
