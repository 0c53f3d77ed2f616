// The `faascell` command line. Only commander and the version load up front: every command
// imports what it needs when it runs (issue 20: `--version` and a warm `invoke` must answer
// in well under a second, and the daemon's modules — zod, pino, fastify, SQLite — cost more
// than that to load).

import { Command, Option } from 'commander';
import type { Config } from '../config/schema.js';
import type { Client } from './client.js';
import { VERSION } from '../version.js';

const program = new Command();
program
  .name('faascell')
  .description('Intra-node orchestrator for serverless functions in microVMs')
  .version(VERSION)
  .showHelpAfterError('(faascell COMMAND --help shows a command\'s options)');

async function client(cmd: Command): Promise<Client> {
  const o = cmd.optsWithGlobals<{ url?: string; token?: string }>();
  const { Client } = await import('./client.js');
  return new Client({ url: o.url, token: o.token });
}

program.addOption(new Option('--url <url>', 'daemon URL, or unix:PATH for its API socket (env FAASCELL_URL; default: the socket in the state directory when it exists, else http://127.0.0.1:8080)').default(undefined));
program.addOption(new Option('--token <token>', 'API bearer token (env FAASCELL_TOKEN)'));

interface ServeOpts {
  config?: string;
  stateDir?: string;
  host?: string;
  port?: string;
  accelerator?: string;
  logLevel?: string;
  cluster?: string;
  node?: string;
  cleanOnExit?: boolean;
}

