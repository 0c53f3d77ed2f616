// Starts a real nats-server with JetStream (file storage in a temporary directory)
// on 127.0.0.1 for a test, and stops it. Restarting keeps the same port and store.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/observability.js';
/** Why nats-server cannot run here, or undefined when it can. */
export function natsServerMissing() {
    try {
        execFileSync('nats-server', ['--version'], { stdio: 'ignore' });
        return undefined;
    }
    catch {
        return 'nats-server is not installed (Debian package nats-server; scripts/setup.sh installs it)';
    }
}
async function waitPort(port, timeoutMs) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const ok = await new Promise((r) => {
            const c = net.connect(port, '127.0.0.1');
            c.once('connect', () => {
                c.destroy();
                r(true);
            });
            c.once('error', () => r(false));
        });
        if (ok)
            return;
        if (Date.now() > end)
            throw new Error(`nats-server did not listen on ${port} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
    }
}
export async function startNatsServer() {
    const missing = natsServerMissing();
    if (missing)
        throw new Error(missing);
    const storeDir = mkdtempSync(path.join(os.tmpdir(), 'fc-nats-'));
    const port = await freePort();
    let logs = '';
    let proc;
    let exited;
    const launch = async () => {
        proc = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
        proc.stdout.on('data', (d) => (logs += d.toString()));
        proc.stderr.on('data', (d) => (logs += d.toString()));
        exited = new Promise((r) => proc.once('exit', () => r()));
        await waitPort(port, 10_000);
    };
    await launch();
    // a test process that ends without cleanup() (a crash, a cancelled run) leaves no nats-server behind
    const onExit = () => {
        if (proc.exitCode === null && proc.signalCode === null)
            proc.kill('SIGKILL');
    };
    process.once('exit', onExit);
    const srv = {
        url: `nats://127.0.0.1:${port}`,
        port,
        storeDir,
        get proc() {
            return proc;
        },
        logs: () => logs,
        async stop(signal = 'SIGTERM') {
            if (proc.exitCode === null && proc.signalCode === null)
                proc.kill(signal);
            let timer;
            await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
            clearTimeout(timer); // a pending timer would keep the test process alive
        },
        async restart() {
            await srv.stop();
            await launch();
        },
        async cleanup() {
            await srv.stop('SIGKILL');
            process.removeListener('exit', onExit);
            rmSync(storeDir, { recursive: true, force: true });
            if (proc.exitCode === null && proc.signalCode === null)
                throw new Error(`nats-server (pid ${proc.pid}) did not exit`);
        },
    };
    return srv;
}
//# sourceMappingURL=nats-server.js.map