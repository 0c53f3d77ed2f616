// Image builder pieces that need no VM and no host tool: vmlinux extraction, cache lookups, kernel ids
// (the cpio writer against cpio(1) and the guest helper: test/integration/image-tools.test.ts).

import assert from 'node:assert/strict';

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, test } from 'node:test';

import { defaultCacheDir, findImage, projectRoot } from '../../src/image/builder.js';
import { extractVmlinux, minimalKernelId } from '../../src/image/kernel.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'image-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

void test('extractVmlinux finds the compressed ELF inside a bzImage-like blob', async () => {
  const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(2_000_000, 0xab)]);
  // A false gzip magic first, then the real stream, then trailing data (as in a real bzImage).
  const fake = Buffer.concat([Buffer.alloc(512, 1), Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3]), Buffer.alloc(100, 2), gzipSync(elf), Buffer.alloc(4096, 3)]);
  const { vmlinux, format } = await extractVmlinux(fake);
  assert.ok(vmlinux.equals(elf));
  assert.match(format, /^gzip@\d+$/);
  await assert.rejects(extractVmlinux(Buffer.alloc(10_000, 5)), /no decompressible ELF/);
});

void test('cache lookups: defaultCacheDir, findImage on an empty cache, kernel id is stable', async () => {
  const saved = process.env.FAASCELL_CACHE_DIR;
  process.env.FAASCELL_CACHE_DIR = path.join(tmp, 'cache');
  try {
    assert.equal(defaultCacheDir(), path.join(tmp, 'cache'));
  } finally {
    if (saved === undefined) delete process.env.FAASCELL_CACHE_DIR;
    else process.env.FAASCELL_CACHE_DIR = saved;
  }
  delete process.env.FAASCELL_CACHE_DIR;
  assert.equal(defaultCacheDir(), path.join(os.homedir(), '.cache', 'faascell'));
  if (saved !== undefined) process.env.FAASCELL_CACHE_DIR = saved;

  assert.equal(await findImage(path.join(tmp, 'nothing-here')), undefined);
  // A current.json pointing at an incomplete image is not an image.
  const cache = path.join(tmp, 'cache2');
  fs.mkdirSync(path.join(cache, 'images', 'abc'), { recursive: true });
  fs.writeFileSync(path.join(cache, 'images', 'current.json'), JSON.stringify({ version: 'abc' }));
  fs.writeFileSync(path.join(cache, 'images', 'abc', 'manifest.json'), JSON.stringify({ version: 'abc', kernelPath: '/x/vmlinux', initrdPath: '/x/initrd.cpio.gz', rootfsPath: '/x/rootfs.sqfs' }));
  assert.equal(await findImage(cache), undefined);
  for (const f of ['vmlinux', 'initrd.cpio.gz', 'rootfs.sqfs']) fs.writeFileSync(path.join(cache, 'images', 'abc', f), 'x');
  const img = await findImage(cache);
  assert.equal(img?.version, 'abc');
  assert.equal(img?.kernelPath, path.join(cache, 'images', 'abc', 'vmlinux'));

  const guestImage = path.join(projectRoot(), 'guest', 'image');
  if (fs.existsSync('/usr/src/linux-source-6.1.tar.xz')) {
    assert.match(await minimalKernelId(guestImage), /^[0-9a-f]{16}$/);
    assert.equal(await minimalKernelId(guestImage), await minimalKernelId(guestImage));
  }
});

// --- issue 9: guest tuning options select kernel fragments; the helper's parser
void test('guest tuning: defaults, kernel features, and a distinct kernel id per feature set', async () => {
  const { resolveTuning, kernelFeaturesFor } = await import('../../src/image/builder.js');
  const { canonicalFeatures } = await import('../../src/image/kernel.js');
  assert.deepEqual(resolveTuning({}), { tickless: true, rootfs: 'dax', freePageReporting: true });
  assert.deepEqual(kernelFeaturesFor(resolveTuning({})), ['tickless', 'dax', 'balloon']);
  assert.deepEqual(kernelFeaturesFor({ tickless: false, rootfs: 'squashfs', freePageReporting: false }), []);
  assert.deepEqual(canonicalFeatures(['balloon', 'tickless', 'balloon']), ['tickless', 'balloon']);
  const guestImage = path.join(projectRoot(), 'guest', 'image');
  for (const f of ['tickless', 'dax', 'balloon']) assert.ok(fs.existsSync(path.join(guestImage, `kernel-${f}.config`)), f);
  if (fs.existsSync('/usr/src/linux-source-6.1.tar.xz')) {
    const base = await minimalKernelId(guestImage);
    // no features: the id kernels had before features existed (their cache stays valid)
    assert.equal(await minimalKernelId(guestImage, []), base);
    const ids = new Set([base, await minimalKernelId(guestImage, ['tickless']), await minimalKernelId(guestImage, ['tickless', 'dax', 'balloon'])]);
    assert.equal(ids.size, 3);
    // order does not matter
    assert.equal(await minimalKernelId(guestImage, ['balloon', 'dax', 'tickless']), await minimalKernelId(guestImage, ['tickless', 'dax', 'balloon']));
  }
});

