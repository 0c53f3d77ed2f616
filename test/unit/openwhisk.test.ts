// The OpenWhisk Source on the real fastify app, with stand-ins for the actors
// behind it (the e2e test drives the same routes with real VMs and the official
// openwhisk client): shapes, status codes, auth, parameters, the status mapping.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { zipSync, strToU8 } from 'fflate';
import { STAGES, type ActivationRecord, type ActivationStatus } from '../../src/perf/activation.js';
import { actionInput } from '../../src/sources/openwhisk/actions.js';
import { checkAuth } from '../../src/sources/openwhisk/auth.js';
import { toOpenWhiskActivation } from '../../src/sources/openwhisk/records.js';
import { blockingHttpStatus, openWhiskStatus } from '../../src/sources/openwhisk/status.js';
import { AUTH, basic, HELLO, node, TOKEN } from '../helpers/openwhisk-node.js';

void test('the status mapping covers every FaaSCell status and picks the HTTP status', () => {
  const at = (status: ActivationStatus) => openWhiskStatus({ status });
  assert.deepEqual(at('success'), { status: 'success', statusCode: 0 });
  assert.deepEqual(at('application_error'), { status: 'application error', statusCode: 1 });
  assert.deepEqual(at('init_error'), { status: 'action developer error', statusCode: 2 });
  assert.deepEqual(at('timeout'), { status: 'action developer error', statusCode: 2 });
  // a VM the action ended is the action's failure; one that never came up is the platform's
  assert.deepEqual(at('crashed'), { status: 'action developer error', statusCode: 2 });
  assert.deepEqual(at('result_too_large'), { status: 'action developer error', statusCode: 2 });
  assert.deepEqual(at('vm_error'), { status: 'whisk internal error', statusCode: 3 });
  assert.deepEqual(at('rejected'), { status: 'whisk internal error', statusCode: 3 });
  assert.deepEqual(at('internal_error'), { status: 'whisk internal error', statusCode: 3 });
  assert.deepEqual([0, 1, 2, 3].map((c) => blockingHttpStatus({ status: 'success', statusCode: c as 0 })), [200, 502, 502, 500]);
});

void test('records: start, end, duration, waitTime and initTime from the stages; FaaSCell timings as annotations', () => {
  const rec: ActivationRecord = { id: 'abc', function: 'f', functionVersion: 3, runtime: 'qemu', startPath: 'cold', status: 'success', timestamps: { received: 1000, agentReady: 4000, initDone: 4300, runStarted: 4310, runFinished: 4400, responseSent: 4401 }, timings: {}, totalMs: 3401, runMs: 88, logs: ['x'] };
  const a = toOpenWhiskActivation(rec, { namespace: 'guest', subject: 'me', kind: 'nodejs:20', result: { ok: 1 }, limits: { timeout: 60000, memory: 256 } });
  assert.equal(a.start, 4010);
  assert.equal(a.end, 4400);
  assert.equal(a.duration, 390);
  assert.equal(a.version, '0.0.3');
  assert.deepEqual(a.response, { status: 'success', statusCode: 0, success: true, result: { ok: 1 } });
  const ann = Object.fromEntries(a.annotations.map((k) => [k.key, k.value]));
  assert.equal(ann.initTime, 300);
  assert.equal(ann.waitTime, 3010);
  assert.equal(ann.startPath, 'cold');
  assert.equal(ann.kind, 'nodejs:20');
  assert.deepEqual(ann.limits, { timeout: 60000, memory: 256, logs: 10, concurrency: 1 });
  assert.equal(ann.path, 'guest/f');
  assert.equal(ann.runMs, 88);
  // a warm run has no initTime; a time-out is marked and its result is the error
  const warm = toOpenWhiskActivation({ ...rec, startPath: 'warm', status: 'timeout', error: { code: 'timeout', message: 'ran past 1000 ms' } }, { namespace: 'guest', subject: 'me', kind: 'nodejs:20' });
  const wann = Object.fromEntries(warm.annotations.map((k) => [k.key, k.value]));
  assert.equal(wann.initTime, undefined);
  assert.equal(wann.timeout, true);
  assert.deepEqual(warm.response, { status: 'action developer error', statusCode: 2, success: false, result: { error: 'ran past 1000 ms' } });
  assert.ok(STAGES.length > 0);
});

