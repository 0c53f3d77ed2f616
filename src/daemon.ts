// The daemon: wires configuration, database, guest image, runtime driver,
// policies and actors together, serves the HTTP API, and shuts everything down
// cleanly (no VMM process, socket or run directory left behind).

import type { FastifyInstance } from 'fastify';
import { isIP, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { existingAncestor, isTmpfs } from './runtimes/ram-file.js';
import { buildApi } from './api/server.js';
import { ActorSystem, errText, type ActorRef } from './core/actor.js';
import { createLogger, type Logger } from './core/logger.js';
import { apiSocketPath, effectiveTiers, type Config } from './config/schema.js';
import { Dispatcher, type DispatcherMsg } from './dispatcher/dispatcher.js';
import { buildImage, findImage } from './image/builder.js';
import { buildPythonImage, findPythonImage } from './image/python.js';
import type { FunctionRuntime } from './runtimes/function-runtime.js';
import { NetworkManager, type NetworkMsg } from './network/network-manager.js';
import { networkOptions } from './network/options.js';
import { PerfManager, type PerfMsg } from './perf/perf-manager.js';
import { createPolicies } from './policies/index.js';
import { openDb, tightenStateDir, type Db } from './registry/db.js';
import { Registry } from './registry/registry.js';
import { createDriver } from './runtimes/index.js';
import { setupIsolation, undoIsolationIfFails, type IsolationSetup } from './runtimes/jail/setup.js';
import { vmmThpOffLauncher } from './runtimes/jail/thp.js';
import { lookupGroup } from './runtimes/jail/ids.js';
import { detectAccelerator } from './runtimes/qemu/accel.js';
import type { Accelerator, GuestImage, RuntimeDriver } from './runtimes/types.js';
import { SnapshotManager } from './snapshots/manager.js';
import { reclaimTiers } from './snapshots/tier-owner.js';
import { removeDaemonPid, writeDaemonPid } from './core/state-dir.js';
import type { SnapshotMsg } from './snapshots/types.js';
import { HttpSource, MAX_SOCKET_PATH } from './sources/http.js';
import type { Source } from './sources/types.js';
import { VERSION } from './version.js';
import { hostCores, VmPool, type PoolConfig, type PoolMsg } from './vmpool/pool.js';
import { readHostMemory } from './vmpool/host-memory.js';
import { startKsm, type KsmSession } from './vmpool/ksm.js';
import type { CgroupStatus } from './runtimes/jail/cgroups.js';
import { realClock } from './core/clock.js';
import { joinCluster } from './cluster/index.js';
import { OwEntities } from './sources/openwhisk/entities.js';
import { OpenWhiskService } from './sources/openwhisk/service.js';
import { OPENWHISK_PREFIX } from './sources/openwhisk/index.js';
import type { Tier } from './config/schema.js';
// observability (issue 11)
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Telemetry, withActivationHook } from './telemetry/telemetry.js';
import { PUBLIC_UI_PATHS } from './ui/routes.js';
import { registerTrafficRoutes } from './traffic/routes.js';
import { registerWhatIfRoutes } from './whatif/routes.js';

