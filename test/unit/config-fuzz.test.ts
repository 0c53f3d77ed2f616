// Property-based tests of the configuration loader: any input gives either a
// configuration or a ConfigError naming a key (never another exception), an
// unknown key is always named, and the hardening keys have their defaults.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/schema.js';

function outcome(f: () => unknown): 'ok' | ConfigError {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw new Error(`not a ConfigError: ${(e as Error).stack}`);
  }
}

const SECTIONS = ['stateDir', 'api', 'runtime', 'image', 'functionDefaults', 'functionLimits', 'node', 'admission', 'snapshots', 'activations', 'policies', 'jail', 'limits', 'log'];

void test('config fuzz: any JSON value is a config or a ConfigError with a key', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
      const r = outcome(() => parseConfig(v));
      if (r !== 'ok') assert.equal(typeof r.key, 'string');
    }),
    { numRuns: 2000 },
  );
});

void test('config fuzz: one section or key set to anything', () => {
  const keyArb = fc.oneof(
    fc.constantFrom(...SECTIONS).map((s) => [s]),
    fc.tuple(fc.constantFrom('api', 'runtime', 'node', 'snapshots', 'jail', 'limits', 'admission'), fc.constantFrom('port', 'host', 'token', 'enabled', 'cgroup', 'cpuQuota', 'pidsMax', 'memoryOverheadMiB', 'uidRange', 'tiers', 'kind', 'maxQueueLength', 'cpus')).map(([a, b]) => [a, b]),
  );
  fc.assert(
    fc.property(keyArb, fc.jsonValue({ maxDepth: 3 }), (keys, value) => {
      const input: Record<string, unknown> = {};
      let cur = input;
      keys.forEach((k, i) => {
        if (i === keys.length - 1) cur[k] = value;
        else cur = (cur[k] = {});
      });
      const r = outcome(() => parseConfig(input));
      if (r !== 'ok') assert.ok(r.key === '(root)' || r.key!.startsWith(keys[0]!), `error names ${r.key}, the bad key was ${keys.join('.')}: ${r.message}`);
    }),
    { numRuns: 2000 },
  );
});

void test('config fuzz: an unknown key is always named', () => {
  fc.assert(
    fc.property(fc.constantFrom('', 'api', 'jail', 'limits', 'snapshots', 'node'), fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9]{0,12}$/), (section, key) => {
      const known = section === '' ? SECTIONS : [];
      fc.pre(!known.includes(key) && !['port', 'host', 'token', 'enabled', 'user', 'seccomp', 'cgroup', 'kind', 'tiers', 'cpus'].includes(key));
      const input = section === '' ? { [key]: 1 } : { [section]: { [key]: 1 } };
      const r = outcome(() => parseConfig(input));
      assert.notEqual(r, 'ok', `unknown key ${section}.${key} accepted`);
      assert.ok((r as ConfigError).message.includes(key), (r as ConfigError).message);
    }),
    { numRuns: 500 },
  );
});

void test('config fuzz: any file content is a config or a ConfigError', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-fuzz-'));
  try {
    const file = path.join(dir, 'c.yaml');
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)), fc.constantFrom('a: [', '{', ': :', '- - -', 'api: {port: "x"}', 'jail: {enabled: maybe}', '\t\tx')), (text) => {
        fs.writeFileSync(file, text);
        outcome(() => loadConfigFile(file));
      }),
      { numRuns: 1000 },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

void test('hardening keys: defaults and bad values', () => {
  const c = parseConfig({});
  assert.deepEqual(c.jail, { enabled: 'auto', user: 'faascell-vmm', seccomp: true });
  // issue 19: idleCpuQuota and consoleMaxBytes
  assert.deepEqual(c.limits, { cgroup: 'auto', memoryOverheadMiB: 64, tcgCodeCacheMiB: 32, tcgCodeCacheRestoreMiB: 14, vmmMallocArenaMax: null, vmmMallocMmapThresholdKiB: null, vmmThp: 'off', cpuWeight: 100, startCpuWeight: 'off', startCpuWeightScope: 'first', daemonCpuWeight: 1000, cpuQuota: null, idleCpuQuota: 0.1, pidsMax: 256, guestMessageMaxBytes: 16 * 1024 * 1024, consoleMaxBytes: 1024 * 1024 });
  const key = (v: unknown) => (outcome(() => parseConfig(v)) as ConfigError).key;
  assert.equal(key({ limits: { cpuWeight: 0 } }), 'limits.cpuWeight');
  assert.equal(key({ limits: { startCpuWeight: 0 } }), 'limits.startCpuWeight');
  assert.equal(key({ limits: { cgroup: 'v3' } }), 'limits.cgroup');
  assert.equal(key({ limits: { daemonCpuWeight: 0 } }), 'limits.daemonCpuWeight');
  assert.equal(parseConfig({ limits: { daemonCpuWeight: 'off' } }).limits.daemonCpuWeight, 'off');
  assert.equal(key({ limits: { cgroupParent: 'relative' } }), 'limits.cgroupParent');
  assert.equal(key({ jail: { enabled: 'yes' } }), 'jail.enabled');
  assert.equal(key({ jail: { uidRange: { first: 0, count: 5 } } }), 'jail.uidRange.first');
  assert.equal(parseConfig({ limits: { cpuQuota: 0.5 } }).limits.cpuQuota, 0.5);
});
