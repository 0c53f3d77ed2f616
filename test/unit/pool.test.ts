// VmPool scheduling, keep-alive, budget and admission, over a fake driver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/core/clock.js';
import { harness, deploy, type Harness, type HarnessOptions } from '../helpers/pool-harness.js';
import { autoAdvance } from '../helpers/virtual-time.js';

/** The harness on virtual time that runs by itself: the fake VMs' boots and runs, keep-alive timers and the
 * tests' own waits (h.sleep) follow one clock, whatever the machine's load. */
async function virtualHarness(opts: HarnessOptions = {}): Promise<Harness & { sleep(ms: number): Promise<void> }> {
  const clock = new VirtualClock();
  const time = autoAdvance(clock);
  const h = await harness({ ...opts, clock });
  return {
    ...h,
    sleep: (ms) => clock.sleep(ms),
    close: async () => {
      await h.close();
      await time.stop();
    },
  };
}

test('cold then warm: the second invocation reuses the VM', async () => {
  const h = await virtualHarness();
  try {
    deploy(h, 'f');
    const a = await h.invoke('f', { x: 1 });
    const b = await h.invoke('f', { x: 2 });
    assert.equal(a.error, undefined);
    assert.deepEqual(a.result, { echo: { x: 1 }, inited: true });
    assert.equal(a.activation.startPath, 'cold');
    assert.equal(b.activation.startPath, 'warm');
    assert.equal(a.activation.vmId, b.activation.vmId);
    assert.equal(h.driver.boots, 1);
    for (const s of ['received', 'queued', 'instanceAssigned', 'agentReady', 'initDone', 'runStarted', 'runFinished', 'responseSent'] as const) {
      assert.ok(a.activation.timestamps[s] !== undefined, `cold record has ${s}`);
    }
    assert.equal(b.activation.timestamps.agentReady, undefined);
    assert.deepEqual(a.activation.logs, ['ran']);
  } finally {
    await h.close();
  }
});

test('concurrent invocations get separate VMs up to maxInstances, then queue', async () => {
  const h = await virtualHarness({ behaviour: { runMs: 100 } });
  try {
    deploy(h, 'f', { maxInstances: 2 });
    const rs = await Promise.all([1, 2, 3, 4].map((i) => h.invoke('f', { i })));
    assert.ok(rs.every((r) => !r.error));
    assert.equal(h.driver.boots, 2);
    assert.equal(new Set(rs.map((r) => r.activation.vmId)).size, 2);
    assert.equal(rs.filter((r) => r.activation.startPath === 'warm').length, 2);
  } finally {
    await h.close();
  }
});

test('fixed keep-alive: an idle VM is reaped after its TTL', async () => {
  const h = await virtualHarness({ policies: { keepAlive: { policy: 'fixed', ttlSeconds: 0.1 } } });
  try {
    deploy(h, 'f');
    await h.invoke('f');
    assert.equal(h.driver.live(), 1);
    await h.sleep(300);
    assert.equal(h.driver.live(), 0);
    const again = await h.invoke('f');
    assert.equal(again.activation.startPath, 'cold');
    assert.equal((await h.status()).counters.expirations, 1);
  } finally {
    await h.close();
  }
});

test('memory budget: crossing the high watermark evicts idle VMs (LRU)', async () => {
  const h = await virtualHarness({ pool: { memoryBudgetMiB: 600, highWatermark: 0.9, lowWatermark: 0.5 } });
  try {
    deploy(h, 'a');
    deploy(h, 'b');
    deploy(h, 'c');
    await h.invoke('a');
    await h.invoke('b');
    const st = await h.status();
    assert.equal(st.memoryUsedMiB, 512);
    await h.invoke('c'); // 768 > 540: evict idle down to 300 → both a and b go (LRU first)
    await h.sleep(20);
    const after = await h.status();
    assert.deepEqual(after.instances.map((i) => i.fn), ['c']);
    assert.equal(after.counters.evictions, 2);
  } finally {
    await h.close();
  }
});

