// OpenWhisk's official JavaScript client (the `openwhisk` npm package) drives the
// real daemon and real VMs through the OpenWhisk API: create, invoke blocking and
// non-blocking, result, logs, list, update, delete, and the error paths.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import openwhisk from 'openwhisk';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { failure as rejection, type OwError } from '../support/openwhisk.js';

const TOKEN = 'e2e-openwhisk-token-0123456789';
const UUID = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502';

const HELLO = `function main(params) {
  console.log('greeting ' + params.name);
  return { payload: 'Hello ' + params.name + ' ' + params.punctuation };
}`;
const THROWS = `function main() { throw new Error('boom from the action'); }`;

type Body = { error?: string; response?: { status?: string; statusCode?: number; result?: { error?: string } } };
const failure = (p: Promise<unknown>): Promise<OwError<Body>> => rejection<Body>(p);

describe('OpenWhisk API, driven by the openwhisk npm client', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  let ow: ReturnType<typeof openwhisk>;
  before(async () => {
    d = await startDaemon({ api: { port: 0, token: TOKEN } });
    ow = openwhisk({ apihost: d.url, api_key: `${UUID}:${TOKEN}` });
  });
  after(() => stopAndCheck(d));

  test('create, invoke blocking and non-blocking, result and logs, list, update, delete', async () => {
    const created = await ow.actions.create({ name: 'hello', action: HELLO, kind: 'nodejs:default', params: { name: 'default', punctuation: '!' }, limits: { timeout: 30_000, memory: 256 } });
    assert.equal(created.name, 'hello');
    assert.match(String(created.exec.kind), /^nodejs:\d+$/);

    // blocking: the whole record, own parameters over the defaults
    const a = (await ow.actions.invoke({ name: 'hello', blocking: true, params: { name: 'John' } })) as unknown as Record<string, unknown> & { response: { success: boolean; status: string; result: { payload: string } }; annotations: { key: string; value: unknown }[]; logs: string[] };
    assert.equal(a.response.success, true);
    assert.equal(a.response.status, 'success');
    assert.equal(a.response.result.payload, 'Hello John !');
    assert.equal(a.subject, UUID);
    assert.ok(a.logs.some((l) => l.includes('greeting John')), JSON.stringify(a.logs));
    const ann = Object.fromEntries(a.annotations.map((k) => [k.key, k.value]));
    assert.equal(ann.startPath, 'cold');
    assert.ok(typeof ann.initTime === 'number' && typeof ann.waitTime === 'number');
    assert.deepEqual(ann.limits, { timeout: 30_000, memory: 256, logs: 10, concurrency: 1 });

    // blocking with result=true: the result only
    const r = await ow.actions.invoke({ name: 'hello', blocking: true, result: true });
    assert.deepEqual(r, { payload: 'Hello default !' });

    // non-blocking: an id at once, the record once the run is over
    const { activationId } = await ow.actions.invoke({ name: 'hello', params: { name: 'later' } });
    assert.match(activationId, /^[0-9a-f]{32}$/);
    let rec: { response: { result: { payload: string } } } | undefined;
    for (let i = 0; i < 120 && !rec; i++) {
      try {
        rec = (await ow.activations.get({ name: activationId })) as unknown as typeof rec;
      } catch (err) {
        if ((err as OwError<Body>).statusCode !== 404) throw err;
        await sleep(500);
      }
    }
    assert.ok(rec, 'the non-blocking activation was recorded within 60 s');
    assert.equal(rec.response.result.payload, 'Hello later !');
    const res = (await ow.activations.result({ name: activationId })) as unknown as { success: boolean; result: { payload: string } };
    assert.equal(res.success, true);
    assert.equal(res.result.payload, 'Hello later !');
    const logs = (await ow.activations.logs({ name: activationId })) as unknown as { logs: string[] };
    assert.ok(logs.logs.some((l) => l.includes('greeting later')));

    const list = await ow.actions.list();
    assert.deepEqual(list.map((x) => x.name), ['hello']);
    const acts = await ow.activations.list({ name: 'hello', limit: 10 });
    assert.equal(acts.length, 3);
    assert.ok(acts.every((x) => x.name === 'hello'));

    // update without code keeps the code and the parameters
    const upd = await ow.actions.update({ name: 'hello', limits: { memory: 512 } });
    assert.equal(upd.limits?.memory, 512);
    assert.deepEqual(await ow.actions.invoke({ name: 'hello', blocking: true, result: true, params: { name: 'again' } }), { payload: 'Hello again !' });

    await ow.actions.delete({ name: 'hello' });
    assert.equal((await failure(ow.actions.get({ name: 'hello' }))).statusCode, 404);
  });

  test('an action that throws is an application error (HTTP 502, statusCode 1)', async () => {
    await ow.actions.create({ name: 'throws', action: THROWS });
    const e = await failure(ow.actions.invoke({ name: 'throws', blocking: true }));
    assert.equal(e.statusCode, 502);
    assert.equal(e.error?.response?.status, 'application error');
    assert.equal(e.error?.response?.statusCode, 1);
    assert.match(String(e.error?.response?.result?.error), /boom from the action/);
  });

  test('error paths: bad credentials 401, unknown action 404, bad bodies 400 naming the field', async () => {
    const stranger = openwhisk({ apihost: d.url, api_key: `${UUID}:not-the-token` });
    const e401 = await failure(stranger.actions.list());
    assert.equal(e401.statusCode, 401);
    assert.match(String(e401.error?.error), /authentication is invalid/);

    const e404 = await failure(ow.actions.invoke({ name: 'no-such-action', blocking: true }));
    assert.equal(e404.statusCode, 404);

    const badKind = await failure(ow.actions.create({ name: 'py', action: 'def main(a): return a', kind: 'python:3' }));
    assert.equal(badKind.statusCode, 400);
    assert.match(String(badKind.error?.error), /^exec\.kind: /);

    const badMemory = await failure(ow.actions.create({ name: 'big', action: HELLO, limits: { memory: 1 } }));
    assert.equal(badMemory.statusCode, 400);
    assert.match(String(badMemory.error?.error), /^limits\.memory: /);

    const badParams = await failure(ow.actions.invoke({ name: 'throws', blocking: true, params: [1, 2] }));
    assert.equal(badParams.statusCode, 400);
    assert.match(String(badParams.error?.error), /^body: /);
  });
});
