// OpenWhisk beyond actions (issue 22), on the real fastify app and SQLite with a
// stand-in Dispatcher (test/helpers/openwhisk-node.ts): parameter merging
// (package < binding < action < invocation), sequences (chaining, error
// short-circuit, records, creation checks), packages and bindings, triggers and
// rules, the alarm feed's lifecycle calls, web actions, the small info routes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FunctionDef } from '../../src/registry/registry.js';
import type { Entity, PackageDoc, SequenceDoc } from '../../src/sources/openwhisk/entities.js';
import { localActionName, parseQualified } from '../../src/sources/openwhisk/names.js';
import { checkSequence, finalClash, mergeParams, resolveAction, type Lookups } from '../../src/sources/openwhisk/resolve.js';
import { AUTH, basic, HELLO, node, TOKEN } from '../helpers/openwhisk-node.js';

const NS = '/api/v1/namespaces/_';
const kv = (o: Record<string, unknown>) => Object.entries(o).map(([key, value]) => ({ key, value }));

/** Lookups over plain maps (resolve.ts is pure). */
function lookups(fns: Record<string, Record<string, unknown>>, pkgs: Record<string, PackageDoc>, seqs: Record<string, string[]> = {}): Lookups {
  const ent = <K extends 'package' | 'sequence'>(kind: K, name: string, doc: unknown): Entity<K> => ({ kind, name, doc: doc as Entity<K>['doc'], version: 1, updatedAt: 0 });
  return {
    namespace: 'guest',
    fn: (n) => (fns[n] ? ({ name: n, parameters: fns[n], annotations: {} } as unknown as FunctionDef) : undefined),
    pkg: (n) => (pkgs[n] ? ent('package', n, pkgs[n]) : undefined),
    sequence: (n) => (seqs[n] ? ent('sequence', n, { components: seqs[n], parameters: {}, annotations: {}, limits: { timeout: 1, memory: 1 } } satisfies SequenceDoc) : undefined),
  };
}

void test('names: every OpenWhisk form, FaaSCell names, another namespace refused', () => {
  assert.deepEqual(parseQualified('/guest/pkg/a', 'f'), { namespace: 'guest', pkg: 'pkg', name: 'a' });
  assert.deepEqual(parseQualified('/_/a', 'f'), { namespace: '_', name: 'a' });
  assert.deepEqual(parseQualified('pkg/a', 'f'), { pkg: 'pkg', name: 'a' });
  assert.deepEqual(parseQualified('guest/pkg/a', 'f'), { namespace: 'guest', pkg: 'pkg', name: 'a' });
  assert.throws(() => parseQualified('/a/b/c/d', 'f'), /^Error: f: not an entity name|f: not an entity name/);
  assert.equal(localActionName('/_/pkg/a', 'guest', 'x'), 'pkg/a');
  assert.equal(localActionName('/guest/a', 'guest', 'x'), 'a');
  assert.throws(() => localActionName('/other/a', 'guest', 'exec.components.0'), /^FaasError: exec\.components\.0: '\/other\/a' is in namespace 'other'|exec\.components\.0/);
});

void test('parameters: package < binding < action < invocation; final protects inherited defaults too', () => {
  const l = lookups({ 'tools/hello': { a: 'action', c: 'action' } }, { tools: { parameters: { a: 'pkg', b: 'pkg', p: 'pkg' }, annotations: {}, publish: false }, mine: { binding: { namespace: 'guest', name: 'tools' }, parameters: { b: 'binding', c: 'binding' }, annotations: {}, publish: false } });
  const direct = resolveAction('tools/hello', l)!;
  assert.equal(direct.name, 'tools/hello');
  assert.deepEqual(mergeParams(direct.defaults, { p: 'own' }), { a: 'action', b: 'pkg', c: 'action', p: 'own' });
  const bound = resolveAction('mine/hello', l)!;
  assert.equal(bound.name, 'tools/hello', 'a binding runs the bound package\'s action');
  assert.deepEqual(bound.defaults, { a: 'action', b: 'binding', c: 'action', p: 'pkg' });
  assert.equal(resolveAction('nope/hello', l), undefined);
  assert.equal(resolveAction('tools/nope', l), undefined);
  assert.deepEqual(finalClash({ final: true }, bound.defaults, { p: 1, z: 2 }), ['p']);
  assert.deepEqual(finalClash({}, bound.defaults, { p: 1 }), []);
});