void test('credentials: Basic uuid:key with key = token, Bearer token, anything without a token', () => {
  assert.deepEqual(checkAuth(basic('u1', TOKEN), TOKEN, 'guest'), { ok: true, subject: 'u1' });
  assert.equal(checkAuth(basic('u1', 'wrong'), TOKEN, 'guest').ok, false);
  assert.equal(checkAuth(undefined, TOKEN, 'guest').ok, false);
  assert.equal(checkAuth('Basic !!!', TOKEN, 'guest').ok, false);
  assert.equal(checkAuth(`Basic ${Buffer.from('nocolon').toString('base64')}`, undefined, 'guest').ok, false);
  assert.deepEqual(checkAuth(`Bearer ${TOKEN}`, TOKEN, 'guest'), { ok: true, subject: 'guest' });
  assert.equal(checkAuth('Bearer nope', TOKEN, 'guest').ok, false);
  assert.deepEqual(checkAuth(undefined, undefined, 'guest'), { ok: true, subject: 'guest' });
  assert.deepEqual(checkAuth(basic('anyone', 'anything'), undefined, 'guest'), { ok: true, subject: 'anyone' });
});

void test('action code: JS text, base64 archives (binary or sniffed), update keeps what is left out', () => {
  const zip = Buffer.from(zipSync({ 'package.json': strToU8('{"main":"a.js"}'), 'a.js': strToU8('exports.main = () => ({})') }));
  const z = actionInput({ exec: { kind: 'nodejs:20', code: zip.toString('base64') } });
  assert.equal(z.codeKind, 'zip');
  assert.equal(actionInput({ exec: { kind: 'nodejs:20', code: zip.toString('base64'), binary: true } }).codeKind, 'zip');
  assert.throws(() => actionInput({ exec: { kind: 'nodejs:20', code: Buffer.from('plain').toString('base64'), binary: true } }), /exec\.code: binary code must be/);
  assert.equal(actionInput({ exec: { kind: 'nodejs', code: 'abcd' } }).codeKind, 'js'); // valid base64, but no archive: text
  assert.throws(() => actionInput({ exec: { kind: 'python:3', code: 'def main(a): return a' } }), /exec\.kind: the runtime 'python:3' is not supported/);
  assert.throws(() => actionInput({}), /exec: required/);
  assert.throws(() => actionInput({ exec: { kind: 'nodejs:20', code: 'x' }, limits: { concurrency: 5 } }), /limits\.concurrency/);
});

