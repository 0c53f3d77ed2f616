// End to end through the real daemon process and real QEMU microVMs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { cleanup, leftovers, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { until } from '../support/observability.js';

/** POST and return the status even when the server answers (413) and closes before the body is sent. */
/**
 * POST an oversized body and return the status. The server answers 413 from the
 * Content-Length header alone, so only a first chunk is sent before waiting for the
 * reply: sending it all races the server closing the socket (the reset can swallow
 * the reply on the client side). Fails instead of hanging when no reply comes.
 */
function postStatus(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(rest);
      clearTimeout(give);
      f();
    };
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      finish(() => resolve(res.statusCode ?? 0));
      req.destroy();
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish(() => reject(err)));
    req.write(body.slice(0, 1024));
    // a server that waits for the body gets it after a while
    const rest = setTimeout(() => req.end(body.slice(1024)), 5000);
    const give = setTimeout(() => finish(() => reject(new Error('no reply to the oversized POST within 60 s'))), 60_000);
  });
}

describe('daemon with real microVMs', { timeout: 15 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    // snapshots off here: this file covers the cold and warm paths (snapshots.test.ts covers restore)
    d = await startDaemon({ snapshots: { enabled: false } });
  });
  after(() => stopAndCheck(d));

  test('cold then warm, with an activation record for each', async () => {
    await d.deploy('hello', 'hello.js');
    const a = await d.client.invoke('hello', { name: 'cell' });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.deepEqual(a.body.result, { greeting: 'Hello, cell!' });
    const act = a.body.activation!;
    assert.equal(act.startPath, 'cold');
    assert.match(act.accelerator ?? '', /^(kvm|tcg)$/);
    for (const s of ['received', 'queued', 'vmmSpawned', 'vmBooted', 'agentReady', 'initDone', 'instanceAssigned', 'runStarted', 'runFinished', 'responseSent']) {
      assert.ok(act.timings[s] !== undefined, `cold activation has stage ${s}`);
    }
    const b = await d.client.invoke('hello', { name: 'again' });
    assert.equal(b.status, 200);
    assert.equal(b.body.activation!.startPath, 'warm');
    assert.equal(b.body.activation!.vmId, act.vmId);
    // warm: no boot, no agent start, no init on its path (not a timing ratio: the machine may be loaded)
    for (const s of ['vmmSpawned', 'vmBooted', 'agentReady', 'initDone']) assert.equal(b.body.activation!.timings[s], undefined, `warm activation has no stage ${s}`);
    const stored = await d.client.call<{ id: string; startPath: string }>('GET', `/v1/activations/${act.id}`);
    assert.equal(stored.startPath, 'cold');
    const list = await d.client.call<{ activations: unknown[] }>('GET', '/v1/activations?limit=5');
    assert.ok(list.activations.length >= 2);
  });

  test('a function that throws: 502 with its message and its logs', async () => {
    await d.deploy('throws', 'throws.js');
    const r = await d.client.invoke('throws', { n: 7 });
    assert.equal(r.status, 502);
    assert.equal(r.body.error?.code, 'function_error');
    assert.match(r.body.error.message, /boom: 7/);
    assert.deepEqual(r.body.activation!.logs.filter((l) => l.includes('about to fail')).length, 1);
    // the VM survives an application error
    const again = await d.client.invoke('throws', { n: 8 });
    assert.equal(again.body.activation!.startPath, 'warm');
  });

  test('a function that never returns: 504 and its VM is gone', async () => {
    await d.deploy('hang', 'hang.js', { timeoutMs: 2000 });
    const r = await d.client.invoke('hang', {});
    assert.equal(r.status, 504);
    assert.equal(r.body.error?.code, 'timeout');
    const vmId = r.body.activation!.vmId!;
    await until('the timed-out VM to leave the pool', async () => {
      const st = await d.client.call<{ pool: { instances: Array<{ id: string }> } }>('GET', '/v1/status');
      return st.pool.instances.some((i) => i.id === vmId) ? undefined : true;
    }, 60_000);
    assert.deepEqual(leftovers(d).filter((l) => l.includes(vmId)), []);
  });

  test('a function that exits the process during a run: 502 function_crashed, and the next call works', async () => {
    await d.deploy('exits', 'exits.js');
    const r = await d.client.invoke('exits', {});
    assert.equal(r.status, 502);
    assert.equal(r.body.error?.code, 'function_crashed');
    await d.deploy('exits', 'hello.js');
    const ok = await d.client.invoke('exits', { name: 'after exit' });
    assert.equal(ok.status, 200);
  });

  test('unicode in and out, a result just under the 1 MiB limit, and one over it', async () => {
    // a generous timeout: on a loaded 2-core host TCG moves a 1 MiB result slowly
    await d.deploy('big', 'big.js', { timeoutMs: 120_000 });
    const text = 'héllo 🌍 — 你好 — مرحبا — \u{1F9EA}';
    const r = await d.client.invoke('big', { text, kib: 1000 });
    assert.equal(r.status, 200);
    const res = r.body.result as { echo: string; blob: string; len: number };
    assert.equal(res.echo, text);
    assert.equal(res.len, [...text].length);
    assert.equal(res.blob.length, 1000 * 1024);
    // OpenWhisk refuses results over its limit (functionLimits.maxResultBytes, 1 MiB by default)
    const over = await d.client.invoke('big', { text, kib: 2048 });
    assert.equal(over.status, 502);
    assert.equal(over.body.error?.code, 'result_too_large');
    assert.match(over.body.error.message, /maxResultBytes/);
    assert.equal(over.body.activation!.status, 'result_too_large');
  });

  test('OpenWhisk semantics: {error} is an application error; init bounded by the timeout; exit in init is an init failure', async () => {
    await d.deploy('errres', 'error-result.js');
    const e = await d.client.invoke('errres', { x: 42 });
    assert.equal(e.status, 502);
    assert.equal(e.body.error?.code, 'function_error');
    assert.equal(e.body.error.message, 'bad input: 42');
    assert.deepEqual(e.body.result, { error: 'bad input: 42' });
    assert.equal(e.body.activation!.status, 'application_error');

    await d.deploy('exitinit', 'exits-in-init.js');
    const x = await d.client.invoke('exitinit', {});
    assert.equal(x.status, 502);
    assert.equal(x.body.error?.code, 'init_error', JSON.stringify(x.body.error));
    assert.match(x.body.error.message, /status 7/);
    assert.equal(x.body.activation!.status, 'init_error');

    await d.deploy('hanginit', 'hangs-in-init.js', { timeoutMs: 3000 });
    const t0 = Date.now();
    const h = await d.client.invoke('hanginit', {});
    assert.equal(h.status, 504, JSON.stringify(h.body.error));
    assert.equal(h.body.error?.code, 'timeout');
    assert.match(h.body.error.message, /init/);
    // boot (seconds under TCG) + its own 3 s, not a fixed 10 s init limit
    assert.ok(Date.now() - t0 < 60_000);
  });

  test('two functions at once', async () => {
    await d.deploy('hello2', 'hello.js');
    const [a, b] = await Promise.all([d.client.invoke('hello', { name: 'a' }), d.client.invoke('hello2', { name: 'b' })]);
    assert.deepEqual(a.body.result, { greeting: 'Hello, a!' });
    assert.deepEqual(b.body.result, { greeting: 'Hello, b!' });
  });

  test('bad input gets a clear error naming the field', async () => {
    const notObject = await d.client.raw('POST', '/v1/functions/hello/invoke', [1, 2]);
    assert.equal(notObject.status, 400);
    const unknownFn = await d.client.invoke('no-such-fn', {});
    assert.equal(unknownFn.status, 404);
    const badField = await d.client.raw('PUT', '/v1/functions/x', { source: 'exports.main=()=>({})', memoryMiB: 'lots' });
    assert.equal(badField.status, 400);
    assert.equal((badField.body as { error: { field: string } }).error.field, 'memoryMiB');
    const extra = await d.client.raw('PUT', '/v1/functions/x', { source: 'x', colour: 'red' });
    assert.equal(extra.status, 400);
    assert.equal((extra.body as { error: { field: string } }).error.field, 'colour');
    const tooSmall = await d.client.raw('PUT', '/v1/functions/x', { source: 'x', memoryMiB: 16 });
    assert.equal((tooSmall.body as { error: { field: string } }).error.field, 'memoryMiB');
    assert.equal(await postStatus(d.url + '/v1/functions/hello/invoke', JSON.stringify({ blob: 'x'.repeat(7 * 1024 * 1024) })), 413);
    const badJson = await d.client.raw('POST', '/v1/functions/hello/invoke', '{"oops":');
    assert.equal(badJson.status, 400);
  });

  test('a deleted function answers 404 and its instances stop', async () => {
    await d.deploy('doomed', 'hello.js');
    assert.equal((await d.client.invoke('doomed', {})).status, 200);
    const del = await d.client.raw('DELETE', '/v1/functions/doomed');
    assert.equal(del.status, 204);
    assert.equal((await d.client.invoke('doomed', {})).status, 404);
    assert.equal((await d.client.raw('DELETE', '/v1/functions/doomed')).status, 404);
    await until("the deleted function's instances to stop", async () => {
      const st = await d.client.call<{ pool: { instances: Array<{ fn: string }> } }>('GET', '/v1/status');
      return st.pool.instances.some((i) => i.fn === 'doomed') ? undefined : true;
    }, 60_000);
  });
});

