// issue 24: the clone-memory bench's readings (smaps by mapping kind, guest pages copied) and the VMM knobs
// that cut a clone's memory (the restored clone's code cache, MALLOC_ARENA_MAX): pure parts, no VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cloneMemoryVariant, copiedPages, kernelImageRanges, smapsBreakdown } from '../../bench/clone-memory.js';
import { tcgCodeCacheFor, vmmEnv, VMM_ENV } from '../../src/runtimes/qemu/driver.js';
import { parseConfig } from '../../src/config/schema.js';

const M = 1024 * 1024;
const hex = (x: number): string => x.toString(16);

function mapping(start: number, size: number, perms: string, name: string, kib: { rss?: number; pss?: number; dirty?: number; anon?: number; thp?: number } = {}): string {
  return [
    `${hex(start)}-${hex(start + size)} ${perms} 00000000 00:00 0          ${name}`,
    `Size:           ${size / 1024} kB`,
    `Rss:            ${kib.rss ?? 0} kB`,
    `Pss:            ${kib.pss ?? kib.rss ?? 0} kB`,
    `Private_Dirty:  ${kib.dirty ?? 0} kB`,
    `Anonymous:      ${kib.anon ?? 0} kB`,
    `AnonHugePages:  ${kib.thp ?? 0} kB`,
    'VmFlags: rd wr mr mw me ac',
  ].join('\n');
}

void test('smaps by mapping kind: RAM file copies, code cache, arenas, stacks, RAM blocks, files', () => {
  const base = 0x7f0000000000;
  const text = [
    mapping(0x55000000000, 4 * M, 'r-xp', '/usr/bin/qemu-system-x86_64', { rss: 4000, pss: 400 }),
    mapping(0x55100000000, 8 * M, 'rw-p', '[heap]', { rss: 5000, dirty: 5000, anon: 5000 }),
    // an arena: 64 MiB aligned, touched front, PROT_NONE rest
    mapping(base, 1 * M, 'rw-p', '', { rss: 900, dirty: 900, anon: 900 }),
    mapping(base + 1 * M, 63 * M, '---p', ''),
    // a thread stack under its guard page
    mapping(base + 64 * M + 4096 * 255, 4096, '---p', ''),
    mapping(base + 65 * M, 8 * M, 'rw-p', '', { rss: 40, dirty: 40, anon: 40 }),
    // a RAM block: 2 MiB aligned, guard after
    mapping(base + 74 * M, 2 * M, 'rw-p', '', { rss: 2048, dirty: 2048, anon: 2048, thp: 2048 }),
    mapping(base + 76 * M, 4096, '---p', ''),
    // the TCG code cache
    mapping(base + 80 * M, 32 * M, 'rwxp', '', { rss: 20480, dirty: 20480, anon: 20480, thp: 18432 }),
    // the snapshot's RAM file, mapped privately: 30 MiB of its pages mapped, 10 MiB of them copied
    mapping(base + 128 * M, 254 * M, 'rw-p', '/dev/shm/tier/fn-1/mem', { rss: 30720, pss: 10240 + 1024, dirty: 10240, anon: 10240 }),
    mapping(base + 400 * M, 100 * M, 'r--s', '/img/rootfs.erofs', { rss: 30000, pss: 3000 }),
    mapping(base + 520 * M, 300 * 1024, 'rw-p', '', { rss: 300, dirty: 300, anon: 300 }),
  ].join('\n');
  const b = smapsBreakdown(text, { ramFile: (n) => n.endsWith('/mem'), imageFile: (n) => n.startsWith('/img/') });
  assert.equal(b.kinds['guest RAM: CoW copies'].pssKiB, 10240);
  assert.equal(b.kinds['guest RAM: file pages'].pssKiB, 1024);
  assert.equal(b.kinds['guest RAM: file pages'].rssKiB, 20480);
  assert.equal(b.kinds['TCG code cache'].pssKiB, 20480);
  assert.equal(b.kinds['TCG code cache'].thpKiB, 18432);
  assert.equal(b.kinds['malloc: thread arenas'].pssKiB, 900);
  assert.equal(b.kinds['malloc: main heap'].pssKiB, 5000);
  assert.equal(b.kinds.stacks.pssKiB, 40);
  assert.equal(b.kinds['RAM blocks (anon)'].pssKiB, 2048);
  assert.equal(b.kinds['image files'].pssKiB, 3000);
  assert.equal(b.kinds['QEMU + libraries'].pssKiB, 400);
  assert.equal(b.kinds['anon other'].pssKiB, 300);
  assert.deepEqual(b.otherLargest, [{ sizeKiB: 300, rssKiB: 300 }]);
  // nothing lost: the kinds add up to the process's PSS
  assert.equal(Object.values(b.kinds).reduce((a, k) => a + k.pssKiB, 0), b.pssKiB);
});