void test('actions: create, conflict, update, get with and without code, list, delete; errors name OpenWhisk fields', async () => {
  const { app } = await node(TOKEN);
  const url = '/api/v1/namespaces/_/actions';
  let r = await app.inject({ method: 'PUT', url: `${url}/hello`, headers: AUTH, payload: { ...HELLO, parameters: [{ key: 'name', value: 'default' }, { key: 'greeting', value: 'hi' }], annotations: [{ key: 'description', value: 'greets' }], limits: { timeout: 5000, memory: 512 } } });
  assert.equal(r.statusCode, 200, r.body);
  const doc = r.json();
  assert.equal(doc.name, 'hello');
  assert.equal(doc.namespace, 'guest');
  assert.match(doc.exec.kind, /^nodejs:\d+$/);
  assert.equal(doc.exec.binary, false);
  assert.deepEqual(doc.limits, { timeout: 5000, memory: 512, logs: 10, concurrency: 1, instances: 4 });
  assert.deepEqual(doc.parameters, [{ key: 'name', value: 'default' }, { key: 'greeting', value: 'hi' }]);
  assert.deepEqual(doc.annotations, [{ key: 'description', value: 'greets' }, { key: 'exec', value: 'nodejs' }]);
  r = await app.inject({ method: 'PUT', url: `${url}/hello`, headers: AUTH, payload: HELLO });
  assert.equal(r.statusCode, 409);
  assert.deepEqual(Object.keys(r.json()).sort(), ['code', 'error']);
  // an update with only limits keeps code, parameters and annotations
  r = await app.inject({ method: 'PUT', url: `${url}/hello?overwrite=true`, headers: AUTH, payload: { limits: { memory: 256 } } });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.json().version, '0.0.2');
  assert.equal(r.json().limits.memory, 256);
  assert.equal(r.json().parameters.length, 2);
  r = await app.inject({ method: 'GET', url: `${url}/hello`, headers: AUTH });
  assert.equal(r.json().exec.code, HELLO.exec.code);
  r = await app.inject({ method: 'GET', url: `${url}/hello?code=false`, headers: AUTH });
  assert.equal(r.json().exec.code, undefined);
  for (const n of ['a1', 'a2', 'a3']) await app.inject({ method: 'PUT', url: `${url}/${n}`, headers: AUTH, payload: HELLO });
  r = await app.inject({ method: 'GET', url: `${url}?limit=2&skip=1`, headers: AUTH });
  assert.deepEqual(r.json().map((a: { name: string }) => a.name), ['a2', 'a3']);
  r = await app.inject({ method: 'GET', url: `${url}?count=true`, headers: AUTH });
  assert.deepEqual(r.json(), { actions: 4 });
  // bad bodies: 400 naming the field, in OpenWhisk's error shape
  const bad: [unknown, RegExp][] = [
    [{ exec: { kind: 'python:3', code: 'x' } }, /^exec\.kind: the runtime 'python:3'/],
    [{ exec: { code: 'x' } }, /^exec\.kind: must have required property 'kind'/],
    [{ exec: { kind: 'nodejs:20', code: 'x' }, limits: { memory: 64 } }, /^limits\.memory: must be an integer from 128/],
    [{ exec: { kind: 'nodejs:20', code: 'x' }, limits: { memory: 'lots' } }, /^limits\.memory: must be integer/],
    [{ exec: { kind: 'nodejs:20', code: 'x' }, limits: { timeout: 10 } }, /^limits\.timeout: must be an integer from 100/],
    [{ exec: { kind: 'nodejs:20', code: 'x', main: 'not-an-id' } }, /^exec\.main: must be a JavaScript identifier/],
    [{ exec: { kind: 'nodejs:20' } }, /^exec\.code: the action's code is required/],
    [{ parameters: [{ value: 1 }], exec: { kind: 'nodejs:20', code: 'x' } }, /^parameters\.0\.key: must have required property 'key'/],
    [{}, /^exec: required/],
  ];
  for (const [payload, re] of bad) {
    r = await app.inject({ method: 'PUT', url: `${url}/newone`, headers: AUTH, payload: payload as object });
    assert.equal(r.statusCode, 400, JSON.stringify(payload));
    assert.match(r.json().error, re);
  }
  r = await app.inject({ method: 'PUT', url: `${url}/bad name!`, headers: AUTH, payload: HELLO });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /^name: must match/);
  r = await app.inject({ method: 'GET', url: `${url}/nope`, headers: AUTH });
  assert.equal(r.statusCode, 404);
  assert.equal(r.json().error, 'The requested resource does not exist.');
  r = await app.inject({ method: 'PUT', url: `${url}/pkg/act`, headers: AUTH, payload: HELLO });
  assert.equal(r.statusCode, 400);
  r = await app.inject({ method: 'DELETE', url: `${url}/a1`, headers: AUTH });
  assert.equal(r.statusCode, 200);
  assert.equal(r.json().name, 'a1');
  assert.equal((await app.inject({ method: 'GET', url: `${url}/a1`, headers: AUTH })).statusCode, 404);
  await app.close();
});

