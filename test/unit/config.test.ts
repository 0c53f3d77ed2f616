import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, effectiveTiers, loadConfigFile, parseConfig } from '../../src/config/schema.js';
import { isLoopback } from '../../src/daemon.js';

test('defaults are filled in', () => {
  const c = parseConfig({});
  assert.equal(c.api.host, '127.0.0.1');
  assert.equal(c.api.port, 8080);
  assert.equal(c.runtime.accelerator, 'auto');
  assert.equal(c.functionDefaults.memoryMiB, 256);
  assert.equal(c.admission.maxQueueLength, 100);
  assert.equal(c.snapshots.kind, 'shared-memory');
  assert.equal(c.policies.keepAlive.policy, 'fixed');
  assert.equal(effectiveTiers(c).length, 2);
});

test('errors name the bad key', () => {
  const key = (input: unknown): string | undefined => {
    try {
      parseConfig(input);
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.key;
    }
    return undefined;
  };
  assert.equal(key({ node: { memoryBudgetMiB: 'lots' } }), 'node.memoryBudgetMiB');
  assert.equal(key({ api: { prot: 1 } }), 'api');
  assert.equal(key({ runtime: { accelerator: 'fast' } }), 'runtime.accelerator');
  assert.equal(key({ snapshots: { tiers: [{ name: 'A B', path: '/x', latencyRank: 0, capacityMiB: 1 }] } }), 'snapshots.tiers.0.name');
  assert.equal(key({ node: { lowWatermark: 0.9, highWatermark: 0.5 } }), 'node.lowWatermark');
  assert.equal(key({ policies: { keepAlive: { policy: 'forever' } } }), 'policies.keepAlive.policy');
});

test('a YAML file with relative paths resolves them against its directory', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-cfg-'));
  try {
    const f = path.join(dir, 'faascell.yaml');
    writeFileSync(f, 'stateDir: ./state\npolicies:\n  keepAlive: { policy: fixed, ttlSeconds: 60 }\n');
    const { config, baseDir } = loadConfigFile(f, { api: { port: 9999 } });
    assert.equal(config.stateDir, path.join(dir, 'state'));
    assert.equal(config.api.port, 9999);
    assert.equal(baseDir, dir);
    writeFileSync(f, 'api: [unclosed');
    assert.throws(() => loadConfigFile(f), /not valid YAML/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('only loopback addresses are open without a token', () => {
  assert.ok(isLoopback('127.0.0.1'));
  assert.ok(isLoopback('::1'));
  assert.ok(isLoopback('localhost'));
  assert.ok(!isLoopback('0.0.0.0'));
  assert.ok(!isLoopback('10.1.2.3'));
});