void test('sequences at creation: a missing component, a cycle (direct or through another sequence), too many actions', () => {
  const l = lookups({ a: {}, b: {} }, {}, { inner: ['a', 'outer'], ok: ['a', 'b'] });
  assert.doesNotThrow(() => checkSequence('s', ['a', 'ok', 'b'], l));
  assert.throws(() => checkSequence('s', [], l), /No component specified/);
  assert.throws(() => checkSequence('s', ['a', 'missing'], l), /Sequence component does not exist\. \(missing\)/);
  assert.throws(() => checkSequence('s', ['a', 's'], l), /Sequence may not refer to itself/);
  assert.throws(() => checkSequence('outer', ['inner'], l), /Sequence may not refer to itself/);
  assert.throws(() => checkSequence('s', Array.from({ length: 51 }, () => 'a'), l), /Too many actions in the sequence/);
});

void test('packages: create, reserved name, binding checks, get merges parameters and lists actions, delete only when empty', async () => {
  const { app, calls } = await node(TOKEN);
  let r = await app.inject({ method: 'PUT', url: `${NS}/packages/tools`, headers: AUTH, payload: { parameters: kv({ a: 'pkg', b: 'pkg' }), annotations: kv({ description: 'tools' }) } });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().binding, {});
  assert.equal((await app.inject({ method: 'PUT', url: `${NS}/packages/tools`, headers: AUTH, payload: {} })).statusCode, 409);
  r = await app.inject({ method: 'PUT', url: `${NS}/packages/default`, headers: AUTH, payload: {} });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /Package name 'default' is reserved/);
  // an action in the package, one in a package that does not exist
  r = await app.inject({ method: 'PUT', url: `${NS}/actions/tools/echo`, headers: AUTH, payload: { ...HELLO, parameters: kv({ a: 'action' }) } });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.json().namespace, 'guest/tools');
  assert.equal(r.json().name, 'echo');
  r = await app.inject({ method: 'PUT', url: `${NS}/actions/nope/echo`, headers: AUTH, payload: HELLO });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /^name: the package 'nope' does not exist/);
  // bindings: to a package that exists (not a binding), never turning a package into one
  r = await app.inject({ method: 'PUT', url: `${NS}/packages/mine`, headers: AUTH, payload: { binding: { namespace: '_', name: 'tools' }, parameters: kv({ b: 'binding' }) } });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().binding, { namespace: 'guest', name: 'tools' });
  assert.deepEqual(r.json().parameters, kv({ a: 'pkg', b: 'binding' }));
  assert.deepEqual(r.json().actions.map((a: { name: string }) => a.name), ['echo']);
  r = await app.inject({ method: 'PUT', url: `${NS}/packages/b2`, headers: AUTH, payload: { binding: { name: 'mine' } } });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /Cannot bind to another package binding/);
  r = await app.inject({ method: 'PUT', url: `${NS}/packages/b3`, headers: AUTH, payload: { binding: { name: 'ghost' } } });
  assert.match(r.json().error, /Binding references a package that does not exist/);
  r = await app.inject({ method: 'PUT', url: `${NS}/packages/tools?overwrite=true`, headers: AUTH, payload: { binding: { name: 'mine' } } });
  assert.equal(r.statusCode, 409);
  r = await app.inject({ method: 'PUT', url: `${NS}/actions/mine/x`, headers: AUTH, payload: HELLO });
  assert.match(r.json().error, /package binding/);
  // invoking through the package and through the binding: package < binding < action < invocation
  r = await app.inject({ method: 'POST', url: `${NS}/actions/tools/echo?blocking=true&result=true`, headers: AUTH, payload: { own: 1 } });
  assert.deepEqual(r.json(), { a: 'action', b: 'pkg', own: 1 });
  r = await app.inject({ method: 'POST', url: `${NS}/actions/mine/echo?blocking=true`, headers: AUTH, payload: { b: 'own' } });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().response.result, { a: 'action', b: 'own' });
  assert.equal(calls.at(-1)!.fn, 'tools/echo');
  assert.equal(r.json().name, 'echo');
  assert.ok(r.json().annotations.some((a: { key: string; value: unknown }) => a.key === 'path' && a.value === 'guest/tools/echo'));
  // lists: packages, and actions (packaged ones included)
  r = await app.inject({ method: 'GET', url: `${NS}/packages`, headers: AUTH });
  assert.deepEqual(r.json().map((p: { name: string }) => p.name), ['mine', 'tools']);
  r = await app.inject({ method: 'GET', url: `${NS}/actions`, headers: AUTH });
  assert.deepEqual(r.json().map((a: { namespace: string; name: string }) => `${a.namespace}/${a.name}`), ['guest/tools/echo']);
  // delete: a package with actions is refused; a binding goes at once
  r = await app.inject({ method: 'DELETE', url: `${NS}/packages/tools`, headers: AUTH });
  assert.equal(r.statusCode, 409);
  assert.match(r.json().error, /Package not empty \(contains 1 entity\)/);
  assert.equal((await app.inject({ method: 'DELETE', url: `${NS}/packages/mine`, headers: AUTH })).statusCode, 200);
  assert.equal((await app.inject({ method: 'DELETE', url: `${NS}/actions/tools/echo`, headers: AUTH })).statusCode, 200);
  assert.equal((await app.inject({ method: 'DELETE', url: `${NS}/packages/tools`, headers: AUTH })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: `${NS}/packages/tools`, headers: AUTH })).statusCode, 404);
  await app.close();
});