describe('daemon lifecycle', { timeout: 10 * 60_000 }, () => {
  test('functions survive a restart; a SIGKILLed daemon leaves no VM running', async () => {
    let d = await startDaemon({ snapshots: { enabled: false } });
    try {
      await d.deploy('persist', 'hello.js');
      assert.equal((await d.client.invoke('persist', { name: 'one' })).status, 200);
      await d.stop('SIGKILL');
      // the kernel delivers the VMM's parent-death signal: every VMM ends (waited for, bounded)
      const dead = d;
      await until('no VMM to outlive the killed daemon', async () => (leftovers(dead).some((l) => l.startsWith('process')) ? undefined : true), 30_000).catch(() => undefined);
      assert.deepEqual(leftovers(d).filter((l) => l.startsWith('process')), [], 'no VMM outlives a killed daemon');
      d = await startDaemon({ snapshots: { enabled: false } }, d.dir);
      const fns = await d.client.call<{ functions: Array<{ name: string }> }>('GET', '/v1/functions');
      assert.deepEqual(fns.functions.map((f) => f.name), ['persist']);
      const r = await d.client.invoke('persist', { name: 'two' });
      assert.deepEqual(r.body.result, { greeting: 'Hello, two!' });
      await d.stop();
      assert.deepEqual(leftovers(d), []);
    } finally {
      cleanup(d);
    }
  });
});
