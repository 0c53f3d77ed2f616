// A spec in FaaSRail's own format, deployed with deploy-spec and replayed against
// the real daemon and real VMs, time-compressed (two replay minutes in 30 s):
// the two commands a user runs on a fresh node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runDeploySpec } from '../../src/cli/deploy-spec.js';
import { runReplayCommand } from '../../src/replay/replay.js';
import { ROOT, startDaemon, stopAndCheck, type TestDaemon } from '../helpers/daemon.js';

const SPEC = path.join(ROOT, 'test', 'fixtures', 'traces', 'faasrail-spec.csv');

describe('deploy-spec + replay of a FaaSRail spec', { timeout: 10 * 60_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({});
  });
  after(() => stopAndCheck(d));

  test('every row is deployed as its own function and every scheduled request is answered', async () => {
    const plan = await runDeploySpec({ spec: SPEC, url: d.url, write: () => undefined });
    const { functions } = await d.client.call<{ functions: { name: string; memoryMiB: number; entry: string }[] }>('GET', '/v1/functions');
    assert.deepEqual(functions.map((f) => f.name).sort(), plan.map((p) => p.name).sort());
    assert.equal(functions.length, 5);
    assert.equal(functions.find((f) => f.name.startsWith('chameleon-'))!.memoryMiB, 640);

    const out = path.join(d.dir, 'records.jsonl');
    const s = await runReplayCommand({ trace: SPEC, format: 'faasrail', url: d.url, compress: 4, out, json: true, seed: 3, write: () => undefined });
    const records = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { function: string; status: number; startPath: string | null; error?: string });
    assert.equal(s.scheduled, 21, 'the spec holds 21 invocations');
    assert.equal(s.sent, s.scheduled);
    assert.equal(records.length, s.sent);
    assert.equal(s.errors, 0, JSON.stringify(records.filter((r) => r.status !== 200).slice(0, 3)));
    // each row's function was called as many times as its row says, under its own name
    const per = new Map<string, number>();
    for (const r of records) per.set(r.function, (per.get(r.function) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(per), { [plan[0]!.name]: 5, [plan[1]!.name]: 9, [plan[2]!.name]: 2, [plan[3]!.name]: 3, [plan[4]!.name]: 2 });
    assert.ok(records.every((r) => r.startPath !== null));
    assert.ok((s.byStartPath.cold ?? 0) + (s.byStartPath.restore ?? 0) >= 5, 'each function started at least once');

    // the functions did their work: a pyaes row's result, through the native API
    const r = await d.client.invoke(plan[1]!.name, { message_length: 64, num_iterations: 2 });
    assert.equal(r.status, 200);
    assert.equal((r.body.result as { message_length: number }).message_length, 64);
  });
});
