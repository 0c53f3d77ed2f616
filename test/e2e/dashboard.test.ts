// The live dashboard in a real headless browser: Debian's Chromium driven by
// playwright-core. The page loads, a VM appears after an invocation (live, no
// reload), its activation shows a waterfall, the VM disappears after an
// eviction, a restored one shows up again, the capacity panel shows measured
// memory against the nominal sum and how many more idle VMs fit, and a screenshot is saved
// (bench/results/dashboard/dashboard-e2e.png).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';
import { CHROMIUM, CHROMIUM_ARGS, requireBinary } from '../support/observability.js';

const SHOTS = path.join(ROOT, 'bench', 'results', 'dashboard');

describe('live dashboard in headless Chromium', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  let profile: string;
  let browser: BrowserContext | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    requireBinary(CHROMIUM, 'chromium');
    d = await startDaemon({ policies: { placement: { policy: 'fixed', tier: 'shm' } }, telemetry: { dashboard: { refreshMs: 300 }, sampleIntervalMs: 1000 } });
    profile = mkdtempSync(path.join(os.tmpdir(), 'fc-chromium-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 } });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    rmSync(profile, { recursive: true, force: true });
    await stopAndCheck(d);
  });

  test('page loads and connects to the event stream', async () => {
    const res = await page.goto(`${d.url}/ui`);
    assert.equal(res?.status(), 200);
    await page.waitForSelector('#conn.live', { timeout: 30_000 });
    assert.equal(await page.title(), 'FaaSCell node');
    assert.equal(await page.locator('[data-vm-id]').count(), 0, 'no VM before any invocation');
  });

  test('a VM appears after an invocation, with its activation waterfall; it disappears after eviction', async () => {
    await d.deploy('hello', 'hello.js');
    const cold = await d.client.invoke('hello', { name: 'ui' });
    assert.equal(cold.status, 200, JSON.stringify(cold.body));
    assert.equal(cold.body.activation!.startPath, 'cold');
    const vmId = cold.body.activation!.vmId!;
    for (let i = 0; i < 3; i++) assert.equal((await d.client.invoke('hello', { name: `ui${i}` })).body.activation!.startPath, 'warm');

    // the chip of that VM, live (no reload)
    const chip = page.locator(`.vm[data-vm-id="${vmId}"]`);
    await chip.waitFor({ timeout: 20_000 });
    assert.equal(await chip.getAttribute('data-fn'), 'hello');
    await page.waitForSelector(`.vm[data-vm-id="${vmId}"][data-state="idle"]`, { timeout: 20_000 });
    // its four activations, the cold one with boot, init and snapshot stages in its waterfall
    const row = page.locator(`tr[data-activation-id="${cold.body.activation!.id}"]`);
    await row.waitFor({ timeout: 20_000 });
    for (const st of ['boot', 'init', 'snapshot', 'run']) assert.equal(await row.locator(`.wf > .st-${st}`).count(), 1, `the cold activation shows its ${st}`);
    await page.waitForFunction(() => document.querySelectorAll('tr[data-activation-id]').length >= 4, undefined, { timeout: 20_000 });
    // the per-VM row of the memory panel fills in once /proc was sampled
    await page.locator(`#memory tr[data-vm-id="${vmId}"]`).waitFor({ timeout: 20_000 });
    // the capacity panel (issue 24): measured accounting by default; once the VM was measured, what it costs
    // the host against its size, and how many more idle VMs of a size fit now
    await page.waitForSelector('#capacity-summary[data-accounting="measured"][data-unmeasured="0"][data-nominal-mib="256"]', { timeout: 30_000 });
    const measured = Number(await page.locator('#capacity-summary').getAttribute('data-measured-mib'));
    assert.ok(measured > 0 && measured < 256, `an idle hello VM measures less than its 256 MiB (${measured} MiB)`);
    const fits = await page.locator('#capacity tr[data-fit-size] td.num').allTextContents();
    assert.ok(fits.length >= 4 && fits.every((x) => /^\d+$/.test(x)), `how many more idle VMs of each size fit: ${fits.join(', ')}`);
    const fit256 = Number(await page.locator('#capacity tr[data-fit-size="256"] td.num').textContent());
    assert.ok(fit256 > 0, 'room for more 256 MiB VMs on a node with one');

    const r = await d.client.call<{ stopped: number }>('POST', '/v1/functions/hello/evict');
    assert.equal(r.stopped, 1);
    // gone from the instances (pool state) and from the memory table (next /proc sample)
    await page.waitForFunction(() => document.querySelectorAll('[data-vm-id]').length === 0, undefined, { timeout: 30_000 });
    assert.deepEqual(pageErrors, [], 'no script errors on the page');
  });

  test('a restored VM and a second function show up; screenshot', async () => {
    const restored = await d.client.invoke('hello', { name: 'again' });
    assert.equal(restored.body.activation!.startPath, 'restore');
    await d.deploy('json', 'json-heavy.js');
    assert.equal((await d.client.invoke('json', { q: 'x' })).status, 200);
    await page.locator(`.vm[data-vm-id="${restored.body.activation!.vmId!}"][data-state="idle"]`).waitFor({ timeout: 20_000 });
    await page.locator('.fnrow[data-function="json"] .vm[data-state="idle"]').waitFor({ timeout: 20_000 });
    await page.locator(`tr[data-activation-id="${restored.body.activation!.id}"] .wf > .st-resync`).waitFor({ timeout: 20_000 });
    // the memory table lists both VMs once sampled
    await page.waitForFunction(() => document.querySelectorAll('#memory tr[data-vm-id]').length === 2, undefined, { timeout: 20_000 });
    mkdirSync(SHOTS, { recursive: true });
    const shot = path.join(SHOTS, 'dashboard-e2e.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, 'screenshot written');
    assert.deepEqual(pageErrors, [], 'no script errors on the page');
  });
});
