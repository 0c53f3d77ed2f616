// Bundles the guest agent (guest/agent/agent.ts and what it imports) into one
// ESM file for the guest's Node 20: guest/agent/dist/agent.mjs (and agent.cjs).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Also as CommonJS (agent.cjs): the guest can start it without Node's ESM loader (issue 9).
for (const [format, name] of [['esm', 'agent.mjs'], ['cjs', 'agent.cjs']]) {
  const outfile = join(root, 'guest/agent/dist', name);
  await build({
    entryPoints: [join(root, 'guest/agent/agent.ts')],
    bundle: true,
    platform: 'node',
    format,
    target: 'node20',
    outfile,
    legalComments: 'none',
    logLevel: 'warning',
  });
  console.log(`bundled ${outfile}`);
}