void test('sequences: output to input through the Dispatcher, one record per component plus its own, an error stops the chain', async () => {
  const { app, calls } = await node(TOKEN, { blockingWaitMs: 5000 });
  await app.inject({ method: 'PUT', url: `${NS}/packages/p`, headers: AUTH, payload: { parameters: kv({ fromPkg: true }) } });
  for (const n of ['inc', 'p/inc', 'fails', 'echo']) await app.inject({ method: 'PUT', url: `${NS}/actions/${n}`, headers: AUTH, payload: HELLO });
  let r = await app.inject({ method: 'PUT', url: `${NS}/actions/three`, headers: AUTH, payload: { exec: { kind: 'sequence', components: ['/_/inc', '/guest/p/inc', 'inc'] }, parameters: kv({ n: 10 }) } });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().exec, { kind: 'sequence', components: ['/guest/inc', '/guest/p/inc', '/guest/inc'] });
  // creation checks answer 400 naming exec.components
  r = await app.inject({ method: 'PUT', url: `${NS}/actions/bad`, headers: AUTH, payload: { exec: { kind: 'sequence', components: ['inc', 'ghost'] } } });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /Sequence component does not exist/);
  r = await app.inject({ method: 'PUT', url: `${NS}/actions/three?overwrite=true`, headers: AUTH, payload: { exec: { kind: 'sequence', components: ['inc', 'three'] } } });
  assert.match(r.json().error, /Sequence may not refer to itself/);
  // a function cannot take a sequence's name through the native API either
  r = await app.inject({ method: 'PUT', url: '/v1/functions/three', headers: { authorization: `Bearer ${TOKEN}` }, payload: { source: 'x' } });
  assert.equal(r.statusCode, 409);

  const before = calls.length;
  r = await app.inject({ method: 'POST', url: `${NS}/actions/three?blocking=true`, headers: AUTH, payload: { trail: ['start'] } });
  assert.equal(r.statusCode, 200, r.body);
  const seq = r.json();
  assert.deepEqual(seq.response.result, { n: 13, trail: ['start', 'inc', 'p/inc', 'inc'] });
  assert.deepEqual(calls.slice(before).map((c) => c.fn), ['inc', 'p/inc', 'inc']);
  assert.equal(calls[before + 1]!.params.fromPkg, true, 'a component gets its package\'s parameters');
  assert.equal(seq.logs.length, 3, 'the sequence lists its components\' activation ids');
  const ann = Object.fromEntries(seq.annotations.map((a: { key: string; value: unknown }) => [a.key, a.value]));
  assert.equal(ann.kind, 'sequence');
  assert.equal(ann.topmost, true);
  let sum = 0;
  for (const id of seq.logs as string[]) {
    const c = (await app.inject({ method: 'GET', url: `${NS}/activations/${id}`, headers: AUTH })).json();
    assert.equal(c.cause, seq.activationId);
    assert.ok(c.annotations.some((a: { key: string; value: unknown }) => a.key === 'causedBy' && a.value === 'sequence'));
    sum += c.duration as number;
  }
  r = await app.inject({ method: 'GET', url: `${NS}/activations/${seq.activationId}`, headers: AUTH });
  assert.equal(r.json().response.success, true);
  assert.equal(r.json().duration, sum, 'the components\' durations summed');

  // an error stops the chain: the last component never runs; the sequence's result is the error
  await app.inject({ method: 'PUT', url: `${NS}/actions/broken`, headers: AUTH, payload: { exec: { kind: 'sequence', components: ['inc', 'fails', 'echo'] } } });
  const n0 = calls.length;
  r = await app.inject({ method: 'POST', url: `${NS}/actions/broken?blocking=true`, headers: AUTH, payload: {} });
  assert.equal(r.statusCode, 502, r.body);
  assert.deepEqual(calls.slice(n0).map((c) => c.fn), ['inc', 'fails']);
  assert.equal(r.json().response.status, 'application error');
  assert.deepEqual(r.json().response.result, { error: 'boom' });
  assert.equal(r.json().logs.length, 2);

  // non-blocking: the id at once, the record once the chain is over
  r = await app.inject({ method: 'POST', url: `${NS}/actions/three`, headers: AUTH, payload: {} });
  assert.equal(r.statusCode, 202);
  const id = r.json().activationId as string;
  let rec: { response: { result: { n: number } } } | undefined;
  for (let i = 0; i < 50 && !rec; i++) {
    const g = await app.inject({ method: 'GET', url: `${NS}/activations/${id}`, headers: AUTH });
    if (g.statusCode === 200) rec = g.json();
    else await new Promise((res) => setTimeout(res, 20));
  }
  assert.equal(rec?.response.result.n, 13);
  // a sequence is listed with the actions, updated without exec, deleted
  r = await app.inject({ method: 'GET', url: `${NS}/actions`, headers: AUTH });
  assert.ok(r.json().some((a: { name: string; exec: { kind: string } }) => a.name === 'three' && a.exec.kind === 'sequence'));
  r = await app.inject({ method: 'PUT', url: `${NS}/actions/three?overwrite=true`, headers: AUTH, payload: { parameters: kv({ n: 0 }) } });
  assert.equal(r.json().exec.components.length, 3);
  assert.equal(r.json().version, '0.0.2');
  assert.equal((await app.inject({ method: 'DELETE', url: `${NS}/actions/three`, headers: AUTH })).statusCode, 200);
  assert.equal((await app.inject({ method: 'POST', url: `${NS}/actions/three?blocking=true`, headers: AUTH, payload: {} })).statusCode, 404);
  await app.close();
});

