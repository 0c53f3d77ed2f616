// CLI commands of the cluster: `faascell cluster status` and `faascell activation <id>`
// (answered by any node: a node looks up what it does not have in the whole cluster).

import type { Command } from 'commander';
import { ApiError, Client } from '../cli/client.js';
import { formatActivationDetail } from '../cli/format.js';
import type { ClusterStatus } from './index.js';

function client(cmd: Command): Client {
  const o = cmd.optsWithGlobals<{ url?: string; token?: string }>();
  return new Client({ url: o.url, token: o.token });
}

export function formatClusterStatus(s: ClusterStatus): string {
  const lines: string[] = [];
  lines.push(`cluster seen from ${s.node}; NATS ${s.nats.servers.join(',')} (${s.nats.connected ? `connected, server ${s.nats.serverVersion ?? '?'}` : 'not connected'})`);
  lines.push(`queued: shared ${s.queues.shared.pending} waiting, ${s.queues.shared.ackPending} running` + Object.entries(s.queues.addressed).map(([n, q]) => `; ${n} ${q.pending}/${q.ackPending}`).join(''));
  const head = ['NODE', 'STATE', 'SEEN', 'INSTANCES', 'BUSY', 'STARTING', 'QUEUED', 'MEMORY', 'IN-FLIGHT', 'FREE', 'LOAD', 'FUNCTIONS (idle/busy, +snapshot)', 'URL'];
  const rows = s.nodes.map((n) => [
    n.node,
    n.state,
    `${(n.ageMs / 1000).toFixed(1)}s ago`,
    String(n.instances),
    String(n.busy),
    String(n.starting),
    String(n.queued),
    `${n.memoryUsedMiB}/${n.memoryBudgetMiB} MiB`,
    String(n.inFlight),
    String(n.free),
    n.load.map((x) => x.toFixed(2)).join(' '),
    Object.entries(n.functions)
      .map(([fn, p]) => `${fn} ${p.idle}/${p.busy}${p.snapshot ? '+s' : ''}`)
      .join(', ') || '-',
    n.url ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) lines.push(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  if (s.nodes.length === 0) lines.push('(no node has published a heartbeat)');
  return lines.join('\n');
}

export function registerClusterCommands(p: Command): void {
  const cluster = p.command('cluster').description('a FaaSCell cluster on NATS JetStream (docs/cluster.md)');
  cluster
    .command('status')
    .description('the nodes with their instances, memory, queue lengths and load')
    .option('--json')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const c = client(cmd);
      const s = await c.call<ClusterStatus>('GET', '/v1/cluster').catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 404) throw new Error(`the daemon at ${c.url} is a single node, not in a cluster (start it with --cluster nats://HOST:PORT)`);
        throw err;
      });
      console.log(opts.json ? JSON.stringify(s, null, 2) : formatClusterStatus(s));
    });

  p.command('activation')
    .description('one activation record: summary, error, logs (in a cluster: looked up on every node)')
    .argument('<id>', 'the id, or a unique prefix of it (at least 4 characters: the 8 that `faascell activations` prints)')
    .option('--json', 'the whole record')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const a = await client(cmd).call<Parameters<typeof formatActivationDetail>[0]>('GET', `/v1/activations/${encodeURIComponent(id)}`);
      console.log(opts.json ? JSON.stringify(a, null, 2) : formatActivationDetail(a));
    });
}