void test('issue 21, the Python image: apt simulation parsing, deb file names, /init = the Node /init up to its agent start + the Python start', async () => {
  const { parseAptSimulation, debFileName, pythonInit, INIT_AGENT_MARKER } = await import('../../src/image/python.js');
  const sim = [
    'NOTE: This is only a simulation!',
    'Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []',
    'Inst python3-numpy (1:1.24.2-1+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])',
    'Inst python3-pyaes (1.6.1-4 Debian:12.15/oldstable [all])',
    'Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])',
  ].join('\n');
  const pkgs = parseAptSimulation(sim);
  assert.deepEqual(pkgs, [
    { name: 'libc6', version: '2.36-9+deb12u14', arch: 'amd64' },
    { name: 'python3-numpy', version: '1:1.24.2-1+deb12u1', arch: 'amd64' },
    { name: 'python3-pyaes', version: '1.6.1-4', arch: 'all' },
  ]);
  assert.equal(debFileName(pkgs[1]!), 'python3-numpy_1%3a1.24.2-1+deb12u1_amd64.deb');
  const nodeInit = fs.readFileSync(path.join(projectRoot(), 'guest', 'image', 'init'), 'utf8');
  const start = fs.readFileSync(path.join(projectRoot(), 'guest', 'image', 'start-python-agent.sh'), 'utf8');
  const init = pythonInit(nodeInit, start);
  assert.ok(init.startsWith(nodeInit.slice(0, nodeInit.indexOf(INIT_AGENT_MARKER))), 'the same boot as the Node image');
  assert.ok(init.endsWith(start));
  assert.doesNotMatch(init, /bin\/node/);
  assert.match(init, /chroot \/rootfs \/usr\/bin\/python3 -E -s -B/);
  assert.throws(() => pythonInit('#!/bin/sh\necho no marker\n', start), /has no line "# --- agent start options/);
  // the result is a valid shell script
  const r = spawnSync('sh', ['-n'], { input: init });
  assert.equal(r.status, 0, r.stderr?.toString());
});

void test('issue 21, the Python root fs: what is pruned (a directory with what is below it) and what is kept', async () => {
  const { isPruned } = await import('../../src/image/python.js');
  for (const p of [
    'usr/share/doc',
    'usr/include',
    'usr/lib/x86_64-linux-gnu/libopenblas.a',
    'usr/lib/python3/dist-packages/numpy/core/tests',
    'usr/lib/x86_64-linux-gnu/dri',
    'usr/lib/x86_64-linux-gnu/libLLVM-15.so.1',
    'usr/lib/x86_64-linux-gnu/libz3.so.4',
    'usr/bin/perl',
    'usr/bin/x86_64-linux-gnu-lto-dump-12',
    'usr/lib/python3/dist-packages/torch/bin/test_api',
    'usr/lib/python3/dist-packages/torch/bin/TCPStoreTest',
  ])
    assert.ok(isPruned(p), `${p} is pruned`);
  for (const p of [
    'usr/bin/python3',
    'usr/share/doc-base',
    'usr/lib/python3/dist-packages/tests',
    'usr/lib/python3/dist-packages/torch/bin/torch_shm_manager',
    'usr/lib/x86_64-linux-gnu/libGL.so.1',
    'usr/lib/x86_64-linux-gnu/libopenblas.so.0',
    'usr/lib/python3.11/abc.py',
  ])
    assert.ok(!isPruned(p), `${p} is kept`);
});
