// OpenWhisk beyond actions in a cluster (issue 22): nats-server and two daemons
// with real VMs, started by the test. Packages, sequences, triggers, rules and
// alarms made through one node are visible on the other (the registry bucket); a
// trigger fired on either node runs its rule once; a web action and a sequence
// answer through either node; an alarm's firings are fired once cluster-wide.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import openwhisk from 'openwhisk';
import { startNatsServer, type NatsServer } from '../cluster-helpers/nats-server.js';
import { FIXTURES, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { until as waitUntil } from '../support/observability.js';

const UUID = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502';
const STEP = readFileSync(path.join(FIXTURES, 'ow-step.js'), 'utf8');
type Act = { activationId: string; logs: string[]; annotations: { key: string; value: unknown }[]; response: { success: boolean; result: Record<string, unknown> } };

const until = <T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> => waitUntil(what, f, ms, 300);

describe('OpenWhisk entities cluster-wide: nats-server + two daemons with real VMs', { timeout: 10 * 60_000 }, () => {
  let nats: NatsServer;
  const daemons: TestDaemon[] = [];
  const ows: ReturnType<typeof openwhisk>[] = [];
  const cfg = (name: string): Record<string, unknown> => ({
    node: { memoryBudgetMiB: 1024 },
    admission: { maxConcurrentStarts: 1 },
    cluster: { nats: nats.url, node: name, heartbeatMs: 500, nodeTimeoutMs: 3000, ackWaitMs: 5000, localityWaitMs: 500 },
  });
  /** activations of `name` recorded on each node (OpenWhisk lists a node's own records) */
  const recorded = async (name: string): Promise<Act[]> => (await Promise.all(ows.map(async (ow) => (await ow.activations.list({ name, docs: true, limit: 200 })) as unknown as Act[]))).flat();

  before(async () => {
    nats = await startNatsServer();
    for (const n of ['n1', 'n2']) {
      const d = await startDaemon(cfg(n));
      daemons.push(d);
      ows.push(openwhisk({ apihost: d.url, api_key: `${UUID}:any-key` }));
    }
  });
  after(async () => {
    const errs: string[] = [];
    for (const d of daemons) await stopAndCheck(d).catch((e: Error) => errs.push(e.message));
    await nats?.cleanup();
    if (errs.length) throw new Error(errs.join('\n'));
  });

  test('made through n1, visible on n2; a trigger fired on n2 runs its rule once; web action and sequence through n2', async () => {
    const [ow1, ow2] = ows as [ReturnType<typeof openwhisk>, ReturnType<typeof openwhisk>];
    await ow1.packages.create({ name: 'shop', package: { parameters: [{ key: 'from', value: 'shop' }] } });
    await ow1.actions.create({ name: 'shop/step', action: STEP, annotations: { 'web-export': true }, limits: { timeout: 30_000 } });
    await ow1.actions.create({ name: 'twice', sequence: ['shop/step', 'shop/step'] } as never);
    await ow1.triggers.create({ name: 'order' });
    await ow1.rules.create({ name: 'on-order', trigger: 'order', action: 'shop/step' });
    await until('the entities on n2', async () => {
      await Promise.all([ow2.packages.get({ name: 'shop' }), ow2.actions.get({ name: 'shop/step' }), ow2.actions.get({ name: 'twice' }), ow2.triggers.get({ name: 'order' }), ow2.rules.get({ name: 'on-order' })]);
      return true;
    });
    const before = (await recorded('shop/step')).length;
    const { activationId } = await ow2.triggers.invoke({ name: 'order', params: { n: 7 } });
    const t = await until('the trigger record on n2', async () => (await ow2.activations.get({ name: activationId })) as unknown as Act);
    assert.equal(t.logs.length, 1);
    const ruleRun = (JSON.parse(t.logs[0]!) as { activationId: string }).activationId;
    // the rule's run, looked up through n2's native API (it may have run on n1)
    const run = await until('the rule\'s activation', async () => {
      const r = await daemons[1]!.client.raw('GET', `/v1/activations/${ruleRun}`);
      return r.status === 200 ? (r.body as { status: string; node: string }) : undefined;
    }, 90_000);
    assert.equal(run.status, 'success');
    await sleep(1000);
    assert.equal((await recorded('shop/step')).length, before + 1, 'the rule ran once in the cluster');

    const web = await fetch(`${daemons[1]!.url}/api/v1/web/guest/shop/step.json?name=via-n2`);
    assert.equal(web.status, 200);
    assert.deepEqual(((await web.json()) as { body: Record<string, unknown> }).body, { method: 'get', path: '', name: 'via-n2', from: 'shop' });
    assert.deepEqual(await ow2.actions.invoke({ name: 'twice', blocking: true, result: true, params: { n: 0 } }), { n: 2, from: 'shop' });
  });

  test('an alarm made through n1 fires once per scheduled time in the cluster; deleted through n2, it stops', async () => {
    const [ow1, ow2] = ows as [ReturnType<typeof openwhisk>, ReturnType<typeof openwhisk>];
    await ow1.triggers.create({ name: 'tick' });
    await ow1.rules.create({ name: 'on-tick', trigger: 'tick', action: 'shop/step' });
    const r = (await ow1.feeds.create({ name: '/whisk.system/alarms/alarm', trigger: 'tick', params: { cron: '*/2 * * * * *', trigger_payload: { n: 1 } } })) as unknown as Act;
    assert.equal(r.response.success, true, JSON.stringify(r.response));
    const ticks = await until('five firings', async () => {
      const l = await recorded('tick');
      return l.length >= 5 ? l : undefined;
    });
    const at = ticks.map((a) => String(a.annotations.find((k) => k.key === 'scheduledAt')?.value));
    assert.equal(new Set(at).size, at.length, `each firing fired by one node: ${at.sort().join(' ')}`);
    await until('the alarm on n2', async () => ((await ow2.feeds.feed('READ' as never, { name: '/whisk.system/alarms/alarm', trigger: 'tick' })) as unknown as Act).response.success || undefined);
    await ow2.feeds.delete({ name: '/whisk.system/alarms/alarm', trigger: 'tick' });
    await sleep(1500);
    const n = (await recorded('tick')).length;
    await sleep(4500);
    assert.equal((await recorded('tick')).length, n, 'no firing after the delete reached both nodes');
  });
});
