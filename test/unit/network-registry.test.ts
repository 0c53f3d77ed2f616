// A function's network spec through the registry (SQLite) and the configuration's network block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/schema.js';
import { configErrorKey } from '../helpers/config-key.js';
import { FaasError } from '../../src/core/errors.js';
import { networkOptions } from '../../src/network/options.js';
import { openMemoryDb } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';

const limits = { defaults: { memoryMiB: 256, vcpus: 1, timeoutMs: 2000, maxInstances: 4 }, limits: { maxMemoryMiB: 4096, maxVcpus: 4, maxTimeoutMs: 60000, maxInstances: 64 }, maxCodeBytes: 1 << 20 };
const code = Buffer.from('exports.main = () => ({})');

void test('registry: none by default, egress stored canonically, replaced on update', () => {
  const r = new Registry(openMemoryDb(), limits);
  assert.deepEqual(r.put('a', { code }).def.network, { mode: 'none', allow: [] });
  assert.deepEqual(r.get('a')!.network, { mode: 'none', allow: [] });
  const b = r.put('b', { code, network: { mode: 'egress', allow: ['TCP://10.0.0.9:443', '10.1.2.3/16'] } }).def;
  assert.deepEqual(b.network, { mode: 'egress', allow: ['tcp://10.0.0.9:443', '10.1.0.0/16'] });
  assert.deepEqual(r.get('b')!.network, b.network);
  assert.deepEqual(r.list().map((f) => f.network?.mode), ['none', 'egress']);
  // a PUT replaces the whole definition: no network given, none stored
  r.put('b', { code });
  assert.deepEqual(r.get('b')!.network, { mode: 'none', allow: [] });
});

void test('registry: a bad spec is a 400 naming the field and stores nothing', () => {
  const r = new Registry(openMemoryDb(), limits);
  assert.throws(
    () => r.put('c', { code, network: { mode: 'egress', allow: ['10.0.0.1', 'db.internal'] } }),
    (e: unknown) => e instanceof FaasError && e.status === 400 && e.field === 'network.allow[1]' && /host names/.test(e.message),
  );
  assert.equal(r.get('c'), undefined);
});

void test('config: network defaults and errors name the key', () => {
  const c = parseConfig({});
  assert.deepEqual(c.network, { hostCidr: '10.200.0.0/16', poolSize: 2, prewarm: false });
  const o = networkOptions(c.network, false);
  assert.equal(o.prewarm, false);
  assert.equal(networkOptions(c.network, true).prewarm, true, 'egress functions exist: set up at start');
  const key = configErrorKey;
  assert.equal(key({ network: { hostCidr: '10.200.0.0/30' } }), undefined, 'one slot');
  assert.equal(key({ network: { hostCidr: '10.200.0.0' } }), 'network.hostCidr');
  assert.equal(key({ network: { hostCidr: '10.200.0.0/31' } }), 'network.hostCidr');
  assert.equal(key({ network: { hostCidr: 'ten' } }), 'network.hostCidr');
  assert.equal(key({ network: { hostCidr: '10.200.0.1/16' } }), 'network.hostCidr');
  assert.equal(key({ network: { dns: '8.8.8' } }), 'network.dns');
  assert.equal(key({ network: { dns: '10.200.0.53' } }), 'network.dns');
  assert.equal(key({ network: { poolSize: -1 } }), 'network.poolSize');
  assert.equal(key({ network: { pool: 1 } }), 'network');
});
