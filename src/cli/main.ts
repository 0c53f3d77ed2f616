// The `faascell` command line.

import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfigFile, ConfigError } from '../config/schema.js';
import { createLogger } from '../core/logger.js';
import { ApiError, Client, type InvokeBody } from './client.js';
import { runDoctor } from './doctor.js';
import { formatActivation } from './format.js';
import { VERSION } from '../version.js';

const program = new Command();
program.name('faascell').description('Intra-node orchestrator for serverless functions in microVMs').version(VERSION);

function client(cmd: Command): Client {
  const o = cmd.optsWithGlobals<{ url?: string; token?: string }>();
  return new Client({ url: o.url, token: o.token });
}

program.addOption(new Option('--url <url>', 'daemon URL (env FAASCELL_URL)').default(undefined));
program.addOption(new Option('--token <token>', 'API bearer token (env FAASCELL_TOKEN)'));

function configFrom(opts: { config?: string; stateDir?: string; host?: string; port?: string; accelerator?: string; logLevel?: string; cluster?: string; node?: string }): ReturnType<typeof loadConfigFile> {
  const overrides: Record<string, unknown> = {};
  // issue 13: --cluster nats://HOST:PORT joins a cluster (docs/cluster.md)
  if (opts.cluster || opts.node) overrides.cluster = { ...(opts.cluster ? { nats: opts.cluster } : {}), ...(opts.node ? { node: opts.node } : {}) };
  if (opts.stateDir) overrides.stateDir = path.resolve(opts.stateDir);
  const api: Record<string, unknown> = {};
  if (opts.host) api.host = opts.host;
  if (opts.port !== undefined) api.port = Number(opts.port);
  if (Object.keys(api).length) overrides.api = api;
  if (opts.accelerator) overrides.runtime = { accelerator: opts.accelerator };
  if (opts.logLevel) overrides.log = { level: opts.logLevel };
  return loadConfigFile(opts.config, overrides);
}

