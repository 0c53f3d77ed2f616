import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { apiSocketPath, ConfigError, effectiveTiers, loadConfigFile, parseConfig } from '../../src/config/schema.js';
import { configErrorKey } from '../helpers/config-key.js';
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
  const key = configErrorKey;
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

test('issue 19: FAASCELL_TOKEN is held to the same rule as api.token in the file', () => {
  const saved = process.env.FAASCELL_TOKEN;
  try {
    process.env.FAASCELL_TOKEN = 'a';
    assert.throws(() => parseConfig({ api: { host: '0.0.0.0' } }), (e: unknown) => e instanceof ConfigError && e.key === 'api.token' && /FAASCELL_TOKEN/.test(e.message) && /at least 16 characters/.test(e.message));
    assert.throws(() => parseConfig({}), (e: unknown) => e instanceof ConfigError && e.key === 'api.token');
    assert.throws(() => parseConfig({ api: { token: 'short' } }), (e: unknown) => e instanceof ConfigError && e.key === 'api.token' && !/FAASCELL_TOKEN/.test(e.message));
    // a token in the file wins over the environment's
    assert.equal(parseConfig({ api: { token: 'f'.repeat(16) } }).api.token, 'f'.repeat(16));
    process.env.FAASCELL_TOKEN = 'e'.repeat(16);
    assert.equal(parseConfig({}).api.token, 'e'.repeat(16));
  } finally {
    if (saved === undefined) delete process.env.FAASCELL_TOKEN;
    else process.env.FAASCELL_TOKEN = saved;
  }
});

test('issue 19: API bounds have defaults and are checked', () => {
  const c = parseConfig({});
  assert.deepEqual(
    { d: c.api.maxJsonDepth, h: c.api.headersTimeoutMs, r: c.api.requestTimeoutMs, k: c.api.keepAliveTimeoutMs, m: c.api.maxConnections, a: c.api.allowedHosts, t: c.api.tcp, s: c.api.socket },
    { d: 100, h: 10_000, r: 120_000, k: 5_000, m: 1024, a: [], t: true, s: undefined },
  );
  assert.equal(apiSocketPath(parseConfig({ stateDir: '/var/lib/fc' })), '/var/lib/fc/api.sock');
  assert.equal(apiSocketPath(parseConfig({ api: { socket: false } })), undefined);
  const key = (input: unknown): string | undefined => {
    try {
      parseConfig(input);
    } catch (e) {
      return (e as ConfigError).key;
    }
    return undefined;
  };
  assert.equal(key({ api: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } }), 'api.headersTimeoutMs');
  assert.equal(key({ api: { tcp: false, socket: false } }), 'api.tcp');
  assert.equal(key({ api: { maxJsonDepth: 5000 } }), 'api.maxJsonDepth');
  assert.equal(key({ api: { allowedHosts: ['a.example:8080'] } }), 'api.allowedHosts.0');
});