void test('triggers and rules: fire runs each active rule once with the trigger\'s parameters under the payload; 204 without one', async () => {
  const { app, calls } = await node(TOKEN);
  await app.inject({ method: 'PUT', url: `${NS}/actions/echo`, headers: AUTH, payload: { ...HELLO, parameters: kv({ fromAction: 1 }) } });
  let r = await app.inject({ method: 'PUT', url: `${NS}/triggers/t`, headers: AUTH, payload: { parameters: kv({ fromTrigger: 1, x: 'trigger' }) } });
  assert.equal(r.statusCode, 200, r.body);
  r = await app.inject({ method: 'POST', url: `${NS}/triggers/t`, headers: AUTH, payload: { x: 'payload' } });
  assert.equal(r.statusCode, 204, 'no rule: nothing fired, nothing recorded');
  r = await app.inject({ method: 'PUT', url: `${NS}/rules/r1`, headers: AUTH, payload: { trigger: '/_/t', action: '/_/echo' } });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.json().status, 'active');
  assert.deepEqual(r.json().trigger, { name: 't', path: 'guest' });
  r = await app.inject({ method: 'PUT', url: `${NS}/rules/r2`, headers: AUTH, payload: { trigger: '/_/t', action: '/_/ghost' } });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /^action: action \/guest\/ghost does not exist/);
  r = await app.inject({ method: 'PUT', url: `${NS}/rules/r3`, headers: AUTH, payload: { trigger: '/_/nope', action: '/_/echo' } });
  assert.match(r.json().error, /^trigger: trigger \/guest\/nope does not exist/);
  await app.inject({ method: 'PUT', url: `${NS}/rules/r4`, headers: AUTH, payload: { trigger: 't', action: 'echo' } });
  r = await app.inject({ method: 'POST', url: `${NS}/rules/r4`, headers: AUTH, payload: { status: 'inactive' } });
  assert.equal(r.json().status, 'inactive');
  r = await app.inject({ method: 'POST', url: `${NS}/rules/r4`, headers: AUTH, payload: { status: 'sleepy' } });
  assert.equal(r.statusCode, 400);

  const n0 = calls.length;
  r = await app.inject({ method: 'POST', url: `${NS}/triggers/t`, headers: AUTH, payload: { x: 'payload' } });
  assert.equal(r.statusCode, 202, r.body);
  const tid = r.json().activationId as string;
  assert.equal(r.headers['x-openwhisk-activation-id'], tid);
  await new Promise((res) => setTimeout(res, 50));
  assert.deepEqual(calls.slice(n0), [{ fn: 'echo', params: { fromAction: 1, fromTrigger: 1, x: 'payload' } }], 'the active rule only, once');
  const rec = (await app.inject({ method: 'GET', url: `${NS}/activations/${tid}`, headers: AUTH })).json();
  assert.equal(rec.name, 't');
  assert.deepEqual(rec.response.result, { x: 'payload' });
  assert.equal(rec.logs.length, 1);
  const line = JSON.parse(rec.logs[0]);
  assert.equal(line.rule, '/guest/r1');
  assert.equal(line.success, true);
  assert.match(line.activationId, /^[0-9a-f]{32}$/);
  r = await app.inject({ method: 'GET', url: `${NS}/triggers/t`, headers: AUTH });
  assert.deepEqual(Object.keys(r.json().rules).sort(), ['guest/r1', 'guest/r4']);
  r = await app.inject({ method: 'GET', url: `${NS}/rules?count=true`, headers: AUTH });
  assert.deepEqual(r.json(), { rules: 2 });
  // a rule whose trigger is deleted is reported inactive and cannot be enabled
  await app.inject({ method: 'DELETE', url: `${NS}/triggers/t`, headers: AUTH });
  r = await app.inject({ method: 'GET', url: `${NS}/rules/r1`, headers: AUTH });
  assert.equal(r.json().status, 'inactive');
  r = await app.inject({ method: 'POST', url: `${NS}/rules/r1`, headers: AUTH, payload: { status: 'active' } });
  assert.equal(r.statusCode, 404);
  assert.equal((await app.inject({ method: 'POST', url: `${NS}/triggers/t`, headers: AUTH, payload: {} })).statusCode, 404);
  await app.close();
});

