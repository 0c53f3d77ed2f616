// Policies and admission in the real daemon: a user keep-alive module loaded
// from the config without rebuilding, its TTL reaping a real VM, and a 429.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

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
    const b = await d.client.invoke('hello', {});
    assert.equal(b.body.activation!.startPath, 'warm');
    await new Promise((r) => setTimeout(r, 6000)); // TTL doubled once: 4 s
    const st = await d.client.call<{ pool: { instances: unknown[]; counters: { expirations: number } } }>('GET', '/v1/status');
    assert.equal(st.pool.instances.length, 0);
    assert.equal(st.pool.counters.expirations, 1);
    const c = await d.client.invoke('hello', {});
    assert.equal(c.body.activation!.startPath, 'cold');
  });

  test('admission: with no queue allowed, a second concurrent request is refused with 429', async () => {
    await d.deploy('slow', 'hang.js', { timeoutMs: 3000, maxInstances: 1 });
    const first = d.client.invoke('slow', {});
    await new Promise((r) => setTimeout(r, 300));
    const second = await d.client.invoke('slow', {});
    assert.equal(second.status, 429);
    assert.equal(second.body.error?.code, 'too_many_requests');
    assert.match(second.body.error.message, /maxQueueLength/);
    assert.equal((await first).status, 504);
  });
});
