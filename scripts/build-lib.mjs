// The compiled CLI (issue 20 item 1): the TypeScript sources are transpiled file by file
// into dist/ (same tree: dist/src/…, dist/bench/…), and a stamp records which sources that
// build was made from. bin/faascell.js runs dist/ only when the stamp matches the sources
// (a stale build is never run by accident): otherwise it rebuilds first (under a lock, so
// concurrent starts build once), or refuses when the build tool is missing.
//
// Plain JavaScript on purpose: it runs before anything is built, on every start of the
// command, so it imports nothing but Node's own modules (esbuild only when it builds).
// The stamp lists each source's path, size and mtime: a stat per file (~200 files, a few
// ms), not a read of every file, and a string compare (no hash: loading node:crypto alone
// would cost the command more than the comparison).
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Folders transpiled into dist/ (bench/ imports a few test helpers and fixtures). */
export const SOURCE_DIRS = ['src', 'bench', 'test/helpers', 'test/support', 'test/cluster-helpers', 'test/fixtures'];
/** Browser code, bundled by the dashboard at run time from the sources (src/ui/routes.ts). */
const SKIP_DIRS = new Set(['src/ui/client']);
/** Files whose change changes the build's output too. */
const BUILD_INPUTS = ['tsconfig.json', 'package.json', 'scripts/build-lib.mjs'];
export const DIST = 'dist';
const STAMP = '.build-stamp.json';
const LOCK = '.build.lock';

/** Every source file of the build, relative to the project root, sorted. */
export function listSources(root) {
  const out = [];
  const walk = (rel) => {
    let entries;
    try {
      entries = readdirSync(path.join(root, rel), { withFileTypes: true });
    } catch {
      return; // a folder that does not exist in this checkout
    }
    for (const e of entries) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(r)) walk(r);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test.ts')) {
        out.push(r);
      }
    }
  };
  for (const d of SOURCE_DIRS) walk(d);
  return out.sort();
}

/** The sources' names, sizes and modification times, and those of the build's own inputs, as one string. */
export function sourceStamp(root, files = listSources(root)) {
  let stamp = '';
  for (const f of [...BUILD_INPUTS, ...files]) {
    const st = statSync(path.join(root, f), { throwIfNoEntry: false });
    stamp += st ? `${f} ${st.size} ${st.mtimeMs}\n` : `${f} missing\n`;
  }
  return stamp;
}

function readStamp(root) {
  try {
    return JSON.parse(readFileSync(path.join(root, DIST, STAMP), 'utf8'));
  } catch {
    return undefined;
  }
}

/** 'fresh', 'missing' (never built) or 'stale' (a source changed since the build). */
export function buildState(root) {
  const stamp = readStamp(root);
  if (!stamp) return 'missing';
  return stamp.sources === sourceStamp(root) ? 'fresh' : 'stale';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Take dist/.build.lock (O_EXCL); a lock whose process is gone is taken over. */
async function lock(root) {
  const file = path.join(root, DIST, LOCK);
  mkdirSync(path.dirname(file), { recursive: true });
  for (let waited = 0; ; waited += 50) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(file, 'utf8'));
    } catch {
      continue; // released between our open and our read
    }
    if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) rmSync(file, { force: true });
    else if (waited > 120_000) throw new Error(`the build lock ${file} is held by process ${holder} for more than 2 minutes`);
    await sleep(50);
  }
}

/**
 * Transpile every source into dist/ with esbuild — the transform tsx applied at run time
 * until now, so the compiled command behaves as the sources did (types are checked by
 * `npm run typecheck`, not here). Output files no source maps to any more are removed.
 */
export async function build(root, { log = () => {} } = {}) {
  const release = await lock(root);
  try {
    const files = listSources(root);
    const stamp = sourceStamp(root, files);
    if (readStamp(root)?.sources === stamp) return { built: false, files: files.length, ms: 0 };
    const t0 = performance.now();
    const { build: esbuild } = await import('esbuild');
    rmSync(path.join(root, DIST, STAMP), { force: true });
    await esbuild({
      absWorkingDir: root,
      entryPoints: files,
      outdir: DIST,
      outbase: '.',
      bundle: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: true,
      tsconfig: 'tsconfig.json',
      logLevel: 'warning',
    });
    const wanted = new Set(files.flatMap((f) => { const js = f.replace(/\.ts$/, '.js'); return [js, js + '.map']; }));
    for (const d of SOURCE_DIRS) removeOrphans(path.join(root, DIST), d, wanted);
    const tmp = path.join(root, DIST, `${STAMP}.${process.pid}`);
    writeFileSync(tmp, JSON.stringify({ sources: stamp, files: files.length, builtAt: new Date().toISOString() }) + '\n');
    renameSync(tmp, path.join(root, DIST, STAMP));
    const ms = performance.now() - t0;
    log(`built ${files.length} files into ${DIST}/ in ${(ms / 1000).toFixed(1)} s`);
    return { built: true, files: files.length, ms };
  } finally {
    release();
  }
}

function removeOrphans(distRoot, rel, wanted) {
  let entries;
  try {
    entries = readdirSync(path.join(distRoot, rel), { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const r = `${rel}/${e.name}`;
    if (e.isDirectory()) removeOrphans(distRoot, r, wanted);
    else if (!wanted.has(r)) rmSync(path.join(distRoot, r), { force: true });
  }
}

/**
 * What bin/faascell.js calls before it loads dist/: nothing when the build is fresh; a
 * rebuild (with a line on stderr) when it is missing or stale and esbuild is installed;
 * otherwise an error that says what to run.
 */
export async function ensureBuilt(root) {
  const state = buildState(root);
  if (state === 'fresh') return;
  try {
    await import('esbuild');
  } catch {
    throw new Error(`the compiled command in ${path.join(root, DIST)} is ${state === 'missing' ? 'missing' : 'older than its sources'} and esbuild (a dev dependency) is not installed: run \`npm ci && npm run build\``);
  }
  process.stderr.write(`faascell: ${state === 'missing' ? 'no build yet' : 'sources changed since the last build'}; building ${DIST}/ …\n`);
  await build(root, { log: (l) => process.stderr.write(`faascell: ${l}\n`) });
}