void test('the alarm feed: lifecycle calls through /whisk.system/alarms, recorded as activations; bad parameters are its application errors', async () => {
  const { app, service } = await node(TOKEN);
  const feed = '/api/v1/namespaces/whisk.system/actions/alarms';
  await app.inject({ method: 'PUT', url: `${NS}/triggers/tick`, headers: AUTH, payload: {} });
  let r = await app.inject({ method: 'POST', url: `${feed}/alarm?blocking=true`, headers: AUTH, payload: { lifecycleEvent: 'CREATE', triggerName: '/_/tick', authKey: 'u:k', cron: '*/5 * * * *', trigger_payload: { hello: 'world' } } });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.json().name, 'alarm');
  assert.deepEqual(r.json().response.result, { status: 'success', trigger: '/guest/tick' });
  const alarm = service.entities.get('alarm', 'tick')!;
  assert.deepEqual(alarm.doc.payload, { hello: 'world' });
  assert.equal(alarm.doc.params.authKey, undefined, 'the caller\'s key is not kept');
  r = await app.inject({ method: 'POST', url: `${feed}/alarm?blocking=true`, headers: AUTH, payload: { lifecycleEvent: 'READ', triggerName: '/guest/tick' } });
  assert.equal(r.json().response.result.config.cron, '*/5 * * * *');
  assert.match(r.json().response.result.status.nextFiring, /^\d{4}-\d\d-\d\dT\d\d:\d[05]:00\.000Z$/);
  r = await app.inject({ method: 'POST', url: `${feed}/alarm?blocking=true`, headers: AUTH, payload: { lifecycleEvent: 'CREATE', triggerName: '/_/tick', cron: '* * * * *' } });
  assert.equal(r.statusCode, 502, 'a second alarm on the trigger is the feed\'s application error');
  assert.match(r.json().response.result.error, /already has an alarm/);
  r = await app.inject({ method: 'POST', url: `${feed}/alarm?blocking=true`, headers: AUTH, payload: { lifecycleEvent: 'UPDATE', triggerName: '/_/tick', cron: '61 * * * *' } });
  assert.equal(r.statusCode, 502);
  assert.match(r.json().response.result.error, /^cron: /);
  r = await app.inject({ method: 'POST', url: `${feed}/interval?blocking=true`, headers: AUTH, payload: { lifecycleEvent: 'CREATE', triggerName: '/_/tick', minutes: 0 } });
  assert.match(r.json().response.result.error, /^minutes: /);
  r = await app.inject({ method: 'POST', url: `${feed}/alarm?blocking=true`, headers: AUTH, payload: { lifecycleEvent: 'DELETE', triggerName: '/_/tick' } });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(service.entities.get('alarm', 'tick'), undefined);
  r = await app.inject({ method: 'POST', url: `${feed}/nope`, headers: AUTH, payload: {} });
  assert.equal(r.statusCode, 404);
  r = await app.inject({ method: 'GET', url: '/api/v1/namespaces/whisk.system/packages/alarms', headers: AUTH });
  assert.deepEqual(r.json().feeds.map((f: { name: string }) => f.name), ['alarm', 'interval', 'once']);
  // deleting a trigger deletes its alarm
  await app.inject({ method: 'POST', url: `${feed}/interval?blocking=true`, headers: AUTH, payload: { lifecycleEvent: 'CREATE', triggerName: '/_/tick', minutes: 3 } });
  assert.ok(service.entities.get('alarm', 'tick'));
  await app.inject({ method: 'DELETE', url: `${NS}/triggers/tick`, headers: AUTH });
  assert.equal(service.entities.get('alarm', 'tick'), undefined);
  await app.close();
});

