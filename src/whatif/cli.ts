// `faascell whatif` (issue 23): the node's own traffic of a window, simulated as
// configured (with the simulator's error against what the node did) and under
// the alternatives asked for; a table, and a Vega-Lite plot with --plot.

// Only types at the top: every `faascell` command registers this one, and the simulator, the schema and the
// plotting libraries it needs cost ~0.3 s to load (issue 20: the CLI answers fast); they load when it runs.
import type { Command } from 'commander';
import type { loadConfigFile } from '../config/schema.js';
import type { TopLevelSpec } from 'vega-lite';
import type { Alternative, WhatIfResult } from './whatif.js';
import type { WhatIfRequest } from './routes.js';

export interface WhatIfCommandOptions {
  since?: string;
  until?: string;
  policy?: string;
  memoryMib?: string;
  cores?: string;
  config?: string[];
  cpuModel?: boolean;
  json?: boolean;
  plot?: string;
}

const numbers = (v: string | undefined, flag: string): number[] =>
  (v ?? '')
    .split(',')
    .filter((x) => x.trim() !== '')
    .map((x) => {
      const n = Number(x);
      if (!(n > 0)) throw new Error(`${flag}: a comma-separated list of positive numbers (got '${v}')`);
      return n;
    });

/** What the simulator models of a configuration (no API token, no cluster credentials leave the machine). */
function modelledPart(c: ReturnType<typeof loadConfigFile>['config']): Record<string, unknown> {
  return { policies: c.policies, node: c.node, admission: c.admission, snapshots: { enabled: c.snapshots.enabled }, functionDefaults: c.functionDefaults };
}

/** The request the options describe: one alternative per listed value, and one per config file. */
export async function whatIfRequest(o: WhatIfCommandOptions): Promise<WhatIfRequest> {
  const { loadConfigFile } = await import('../config/schema.js');
  const { configLabel } = await import('./whatif.js');
  const alternatives: Alternative[] = [
    ...(o.policy ?? '').split(',').filter(Boolean).map((p) => ({ policy: p.trim() })),
    ...numbers(o.memoryMib, '--memory-mib').map((m) => ({ memoryMiB: m })),
    ...numbers(o.cores, '--cores').map((c) => ({ cores: c })),
    // the file is read here (the daemon may run elsewhere); its values go in the request
    ...(o.config ?? []).map((f) => ({ label: configLabel(f), config: modelledPart(loadConfigFile(f).config) })),
  ];
  return { since: o.since, until: o.until, alternatives, cpuModel: o.cpuModel };
}

export function registerWhatIfCommand(p: Command): void {
  p.command('whatif')
    .description("simulate the node's own traffic of a window with its live costs and configuration (and the simulator's error against what it did), then under alternatives, side by side")
    .option('--since <when>', 'start: now, a duration ago (90s, 30m, 1h, 2d), an ISO date or epoch ms', '1h')
    .option('--until <when>', 'end (same forms)', 'now')
    .option('--policy <list>', 'keep-alive policies to try (comma-separated): none | fixed | greedy-dual | hybrid-histogram')
    .option('--memory-mib <list>', 'memory budgets to try (MiB, comma-separated)')
    .option('--cores <list>', 'host cores to try (comma-separated)')
    .option('--config <file...>', 'daemon configuration files to try (each one row)')
    .option('--cpu-model', "share the cores between starts in the simulation (default off: the live costs were measured under the node's own load)")
    .option('--json', 'print the result as JSON (with its Vega-Lite specification)')
    .option('--plot <base>', 'write the plot to BASE.svg and BASE.png')
    .action(async (o: WhatIfCommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ url?: string; token?: string }>();
      const { Client } = await import('../cli/client.js');
      const { formatWhatIf } = await import('./whatif.js');
      const { writePlot } = await import('../plots/render.js');
      const r = await new Client({ url: g.url, token: g.token }).call<WhatIfResult & { vegaLite: TopLevelSpec }>('POST', '/v1/whatif', await whatIfRequest(o));
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else console.log(formatWhatIf(r));
      if (o.plot) console.error(`plot: ${(await writePlot(r.vegaLite, o.plot)).join(', ')}`);
    });
}
