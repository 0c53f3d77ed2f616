// The node as its own experiment, end to end (issue 23): a real daemon with real
// VMs serves some invocations; its traffic comes back from the activation store
// (GET /v1/traffic, `faascell trace export`) as traces the simulator reads, and
// GET/POST /v1/whatif simulates it with the node's live costs and configuration.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadTrace } from '../../src/traces/index.js';
import { runTraceExport } from '../../src/traffic/cli.js';
import type { WhatIfResult } from '../../src/whatif/whatif.js';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

describe('traffic export and what-if on a real daemon', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  let since = 0;
  before(async () => {
    d = await startDaemon({ node: { memoryBudgetMiB: 1024 } });
    await d.deploy('hello', 'hello.js');
    since = Date.now() - 1;
    // a cold start, warm calls, an eviction and the restore that follows
    for (let i = 0; i < 6; i++) assert.equal((await d.client.invoke('hello', { name: String(i) })).status, 200);
    await d.client.call('POST', '/v1/functions/hello/evict');
    for (let i = 0; i < 50; i++) {
      const st = await d.client.call<{ pool: { instances: unknown[] } }>('GET', '/v1/status');
      if (st.pool.instances.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await d.client.invoke('hello', { name: 'after' })).status, 200);
  });
  after(() => stopAndCheck(d));

  test('GET /v1/traffic and faascell trace export: every invocation, read back by the trace loader', async () => {
    const rows = await d.client.call<{ rows: Array<{ function: string; startPath: string; status: string }> }>('GET', `/v1/traffic?since=${since}&format=rows`);
    assert.equal(rows.rows.length, 7);
    assert.ok(rows.rows.every((r) => r.function === 'hello' && r.status === 'success'));
    const paths = rows.rows.map((r) => r.startPath);
    assert.equal(paths[0], 'cold');
    assert.ok(paths.slice(1, 6).every((p) => p === 'warm'), paths.join(','));
    assert.ok(paths[6] === 'restore' || paths[6] === 'cold', paths.join(','));
    const file = path.join(d.dir, 'traffic.invocations.csv');
    await runTraceExport({ format: 'invocations', out: file, since: String(since), url: d.url }, () => undefined);
    const t = await loadTrace(file, 'invocations');
    assert.equal(t.totalInvocations, 7);
    assert.equal(t.functions[0]!.name, 'hello');
    assert.equal(t.functions[0]!.memoryMiB, 256);
    const azure = path.join(d.dir, 'azure');
    await runTraceExport({ format: 'azure', out: azure, since: String(since), url: d.url }, () => undefined);
    assert.equal((await loadTrace(azure, 'azure')).totalInvocations, 7);
    assert.match(readFileSync(file, 'utf8'), /^# faascell invocations start=/);
    // a bad window names its field
    const bad = await d.client.raw('GET', '/v1/traffic?since=yesterdayish');
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { error: { field: string } }).error.field, 'since');
  });

  test('GET and POST /v1/whatif: as configured with its error, then the alternatives; the plot as SVG', async () => {
    const r = await d.client.call<WhatIfResult>('GET', `/v1/whatif?since=${since}&policy=greedy-dual&memoryMiB=512`);
    assert.equal(r.actual.invocations, 7);
    assert.equal(r.asConfigured.invocations, 7);
    assert.equal(r.asConfigured.warm + r.asConfigured.restore + r.asConfigured.cold + r.asConfigured.refusedTotal, 7);
    assert.equal(r.alternatives.length, 2);
    assert.ok(Number.isFinite(r.error.warmPts));
    const post = await d.client.call<WhatIfResult>('POST', '/v1/whatif', { since: String(since), alternatives: [{ label: 'small', config: { node: { memoryBudgetMiB: 512 } } }] });
    assert.equal(post.alternatives[0]!.label, 'small');
    const svg = await fetch(`${d.url}/v1/whatif?since=${since}&format=svg`);
    assert.equal(svg.status, 200);
    assert.match(await svg.text(), /<svg/);
    const bad = await d.client.raw('GET', `/v1/whatif?since=${since}&policy=nope`);
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { error: { field: string } }).error.field, 'policy');
  });
});
