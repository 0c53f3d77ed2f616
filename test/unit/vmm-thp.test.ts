// issue 24: limits.vmmThp 'off': the launcher that sets PR_SET_THP_DISABLE and execs the rest of a VMM's
// launch chain. Compiled here for real into a temporary cache (the host's C compiler; no VM, no root).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { composeLaunch, pdeathsigLayer } from '../../src/runtimes/jail/launch.js';
import { ensureThpOffLauncher, thpOffLauncherPath, thpOffLayer, vmmThpOffLauncher } from '../../src/runtimes/jail/thp.js';
import { which } from '../../src/image/exec.js';
import { cloneMemoryVariant } from '../../bench/clone-memory.js';
import { parseConfig } from '../../src/config/schema.js';

const tmpCache = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'fc-thp-test-'));
const quiet = { info: () => {}, warn: () => {} };

void test('the layer runs the launcher around the rest of the chain, the pid stays the last exec\'s', () => {
  const spec = composeLaunch({ cmd: '/usr/bin/qemu', argv: ['-M', 'microvm'] }, [pdeathsigLayer('/usr/bin/setpriv'), thpOffLayer('/cache/bin/faascell-thp-off-x')]);
  assert.deepEqual(spec, { cmd: '/usr/bin/setpriv', argv: ['--pdeathsig', 'KILL', '--', '/cache/bin/faascell-thp-off-x', '/usr/bin/qemu', '-M', 'microvm'] });
});

void test('the cached launcher is named by its source', () => {
  assert.equal(thpOffLauncherPath('/c', 'a'), thpOffLauncherPath('/c', 'a'));
  assert.notEqual(thpOffLauncherPath('/c', 'a'), thpOffLauncherPath('/c', 'b'));
  assert.match(thpOffLauncherPath('/c', 'a'), /^\/c\/bin\/faascell-thp-off-[0-9a-f]{16}$/);
});

void test('built once, cached; the process it execs (and its children) has THP off', async (t) => {
  if (!which('cc') && !which('gcc')) return t.skip('no C compiler on this host: the set-up installs build-essential');
  const cache = tmpCache();
  try {
    const first = await ensureThpOffLauncher(cache);
    assert.ok(first.ok && first.built, JSON.stringify(first));
    const again = await ensureThpOffLauncher(cache);
    assert.ok(again.ok && !again.built && again.path === first.path);
    assert.deepEqual(fs.readdirSync(path.join(cache, 'bin')), [path.basename(first.path)], 'no temporary file left');
    const thpLine = (cmd: string, args: string[]): string => /THP_enabled:\s*(\d)/.exec(execFileSync(cmd, args, { encoding: 'utf8' }))?.[1] ?? '?';
    assert.equal(thpLine('/bin/sh', ['-c', 'cat /proc/self/status']), '1', 'the test itself runs with THP allowed');
    // kept across execve (sh) and inherited by its child (cat)
    assert.equal(thpLine(first.path, ['/bin/sh', '-c', 'cat /proc/self/status']), '0');
    assert.throws(() => execFileSync(first.path, ['/nonexistent/vmm'], { stdio: 'pipe' }), (e: { status?: number }) => e.status === 127);
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

void test('a compiler that fails or is missing: a typed answer, and the daemon keeps the host\'s THP', async () => {
  const cache = tmpCache();
  try {
    const r = await ensureThpOffLauncher(cache, { cc: '/bin/false' });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'compile-failed');
    const gone = await ensureThpOffLauncher(cache, { cc: '/nonexistent/cc' });
    assert.equal(!gone.ok && gone.reason, 'compile-failed');
    assert.deepEqual(fs.existsSync(path.join(cache, 'bin')) ? fs.readdirSync(path.join(cache, 'bin')) : [], []);
    const warned: string[] = [];
    assert.equal(await vmmThpOffLauncher('inherit', cache, { info: () => {}, warn: (m) => warned.push(m) }), undefined);
    assert.deepEqual(warned, []);
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
  assert.equal(await vmmThpOffLauncher('inherit', '/nonexistent', quiet), undefined);
});

void test('limits.vmmThp: off or inherit, a wrong value names the field; the bench\'s variants name it', () => {
  assert.equal(parseConfig({ limits: { vmmThp: 'inherit' } }).limits.vmmThp, 'inherit');
  assert.equal(parseConfig({ limits: { vmmThp: 'off' } }).limits.vmmThp, 'off');
  assert.throws(() => parseConfig({ limits: { vmmThp: 'never' } }), /vmmThp/);
  assert.deepEqual(cloneMemoryVariant('tb8+thpoff').limits, { tcgCodeCacheRestoreMiB: 8, vmmThp: 'off' });
  assert.deepEqual(cloneMemoryVariant('thpinherit').limits, { vmmThp: 'inherit' });
});