export interface Daemon {
  readonly url: string;
  /** the API's unix socket (issue 19), when it has one */
  readonly socket?: string;
  readonly config: Config;
  readonly accelerator: Accelerator;
  readonly acceleratorReason: string;
  readonly image: GuestImage;
  /** issue 21: the images of the other runtimes this node has (python3) */
  readonly images: Partial<Record<FunctionRuntime, GuestImage>>;
  readonly registry: Registry;
  readonly pool: ActorRef<PoolMsg>;
  readonly dispatcher: ActorRef<DispatcherMsg>;
  readonly perf: ActorRef<PerfMsg>;
  readonly snapshots?: ActorRef<SnapshotMsg>;
  readonly app: FastifyInstance;
  readonly telemetry: Telemetry;
  stop(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  /** directory user policy modules are resolved from (the config file's) */
  baseDir?: string;
  log?: Logger;
  /** build the guest image when it is missing (default true) */
  buildImageIfMissing?: boolean;
  /** extra OpenTelemetry span processors (tests: an in-memory exporter) */
  spanProcessors?: SpanProcessor[];
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

export async function startDaemon(opts: StartOptions): Promise<Daemon> {
  const cfg = opts.config;
  const log = opts.log ?? createLogger({ level: cfg.log.level });
  // secrets at rest (issue 19): every file the daemon creates from here on (database, snapshots,
  // console logs, run directories) is its user's alone; what a VMM must read is given its mode
  // explicitly (the guest image, the jail's directories, a snapshot's RAM file)
  process.umask(0o077);
  tightenStateDir(cfg.stateDir); // before anything is written into it (0700, an existing one too)
  if (cfg.api.tcp && !isLoopback(cfg.api.host) && !cfg.api.token) {
    throw new Error(`api.host ${cfg.api.host} is not a loopback address: set api.token (or FAASCELL_TOKEN) so the API is not open to the network`);
  }
  let socketPath = apiSocketPath(cfg);
  if (socketPath && cfg.api.socket === undefined && Buffer.byteLength(socketPath) > MAX_SOCKET_PATH && cfg.api.tcp) {
    // the default place does not fit a socket's path: TCP only, said loudly (a configured api.socket that long is an error)
    log.warn('no API socket: the state directory\'s path is too long for one; set api.socket to a shorter path', { path: socketPath, maxBytes: MAX_SOCKET_PATH });
    socketPath = undefined;
  }
  const socketGid = cfg.api.socketGroup === undefined ? undefined : lookupGroup(cfg.api.socketGroup);
  if (cfg.api.socketGroup !== undefined && socketGid === undefined) throw new Error(`api.socketGroup: no group ${cfg.api.socketGroup}`);

  // guest image: built once into the cache, rebuilt only when its inputs change
  // buildImage is idempotent: about a second when the image matches the tree, minutes
  // only when an input (kernel config, /init, agent, Node) changed or nothing is cached
  let image: GuestImage | undefined;
  if (opts.buildImageIfMissing === false) {
    image = await findImage(cfg.cacheDir);
    if (!image) throw new Error(`no guest image in ${cfg.cacheDir}: run \`faascell image build\``);
  } else {
    // issue 9 wiring: the image section's tuning options (tickless, rootfs, freePageReporting) go to the builder
    image = await buildImage({ ...cfg.image, cacheDir: cfg.cacheDir, log: (l) => log.info(l, { component: 'image' }) });
  }
  const images = await runtimeImages(cfg, opts.buildImageIfMissing !== false, log);

  // hardening (issue 12): each VMM jailed (own uid, mount namespace, seccomp) and limited (cgroups)
  const isolation = await setupIsolation({ stateDir: cfg.stateDir, jail: cfg.jail, limits: cfg.limits }, log.child({ component: 'isolation' }));
  // issue 18: a start that fails from here on undoes the isolation set-up (the daemon back in its own cgroup, its
  // `<group>-daemon` directory and its VMs' group removed) before the error goes up
  return undoIsolationIfFails(isolation, () => startIsolated(opts, { cfg, log, socketPath, socketGid, image, images, isolation }), log);
}

/** The part of a start after the isolation set-up (startDaemon). */
async function startIsolated(
  opts: StartOptions,
  ctx: { cfg: Config; log: Logger; socketPath: string | undefined; socketGid: number | undefined; image: GuestImage; images: Partial<Record<FunctionRuntime, GuestImage>>; isolation: IsolationSetup },
): Promise<Daemon> {
  const { cfg, log, socketPath, socketGid, image, images, isolation } = ctx;
  // issue 19: the idle CPU cap needs a cpu controller; said once here, and in /v1/status
  const idleCpu = { idleCpuQuota: cfg.limits.idleCpuQuota, idleCpuCapped: cfg.limits.idleCpuQuota !== null && isolation.limits().cgroup.controllers.cpu !== undefined };
  if (cfg.limits.idleCpuQuota !== null && !idleCpu.idleCpuCapped) log.warn('limits.idleCpuQuota is set but no cpu cgroup controller is usable: idle VMs are not capped', { notes: isolation.limits().cgroup.notes });
  // issue 18: the start weight needs a cpu controller too; said once here
  const startWeighted = cfg.limits.startCpuWeight !== 'off' && isolation.limits().cgroup.controllers.cpu !== undefined;
  if (cfg.limits.startCpuWeight !== 'off' && !startWeighted) log.warn('limits.startCpuWeight is set but no cpu cgroup controller is usable: starting VMs get the same CPU weight as busy ones', { notes: isolation.limits().cgroup.notes });
  const thpOffLauncher = cfg.runtime.driver === 'qemu' ? await vmmThpOffLauncher(cfg.limits.vmmThp, cfg.cacheDir, log.child({ component: 'isolation' })) : undefined;
  const driver: RuntimeDriver = await createDriver(cfg.runtime.driver, {
    log: (m) => log.debug(m, { component: 'driver' }),
    // generous socket deadlines: dozens of VMMs starting at once on a small host take seconds to answer
    qemu: {
      qemuBinary: cfg.runtime.qemuBinary,
      accel: { mode: cfg.runtime.accelerator, cacheDir: cfg.cacheDir, image },
      connectTimeoutMs: Math.max(10_000, cfg.runtime.bootTimeoutMs / 2),
      // observability: each VM's console kept in stateDir/consoles (telemetry.consoleLogs)
      consoleDir: path.join(cfg.stateDir, 'consoles'), consoleKeep: cfg.telemetry.consoleLogs.keep, consoleMaxBytes: cfg.telemetry.consoleLogs.maxBytes,
      consoleRotateBytes: cfg.limits.consoleMaxBytes, // issue 19: a live console is rotated, not unbounded
      // issue 24: what a VMM holds besides its guest (a clone's code cache, malloc arenas)
      ...(cfg.limits.tcgCodeCacheRestoreMiB !== null ? { tcgCodeCacheRestoreMiB: cfg.limits.tcgCodeCacheRestoreMiB } : {}),
      ...(cfg.limits.vmmMallocArenaMax !== null ? { mallocArenaMax: cfg.limits.vmmMallocArenaMax } : {}),
      ...(cfg.limits.vmmMallocMmapThresholdKiB !== null ? { mallocMmapThresholdKiB: cfg.limits.vmmMallocMmapThresholdKiB } : {}),
      ...(thpOffLauncher ? { thpOffLauncher } : {}),
      ...{ isolation: isolation.vmm, sandbox: isolation.seccomp, tcgCodeCacheMiB: cfg.limits.tcgCodeCacheMiB, channelLimits: { maxLineBytes: cfg.limits.guestMessageMaxBytes } }, // hardening (issue 12)
    },
    firecracker: { binary: cfg.runtime.firecrackerBinary, jailer: isolation.firecrackerJailer(path.join(cfg.stateDir, 'jailer')) }, // jailer: hardening (issue 12)
  });
  let accelerator: Accelerator = 'kvm';
  let acceleratorReason = 'firecracker always runs on kvm';
  if (cfg.runtime.driver === 'qemu') {
    const d = await detectAccelerator({ image, cacheDir: cfg.cacheDir, mode: cfg.runtime.accelerator, qemuBinary: cfg.runtime.qemuBinary, log: (m) => log.info(m, { component: 'accel' }) });
    accelerator = d.accelerator;
    acceleratorReason = d.reason;
  }
  log.info('runtime ready', { driver: driver.name, accelerator, reason: acceleratorReason, image: image.version, kernel: image.kernelKind, pythonImage: images.python3?.version ?? 'none' });

  const db: Db = openDb(cfg.stateDir);
  writeDaemonPid(cfg.stateDir); // issue 20: `faascell gc` leaves a running daemon's tiers alone
  // hardening (issue 12): mark this state dir's snapshot tiers, free tmpfs tiers whose state dir is gone
  const tierReport = reclaimTiers({ stateDir: cfg.stateDir, tiers: cfg.snapshots.enabled ? effectiveTiers(cfg) : [] });
  if (tierReport.reclaimed.length > 0 || tierReport.unowned.length > 0) log.warn('snapshot tiers without a living owner', { reclaimed: tierReport.reclaimed, unowned: tierReport.unowned });
  const registry = new Registry(db, {
    defaults: cfg.functionDefaults,
    limits: cfg.functionLimits,
    maxCodeBytes: cfg.api.maxCodeBytes,
  });
  const policies = await createPolicies(cfg.policies, { baseDir: opts.baseDir ?? process.cwd() });
  // issue 22: OpenWhisk's packages, sequences, triggers, rules and alarms (synced like the registry in a cluster)
  const owEntities = cfg.openwhisk.enabled ? new OwEntities(db) : undefined;
  // issue 13: a cluster member when cluster.nats is set; its registry catches up before VmPool reads it
  const cluster = cfg.cluster.nats ? await joinCluster({ cfg, registry, entities: owEntities, log }) : undefined;

  let fatal: ((err: Error) => void) | undefined = undefined;
  const system = new ActorSystem(log, (f) => {
    log.error('actor failure escalated to the daemon', { actor: f.actor, err: errText(f.error) });
    fatal?.(new Error(`actor ${f.actor} failed: ${errText(f.error)}`));
  });

  const clock = realClock;
  const perfActor = new PerfManager(db, cfg.activations); // retain, and the caps on stored logs (issue 19)
  const perf = system.spawn<PerfMsg>('perf', perfActor);
  // networking (issue 10): per-VM namespace + tap for functions with network: egress; pool filled ahead if any exists
  const network = system.spawn<NetworkMsg>('network', new NetworkManager(path.join(cfg.stateDir, 'run'), { ...networkOptions(cfg.network, registry.list().some((f) => f.network?.mode === 'egress')), tapGroup: isolation.vmmGroup }));
  const tiers = effectiveTiers(cfg);
  const snapshotsOn = cfg.snapshots.enabled && driver.name === 'qemu';
  let snapshots: ActorRef<SnapshotMsg> | undefined;
  if (snapshotsOn) {
    snapshots = system.spawn<SnapshotMsg>(
      'snapshots',
      new SnapshotManager({ db, tiers, imageVersion: image.version, runtimeImageVersions: { ...(images.python3 ? { python3: images.python3.version } : {}) }, kind: cfg.snapshots.kind, uncache: cfg.snapshots.uncache, clock }),
    );
  }
  const cpus = cfg.node.cpus.length > 0 ? cfg.node.cpus : os.cpus().map((_, i) => i);
  // issue 24: same-page merging of the VMs' memory while the daemon runs (host-wide; put back at stop)
  let ksm: KsmSession | undefined;
  if (cfg.node.memory.ksm === 'on') {
    try {
      ksm = startKsm();
      log.info(ksm.changed ? 'ksm: ksmd turned on (put back to off when the daemon stops)' : 'ksm: ksmd was already on', { found: ksm.found });
    } catch (err) {
      log.warn('ksm: could not turn ksmd on (node.memory.ksm); VMs run without it', { err: errText(err) });
    }
  }
  const pool = system.spawn<PoolMsg>(
    'vmpool',
    new VmPool({
      system,
      clock,
      functions: () => registry.list(),
      workerDeps: {
        driver,
        image,
        images, // issue 21: a function's runtime picks its image
        accelerator,
        registry,
        network,
        snapshots,
        clock,
        bootTimeoutMs: cfg.runtime.bootTimeoutMs,
        limits: { maxResultBytes: cfg.functionLimits.maxResultBytes, maxLogBytes: cfg.functionLimits.maxLogBytes },
        prefetch: cfg.snapshots.prefetch,
        kernelResync: cfg.snapshots.kernelResync,
        coldSnapshot: cfg.snapshots.coldSnapshot, // issue 9 item 1 (perf-worker)
        // issue 9 wiring: the resync rides on a restored clone's first run
        resyncWithRun: cfg.snapshots.resync === 'with-run',
        idleCpuCap: cfg.limits.idleCpuQuota, // issue 19: work left running after a result is bounded
        startCpuWeight: startWeighted, // issue 18: starts before busy VMs on the CPU
      },
      policies,
      snapshots,
      config: poolConfig(cfg, cpus, tiers, snapshotsOn, accelerator, startWeighted),
      // issue 24: the guard reads the host and the memory cgroup the VMs live in (with its ancestors)
      hostMemory: cfg.node.memory.guard.enabled ? () => readHostMemory({ cgroup: vmMemoryCgroup(isolation.limits().cgroup) }) : undefined,
    }),
  );
  perf.tell({ kind: 'subscribe', to: pool, tiers: tiers.map((t) => t.name) });
  // observability: every finished record passes telemetry.onActivation before PerfManager stores it
  const telemetry = await Telemetry.create({ config: cfg.telemetry, log: log.child({ component: 'telemetry' }), stateDir: cfg.stateDir, consoleDir: path.join(cfg.stateDir, 'consoles'), pool, snapshots, spanProcessors: opts.spanProcessors });
  const dispatcher = system.spawn<DispatcherMsg>(
    'dispatcher',
    new Dispatcher({ registry, pool, perf: withActivationHook(perf, telemetry.onActivation), runtime: driver.name, clock, acquireTimeoutMs: cfg.admission.maxQueueDelayMs + cfg.runtime.bootTimeoutMs * 2 + 30_000 }),
  );

  const startedAt = Date.now();
  // issue 13: in a cluster the APIs hand invocations to the broker (src/cluster/ingress.ts), not the local Dispatcher
  let httpUrl = '';
  const member = cluster?.attach({ system, pool, dispatcher, perf: withActivationHook(perf, telemetry.onActivation), snapshots, runtime: driver.name, accelerator, version: VERSION, startedAt, url: () => httpUrl });
  // issue 22: the OpenWhisk Source's invoker (sequences, triggers) and its alarm source (a Source of the daemon)
  const openwhisk = owEntities
    ? new OpenWhiskService({
        db,
        registry,
        entities: owEntities,
        dispatcher: member?.ingress ?? dispatcher,
        perf,
        retain: cfg.activations.retain,
        namespace: cfg.openwhisk.namespace,
        runtime: driver.name,
        clock,
        log: log.child({ component: 'openwhisk' }),
        alarms: cfg.openwhisk.alarms,
        claimAlarm: cluster ? (trigger, at) => cluster.claimAlarm(trigger, at) : undefined,
      })
    : undefined;
  const httpLimits = { headersTimeoutMs: cfg.api.headersTimeoutMs, requestTimeoutMs: cfg.api.requestTimeoutMs, keepAliveTimeoutMs: cfg.api.keepAliveTimeoutMs, maxConnections: cfg.api.maxConnections };
  const unixConnections = new WeakSet<Socket>();
  const app = await buildApi({
    registry,
    dispatcher: member?.ingress ?? dispatcher,
    cluster,
    pool,
    perf,
    snapshots,
    network, // issue 10: prepare on egress deploys, report in /v1/status
    runtimes: ['nodejs20', ...(Object.keys(images) as FunctionRuntime[])], // issue 21: a deploy of a runtime without an image here is refused
    bodyLimitBytes: cfg.api.bodyLimitBytes,
    maxCodeBytes: cfg.api.maxCodeBytes,
    token: cfg.api.token,
    // issue 19 (secedge): bounded input and clients; browsers of other sites and rebound names refused
    maxJsonDepth: cfg.api.maxJsonDepth,
    http: httpLimits,
    allowedHosts: cfg.api.allowedHosts,
    viaUnixSocket: (s) => unixConnections.has(s),
    // issue 22: web actions are public by OpenWhisk's design (any page may call them); the Host check stays
    crossOriginPrefixes: [OPENWHISK_PREFIX + '/web/'],
    limits: () => ({ ...isolation.limits(), tcgCodeCacheMiB: cfg.limits.tcgCodeCacheMiB, tcgCodeCacheRestoreMiB: cfg.limits.tcgCodeCacheRestoreMiB ?? cfg.limits.tcgCodeCacheMiB, vmmMallocArenaMax: cfg.limits.vmmMallocArenaMax, vmmMallocMmapThresholdKiB: cfg.limits.vmmMallocMmapThresholdKiB, vmmThp: thpOffLauncher ? 'off' : 'inherit', guestMessageMaxBytes: cfg.limits.guestMessageMaxBytes, vmm: isolation.isolation(), ...idleCpu }), // hardening (issue 12)
    log, // observability: fastify logs through the daemon's pino
    publicPaths: PUBLIC_UI_PATHS,
    // issue 8: OpenWhisk's REST API as a second Source on the same app
    openwhisk: openwhisk
      ? {
          db,
          retain: cfg.activations.retain,
          options: cfg.openwhisk,
          service: openwhisk,
          runtime: driver.name,
          version: VERSION,
          actionLimits: { minMemoryMiB: 128, maxMemoryMiB: cfg.functionLimits.maxMemoryMiB, minTimeoutMs: 100, maxTimeoutMs: cfg.functionLimits.maxTimeoutMs, maxInstances: cfg.functionLimits.maxInstances, maxConcurrentInvocations: cfg.admission.maxConcurrentInvocations, maxBodyBytes: cfg.api.bodyLimitBytes },
        }
      : undefined,
    info: () => ({
      version: VERSION,
      startedAt,
      runtime: driver.name,
      accelerator,
      acceleratorReason,
      image: { version: image.version, kernel: image.kernelKind, sizes: image.sizes },
      ...(images.python3 ? { images: { python3: { version: images.python3.version, sizes: images.python3.sizes } } } : {}),
      policies: {
        keepAlive: policies.keepAlive.name,
        eviction: policies.eviction.name,
        selection: policies.selection.name,
        placement: policies.placement.name,
        admission: policies.admission.name,
      },
    }),
  });
  cluster?.registerRoutes(app);
  registerTrafficRoutes(app, { perf, registry }); // issue 23: GET /v1/traffic
  registerWhatIfRoutes(app, { perf, registry, config: cfg, baseDir: opts.baseDir ?? process.cwd(), cpus }); // issue 23: /v1/whatif
  telemetry.register(app); // observability: GET /metrics, /ui
  // issue 19: TCP and/or the unix socket (stateDir/api.sock by default, mode 0600)
  const http = new HttpSource(app, {
    tcp: cfg.api.tcp ? { host: cfg.api.host, port: cfg.api.port } : undefined,
    socket: socketPath ? { path: socketPath, gid: socketGid } : undefined,
    limits: httpLimits,
    unixConnections,
  });
  const sources: Source[] = [http, ...(member?.sources ?? []), ...(openwhisk ? [openwhisk.alarms] : [])];
  for (const s of sources) {
    await s.start();
    httpUrl = http.url;
  }
  const url = http.url;
  log.info('faascell daemon listening', { url, socket: socketPath, stateDir: cfg.stateDir });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log.info('daemon stopping');
      // no new work first; what was accepted is answered (or refused) by the pool's shutdown
      for (const src of sources) await src.stop().catch((err: unknown) => log.warn('source stop failed', { source: src.name, err: errText(err) }));
      await pool.ask<void>((reply) => ({ kind: 'shutdown', reply }), 30_000).catch((err: unknown) => log.error('pool shutdown failed', { err: errText(err) }));
      await cluster?.close(); // issue 13: after the pool answered (outcomes published), before the actors stop
      await system.shutdown();
      await isolation.shutdown(); // hardening (issue 12): this daemon's cgroup directories
      try {
        ksm?.restore();
      } catch (err) {
        log.error('ksm: could not put /sys/kernel/mm/ksm/run back', { found: ksm?.found, err: errText(err) });
      }
      await telemetry.stop(); // observability: flush the last traces
      db.close();
      removeDaemonPid(cfg.stateDir);
      log.info('daemon stopped');
    })());
  fatal = (err) => {
    log.error('fatal: stopping the daemon', { err: err.message });
    void stop().finally(() => (process.exitCode = 1));
  };

  return { url, socket: socketPath, config: cfg, accelerator, acceleratorReason, image, images, registry, pool, dispatcher, perf, snapshots, app, telemetry, stop };
}

