// Bundles the guest agent (guest/agent/agent.ts and what it imports) into one
// ESM file for the guest's Node 20: guest/agent/dist/agent.mjs.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'guest/agent/dist/agent.mjs');
await build({
  entryPoints: [join(root, 'guest/agent/agent.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  legalComments: 'none',
  logLevel: 'warning',
});
console.log(`bundled ${outfile}`);
