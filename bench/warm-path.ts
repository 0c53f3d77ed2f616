// The daemon's own cost of a warm invocation, without a VM: the real Dispatcher, VmPool (decision core),
// Worker, PerfManager and HTTP API around a fake driver whose runs answer at once. What is left of a warm
// call's time on a real node beyond this is the channel round trip and the guest (faascell bench startup).
//   npx tsx bench/warm-path.ts [--calls 5000] [--rounds 5]
import http from 'node:http';
import { buildApi } from '../src/api/server.js';
import { deploy, harness } from '../test/helpers/pool-harness.js';
import { machine, summarize } from './common.js';

const arg = (k: string, d: number): number => {
  const i = process.argv.indexOf(k);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const calls = arg('--calls', 5000);
const rounds = arg('--rounds', 5);

const h = await harness({ behaviour: { runMs: 0 }, pool: { starts: { maxConcurrent: 2 } } });
deploy(h, 'f');
const app = await buildApi({ registry: h.registry, dispatcher: h.dispatcher, pool: h.pool, perf: h.perf, bodyLimitBytes: 1 << 20, maxCodeBytes: 1 << 20, info: () => ({}) });
await app.listen({ host: '127.0.0.1', port: 0 });
const port = (app.server.address() as { port: number }).port;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const call = (): Promise<void> =>
  new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/functions/f/invoke', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end('{"ms":0}');
  });
await call();
const actors: number[] = [];
const viaHttp: number[] = [];
for (let r = 0; r < rounds; r++) {
  let t0 = performance.now();
  for (let i = 0; i < calls; i++) await h.invoke('f', { ms: 0 });
  actors.push(((performance.now() - t0) * 1000) / calls);
  t0 = performance.now();
  for (let i = 0; i < calls; i++) await call();
  viaHttp.push(((performance.now() - t0) * 1000) / calls);
}
const a = summarize(actors);
const b = summarize(viaHttp);
console.log(`warm path without a VM, ${calls} calls × ${rounds} rounds (µs per call, median of rounds / slowest round):`);
console.log(`  Dispatcher → VmPool → Worker → PerfManager: ${a.median.toFixed(1)} / ${a.max.toFixed(1)}`);
console.log(`  + HTTP API and a keep-alive client in the same process: ${b.median.toFixed(1)} / ${b.max.toFixed(1)}`);
console.log(`machine: ${JSON.stringify(machine())}`);
await app.close();
await h.close();