test('admission: a full queue answers 429, a long wait 503, and nothing admitted is dropped', async () => {
  const h = await virtualHarness({ behaviour: { runMs: 300 }, pool: { maxQueueLength: 1, maxQueueDelayMs: 150 } });
  try {
    deploy(h, 'f', { maxInstances: 1 });
    const first = h.invoke('f');
    await h.sleep(20);
    const second = h.invoke('f'); // queued behind the first
    await h.sleep(5);
    const third = await h.invoke('f'); // queue full
    assert.equal(third.error?.status, 429);
    assert.match(third.error.message, /maxQueueLength/);
    const s = await second;
    assert.equal(s.error?.status, 503);
    assert.match(s.error.message, /maxQueueDelayMs/);
    assert.equal((await first).error, undefined);
  } finally {
    await h.close();
  }
});

test('a hung function times out (504), its VM is killed and not reused', async () => {
  const h = await virtualHarness();
  try {
    deploy(h, 'f', { timeoutMs: 200 });
    const r = await h.invoke('f', { hang: true });
    assert.equal(r.error?.status, 504);
    assert.equal(r.activation.status, 'timeout');
    await h.sleep(20);
    assert.equal(h.driver.live(), 0);
    const next = await h.invoke('f');
    assert.equal(next.activation.startPath, 'cold');
  } finally {
    await h.close();
  }
});

test('a function error is a 502 and the VM stays warm; a crash loses the VM', async () => {
  const h = await virtualHarness();
  try {
    deploy(h, 'f');
    const e = await h.invoke('f', { throw: 'nope' });
    assert.equal(e.error?.status, 502);
    assert.equal(e.error?.code, 'function_error');
    assert.deepEqual(e.activation.logs, ['before throw']);
    const ok = await h.invoke('f');
    assert.equal(ok.activation.startPath, 'warm');
    const c = await h.invoke('f', { crash: true });
    assert.equal(c.error?.code, 'function_crashed');
    assert.equal(c.activation.status, 'crashed');
    await h.sleep(20);
    assert.equal((await h.invoke('f')).activation.startPath, 'cold');
  } finally {
    await h.close();
  }
});

test('an update makes warm instances stale', async () => {
  const h = await virtualHarness();
  try {
    deploy(h, 'f');
    await h.invoke('f');
    deploy(h, 'f', { memoryMiB: 512 });
    await h.sleep(20);
    const r = await h.invoke('f');
    assert.equal(r.activation.startPath, 'cold');
    assert.equal(h.driver.boots, 2);
    const missing = await h.invoke('nope');
    assert.equal(missing.error?.status, 404);
  } finally {
    await h.close();
  }
});

test('a delete fails the queued requests with 404 and stops the instances', async () => {
  const h = await virtualHarness({ behaviour: { runMs: 300 } });
  try {
    deploy(h, 'f', { maxInstances: 1 });
    const first = h.invoke('f');
    await h.sleep(30);
    const queued = [h.invoke('f'), h.invoke('f')];
    await h.sleep(30);
    assert.equal((await h.status()).queues.f, 2);
    h.registry.delete('f');
    await h.pool.ask<void>((reply) => ({ kind: 'functionChanged', fn: 'f', def: undefined, reply }), 1000);
    for (const q of await Promise.all(queued)) {
      assert.equal(q.error?.status, 404);
      assert.match(q.error.message, /deleted/);
    }
    assert.equal((await first).error, undefined, 'the running one finishes');
    await h.sleep(50);
    assert.equal(h.driver.live(), 0, 'its instance stopped after the run');
  } finally {
    await h.close();
  }
});

test('a failed boot fails the waiting request with vm_error instead of hanging', async () => {
  const h = await virtualHarness({ behaviour: { failBoot: true } });
  try {
    deploy(h, 'f');
    const r = await h.invoke('f');
    assert.equal(r.error?.code, 'vm_error');
    assert.match(r.error.message, /could not start/);
  } finally {
    await h.close();
  }
});