async function configFrom(opts: ServeOpts): Promise<{ config: Config; baseDir: string }> {
  const path = await import('node:path');
  const { loadConfigFile } = await import('../config/schema.js');
  const overrides: Record<string, unknown> = {};
  // --cluster nats://HOST:PORT joins a cluster (docs/cluster.md)
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
  .description('run the daemon (in the foreground; Ctrl-C or SIGTERM stops it and its VMs)')
  .option('--host <host>', 'listen address (default 127.0.0.1; any other needs api.token)')
  .option('--port <port>', 'listen port (default 8080; 0 picks a free one)')
  .option('--state-dir <dir>', 'state directory: database, run dirs, disk snapshots (default ~/.local/state/faascell)')
  .option('--config <file>', 'configuration file (YAML or JSON; docs/configuration.md)')
  .option('--accelerator <mode>', 'auto | kvm | tcg (default auto)')
  .option('--log-level <level>', 'debug | info | warn | error (default info)')
  .option('--cluster <url>', 'join a FaaSCell cluster through this NATS JetStream server (nats://HOST:PORT, comma-separated for several)')
  .option('--node <name>', "this node's name in the cluster (default: host name + a hash of the state directory)")
  .option('--clean-on-exit', 'at a clean stop, remove this state directory\'s snapshot tiers too (by default snapshots are kept for the next start)')
  .addHelpText('after', '\nSnapshots on a tmpfs tier (/dev/shm) stay after a clean stop, so the next start with the same state directory restores\ninstead of cold-booting; the stop message says how much. `faascell gc --state-dir DIR` removes them later.')
  .action(async (opts: ServeOpts) => {
    const { config, baseDir } = await configFrom(opts);
    const { createLogger } = await import('../core/logger.js');
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
      d.stop()
        .then(() => afterStop(config, opts.cleanOnExit === true))
        .then(
          () => process.exit(0),
          () => process.exit(1),
        );
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.stdout.write(`faascell listening on ${d.url} (accelerator ${d.accelerator}, image ${d.image.version}${d.socket && !d.url.startsWith('unix:') ? `, socket ${d.socket}` : ''})\n`);
  });

/** The stop message (issue 20 item 6): what stays on the snapshot tiers, or that it was removed. */
async function afterStop(config: Config, clean: boolean): Promise<void> {
  const { effectiveTiers } = await import('../config/schema.js');
  const { ownedTiers, removeTiers, formatBytes } = await import('../snapshots/tier-gc.js');
  const tiers = ownedTiers(config.stateDir, config.snapshots.enabled ? effectiveTiers(config) : []).filter((t) => t.bytes > 0 || clean);
  const total = formatBytes(tiers.reduce((a, t) => a + t.bytes, 0));
  if (clean) {
    removeTiers(tiers);
    process.stdout.write(`faascell stopped; removed its snapshot tiers (${total}${tiers.length ? ': ' + tiers.map((t) => t.path).join(', ') : ''})\n`);
  } else if (tiers.length > 0) {
    process.stdout.write(
      `faascell stopped; its snapshots stay for the next start (${total}: ${tiers.map((t) => `${t.path} ${formatBytes(t.bytes)}`).join(', ')}).\n` +
        `Remove them with \`faascell gc --state-dir ${config.stateDir}\` (or serve with --clean-on-exit).\n`,
    );
  } else {
    process.stdout.write('faascell stopped\n');
  }
}

program
  .command('gc')
  .description("remove a stopped daemon's snapshot tiers (only that state directory's; refused while its daemon runs)")
  .option('--state-dir <dir>', 'the state directory (default: --config\'s, else ~/.local/state/faascell)')
  .option('--config <file>', 'the configuration the daemon ran with (its snapshots.tiers)')
  .option('--dry-run', 'only list what would be removed')
  .action(async (opts: { stateDir?: string; config?: string; dryRun?: boolean }) => {
    const { config } = await configFrom({ stateDir: opts.stateDir, config: opts.config });
    const { runningDaemon } = await import('../core/state-dir.js');
    const pid = runningDaemon(config.stateDir);
    if (pid !== undefined) throw new CliError(`a daemon (pid ${pid}) runs on ${config.stateDir}: stop it first (its snapshots are in use)`);
    const { effectiveTiers } = await import('../config/schema.js');
    const { ownedTiers, removeTiers, formatBytes } = await import('../snapshots/tier-gc.js');
    const tiers = ownedTiers(config.stateDir, effectiveTiers(config));
    if (tiers.length === 0) return console.log(`no snapshot tiers of ${config.stateDir}`);
    for (const t of tiers) console.log(`${opts.dryRun ? 'would remove' : 'removing'} ${t.name} ${t.path} (${formatBytes(t.bytes)})`);
    if (!opts.dryRun) removeTiers(tiers);
  });

program
  .command('deploy')
  .description('create or update a function from a .js file (CommonJS or ES module) or a .py file, a .zip or a .tgz')
  .argument('<name>', 'function name')
  .argument('<file>', 'the code: a .js/.mjs/.cjs or .py file, or a .zip/.tgz with a package.json "main" (Python: a __main__.py)')
  .option('--runtime <runtime>', 'nodejs20 or python3 (default: python3 for a .py file, else nodejs20)')
  .option('--memory <MiB>', 'guest memory (default 256: the daemon\'s functionDefaults.memoryMiB)', (v) => parseInt(v, 10))
  .option('--vcpus <n>', 'vCPUs (default 1: functionDefaults.vcpus)', (v) => parseInt(v, 10))
  .option('--timeout <seconds>', 'run (and init) timeout (default 30: functionDefaults.timeoutMs)', (v) => parseFloat(v))
  .option('--entry <name>', 'entry function (default main)')
  .option('--max-instances <n>', 'concurrent instances of this function (default: functionDefaults.maxInstances)', (v) => parseInt(v, 10))
  .option('--share <weight>', 'its weight when the node is overloaded: capacity goes max-min fair in proportion to the shares (default 1)', (v) => Number(v))
  .option('--env <KEY=VALUE...>', 'environment variables')
  .option('--network <mode>', 'none (default: no network at all) or egress (only to --allow destinations, docs/network.md)')
  .option('--allow <dest...>', 'egress destinations: [tcp://|udp://]A.B.C.D[/N][:PORT[-PORT]]')
  .option('--no-syntax-check', 'upload a .js file even if it does not parse (it fails at its first init)')
  .option('--json', 'print the deployed definition as JSON')
  .action(async (name: string, file: string, opts: { runtime?: string; memory?: number; vcpus?: number; timeout?: number; entry?: string; maxInstances?: number; share?: number; env?: string[]; network?: string; allow?: string[]; syntaxCheck: boolean; json?: boolean }, cmd: Command) => {
    const { readFileSync } = await import('node:fs');
    let code: Buffer;
    try {
      code = readFileSync(file);
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const ext = file.toLowerCase();
    // issue 21: the daemon checks the runtime's name (400 naming runtime)
    const runtime = opts.runtime ?? (ext.endsWith('.py') ? 'python3' : 'nodejs20');
    const codeKind = ext.endsWith('.zip') ? 'zip' : ext.endsWith('.tgz') || ext.endsWith('.tar.gz') ? 'tgz' : runtime === 'python3' ? 'py' : 'js';
    // JavaScript is checked here; a runtime name the daemon does not know is its 400 (naming runtime), not a syntax error
    if (codeKind === 'js' && runtime === 'nodejs20' && opts.syntaxCheck) {
      const { checkSyntax } = await import('./syntax-check.js');
      const r = await checkSyntax(file, code.toString('utf8'));
      if (!r.ok) throw new CliError(`${r.location}: ${r.message}\nnot deployed: the function would fail at its first init (--no-syntax-check deploys it anyway)`);
    }
    const env = Object.fromEntries((opts.env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const def = await (await client(cmd)).deploy(name, code, {
      codeKind,
      runtime,
      memoryMiB: opts.memory,
      vcpus: opts.vcpus,
      timeoutMs: opts.timeout !== undefined ? Math.round(opts.timeout * 1000) : undefined,
      entry: opts.entry,
      maxInstances: opts.maxInstances,
      share: opts.share,
      env: opts.env ? env : undefined,
      // the daemon validates mode and destinations (400 naming network.mode / network.allow[i])
      network: opts.network !== undefined || opts.allow ? { mode: (opts.network ?? 'egress') as 'none' | 'egress', allow: opts.allow ?? [] } : undefined,
    });
    const net = def.network as { mode?: string; allow?: string[] } | undefined;
    if (opts.json) console.log(JSON.stringify(def, null, 2));
    else console.log(`deployed ${String(def.name)} version ${String(def.version)} (${String(def.runtime)}, ${String(def.memoryMiB)} MiB, ${String(def.vcpus)} vCPU, timeout ${Number(def.timeoutMs) / 1000} s${net?.mode === 'egress' ? `, egress to ${(net.allow ?? []).join(' ')}` : ''})`);
  });

program
  .command('invoke')
  .description('invoke a function and wait for its result')
  .argument('<name>', 'function name')
  .argument('[params]', 'parameters: a JSON object', '{}')
  .option('--json', 'print {"result", "activation"} (or {"error", "activation"}) as JSON on stdout')
  .addHelpText(
    'after',
    '\nThe result goes to stdout; a one-line activation summary goes to stderr (id, status, start path, total time\n' +
      'and its stages). A failed call prints the error, the function\'s logs and, for code that does not load,\n' +
      'the file and line, and exits with status 1. `faascell activation ID` shows the record again.',
  )
  .action(async (name: string, paramsText: string, opts: { json?: boolean }, cmd: Command) => {
    let params: unknown;
    try {
      params = JSON.parse(paramsText);
    } catch (err) {
      throw new CliError(`params: not valid JSON: ${(err as Error).message}`);
    }
    const r = await (await client(cmd)).invoke(name, params);
    const body = r.body;
    const { formatActivation, formatFailure } = await import('./format.js');
    if (opts.json) {
      console.log(JSON.stringify(body, null, 2));
    } else {
      if (body.error) console.error(formatFailure(body.error, body.activation, r.status));
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
    const { functions } = await (await client(cmd)).call<{ functions: Array<Record<string, unknown>> }>('GET', '/v1/functions');
    if (opts.json) return console.log(JSON.stringify(functions, null, 2));
    if (functions.length === 0) return console.log('no functions');
    console.log(['NAME', 'VERSION', 'RUNTIME', 'MEMORY', 'VCPUS', 'TIMEOUT', 'UPDATED'].join('\t'));
    for (const f of functions) console.log([f.name, f.version, f.runtime, `${String(f.memoryMiB)}MiB`, f.vcpus, `${Number(f.timeoutMs) / 1000}s`, new Date(Number(f.updatedAt)).toISOString()].join('\t'));
  });

program
  .command('rm')
  .description('delete a function (stops its instances, deletes its snapshots)')
  .argument('<name>')
  .action(async (name: string, _o: unknown, cmd: Command) => {
    await (await client(cmd)).call('DELETE', `/v1/functions/${encodeURIComponent(name)}`);
    console.log(`deleted ${name}`);
  });

program
  .command('evict')
  .description("stop a function's warm instances now (its snapshot stays: the next call restores)")
  .argument('<name>')
  .action(async (name: string, _o: unknown, cmd: Command) => {
    const r = await (await client(cmd)).call<{ stopped: number }>('POST', `/v1/functions/${encodeURIComponent(name)}/evict`);
    console.log(`stopping ${r.stopped} instance(s) of ${name}`);
  });

program
  .command('activations')
  .description('list recent activation records, newest first, one page (--cursor continues; the short ids work with `faascell activation`)')
  .option('--limit <n>', 'how many (at most 1000 per page)', (v) => parseInt(v, 10), 20)
  .option('--function <name>', 'only this function')
  .option('--since <ms>', 'received at or after this epoch ms', (v) => parseInt(v, 10))
  .option('--cursor <next>', "continue after a page (its `next`)")
  .option('--logs', "each record's logs too (a page then carries at most 8 MiB of them)")
  .option('--json')
  .action(async (opts: { limit: number; function?: string; since?: number; cursor?: string; logs?: boolean; json?: boolean }, cmd: Command) => {
    const q = new URLSearchParams({ limit: String(opts.limit) });
    if (opts.function) q.set('function', opts.function);
    if (opts.since !== undefined) q.set('since', String(opts.since));
    if (opts.cursor) q.set('cursor', opts.cursor);
    if (opts.logs) q.set('logs', 'true');
    const page = await (await client(cmd)).call<{ activations: Array<Parameters<typeof import('./format.js').formatActivation>[0] & { logs?: string[] }>; next?: string }>('GET', `/v1/activations?${q.toString()}`);
    if (opts.json) return console.log(JSON.stringify(page, null, 2));
    const { formatActivation } = await import('./format.js');
    if (page.activations.length === 0) console.log('no activations');
    for (const a of page.activations) {
      console.log(formatActivation(a));
      for (const l of a.logs ?? []) console.log(`    ${l}`);
    }
    if (page.next) console.error(`more: faascell activations --cursor ${page.next}`);
  });

program
  .command('status')
  .description('a summary of the node: instances, queues, memory, snapshots, counters')
  .option('--json', 'the whole status object')
  .action(async (opts: { json?: boolean }, cmd: Command) => {
    const s = await (await client(cmd)).call<Parameters<typeof import('./format.js').formatStatus>[0]>('GET', '/v1/status');
    if (opts.json) return console.log(JSON.stringify(s, null, 2));
    const { formatStatus } = await import('./format.js');
    console.log(formatStatus(s));
  });

const image = program.command('image').description('the guest image');
image
  .command('build')
  .description('build (or find cached) guest kernel, initramfs and root filesystem')
  .option('--config <file>')
  .option('--kernel <kind>', 'auto | minimal | debian (default: image.kernel, auto)')
  .option('--force', 'rebuild even if cached')
  .option('--runtime <runtime>', 'nodejs20 (default) or python3: the Python image, from Debian packages (docs/python.md)', 'nodejs20')
  .option('--root-fs-only', 'python3: build (or find) only the root fs, not the kernel nor the image (the set-up runs it beside the Node image build)')
  .action(async (opts: { config?: string; kernel?: 'auto' | 'minimal' | 'debian'; force?: boolean; runtime: string; rootFsOnly?: boolean }) => {
    const { config } = await configFrom({ config: opts.config });
    const { isFunctionRuntime } = await import('../runtimes/function-runtime.js');
    if (!isFunctionRuntime(opts.runtime)) throw new CliError(`--runtime: expected nodejs20 or python3, got ${opts.runtime}`);
    const buildOpts = { ...config.image, cacheDir: config.cacheDir, kernel: opts.kernel ?? config.image.kernel, force: opts.force, log: (l: string) => console.error(l) };
    // issue 21: the Python image is built from Debian's packages (minutes the first time)
    if (opts.rootFsOnly && opts.runtime !== 'python3') throw new CliError('--root-fs-only: only with --runtime python3');
    if (opts.rootFsOnly) {
      await (await import('../image/python.js')).buildPythonImage({ ...buildOpts, rootfsOnly: true });
      console.log('python3 root fs ready (the image around it: faascell image build --runtime python3)');
      return;
    }
    const img = opts.runtime === 'python3' ? await (await import('../image/python.js')).buildPythonImage(buildOpts) : await (await import('../image/builder.js')).buildImage(buildOpts);
    if (!img) throw new CliError('no image built');
    const mb = (b: number): string => (b / 1048576).toFixed(1) + ' MiB';
    console.log(`guest image ${img.version} (${opts.runtime}, ${img.kernelKind} kernel) in ${img.dir}${img.cached ? ' (cached)' : ` built in ${(img.buildMs / 1000).toFixed(1)} s`}`);
    console.log(`  kernel ${mb(img.sizes.kernelBytes)}, initramfs ${mb(img.sizes.initrdBytes)}, root fs ${mb(img.sizes.rootfsBytes)}`);
    // issue 24: the host-side launcher limits.vmmThp 'off' starts VMMs through (cached by its source's hash)
    const thp = await (await import('../runtimes/jail/thp.js')).ensureThpOffLauncher(config.cacheDir);
    console.log(thp.ok ? `VMM THP-off launcher ${thp.path}${thp.built ? ' (built)' : ' (cached)'}` : `VMM THP-off launcher not built (${thp.detail}): limits.vmmThp off falls back to the host's THP`);
  });

program
  .command('doctor')
  .description('check what is installed, which accelerator runs, and what is missing')
  .option('--config <file>')
  .option('--json')
  .action(async (opts: { config?: string; json?: boolean }) => {
    const { config } = await configFrom({ config: opts.config });
    const { runDoctor } = await import('./doctor.js');
    const checks = await runDoctor(config);
    if (opts.json) console.log(JSON.stringify(checks, null, 2));
    else for (const c of checks) console.log(`${c.ok ? 'ok  ' : c.optional ? 'warn' : 'FAIL'} ${c.name.padEnd(18)} ${c.detail}${c.fix && !c.ok ? `\n     fix: ${c.fix}` : ''}`);
    if (checks.some((c) => !c.ok && !c.optional)) process.exitCode = 1;
  });

const config = program.command('config').description('configuration');
config
  .command('print')
  .description('print the effective configuration (defaults filled in; the token is never printed)')
  .option('--config <file>', 'a YAML or JSON file (faascell.yaml in the project root is a commented example)')
  .action(async (opts: { config?: string }) => {
    const { config: c } = await configFrom({ config: opts.config });
    console.log(JSON.stringify({ ...c, api: { ...c.api, token: c.api.token ? '(set)' : undefined } }, null, 2));
  });

/** A mistake on the command line, reported as `error: MESSAGE` with status 1. */
class CliError extends Error {}

const { registerExtraCommands } = await import('./extra.js');
registerExtraCommands(program);
const { registerClusterCommands } = await import('../cluster/cli.js');
registerClusterCommands(program); // cluster status, activation lookup
const { registerTraceCommands } = await import('../traffic/cli.js');
registerTraceCommands(program); // issue 23: trace export
const { registerWhatIfCommand } = await import('../whatif/cli.js');
registerWhatIfCommand(program); // issue 23: what-if on the node's own traffic

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const { ApiError } = await import('./client.js');
  if (err instanceof ApiError) {
    const e = err.body.error;
    console.error(`error (${err.status}${e?.code ? ' ' + e.code : ''}): ${err.message}${e?.field ? ` [field: ${e.field}]` : ''}`);
  } else {
    // CliError, ConfigError (names the key) and the client's "cannot reach the daemon" say it all
    console.error(`error: ${(err as Error).message ?? String(err)}`);
  }
  process.exitCode = 1;
}