/**
 * issue 21: the Python image per image.python ('cached': when its root fs was built, refreshed
 * around it; 'build': built when missing; 'off': none). Without it, python3 deploys are refused.
 */
async function runtimeImages(cfg: Config, mayBuild: boolean, log: Logger): Promise<Partial<Record<FunctionRuntime, GuestImage>>> {
  if (cfg.image.python === 'off') return {};
  let python = !mayBuild
    ? await findPythonImage(cfg.cacheDir)
    : await buildPythonImage({ ...cfg.image, cacheDir: cfg.cacheDir, build: cfg.image.python === 'build' ? 'always' : 'if-cached', log: (l) => log.info(l, { component: 'image' }) }).catch((err: unknown) => {
        log.warn('no Python image: python3 functions cannot run on this node', { err: errText(err) });
        return undefined;
      });
  if (!python && mayBuild && cfg.image.python === 'cached') {
    // the packages apt resolves today (after an apt-get update) have no root fs yet: the last image built still serves
    python = await findPythonImage(cfg.cacheDir);
    if (python) log.warn('the Python image predates the Debian packages apt resolves now: faascell image build --runtime python3 makes a current one', { image: python.version });
  }
  if (!python) log.info('no Python image on this node (faascell image build --runtime python3): python3 deploys are refused');
  return python ? { python3: python } : {};
}

