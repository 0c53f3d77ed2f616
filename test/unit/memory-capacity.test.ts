// Capacity visible (issue 24): what /v1/status, /metrics and `faascell status` show
// of the node's memory — the accounting, the VMs' measured PSS against their sizes,
// and how many more idle VMs of a size fit — through the real VmPool and the
// status adapter, on a virtual clock over fake VMs that report chosen PSS values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../src/core/clock.js';
import { formatStatus } from '../../src/cli/format.js';
import { NodeMetrics } from '../../src/metrics/metrics.js';
import { toNodeState } from '../../src/telemetry/node-state.js';
import { deploy, harness } from '../helpers/pool-harness.js';
import { settleOn } from '../helpers/virtual-time.js';

const MiB = 1024 * 1024;
const SAMPLE_MS = 1000;

async function twoIdleVms(accounting: 'nominal' | 'measured', pssMiB: number) {
  const clock = new VirtualClock(0);
  const h = await harness({
    clock,
    behaviour: { bootMs: 100, initMs: 10 },
    pool: { memoryBudgetMiB: 1024, highWatermark: 0.9, memory: { accounting, reserve: 0.1, sampleIntervalMs: SAMPLE_MS } },
  });
  deploy(h, 'f', { memoryMiB: 256, maxInstances: 4 });
  await clock.settle();
  // two concurrent requests: two VMs, both idle afterwards
  await settleOn(clock, Promise.all([h.invoke('f', { n: 1 }), h.invoke('f', { n: 2 })]));
  for (const vm of h.driver.vms) vm.memoryUsage = () => Promise.resolve({ rssKiB: pssMiB * 2048, pssKiB: pssMiB * 1024 });
  // the sampler measures them at its next tick
  await clock.run(clock.now() + 2 * SAMPLE_MS);
  const st = await settleOn(clock, h.status());
  await h.close();
  return st;
}

void test('measured accounting: status shows measured PSS against sizes, charges, and the idle VMs that still fit; /metrics and the CLI show the same', async () => {
  const st = await twoIdleVms('measured', 100);
  const m = st.memory!;
  assert.equal(m.accounting, 'measured');
  assert.equal(m.budgetMiB, 1024);
  assert.equal(m.nominalMiB, 512, 'two VMs of 256 MiB');
  assert.equal(m.measuredMiB, 200, 'two VMs measured at 100 MiB');
  assert.equal(m.unmeasured, 0);
  // each charged 100 + 0.1 × (256 − 100) = 115.6 → 116
  assert.equal(m.chargedMiB, 232);
  assert.equal(st.memoryUsedMiB, 232);
  for (const i of st.instances) {
    assert.equal(i.measuredMiB, 100);
    assert.equal(i.chargedMiB, 116);
  }
  // room below the high watermark, each new idle VM charged like the measured ones (ratio 100/256)
  const room = 0.9 * 1024 - 232;
  assert.equal(m.idleFit['256'], Math.floor(room / 116));
  assert.ok(m.idleFit['128']! > m.idleFit['256'], 'smaller VMs fit more');

  const ns = toNodeState(st, [], 0);
  assert.deepEqual(ns.memory, { accounting: 'measured', nominalBytes: 512 * MiB, measuredBytes: 200 * MiB, unmeasured: 0, idleFit: m.idleFit });
  const metrics = new NodeMetrics({ defaultMetrics: false });
  metrics.applyState(ns, []);
  const text = await metrics.render();
  assert.match(text, /^faascell_memory_used_bytes 243269632$/m, '232 MiB charged');
  assert.match(text, /^faascell_memory_nominal_bytes 536870912$/m);
  assert.match(text, /^faascell_memory_measured_bytes 209715200$/m);
  assert.match(text, /^faascell_memory_unmeasured_instances 0$/m);
  assert.match(text, new RegExp(`^faascell_memory_idle_fit\\{size_mib="256"\\} ${m.idleFit['256']}$`, 'm'));
  assert.match(text, /^faascell_memory_guard_level 0$/m, 'no guard ran: level 0');
  assert.match(text, /^faascell_instance_stops_total\{cause="memory_guard"\} 0$/m);

  const out = formatStatus(JSON.parse(JSON.stringify({ pool: st })) as Parameters<typeof formatStatus>[0]);
  assert.match(out, new RegExp(`capacity\\s+measured accounting; VMs measure 200 MiB of 512 MiB nominal; room for .*\\b${m.idleFit['256']} × 256\\b.* MiB idle VMs`));
});

void test('nominal accounting: each VM counts its size; the measurement is shown beside it, and fewer idle VMs fit', async () => {
  const nominal = await twoIdleVms('nominal', 100);
  const measured = await twoIdleVms('measured', 100);
  const m = nominal.memory!;
  assert.equal(m.accounting, 'nominal');
  assert.equal(m.chargedMiB, 512);
  assert.equal(m.measuredMiB, 200, 'measured all the same, for the operator');
  assert.equal(m.idleFit['256'], Math.floor((0.9 * 1024 - 512) / 256));
  assert.ok(measured.memory!.idleFit['256']! > m.idleFit['256'], 'the same VMs leave room for more idle ones when measured');
});