void test('auth and namespace: 401 in OpenWhisk shape, 403 for another namespace; the native API keeps its bearer check', async () => {
  const { app } = await node(TOKEN);
  let r = await app.inject({ method: 'GET', url: '/api/v1/namespaces/_/actions' });
  assert.equal(r.statusCode, 401);
  assert.match(r.json().error, /^The supplied authentication is invalid/);
  r = await app.inject({ method: 'GET', url: '/api/v1/namespaces/_/actions', headers: { authorization: basic('u', 'wrong-key') } });
  assert.equal(r.statusCode, 401);
  r = await app.inject({ method: 'GET', url: '/api/v1/namespaces/_/actions', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.statusCode, 200);
  r = await app.inject({ method: 'GET', url: '/api/v1/namespaces/guest/actions', headers: AUTH });
  assert.equal(r.statusCode, 200);
  r = await app.inject({ method: 'GET', url: '/api/v1/namespaces/someone.else/actions', headers: AUTH });
  assert.equal(r.statusCode, 403);
  r = await app.inject({ method: 'GET', url: '/api/v1/namespaces', headers: AUTH });
  assert.deepEqual(r.json(), ['guest']);
  r = await app.inject({ method: 'GET', url: '/api/v1/namespaces/_/triggers', headers: AUTH });
  assert.deepEqual(r.json(), []);
  r = await app.inject({ method: 'GET', url: '/api/v1/namespaces/_/feeds/x', headers: AUTH });
  assert.equal(r.statusCode, 404);
  assert.match(r.json().error, /does not exist/);
  // Basic credentials do not open the native API
  r = await app.inject({ method: 'GET', url: '/v1/functions', headers: AUTH });
  assert.equal(r.statusCode, 401);
  await app.close();
  const open = await node();
  r = await open.app.inject({ method: 'GET', url: '/api/v1/namespaces/_/actions' });
  assert.equal(r.statusCode, 200);
  await open.app.close();
});

void test('invocations: blocking, result only, errors, non-blocking with its record later, parameters merged', async () => {
  const { app, seen } = await node(TOKEN);
  const act = '/api/v1/namespaces/_/actions';
  for (const n of ['fails', 'slow', 'busy']) await app.inject({ method: 'PUT', url: `${act}/${n}`, headers: AUTH, payload: HELLO });
  await app.inject({ method: 'PUT', url: `${act}/hello`, headers: AUTH, payload: { ...HELLO, parameters: [{ key: 'name', value: 'default' }, { key: 'greeting', value: 'hi' }] } });

  let r = await app.inject({ method: 'POST', url: `${act}/hello?blocking=true`, headers: AUTH, payload: { name: 'John' } });
  assert.equal(r.statusCode, 200, r.body);
  const rec = r.json();
  assert.equal(r.headers['x-openwhisk-activation-id'], rec.activationId);
  assert.match(rec.activationId, /^[0-9a-f]{32}$/);
  assert.equal(rec.subject, '23bc46b1-71f6-4ed5-8c54-816aa4f8c502');
  assert.deepEqual(rec.response, { status: 'success', statusCode: 0, success: true, result: { payload: 'Hello John', greeting: 'hi' } });
  assert.deepEqual(seen.at(-1), { name: 'John', greeting: 'hi' }, 'own parameters over the defaults');
  assert.deepEqual(rec.logs, ['hello from the guest']);
  assert.ok(rec.duration >= 0 && rec.end >= rec.start);

  r = await app.inject({ method: 'POST', url: `${act}/hello?blocking=true&result=true`, headers: AUTH, payload: {} });
  assert.deepEqual(r.json(), { payload: 'Hello default', greeting: 'hi' });
  // no body at all is no parameters
  r = await app.inject({ method: 'POST', url: `${act}/hello?blocking=true&result=true`, headers: { ...AUTH, 'content-type': 'application/json' } });
  assert.equal(r.statusCode, 200, r.body);
  r = await app.inject({ method: 'POST', url: `${act}/hello?blocking=true`, headers: AUTH, payload: [1, 2] });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /^body: the parameters must be a JSON object/);

  r = await app.inject({ method: 'POST', url: `${act}/fails?blocking=true`, headers: AUTH, payload: {} });
  assert.equal(r.statusCode, 502);
  assert.deepEqual(r.json().response, { status: 'application error', statusCode: 1, success: false, result: { error: 'boom' } });
  r = await app.inject({ method: 'POST', url: `${act}/busy?blocking=true`, headers: AUTH, payload: {} });
  assert.equal(r.statusCode, 429);
  assert.match(r.json().error, /queue of busy is full/);
  r = await app.inject({ method: 'POST', url: `${act}/nope?blocking=true`, headers: AUTH, payload: {} });
  assert.equal(r.statusCode, 404);

  // past the blocking wait (100 ms here): 202 with the id, as OpenWhisk answers
  r = await app.inject({ method: 'POST', url: `${act}/slow?blocking=true`, headers: AUTH, payload: {} });
  assert.equal(r.statusCode, 202);
  const slowId = r.json().activationId as string;
  // non-blocking: at once, then the record
  r = await app.inject({ method: 'POST', url: `${act}/hello`, headers: AUTH, payload: { name: 'later' } });
  assert.equal(r.statusCode, 202);
  const id = r.json().activationId as string;
  assert.deepEqual(r.json(), { activationId: id });
  const acts = '/api/v1/namespaces/_/activations';
  r = await app.inject({ method: 'GET', url: `${acts}/${id}`, headers: AUTH });
  assert.equal(r.statusCode, 200);
  assert.equal(r.json().response.result.payload, 'Hello later');
  r = await app.inject({ method: 'GET', url: `${acts}/${id}/result`, headers: AUTH });
  assert.deepEqual(r.json(), { status: 'success', statusCode: 0, success: true, result: { payload: 'Hello later', greeting: 'hi' } });
  r = await app.inject({ method: 'GET', url: `${acts}/${id}/logs`, headers: AUTH });
  assert.deepEqual(r.json(), { logs: ['hello from the guest'] });
  assert.equal((await app.inject({ method: 'GET', url: `${acts}/${slowId}`, headers: AUTH })).statusCode, 404, 'not finished yet');
  // the slow one finishes 300 ms after it started: ask until it is recorded (bounded), not after a guess
  for (let i = 0; i < 300; i++) {
    r = await app.inject({ method: 'GET', url: `${acts}/${slowId}/result`, headers: AUTH });
    if (r.statusCode !== 404) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.deepEqual(r.json().result, { done: true });

  // listing: newest first, summaries unless docs=true, by name, counted
  r = await app.inject({ method: 'GET', url: `${acts}?limit=2`, headers: AUTH });
  const list = r.json<Record<string, unknown>[]>();
  assert.equal(list.length, 2);
  assert.equal(list[0]!.activationId, slowId);
  assert.equal(list[0]!.statusCode, 0);
  assert.equal(list[0]!.response, undefined);
  r = await app.inject({ method: 'GET', url: `${acts}?name=hello&docs=true&limit=50`, headers: AUTH });
  assert.ok(r.json().every((a: { name: string; response: unknown }) => a.name === 'hello' && a.response));
  r = await app.inject({ method: 'GET', url: `${acts}?name=fails&count=true`, headers: AUTH });
  assert.deepEqual(r.json(), { activations: 1 });
  r = await app.inject({ method: 'GET', url: `${acts}?limit=500`, headers: AUTH });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /^querystring\.limit|^limit/);
  await app.close();
});

void test('final parameters cannot be overridden', async () => {
  const { app } = await node();
  const act = '/api/v1/namespaces/_/actions';
  await app.inject({ method: 'PUT', url: `${act}/hello`, payload: { ...HELLO, parameters: [{ key: 'name', value: 'fixed' }], annotations: [{ key: 'final', value: true }] } });
  let r = await app.inject({ method: 'POST', url: `${act}/hello?blocking=true&result=true`, payload: { name: 'other' } });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /not allowed/);
  r = await app.inject({ method: 'POST', url: `${act}/hello?blocking=true&result=true`, payload: { x: 1 } });
  assert.equal(r.json().payload, 'Hello fixed');
  await app.close();
});