void test('web actions: public, parameters from the request, results as the extension says, require-whisk-auth, final', async () => {
  const { app, calls } = await node(TOKEN);
  const web = '/api/v1/web/guest';
  await app.inject({ method: 'PUT', url: `${NS}/actions/echo`, headers: AUTH, payload: { ...HELLO, parameters: kv({ fixed: 'yes' }), annotations: kv({ 'web-export': true, final: true }) } });
  await app.inject({ method: 'PUT', url: `${NS}/actions/hidden`, headers: AUTH, payload: HELLO });
  await app.inject({ method: 'PUT', url: `${NS}/actions/echoraw`, headers: AUTH, payload: { ...HELLO, annotations: kv({ 'web-export': true, 'raw-http': true }) } });
  await app.inject({ method: 'PUT', url: `${NS}/actions/secret`, headers: AUTH, payload: { ...HELLO, annotations: kv({ 'web-export': true, 'require-whisk-auth': 'sesame' }) } });
  await app.inject({ method: 'PUT', url: `${NS}/actions/mine`, headers: AUTH, payload: { ...HELLO, annotations: kv({ 'web-export': true, 'require-whisk-auth': true }) } });

  // GET .json, no credentials: query parameters, __ow_* context
  let r = await app.inject({ method: 'GET', url: `${web}/default/echo.json/some/path?name=Jane` });
  assert.equal(r.statusCode, 200, r.body);
  const p = r.json();
  assert.equal(p.name, 'Jane');
  assert.equal(p.fixed, 'yes');
  assert.equal(p.__ow_method, 'get');
  assert.equal(p.__ow_path, '/some/path');
  assert.equal(typeof p.__ow_headers, 'object');
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.match(String(r.headers['x-openwhisk-activation-id']), /^[0-9a-f]{32}$/);
  // POST a JSON body and a form: body over query
  r = await app.inject({ method: 'POST', url: `${web}/default/echo.json?name=q`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'body' }) });
  assert.equal(r.json().name, 'body');
  r = await app.inject({ method: 'POST', url: `${web}/default/echo.json`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'name=form&x=1' });
  assert.deepEqual([r.json().name, r.json().x], ['form', '1']);
  // an opaque body: __ow_body (base64 for binary types)
  r = await app.inject({ method: 'POST', url: `${web}/default/echo.json`, headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from([0, 1, 2, 255]) });
  assert.equal(r.json().__ow_body, Buffer.from([0, 1, 2, 255]).toString('base64'));
  // final and reserved parameters cannot be set by the request
  r = await app.inject({ method: 'GET', url: `${web}/default/echo.json?fixed=no` });
  assert.equal(r.statusCode, 400);
  assert.match(r.json().error, /Request defines parameters that are not allowed/);
  r = await app.inject({ method: 'GET', url: `${web}/default/echo.json?__ow_method=put` });
  assert.equal(r.statusCode, 400);
  // not exported, unknown, other namespace: 404
  for (const u of [`${web}/default/hidden.json`, `${web}/default/ghost`, '/api/v1/web/other/default/echo.json', `${web}/echo.json`, `${web}/default/`]) assert.equal((await app.inject({ method: 'GET', url: u })).statusCode, 404, u);
  // raw-http: query and body unparsed
  r = await app.inject({ method: 'POST', url: `${web}/default/echoraw.json?a=1&b=2`, headers: { 'content-type': 'text/plain' }, payload: 'plain text' });
  assert.deepEqual([r.json().__ow_query, r.json().__ow_body, r.json().a], ['a=1&b=2', 'plain text', undefined]);
  // require-whisk-auth: a secret header, or OpenWhisk credentials
  assert.equal((await app.inject({ method: 'GET', url: `${web}/default/secret.json` })).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: `${web}/default/secret.json`, headers: { 'x-require-whisk-auth': 'wrong' } })).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: `${web}/default/secret.json`, headers: { 'x-require-whisk-auth': 'sesame' } })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: `${web}/default/mine.json`, headers: { authorization: basic('u', 'wrong') } })).statusCode, 401);
  r = await app.inject({ method: 'GET', url: `${web}/default/mine.json`, headers: { authorization: basic('u', TOKEN) } });
  assert.equal(r.statusCode, 200);
  assert.equal(calls.at(-1)!.params.__ow_user, 'guest');
  // OPTIONS: the default CORS answer without running the action
  const n = calls.length;
  r = await app.inject({ method: 'OPTIONS', url: `${web}/default/echo.json` });
  assert.equal(r.statusCode, 200);
  assert.equal(calls.length, n);
  // the native API's bearer check does not cover web actions (public by design)
  assert.equal((await app.inject({ method: 'GET', url: `${web}/default/echo.json` })).statusCode, 200);
  await app.close();
});

