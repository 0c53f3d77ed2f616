import { readFileSync } from 'node:fs';
import { startDaemon } from './test/helpers/daemon.js';
const d = await startDaemon({ log: { level: 'info' } });
try {
  for (const [name, file, mem] of [['hello-py', '/tmp/hello.py', 256], ['np', '/tmp/np.py', 512]] as const) {
    const t0 = Date.now();
    console.log(await d.client.deploy(name, readFileSync(file), { runtime: 'python3', memoryMiB: mem, timeoutMs: 300_000 }).then((x) => x.runtime));
    for (let i = 0; i < 3; i++) {
      const r = await d.client.invoke(name, { name: 'x' });
      console.log(name, i, Date.now() - t0, r.status, JSON.stringify(r.body.result ?? r.body.error), r.body.activation?.startPath, r.body.activation?.totalMs, JSON.stringify(r.body.activation?.startDetails));
      if (i === 0) await d.client.call('POST', `/v1/functions/${name}/evict`);
      await new Promise((res) => setTimeout(res, 1000));
    }
  }
} finally {
  await d.stop();
  console.log(d.logs().split('\n').filter((l) => /python|error|warn/i.test(l)).slice(-15).join('\n'));
}
