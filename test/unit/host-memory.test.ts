// The guard's reading of the host's memory (src/vmpool/host-memory.ts): parsers,
// the level a reading means, and the walk up a memory cgroup's ancestors, on files
// in a temporary directory (no real cgroup touched).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cgroupAvailable, guardVerdict, parseMeminfo, parsePsi, readHostMemory, type GuardThresholds } from '../../src/vmpool/host-memory.js';
import { PRESSURE_EVICT, PRESSURE_OK, PRESSURE_REFUSE, PRESSURE_STOP } from '../../src/vmpool/core/core.js';
import { parseConfig } from '../../src/config/schema.js';

const T: GuardThresholds = { evictBelow: 0.1, refuseBelow: 0.05, stopBelow: 0.02, psiSomeEvict: 20, psiFullRefuse: 10, psiAvailableBelow: 1 };

void test('parsers: meminfo, PSI, cgroup limits (v1 "no limit", v2 max, inactive file pages reclaimable)', () => {
  assert.deepEqual(parseMeminfo('MemTotal:       24683772 kB\nMemFree:        17043260 kB\nMemAvailable:   22288832 kB\n'), { totalMiB: 24683772 / 1024, availableMiB: 22288832 / 1024 });
  assert.equal(parseMeminfo('MemTotal: 1 kB\n'), undefined);
  assert.deepEqual(parsePsi('some avg10=1.50 avg60=0.00 avg300=0.00 total=339346\nfull avg10=0.25 avg60=0.00 avg300=0.00 total=28818\n'), { some10: 1.5, full10: 0.25 });
  assert.equal(cgroupAvailable('v1', '9223372036854771712\n', '4448256\n', ''), undefined);
  assert.equal(cgroupAvailable('v2', 'max\n', '4448256\n', ''), undefined);
  const MiB = 1048576;
  assert.deepEqual(cgroupAvailable('v1', String(1024 * MiB), String(900 * MiB), `cache 1\ntotal_inactive_file ${100 * MiB}\n`), { limitMiB: 1024, availableMiB: 224 });
  assert.deepEqual(cgroupAvailable('v2', String(1024 * MiB), String(1000 * MiB), `anon 5\ninactive_file ${24 * MiB}\n`), { limitMiB: 1024, availableMiB: 48 });
});

void test('verdict: the tightest source decides; PSI evicts and refuses but never stops a run', () => {
  const src = (availableMiB: number, limitMiB = 1000) => ({ name: 'x', availableMiB, limitMiB });
  assert.equal(guardVerdict({ sources: [src(500)] }, T).level, PRESSURE_OK);
  assert.deepEqual(guardVerdict({ sources: [src(80)] }, T), { level: PRESSURE_EVICT, shortMiB: 20, source: src(80) });
  assert.equal(guardVerdict({ sources: [src(40)] }, T).level, PRESSURE_REFUSE);
  assert.equal(guardVerdict({ sources: [src(10)] }, T).level, PRESSURE_STOP);
  // host fine, the cgroup nearly full
  const v = guardVerdict({ sources: [{ name: 'host', availableMiB: 20_000, limitMiB: 24_000 }, { name: '/cg', availableMiB: 15, limitMiB: 1000 }] }, T);
  assert.equal(v.level, PRESSURE_STOP);
  assert.equal(v.source?.name, '/cg');
  assert.equal(v.shortMiB, 85);
  assert.equal(guardVerdict({ sources: [src(500)], psiSome10: 25 }, T).level, PRESSURE_EVICT);
  assert.equal(guardVerdict({ sources: [src(500)], psiSome10: 50, psiFull10: 12 }, T).level, PRESSURE_REFUSE);
  assert.equal(guardVerdict({ sources: [src(10)], psiFull10: 50 }, T).level, PRESSURE_STOP);
  assert.equal(guardVerdict({ sources: [src(500)], psiSome10: 90, psiFull10: 90 }, { ...T, psiSomeEvict: 0, psiFullRefuse: 0 }).level, PRESSURE_OK);
});

