#!/usr/bin/env node
// Entry point of the `faascell` command. It runs the compiled JavaScript in dist/ (`npm run
// build`; the set-up and the test command build), after checking that the build matches the
// sources: a stale or missing build is rebuilt first (scripts/build-lib.mjs), never run.
// User policy modules written in TypeScript still load through tsx (src/policies/module-loader.ts).
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureBuilt } from '../scripts/build-lib.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
try {
  await ensureBuilt(root);
} catch (err) {
  process.stderr.write(`faascell: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
await import(pathToFileURL(path.join(root, 'dist', 'src', 'cli', 'main.js')).href);
