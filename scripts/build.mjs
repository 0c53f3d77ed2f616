// `npm run build`: the compiled command in dist/ (scripts/build-lib.mjs), then the guest agent's bundle.
// `--if-stale` (the default) builds only when a source changed; `--force` always.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, DIST } from './build-lib.mjs';
import { rmSync } from 'node:fs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv.includes('--force')) rmSync(path.join(root, DIST, '.build-stamp.json'), { force: true });
const r = await build(root, { log: (l) => console.log(l) });
if (!r.built) console.log(`${DIST}/ is up to date (${r.files} files)`);
await import('./bundle-agent.mjs');
