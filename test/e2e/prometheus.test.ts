// GET /metrics scraped by a real Prometheus server (Debian's prometheus,
// started here on 127.0.0.1 with a 1 s scrape interval) while the daemon runs
// real microVMs; every assertion goes through Prometheus's HTTP query API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { startPrometheus, until, type Prometheus } from '../support/observability.js';

describe('Prometheus scrapes a daemon running real VMs', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  let prom: Prometheus | undefined;
  before(async () => {
    // nominal accounting: the memory gauge must read the function's size exactly (measured accounting, the
    // default, charges the sampled PSS once the sampler has seen the VM: a value no test can name beforehand)
    d = await startDaemon({ telemetry: { sampleIntervalMs: 1000 }, node: { memory: { accounting: 'nominal' } }, policies: { placement: { policy: 'fixed', tier: 'shm' } } });
    prom = await startPrometheus({ dir: path.join(d.dir, 'prometheus'), target: new URL(d.url).host });
  });
  after(async () => {
    await prom?.stop();
    await stopAndCheck(d);
  });

  /** one value of an instant query, once the query returns something that satisfies `ok` */
  const value = (q: string, ok: (v: number) => boolean = () => true, timeoutMs = 30_000): Promise<number> =>
    until(
      `${q} in Prometheus`,
      async () => {
        const r = await prom!.query(q);
        if (r.length !== 1) return undefined;
        const v = Number(r[0]!.value[1]);
        return ok(v) ? v : undefined;
      },
      timeoutMs,
    );

  test('the target is up and the metrics are well-formed', async () => {
    assert.equal(await value('up{job="faascell"}', (v) => v === 1), 1);
    const res = await fetch(`${d.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const m of ['faascell_memory_budget_bytes', 'faascell_activations_total', 'faascell_activation_stage_duration_seconds', 'nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total']) {
      assert.match(text, new RegExp(`^# TYPE ${m} `, 'm'), `${m} is exported`);
    }
    assert.ok((await value('faascell_memory_budget_bytes')) > 0);
    assert.ok((await value('nodejs_eventloop_lag_seconds')) >= 0);
  });

  test('invocations, stages, instances, snapshots and per-VM resources', async () => {
    await d.deploy('hello', 'hello.js');
    const cold = await d.client.invoke('hello', { name: 'prom' });
    assert.equal(cold.status, 200, JSON.stringify(cold.body));
    assert.equal(cold.body.activation!.startPath, 'cold');
    const warm = await d.client.invoke('hello', { name: 'prom' });
    assert.equal(warm.body.activation!.startPath, 'warm');

    assert.equal(await value('faascell_activations_total{function="hello",start_path="cold",status="success"}', (v) => v === 1), 1);
    assert.equal(await value('faascell_activations_total{function="hello",start_path="warm",status="success"}', (v) => v === 1), 1);
    // a cold start that leaves a snapshot: boot, init, snapshot, run; with snapshots.coldSnapshot restore
    // (the former path) also its own restore and a resync, with copy (the default) the same VM runs on
    const copied = cold.body.activation!.startDetails?.coldSnapshot === 'copy';
    for (const stage of ['queue', 'boot', 'init', 'snapshot', ...(copied ? [] : ['restore', 'resync']), 'run']) {
      assert.equal(await value(`faascell_activation_stage_duration_seconds_count{stage="${stage}",start_path="cold"}`, (v) => v === 1), 1, stage);
    }
    if (copied) assert.deepEqual(await prom!.query('faascell_activation_stage_duration_seconds_count{stage="restore",start_path="cold"}'), [], 'a copied cold start restores nothing');
    const boot = await value('faascell_activation_stage_duration_seconds_sum{stage="boot",start_path="cold"}');
    const total = await value('faascell_activation_duration_seconds_sum{function="hello",start_path="cold"}');
    assert.ok(boot > 0 && boot < total, `boot ${boot} s within the activation's ${total} s`);
    assert.deepEqual(await prom!.query('faascell_activation_stage_duration_seconds_count{stage="total"}'), [], 'the whole activation is not a stage');
    assert.deepEqual(await prom!.query('faascell_activation_stage_duration_seconds_count{stage="boot",start_path="warm"}'), [], 'a warm activation has no boot stage');
    assert.equal(await value('faascell_activation_duration_seconds_count{function="hello",start_path="warm"}', (v) => v === 1), 1);

    assert.equal(await value('faascell_instances{function="hello",state="idle"}', (v) => v === 1), 1);
    assert.equal(await value('sum(faascell_instances{function="hello"})', (v) => v === 1), 1);
    assert.equal(await value('faascell_memory_used_bytes', (v) => v === 256 * 1048576), 256 * 1048576);
    assert.equal(await value('faascell_instance_starts_total{start_path="cold"}', (v) => v === 1), 1);
    assert.equal(await value('faascell_snapshots{tier="shm",status="ready"}', (v) => v === 1), 1);
    assert.ok((await value('faascell_snapshot_bytes{tier="shm"}')) > 1e6);
    assert.equal(await value('faascell_snapshot_tier_capacity_bytes{tier="shm"}'), 4096 * 1048576);

    // per-VM host resources, sampled from /proc: labelled with the VM and its function
    // (by slot, not by VM id: the series count stays bounded however many VMs come and go)
    const rss = await value(`faascell_vm_resident_memory_bytes{slot="0",function="hello"}`, (v) => v > 0);
    const pss = await value(`faascell_vm_proportional_memory_bytes{slot="0"}`, (v) => v > 0);
    assert.ok(rss > 10 * 1048576 && pss <= rss, `RSS ${rss}, PSS ${pss}`);
    assert.ok((await value(`faascell_vm_cpu_seconds_total{slot="0"}`, (v) => v > 0)) > 0);
    assert.equal(await value(`faascell_vm_guest_memory_bytes{slot="0"}`), 256 * 1048576);
  });

  test('an evicted VM leaves the per-VM series; rejections and evictions are counted', async () => {
    const r = await d.client.call<{ stopped: number }>('POST', '/v1/functions/hello/evict');
    assert.equal(r.stopped, 1);
    assert.equal(await value('sum(faascell_instances{function="hello"})', (v) => v === 0), 0);
    await until('the per-VM series to disappear', async () => ((await prom!.query('faascell_vm_resident_memory_bytes')).length === 0 ? true : undefined), 30_000);
    const text = await (await fetch(`${d.url}/metrics`)).text();
    assert.doesNotMatch(text, /slot="/, 'no per-VM series left');
    assert.equal(await value('faascell_memory_used_bytes', (v) => v === 0), 0);
    // counters exported from the pool's own counts (0 until something happens, but present)
    assert.equal(await value('faascell_instance_stops_total{cause="requested"}', (v) => v === 1), 1, 'the evict is counted');
    assert.equal(await value('faascell_instance_stops_total{cause="memory_pressure"}'), 0);
    assert.equal(await value('faascell_admission_rejections_total{reason="queue_full"}'), 0);
    // the next start restores the snapshot
    const again = await d.client.invoke('hello', { name: 'prom' });
    assert.equal(again.body.activation!.startPath, 'restore');
    assert.equal(await value('faascell_activations_total{function="hello",start_path="restore",status="success"}', (v) => v === 1), 1);
    assert.equal(await value('faascell_activation_stage_duration_seconds_count{stage="resync",start_path="restore"}', (v) => v === 1), 1);
    assert.deepEqual(await prom!.query('faascell_activation_stage_duration_seconds_count{stage="boot",start_path="restore"}'), [], 'a restore does not boot');
  });
});
