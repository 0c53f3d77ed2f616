// What the cluster's queue deadline costs a pull (issue 18): one claim created in the claims KV bucket
// (src/cluster/claims.ts) before a node runs an invocation. A real nats-server (file storage) on loopback.
//   npx tsx bench/claim-cost.ts [--n 2000]   (no VMs: no VM lock)
import os from 'node:os';
import { Claims } from '../src/cluster/claims.js';
import { clusterConfigSchema } from '../src/cluster/config.js';
import { connectBroker, openClaims } from '../src/cluster/connection.js';
import { createLogger } from '../src/core/logger.js';
import { startNatsServer } from '../test/cluster-helpers/nats-server.js';
import { machine, summarize } from './common.js';

const i = process.argv.indexOf('--n');
const n = i > 0 ? Number(process.argv[i + 1]) : 2000;
const nats = await startNatsServer();
try {
  const b = await connectBroker(clusterConfigSchema.parse({ nats: nats.url }), 'claim-cost', createLogger({ level: 'warn' }));
  const claims = new Claims(await openClaims(b));
  const lat: number[] = [];
  for (let k = 0; k < n + 100; k++) {
    const t0 = performance.now();
    await claims.create(`bench-${k}`, { state: 'taken', node: 'n1', at: Date.now(), heldAt: Date.now() });
    if (k >= 100) lat.push(performance.now() - t0); // the first 100 warm the connection
  }
  const s = summarize(lat);
  process.stdout.write(`${new Date().toISOString()} claim create (KV create, file storage, loopback): n ${n}, p50 ${s.median.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, max ${s.max.toFixed(3)} ms; load ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')} (machine shared with other agents); ${JSON.stringify(machine())}\n`);
  await b.nc.close();
} finally {
  await nats.cleanup();
}