void test('web responses: .http with status, headers and a base64 binary body; .html, .text; errors as OpenWhisk answers them', async () => {
  const { webResponse } = await import('../../src/sources/openwhisk/web.js');
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]);
  let w = webResponse({ statusCode: 201, headers: { 'Content-Type': 'image/png', 'X-One': 1 }, body: png.toString('base64') }, '.http');
  assert.equal(w.status, 201);
  assert.deepEqual(w.body, png);
  assert.equal(w.headers['content-type'], 'image/png');
  assert.equal(w.headers['x-one'], '1');
  w = webResponse({ body: '<p>hi</p>' }, '.http');
  assert.deepEqual([w.status, w.headers['content-type'], w.body], [200, 'text/html; charset=utf-8', '<p>hi</p>']);
  w = webResponse({ headers: { location: '/x' }, statusCode: 302 }, '.http');
  assert.deepEqual([w.status, w.body], [302, undefined]);
  w = webResponse({ body: { a: 1 } }, '.http');
  assert.deepEqual([w.headers['content-type'], w.body], ['application/json', '{"a":1}']);
  assert.equal(webResponse({ statusCode: 'abc' }, '.http').status, 400);
  assert.equal(webResponse({ headers: { 'content-type': 'image/png' }, body: 'not base64!' }, '.http').status, 400);
  assert.equal(webResponse('just a string', '.json').status, 400);
  assert.deepEqual(webResponse({ html: '<b>x</b>' }, '.html').body, '<b>x</b>');
  assert.equal(webResponse({ nothing: 1 }, '.html').status, 400);
  assert.equal(webResponse({ text: 42 }, '.text').body, '42');
  assert.equal(webResponse({ other: 1 }, '.text').status, 404);
});

void test('small routes: GET /api/v1 without credentials, limits, every listing', async () => {
  const { app } = await node(TOKEN);
  let r = await app.inject({ method: 'GET', url: '/api/v1' });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().api_paths, ['/api/v1']);
  assert.equal(r.json().limits.sequence_length, 50);
  r = await app.inject({ method: 'GET', url: `${NS}/limits`, headers: AUTH });
  assert.equal(r.statusCode, 200);
  assert.equal(r.json().maxActionMemory, 4096 * 1048576);
  assert.equal((await app.inject({ method: 'GET', url: `${NS}/limits` })).statusCode, 401);
  for (const c of ['actions', 'packages', 'triggers', 'rules']) {
    r = await app.inject({ method: 'GET', url: `${NS}/${c}?count=true`, headers: AUTH });
    assert.deepEqual(r.json(), { [c]: 0 }, c);
  }
  await app.close();
});
