// Keeps the native add-ons this machine compiled where prebuild-install looks first, so that the next
// `npm ci` (a clean clone, CI) unpacks them in a second instead of compiling again. better-sqlite3's
// install script is `prebuild-install || node-gyp rebuild`: its prebuilt binaries come from GitHub, which
// this machine cannot reach, so every clean install compiled SQLite (about 1.5 min of CPU on 2 cores).
// prebuild-install keeps what it downloads in npm's cache (`<npm cache>/_prebuilds/<digest>-<file>`, the
// file named after the package's version, Node's ABI, platform, arch and libc): a binary put there under
// the same name is what a download would have given. Plain CommonJS: it runs before the build, in set-up.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

// the packages whose install script tries prebuild-install first, and the binary it unpacks
const ADDONS = [{ name: 'better-sqlite3', binary: 'build/Release/better_sqlite3.node' }];

const root = path.resolve(__dirname, '..');
const util = require(require.resolve('prebuild-install/util', { paths: [root] }));
const makeRc = require(require.resolve('prebuild-install/rc', { paths: [root] }));

for (const { name, binary } of ADDONS) {
  const dir = path.join(root, 'node_modules', name);
  const built = path.join(dir, binary);
  if (!fs.existsSync(built)) continue; // not installed, or installed without its add-on: nothing to keep
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const rc = makeRc(pkg);
  const cached = util.cachedPrebuild(util.getDownloadUrl({ ...rc, pkg }));
  if (fs.existsSync(cached)) continue;
  fs.mkdirSync(path.dirname(cached), { recursive: true });
  const tmp = `${cached}.${process.pid}.tmp`;
  execFileSync('tar', ['-czf', tmp, '-C', dir, binary]);
  fs.renameSync(tmp, cached); // whole or not at all: a concurrent npm ci never reads half a file
  console.log(`kept ${name}'s compiled add-on for the next install: ${cached}`);
}
