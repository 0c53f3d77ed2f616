// Policies and admission in the real daemon: a user keep-alive module loaded
// from the config without rebuilding, its TTL reaping a real VM, and a 429.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { until } from '../support/observability.js';

describe('policies in the real daemon', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({
      snapshots: { enabled: false },
      admission: { maxQueueLength: 0, maxQueueDelayMs: 60_000 },
      policies: {
        keepAlive: { policy: 'module', module: path.join(ROOT, 'examples', 'policies', 'keepalive-double-ttl.mjs'), options: { baseTtlSeconds: 2, maxTtlSeconds: 8 } },
      },
    });
  });
  after(() => stopAndCheck(d));

  test('the user module is the keep-alive policy in force', async () => {
    const st = await d.client.call<{ policies: { keepAlive: string } }>('GET', '/v1/status');
    assert.equal(st.policies.keepAlive, 'double-ttl');
  });

  test("its TTL reaps the idle VM: the next call is cold again", async () => {
    await d.deploy('hello', 'hello.js');
    const a = await d.client.invoke('hello', {});
    assert.equal(a.body.activation!.startPath, 'cold');
    const sent = Date.now();
    const b = await d.client.invoke('hello', {});
    assert.equal(b.body.activation!.startPath, 'warm');
    // TTL doubled once (4 s, after the run that began after `sent`): the VM goes, and not at the base 2 s
    type St = { pool: { instances: unknown[]; counters: { expirations: number } } };
    const st = await until('the idle VM to be reaped', async () => {
      const s = await d.client.call<St>('GET', '/v1/status');
      return s.pool.instances.length === 0 ? s : undefined;
    }, 120_000, 100);
    assert.ok(Date.now() - sent >= 3000, `reaped ${Date.now() - sent} ms after the second call: the doubled TTL (4 s) was not in force`);
    assert.equal(st.pool.counters.expirations, 1);
    const c = await d.client.invoke('hello', {});
    assert.equal(c.body.activation!.startPath, 'cold');
  });

  test('admission: with no queue allowed, a second concurrent request is refused with 429', async () => {
    await d.deploy('slow', 'hang.js', { timeoutMs: 3000, maxInstances: 1 });
    const first = d.client.invoke('slow', {});
    // the first holds the only instance (starting or busy) before the second is sent
    await until('the first request to hold the instance', async () => {
      const st = await d.client.call<{ pool: { instances: Array<{ fn: string }> } }>('GET', '/v1/status');
      return st.pool.instances.some((i) => i.fn === 'slow') ? true : undefined;
    }, 60_000, 50);
    const second = await d.client.invoke('slow', {});
    assert.equal(second.status, 429);
    assert.equal(second.body.error?.code, 'too_many_requests');
    assert.match(second.body.error.message, /maxQueueLength/);
    assert.equal((await first).status, 504);
  });
});
