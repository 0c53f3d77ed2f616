// A real what-if run (issue 23 item 2, docs/whatif.md): a private daemon with
// real VMs serves a replayed load, then `POST /v1/whatif` simulates that very
// traffic with the daemon's live costs and configuration (the "as configured"
// row and its error against what the daemon did) and under alternatives.
//
//   flock /tmp/faascell-vm.lock npx tsx scripts/whatif-run.ts [--minutes 20] [--compress 10] [--seed 5] [--out FILE_BASE]
//
// Writes FILE_BASE.md (the table and the run's facts) and FILE_BASE.json, and the plot FILE_BASE.svg/.png.

import { writeFileSync } from 'node:fs';
import os from 'node:os';
import type { TopLevelSpec } from 'vega-lite';
import { benchDaemon, fixture, machine } from '../bench/common.js';
import { writePlot } from '../src/plots/render.js';
import { replay } from '../src/replay/replay.js';
import { synthesize } from '../src/traces/generate.js';
import { slotsTrace } from '../src/traces/slots.js';
import { formatWhatIf, type WhatIfResult } from '../src/whatif/whatif.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
}

async function main(): Promise<void> {
  const minutes = Number(arg('minutes', '20'));
  const compress = Number(arg('compress', '10'));
  const seed = Number(arg('seed', '5'));
  const out = arg('out', 'bench/runs/2026-12-06-whatif-real');
  // four functions, a few to twenty invocations a trace minute, run times from the generator (capped at 2 s by the function)
  const fns = synthesize({ functions: 4, slots: minutes, seed, log10Rate: [0.3, 1.3], durationMedianMs: 200, durationSigma: 1, maxDurationMs: 2000 });
  const names = fns.map((_, i) => `whatif-fn-${i}`);
  const trace = slotsTrace(
    fns.map((f, i) => ({ name: names[i]!, avgDurationMs: f.avgDurationMs, memoryMiB: 256, request: { ms: f.avgDurationMs }, counts: Array.from(f.counts) })),
    60_000,
    'whatif-run',
  );
  const config = { node: { memoryBudgetMiB: 768 }, functionDefaults: { maxInstances: 2 } };
  const d = await benchDaemon(config);
  const facts: string[] = [];
  try {
    for (const n of names) await d.client.deploy(n, fixture('sleep.js'), { codeKind: 'js', memoryMiB: 256, maxInstances: 2 });
    const load0 = os.loadavg()[0]!.toFixed(2);
    const t0 = Date.now();
    const s = await replay({ trace, url: d.d.url, compress, progress: null });
    const t1 = Date.now() + 1;
    facts.push(
      `machine: ${JSON.stringify(machine())}; load average at the start ${load0}, at the end ${os.loadavg()[0]!.toFixed(2)} (shared with other agents' work)`,
      `daemon: ${JSON.stringify(config)}, otherwise the defaults (fixed 10-min keep-alive, snapshots on, accelerator ${d.d.accelerator})`,
      `load: ${trace.totalInvocations} invocations of 4 functions over ${minutes} trace minutes replayed ${compress}× faster (${s.wallSeconds.toFixed(0)} s): ${s.ok} answered, ${s.errors} errors; start paths ${JSON.stringify(s.byStartPath)}`,
    );
    const r = await d.client.call<WhatIfResult & { vegaLite: TopLevelSpec }>('POST', '/v1/whatif', {
      since: String(t0),
      until: String(t1),
      alternatives: [{ policy: 'greedy-dual' }, { policy: 'hybrid-histogram' }, { policy: 'none' }, { memoryMiB: 512 }, { memoryMiB: 1536 }],
    });
    const text = formatWhatIf(r);
    console.log(facts.join('\n') + '\n\n' + text);
    writeFileSync(`${out}.json`, JSON.stringify({ facts, result: r }, null, 2) + '\n');
    writeFileSync(`${out}.md`, `# what-if on a real daemon's traffic (scripts/whatif-run.ts, ${new Date().toISOString()})\n\n${facts.map((f) => `- ${f}`).join('\n')}\n\n\`\`\`\n${text}\n\`\`\`\n`);
    console.error(`plot: ${(await writePlot(r.vegaLite, out)).join(', ')}`);
  } finally {
    await d.close();
  }
}

await main();