void test('pagemap: present pages no longer the file\'s are the guest\'s copies', () => {
  const e = Buffer.alloc(8 * 4);
  e.writeUInt32LE(0xa0000000, 4); // present, file page
  e.writeUInt32LE(0x80000000, 12); // present, anonymous: a copy
  e.writeUInt32LE(0, 20); // not present
  e.writeUInt32LE(0x80000000, 28); // a copy
  assert.deepEqual(copiedPages(e), [1, 3]);
});

void test('the guest kernel\'s static image from its ELF program headers', () => {
  const elf = Buffer.alloc(0x40 + 2 * 56);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf.writeBigUInt64LE(0x40n, 0x20);
  elf.writeUInt16LE(56, 0x36);
  elf.writeUInt16LE(2, 0x38);
  elf.writeUInt32LE(1, 0x40); // PT_LOAD
  elf.writeBigUInt64LE(16n * 1048576n, 0x40 + 24);
  elf.writeBigUInt64LE(5n * 1048576n, 0x40 + 40);
  elf.writeUInt32LE(4, 0x40 + 56); // PT_NOTE: not loaded
  assert.deepEqual(kernelImageRanges(elf), [{ start: 16 * M, end: 21 * M }]);
  assert.deepEqual(kernelImageRanges(Buffer.from('not an elf, long enough to read a header from')), []);
});

void test('variants name the knobs', () => {
  assert.deepEqual(cloneMemoryVariant('default').limits, {});
  assert.deepEqual(cloneMemoryVariant('tb16+arena2+mmap128').limits, { tcgCodeCacheRestoreMiB: 16, vmmMallocArenaMax: 2, vmmMallocMmapThresholdKiB: 128 });
  assert.throws(() => cloneMemoryVariant('tb'), /tbN/);
});

void test('a restored clone\'s code cache and the VMM\'s malloc arenas', () => {
  assert.equal(tcgCodeCacheFor({ tcgCodeCacheMiB: 32 }, true), 32);
  assert.equal(tcgCodeCacheFor({ tcgCodeCacheMiB: 32, tcgCodeCacheRestoreMiB: 16 }, true), 16);
  assert.equal(tcgCodeCacheFor({ tcgCodeCacheMiB: 32, tcgCodeCacheRestoreMiB: 16 }, false), 32);
  assert.equal(vmmEnv(), VMM_ENV);
  assert.deepEqual(vmmEnv({ arenaMax: 2 }), { ...VMM_ENV, MALLOC_ARENA_MAX: '2' });
  assert.deepEqual(vmmEnv({ mmapThresholdKiB: 128 }), { ...VMM_ENV, MALLOC_MMAP_THRESHOLD_: '131072' });
  const c = parseConfig({ limits: { tcgCodeCacheRestoreMiB: 16, vmmMallocArenaMax: 2 } });
  assert.equal(c.limits.tcgCodeCacheRestoreMiB, 16);
  assert.throws(() => parseConfig({ limits: { vmmMallocArenaMax: 0 } }), /vmmMallocArenaMax/);
  assert.throws(() => parseConfig({ limits: { tcgCodeCacheRestoreMiB: 2 } }), /tcgCodeCacheRestoreMiB/);
});