program
  .command('serve')
  .description('run the daemon')
  .option('--host <host>', 'listen address (default 127.0.0.1)')
  .option('--port <port>', 'listen port (default 8080)')
  .option('--state-dir <dir>', 'state directory (database, run dirs, snapshots)')
  .option('--config <file>', 'configuration file (YAML or JSON)')
  .option('--accelerator <mode>', 'auto | kvm | tcg')
  .option('--log-level <level>', 'debug | info | warn | error')
  .option('--cluster <url>', 'join a FaaSCell cluster through this NATS JetStream server (nats://HOST:PORT, comma-separated for several)')
  .option('--node <name>', 'this node\'s name in the cluster (default: host name + a hash of the state directory)')
  .action(async (opts: { host?: string; port?: string; stateDir?: string; config?: string; accelerator?: string; logLevel?: string; cluster?: string; node?: string }) => {
    const { config, baseDir } = configFrom(opts);
    const log = createLogger({ level: config.log.level });
    const { startDaemon } = await import('../daemon.js');
    const d = await startDaemon({ config, baseDir, log });
    let signals = 0;
    const onSignal = (sig: string): void => {
      if (++signals > 1) {
        log.warn('second signal: exiting now');
        process.exit(130);
      }
      log.info('signal received', { sig });
      d.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.stdout.write(`faascell listening on ${d.url} (accelerator ${d.accelerator}, image ${d.image.version})\n`);
  });

program
  .command('deploy')
  .description('create or update a function from a .js file, a .zip or a .tgz')
  .argument('<name>')
  .argument('<file>')
  .option('--memory <MiB>', 'guest memory', (v) => parseInt(v, 10))
  .option('--vcpus <n>', 'vCPUs', (v) => parseInt(v, 10))
  .option('--timeout <seconds>', 'run timeout', (v) => parseFloat(v))
  .option('--entry <name>', 'entry function (default main)')
  .option('--max-instances <n>', 'concurrent instances of this function', (v) => parseInt(v, 10))
  .option('--env <KEY=VALUE...>', 'environment variables')
  .option('--network <mode>', 'none (default: no network at all) or egress (only to --allow destinations, docs/network.md)')
  .option('--allow <dest...>', 'egress destinations: [tcp://|udp://]A.B.C.D[/N][:PORT[-PORT]]')
  .option('--json', 'print JSON')
  .action(async (name: string, file: string, opts: { memory?: number; vcpus?: number; timeout?: number; entry?: string; maxInstances?: number; env?: string[]; network?: string; allow?: string[]; json?: boolean }, cmd: Command) => {
    const code = readFileSync(file);
    const ext = file.toLowerCase();
    const codeKind = ext.endsWith('.zip') ? 'zip' : ext.endsWith('.tgz') || ext.endsWith('.tar.gz') ? 'tgz' : 'js';
    const env = Object.fromEntries((opts.env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const def = await client(cmd).deploy(name, code, {
      codeKind,
      memoryMiB: opts.memory,
      vcpus: opts.vcpus,
      timeoutMs: opts.timeout !== undefined ? Math.round(opts.timeout * 1000) : undefined,
      entry: opts.entry,
      maxInstances: opts.maxInstances,
      env: opts.env ? env : undefined,
      // the daemon validates mode and destinations (400 naming network.mode / network.allow[i])
      network: opts.network !== undefined || opts.allow ? { mode: (opts.network ?? 'egress') as 'none' | 'egress', allow: opts.allow ?? [] } : undefined,
    });
    const net = def.network as { mode?: string; allow?: string[] } | undefined;
    if (opts.json) console.log(JSON.stringify(def, null, 2));
    else console.log(`deployed ${String(def.name)} version ${String(def.version)} (${String(def.memoryMiB)} MiB, ${String(def.vcpus)} vCPU, timeout ${Number(def.timeoutMs) / 1000} s${net?.mode === 'egress' ? `, egress to ${(net.allow ?? []).join(' ')}` : ''})`);
  });

program
  .command('invoke')
  .description('invoke a function synchronously')
  .argument('<name>')
  .argument('[params]', 'JSON object', '{}')
  .option('--json', 'print {"result", "activation"} as JSON')
  .action(async (name: string, paramsText: string, opts: { json?: boolean }, cmd: Command) => {
    let params: unknown;
    try {
      params = JSON.parse(paramsText);
    } catch (err) {
      throw new CliError(`params: not valid JSON: ${(err as Error).message}`);
    }
    const r = await client(cmd).invoke(name, params);
    const body: InvokeBody = r.body;
    if (opts.json) {
      console.log(JSON.stringify(body, null, 2));
    } else {
      if (body.error) console.error(`error (${r.status} ${body.error.code}): ${body.error.message}`);
      else console.log(JSON.stringify(body.result, null, 2));
      if (body.activation) console.error(formatActivation(body.activation));
    }
    if (r.status >= 400) process.exitCode = 1;
  });

program
  .command('ls')
  .description('list functions')
  .option('--json')
  .action(async (opts: { json?: boolean }, cmd: Command) => {
    const { functions } = await client(cmd).call<{ functions: Array<Record<string, unknown>> }>('GET', '/v1/functions');
    if (opts.json) return console.log(JSON.stringify(functions, null, 2));
    if (functions.length === 0) return console.log('no functions');
    console.log(['NAME', 'VERSION', 'MEMORY', 'VCPUS', 'TIMEOUT', 'UPDATED'].join('\t'));
    for (const f of functions) console.log([f.name, f.version, `${String(f.memoryMiB)}MiB`, f.vcpus, `${Number(f.timeoutMs) / 1000}s`, new Date(Number(f.updatedAt)).toISOString()].join('\t'));
  });

program
  .command('rm')
  .description('delete a function (stops its instances, deletes its snapshots)')
  .argument('<name>')
  .action(async (name: string, _o: unknown, cmd: Command) => {
    await client(cmd).call('DELETE', `/v1/functions/${encodeURIComponent(name)}`);
    console.log(`deleted ${name}`);
  });

program
  .command('evict')
  .description("stop a function's warm instances now")
  .argument('<name>')
  .action(async (name: string, _o: unknown, cmd: Command) => {
    const r = await client(cmd).call<{ stopped: number }>('POST', `/v1/functions/${encodeURIComponent(name)}/evict`);
    console.log(`stopping ${r.stopped} instance(s) of ${name}`);
  });

program
  .command('activations')
  .description('list recent activation records')
  .option('--limit <n>', 'how many', (v) => parseInt(v, 10), 20)
  .option('--function <name>')
  .option('--json')
  .action(async (opts: { limit: number; function?: string; json?: boolean }, cmd: Command) => {
    const q = `?limit=${opts.limit}${opts.function ? `&function=${encodeURIComponent(opts.function)}` : ''}`;
    const { activations } = await client(cmd).call<{ activations: NonNullable<InvokeBody['activation']>[] }>('GET', `/v1/activations${q}`);
    if (opts.json) return console.log(JSON.stringify(activations, null, 2));
    for (const a of activations) console.log(formatActivation(a));
  });

program
  .command('status')
  .description('instances, queues, memory, snapshots')
  .action(async (_o: unknown, cmd: Command) => {
    console.log(JSON.stringify(await client(cmd).call('GET', '/v1/status'), null, 2));
  });

const image = program.command('image').description('the guest image');
image
  .command('build')
  .description('build (or find cached) guest kernel, initramfs and root filesystem')
  .option('--config <file>')
  .option('--kernel <kind>', 'auto | minimal | debian')
  .option('--force', 'rebuild even if cached')
  .action(async (opts: { config?: string; kernel?: 'auto' | 'minimal' | 'debian'; force?: boolean }) => {
    const { config } = loadConfigFile(opts.config);
    const { buildImage } = await import('../image/builder.js');
    const img = await buildImage({ ...config.image, cacheDir: config.cacheDir, kernel: opts.kernel ?? config.image.kernel, force: opts.force, log: (l) => console.error(l) });
    const mb = (b: number): string => (b / 1048576).toFixed(1) + ' MiB';
    console.log(`guest image ${img.version} (${img.kernelKind} kernel) in ${img.dir}${img.cached ? ' (cached)' : ` built in ${(img.buildMs / 1000).toFixed(1)} s`}`);
    console.log(`  kernel ${mb(img.sizes.kernelBytes)}, initramfs ${mb(img.sizes.initrdBytes)}, root fs ${mb(img.sizes.rootfsBytes)}`);
  });

program
  .command('doctor')
  .description('check what is installed, which accelerator runs, and what is missing')
  .option('--config <file>')
  .option('--json')
  .action(async (opts: { config?: string; json?: boolean }) => {
    const { config } = loadConfigFile(opts.config);
    const checks = await runDoctor(config);
    if (opts.json) console.log(JSON.stringify(checks, null, 2));
    else for (const c of checks) console.log(`${c.ok ? 'ok  ' : c.optional ? 'warn' : 'FAIL'} ${c.name.padEnd(18)} ${c.detail}${c.fix && !c.ok ? `\n     fix: ${c.fix}` : ''}`);
    if (checks.some((c) => !c.ok && !c.optional)) process.exitCode = 1;
  });

const config = program.command('config').description('configuration');
config
  .command('print')
  .description('print the effective configuration (defaults filled in)')
  .option('--config <file>')
  .action((opts: { config?: string }) => {
    const { config: c } = loadConfigFile(opts.config);
    console.log(JSON.stringify({ ...c, api: { ...c.api, token: c.api.token ? '(set)' : undefined } }, null, 2));
  });

await registerOptionalCommands(program);

class CliError extends Error {}

async function registerOptionalCommands(p: Command): Promise<void> {
  const { registerExtraCommands } = await import('./extra.js');
  registerExtraCommands(p);
  const { registerClusterCommands } = await import('../cluster/cli.js');
  registerClusterCommands(p); // issue 13: cluster status, activation lookup
  const { registerTraceCommands } = await import('../traffic/cli.js');
  registerTraceCommands(p); // issue 23: trace export
  const { registerWhatIfCommand } = await import('../whatif/cli.js');
  registerWhatIfCommand(p); // issue 23: what-if on the node's own traffic
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ApiError) {
    const e = err.body.error;
    console.error(`error (${err.status}${e?.code ? ' ' + e.code : ''}): ${err.message}${e?.field ? ` [field: ${e.field}]` : ''}`);
  } else if (err instanceof ConfigError || err instanceof CliError) {
    console.error(`error: ${err.message}`);
  } else {
    console.error(`error: ${(err as Error).message ?? String(err)}`);
  }
  process.exitCode = 1;
}
