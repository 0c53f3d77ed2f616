// OpenWhisk beyond actions (issue 22) on the real daemon with real VMs, through the
// official openwhisk client (packages, bindings, sequences, triggers, rules, the
// alarm feed) and plain HTTP (web actions). One daemon, one action (few cold boots):
// an OpenWhisk-style project — a web action, a package with bound parameters, a
// three-step sequence, a rule on an alarm trigger — deploys and behaves as on
// OpenWhisk; the alarm keeps firing across a daemon restart, never twice.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import openwhisk from 'openwhisk';
import { FIXTURES, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { until as waitUntil } from '../support/observability.js';
import { failure as rejection, type OwError } from '../support/openwhisk.js';

const TOKEN = 'e2e-openwhisk-token-0123456789';
const UUID = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502';
const STEP = readFileSync(path.join(FIXTURES, 'ow-step.js'), 'utf8');

type Ann = { key: string; value: unknown }[];
interface Act {
  activationId: string;
  name: string;
  logs: string[];
  cause?: string;
  annotations: Ann;
  response: { success: boolean; status: string; result: Record<string, unknown> };
}
const ann = (a: { annotations: Ann }): Record<string, unknown> => Object.fromEntries(a.annotations.map((k) => [k.key, k.value]));
const failure = (p: Promise<unknown>): Promise<OwError<Act & { error?: string }>> => rejection<Act & { error?: string }>(p);
const until = <T>(what: string, f: () => Promise<T | undefined>, ms = 90_000): Promise<T> => waitUntil(what, f, ms, 500);

describe('OpenWhisk beyond actions: packages, sequences, triggers, rules, alarms, web actions (real VMs)', { timeout: 12 * 60_000 }, () => {
  let d: TestDaemon;
  let ow: ReturnType<typeof openwhisk>;
  const cfg = { api: { port: 0, token: TOKEN }, admission: { maxConcurrentStarts: 1 } };
  const connect = (): void => void (ow = openwhisk({ apihost: d.url, api_key: `${UUID}:${TOKEN}` }));
  const activation = (id: string): Promise<Act> => until(`activation ${id}`, async () => (await ow.activations.get({ name: id })) as unknown as Act);
  before(async () => {
    d = await startDaemon(cfg);
    connect();
  });
  after(() => stopAndCheck(d));

  test('a package with bound parameters, a binding, an action inside: package < binding < action < invocation', async () => {
    await ow.packages.create({ name: 'tools', package: { parameters: [{ key: 'from', value: 'package' }, { key: 'greeting', value: 'hi from the package' }] } });
    await ow.actions.create({ name: 'tools/step', action: STEP, params: { greeting: 'hi from the action' }, annotations: { 'web-export': true }, limits: { timeout: 30_000 } });
    await ow.packages.create({ name: 'mytools', package: { binding: { namespace: '_', name: 'tools' }, parameters: [{ key: 'from', value: 'binding' }] } });
    const pkg = (await ow.packages.get({ name: 'mytools' })) as unknown as { binding: { name: string }; actions: { name: string }[] };
    assert.equal(pkg.binding.name, 'tools');
    assert.deepEqual(pkg.actions.map((a) => a.name), ['step']);
    assert.deepEqual(await ow.actions.invoke({ name: 'tools/step', blocking: true, result: true, params: { n: 1 } }), { n: 2, from: 'package', greeting: 'hi from the action' });
    assert.deepEqual(await ow.actions.invoke({ name: 'mytools/step', blocking: true, result: true, params: { n: 5 } }), { n: 6, from: 'binding', greeting: 'hi from the action' });
    assert.deepEqual(await ow.actions.invoke({ name: '/_/mytools/step', blocking: true, result: true, params: { n: 5, from: 'me' } }), { n: 6, from: 'me', greeting: 'hi from the action' });
    const e = await failure(ow.packages.delete({ name: 'tools' }));
    assert.equal(e.statusCode, 409, 'a package with actions is not deleted');
  });

  test('a three-step sequence: each step through the Dispatcher with its own record, the output of one the input of the next; an error stops it', async () => {
    await ow.actions.create({ name: 'three', sequence: ['/_/tools/step', '/_/mytools/step', 'tools/step'] } as never);
    const seq = (await ow.actions.invoke({ name: 'three', blocking: true, params: { n: 0 } })) as unknown as Act;
    assert.equal(seq.response.success, true);
    assert.equal(seq.response.result.n, 3);
    assert.equal(seq.logs.length, 3);
    assert.equal(ann(seq).kind, 'sequence');
    for (const id of seq.logs) {
      const c = await activation(id);
      assert.equal(c.cause, seq.activationId);
      assert.ok(['cold', 'warm', 'restore'].includes(String(ann(c).startPath)), 'each component has its own start path');
    }
    // the second step fails: the third does not run, the sequence's result is the error
    const e = await failure(ow.actions.invoke({ name: 'three', blocking: true, params: { n: 0, failAt: 1 } }));
    assert.equal(e.statusCode, 502);
    assert.equal(e.error?.response.status, 'application error');
    assert.match(String(e.error?.response.result.error), /failing at 1/);
    assert.equal(e.error?.logs.length, 2);
    // non-blocking: the id at once, the record once the chain is over
    const { activationId } = await ow.actions.invoke({ name: 'three', params: { n: 10 } });
    assert.equal((await activation(activationId)).response.result.n, 13);
    // a cycle and a missing component are refused at creation
    assert.equal((await failure(ow.actions.update({ name: 'three', sequence: ['tools/step', 'three'] } as never))).statusCode, 400);
    assert.equal((await failure(ow.actions.create({ name: 'four', sequence: ['tools/step', 'ghost'] } as never))).statusCode, 400);
  });

  test('a trigger fired with parameters runs its active rule once, non-blocking, and records what it did', async () => {
    await ow.triggers.create({ name: 'fire', trigger: { parameters: [{ key: 'from', value: 'trigger' }] } });
    await ow.rules.create({ name: 'on-fire', trigger: 'fire', action: 'tools/step' });
    const { activationId } = await ow.triggers.invoke({ name: 'fire', params: { n: 41 } });
    const t = await activation(activationId);
    assert.equal(t.name, 'fire');
    assert.deepEqual(t.response.result, { n: 41 });
    assert.equal(t.logs.length, 1);
    const line = JSON.parse(t.logs[0]!) as { success: boolean; activationId: string; rule: string };
    assert.equal(line.rule, '/guest/on-fire');
    assert.equal(line.success, true);
    assert.deepEqual((await activation(line.activationId)).response.result, { n: 42, from: 'trigger', greeting: 'hi from the action' });
    // an inactive rule: the trigger fires nothing (OpenWhisk answers 204)
    await ow.rules.disable({ name: 'on-fire' });
    const r = await fetch(`${d.url}/api/v1/namespaces/_/triggers/fire`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${UUID}:${TOKEN}`).toString('base64')}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 204);
    assert.equal(((await ow.rules.get({ name: 'on-fire' })) as unknown as { status: string }).status, 'inactive');
  });

  test('web actions over plain HTTP: GET .json, POST .http, a binary body both ways, require-whisk-auth', async () => {
    const web = `${d.url}/api/v1/web/guest/tools/step`;
    let r = await fetch(`${web}.json/some/path?name=Jane`);
    assert.equal(r.status, 200);
    const j = (await r.json()) as { statusCode: number; body: Record<string, unknown> };
    assert.deepEqual(j.body, { method: 'get', path: '/some/path', name: 'Jane', from: 'package' });
    assert.match(String(r.headers.get('x-openwhisk-activation-id')), /^[0-9a-f]{32}$/);
    r = await fetch(`${web}.http`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Body' }) });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('x-method'), 'post');
    assert.deepEqual(await r.json(), { method: 'post', path: '', name: 'Body', from: 'package' });
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 255, 128, 7]);
    r = await fetch(`${web}.http?want=png`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), bytes);
    // each request is an activation with its own record
    const id = r.headers.get('x-openwhisk-activation-id')!;
    assert.equal((await activation(id)).response.success, true);
    // require-whisk-auth: a secret header (an annotation update keeps the action's warm VM)
    await ow.actions.update({ name: 'tools/step', annotations: { 'web-export': true, 'require-whisk-auth': 'open-sesame' } });
    assert.equal((await fetch(`${web}.json`)).status, 401);
    assert.equal((await fetch(`${web}.json`, { headers: { 'x-require-whisk-auth': 'wrong' } })).status, 401);
    assert.equal((await fetch(`${web}.json`, { headers: { 'x-require-whisk-auth': 'open-sesame' } })).status, 200);
    // not exported: 404
    await ow.actions.update({ name: 'tools/step', annotations: {} });
    assert.equal((await fetch(`${web}.json`)).status, 404);
  });

  test('a rule on an alarm trigger (the /whisk.system/alarms/alarm feed): fires on schedule, across a daemon restart, never twice', async () => {
    await ow.triggers.create({ name: 'tick' });
    await ow.rules.create({ name: 'on-tick', trigger: 'tick', action: 'tools/step' });
    const created = (await ow.feeds.create({ name: '/whisk.system/alarms/alarm', trigger: 'tick', params: { cron: '*/3 * * * * *', trigger_payload: { n: 100 } } })) as unknown as Act;
    assert.equal(created.response.success, true, JSON.stringify(created.response));
    const ticks = async (): Promise<Act[]> => (await ow.activations.list({ name: 'tick', docs: true, limit: 200 })) as unknown as Act[];
    const firstRun = await until('two firings', async () => {
      const l = await ticks();
      return l.length >= 2 ? l : undefined;
    });
    const line = JSON.parse(firstRun[0]!.logs[0]!) as { activationId: string };
    assert.deepEqual((await activation(line.activationId)).response.result, { n: 101, greeting: 'hi from the action', from: 'package' });
    // restart the daemon on the same state: the alarm goes on from the last firing it claimed
    await d.stop();
    const before = (await ticks().catch(() => undefined)) ?? firstRun;
    d = await startDaemon(cfg, d.dir);
    connect();
    const all = await until('two firings after the restart', async () => {
      const l = await ticks();
      return l.length >= before.length + 2 ? l : undefined;
    });
    await ow.feeds.delete({ name: '/whisk.system/alarms/alarm', trigger: 'tick' });
    const at = all.map((a) => String(ann(a).scheduledAt));
    assert.equal(new Set(at).size, at.length, `each scheduled firing fired once: ${at.join(' ')}`);
    for (const a of at) assert.equal(new Date(a).getUTCSeconds() % 3, 0, a);
    const n = (await ticks()).length;
    await sleep(4000);
    assert.ok((await ticks()).length <= n + 1, 'the deleted alarm stopped firing');
  });
});