void test('readHostMemory: MemAvailable, PSI, and every limited cgroup from the VMs\' up to the hierarchy root', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-hostmem-'));
  try {
    const MiB = 1048576;
    mkdirSync(path.join(dir, 'proc', 'pressure'), { recursive: true });
    writeFileSync(path.join(dir, 'proc', 'meminfo'), 'MemTotal: 2097152 kB\nMemAvailable: 1048576 kB\n');
    writeFileSync(path.join(dir, 'proc', 'pressure', 'memory'), 'some avg10=3.00 avg60=0 avg300=0 total=1\nfull avg10=0.00 avg60=0 avg300=0 total=1\n');
    // memory/ (root, unlimited) > limited/ (1 GiB, 900 MiB used) > daemon/ (unlimited)
    const root = path.join(dir, 'memory');
    const limited = path.join(root, 'limited');
    const daemon = path.join(limited, 'daemon');
    mkdirSync(daemon, { recursive: true });
    const cg = (d: string, limit: string, usage: number) => {
      writeFileSync(path.join(d, 'memory.limit_in_bytes'), limit);
      writeFileSync(path.join(d, 'memory.usage_in_bytes'), String(usage));
      writeFileSync(path.join(d, 'memory.stat'), 'total_inactive_file 0\n');
    };
    cg(root, '9223372036854771712', 5000 * MiB);
    cg(limited, String(1024 * MiB), 900 * MiB);
    cg(daemon, '9223372036854771712', 800 * MiB);
    const r = await readHostMemory({ procRoot: path.join(dir, 'proc'), cgroup: { version: 'v1', dir: daemon } });
    assert.deepEqual(r.sources, [
      { name: 'host', availableMiB: 1024, limitMiB: 2048 },
      { name: limited, availableMiB: 124, limitMiB: 1024 },
    ]);
    assert.equal(r.psiSome10, 3);
    assert.equal(guardVerdict(r, T).source?.name, limited);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('PSI `some` counts only while memory is short (psiAvailableBelow); `full` at any availability', () => {
  const D = { ...T, psiAvailableBelow: 0.2 };
  const host = (availableMiB: number) => ({ name: 'host', availableMiB, limitMiB: 1000 });
  // page-cache reclaim on busy cores with most of the host available: ignored
  assert.equal(guardVerdict({ sources: [host(400)], psiSome10: 60, psiFull10: 2 }, D).level, PRESSURE_OK);
  // the same stalls with the tightest source short: evict, though above evictBelow
  assert.equal(guardVerdict({ sources: [host(150)], psiSome10: 60 }, D).level, PRESSURE_EVICT);
  assert.equal(guardVerdict({ sources: [host(150)], psiSome10: 19 }, D).level, PRESSURE_OK);
  assert.equal(guardVerdict({ sources: [host(240)], psiSome10: 60 }, D).level, PRESSURE_OK);
  // the tightest source decides: the host plentiful, the VMs' cgroup short
  assert.equal(guardVerdict({ sources: [host(900), { name: '/cg', availableMiB: 150, limitMiB: 1000 }], psiSome10: 30 }, D).level, PRESSURE_EVICT);
  // every task stalled: refused whatever is available
  assert.equal(guardVerdict({ sources: [host(900)], psiSome10: 60, psiFull10: 12 }, D).level, PRESSURE_REFUSE);
  // nothing read but PSI: PSI alone speaks
  assert.equal(guardVerdict({ sources: [], psiSome10: 30 }, D).level, PRESSURE_EVICT);
  // 1: the former rule (PSI `some` at any availability)
  assert.equal(guardVerdict({ sources: [host(400)], psiSome10: 60 }, { ...D, psiAvailableBelow: 1 }).level, PRESSURE_EVICT);
});

void test('the defaults: session 6\'s stop on the loaded machine (PSI some 25 %, 10.0 GiB of 23.5 available) is no longer a stop', () => {
  const g = parseConfig({}).node.memory.guard;
  const s6 = { sources: [{ name: 'host', availableMiB: 10460016 / 1024, limitMiB: 24683772 / 1024 }], psiSome10: 25.29, psiFull10: 1.27 };
  assert.equal(guardVerdict(s6, { ...g, psiAvailableBelow: 1 }).level, PRESSURE_EVICT);
  assert.equal(guardVerdict(s6, g).level, PRESSURE_OK);
  assert.equal(guardVerdict({ ...s6, sources: [{ name: 'host', availableMiB: 0.15 * (24683772 / 1024), limitMiB: 24683772 / 1024 }] }, g).level, PRESSURE_EVICT);
  // bench/runs/2026-12-07-psi-reclaim-s7.txt: a file streamed through a 768 MiB cgroup's page cache on busy cores
  // (ignored now), and a working set larger than what that cgroup has left (still evicted, above evictBelow)
  const host = { name: 'host', availableMiB: 0.881 * 24105, limitMiB: 24105 };
  assert.equal(guardVerdict({ sources: [host, { name: '/cg', availableMiB: 767, limitMiB: 768 }], psiSome10: 20.44, psiFull10: 0 }, g).level, PRESSURE_OK);
  assert.equal(guardVerdict({ sources: [host, { name: '/cg', availableMiB: 0.149 * 768, limitMiB: 768 }], psiSome10: 32.59, psiFull10: 0 }, g).level, PRESSURE_EVICT);
  assert.throws(() => parseConfig({ node: { memory: { guard: { psiAvailableBelow: 2 } } } }), /psiAvailableBelow/);
});
