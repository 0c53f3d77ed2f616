// `faascell trace export` (issue 23): a node's traffic (or the whole cluster's,
// `--cluster`: every node's records merged) over a window, in a trace format the
// simulator and the replayer read back.

import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from '../cli/client.js';
import type { ClusterStatus } from '../cluster/index.js';
import { EXPORT_FORMATS, exportFiles, mergeRows, type ExportFormat } from '../traces/export.js';
import type { InvocationsFile } from '../traces/invocations.js';
import { parseWindow, type Window } from './window.js';

export interface ExportOptions {
  since?: string;
  until?: string;
  format: string;
  out: string;
  cluster?: boolean;
  url?: string;
  token?: string;
}

async function rowsFrom(c: Client, w: Window): Promise<InvocationsFile & { truncated?: boolean }> {
  return c.call<InvocationsFile & { truncated?: boolean }>('GET', `/v1/traffic?format=rows&since=${w.since}&until=${w.until}`);
}

/** The traffic of one node, or of every node of its cluster that is up. */
export async function fetchTraffic(o: Pick<ExportOptions, 'since' | 'until' | 'cluster' | 'url' | 'token'>, log: (s: string) => void = () => undefined): Promise<InvocationsFile> {
  const c = new Client({ url: o.url, token: o.token });
  const w = parseWindow(o.since, o.until, Date.now());
  if (!o.cluster) {
    const t = await rowsFrom(c, w);
    if (t.truncated) log(`warning: ${t.rows.length} rows, the most one request returns: narrow --since/--until`);
    return t;
  }
  const s = await c.call<ClusterStatus>('GET', '/v1/cluster');
  const up = s.nodes.filter((n) => n.state === 'up' && n.url);
  if (up.length === 0) throw new Error('--cluster: no node of the cluster is up with an API address');
  const parts: InvocationsFile[] = [];
  for (const n of up) {
    const t = await rowsFrom(new Client({ url: n.url, token: o.token }), w);
    log(`${n.node}: ${t.rows.length} invocations`);
    parts.push(t);
  }
  const down = s.nodes.filter((n) => n.state !== 'up').map((n) => n.node);
  if (down.length > 0) log(`warning: nodes down, their traffic is missing: ${down.join(', ')}`);
  return mergeRows(parts);
}

export async function runTraceExport(o: ExportOptions, log: (s: string) => void = (s) => console.error(s)): Promise<string[]> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) throw new Error(`--format: ${EXPORT_FORMATS.join(' | ')} (got '${o.format}')`);
  const t = await fetchTraffic(o, log);
  const format = o.format as ExportFormat;
  const files = exportFiles(t, format, path.basename(o.out).replace(/\.[^.]*$/, '') || 'traffic');
  const written: string[] = [];
  if (format === 'azure') {
    mkdirSync(o.out, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      writeFileSync(path.join(o.out, name), text);
      written.push(path.join(o.out, name));
    }
  } else {
    mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
    writeFileSync(o.out, Object.values(files)[0]!);
    written.push(o.out);
  }
  log(`${t.rows.length} invocations from ${new Date(t.start).toISOString()} to ${new Date(t.end).toISOString()} → ${written.join(', ')}`);
  return written;
}

export function registerTraceCommands(p: Command): void {
  const trace = p.command('trace').description('traces of what the node served');
  trace
    .command('export')
    .description("write the node's traffic (its activation records) as a trace: invocations (one line per invocation, exact arrival times), azure (Azure Functions 2019's three files, in a directory) or faasrail (FaaSRail's request spec)")
    .requiredOption('--format <format>', 'invocations | azure | faasrail')
    .requiredOption('--out <path>', 'file (invocations, faasrail) or directory (azure)')
    .option('--since <when>', 'start: now, a duration ago (90s, 30m, 1h, 2d), an ISO date or epoch ms', '1h')
    .option('--until <when>', 'end (same forms)', 'now')
    .option('--cluster', "the whole cluster's traffic: every node's records (the node at --url lists the others)")
    .action(async (o: ExportOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ url?: string; token?: string }>();
      await runTraceExport({ ...o, url: g.url, token: g.token });
    });
}