/** The decision core's configuration from the daemon's. */
export function poolConfig(cfg: Config, cpus: number[], tiers: Tier[], snapshots: boolean, accelerator: Accelerator, startWeighted = false): PoolConfig {
  return {
    memoryBudgetMiB: cfg.node.memoryBudgetMiB,
    lowWatermark: cfg.node.lowWatermark,
    highWatermark: cfg.node.highWatermark,
    maxConcurrentInvocations: cfg.admission.maxConcurrentInvocations,
    maxQueueLength: cfg.admission.maxQueueLength,
    maxQueueDelayMs: cfg.admission.maxQueueDelayMs,
    snapshots,
    // issue 19: a tmpfs tier's snapshots take their guest's whole memory (made dense): room is reserved at that size
    tiers: tiers.map((t) => ({ name: t.name, latencyRank: t.latencyRank, capacityBytes: t.capacityMiB * 1048576, dense: isTmpfs(existingAncestor(t.path)) })),
    starts: {
      maxConcurrent: cfg.admission.maxConcurrentStarts,
      cores: hostCores(cpus, cfg.node.cores),
      idleVmCpu: cfg.node.idleVmCpu,
      // before anything was measured: what a start costs under each accelerator here (docs/simulator.md)
      defaultColdMs: accelerator === 'kvm' ? 1000 : 4000,
      defaultRestoreMs: accelerator === 'kvm' ? 100 : 500,
      preferWarm: cfg.admission.preferWarm,
      // issue 18: what the starting VMs' cgroups weigh over busy ones (1 without a cpu controller)
      startWeight: startWeighted && cfg.limits.startCpuWeight !== 'off' ? cfg.limits.startCpuWeight / cfg.limits.cpuWeight : 1,
      // which starts get it: the core marks each start (CoreInstance.startWeighted), the Worker follows the mark
      startWeightScope: cfg.limits.startCpuWeightScope,
      backoffBaseMs: cfg.admission.startBackoffBaseMs,
      backoffMaxMs: Math.max(cfg.admission.startBackoffBaseMs, cfg.admission.startBackoffMaxMs),
    },
    cpus,
    pinVms: cfg.node.pinVms,
    fairness: cfg.admission.fairness,
    // issue 24: measured accounting and the guard (docs/density.md)
    memory: { accounting: cfg.node.memory.accounting, reserve: cfg.node.memory.reserve, sampleIntervalMs: cfg.node.memory.sampleIntervalMs },
    guard: cfg.node.memory.guard.enabled ? cfg.node.memory.guard : undefined,
  };
}

/** The memory cgroup the daemon's VM cgroups are made in (their group's parent), when there is one. */
function vmMemoryCgroup(c: CgroupStatus): { version: 'v1' | 'v2'; dir: string } | undefined {
  const m = c.controllers.memory;
  return m ? { version: m.version, dir: path.dirname(m.path) } : undefined;
}
