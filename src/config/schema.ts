// The daemon's configuration: one zod schema, every knob with its default.
// docs/configuration.md documents each key; `faascell config print` shows the
// effective values. Unknown keys are errors (a typo must not be ignored).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { policiesConfigSchema } from '../policies/config.js';
import { DEFAULT_MEMORY_ACCOUNTING } from '../vmpool/core/model.js';
import { clusterConfigSchema } from '../cluster/config.js';
import { parseCidr, parseIpv4 } from '../network/ipv4.js';
import { networkConfigProblem } from '../network/config-check.js';

import { API_SOCKET_NAME, defaultCacheDir, defaultStateDir } from './paths.js';
export { API_SOCKET_NAME, defaultCacheDir, defaultStateDir } from './paths.js';

const MiB = 1024 * 1024;
/** Defaults of the API's bounds on input and clients (issue 19); buildApi falls back to them too. */
export const API_LIMIT_DEFAULTS = { maxJsonDepth: 100, headersTimeoutMs: 10_000, requestTimeoutMs: 120_000, keepAliveTimeoutMs: 5_000, maxConnections: 1024 };
/** Shortest API token accepted, from the config file or FAASCELL_TOKEN alike. */
export const TOKEN_MIN_LENGTH = 16;

/**
 * Defaults of the scheduling knobs, shared by the daemon's schema and the
 * simulator (so `faascell simulate` without --config models a default node).
 */
/** limits.daemonCpuWeight's default (issue 18): measured in bench/runs/2026-12-07-daemon-cpu-weight-s5.md. */
export const DAEMON_CPU_WEIGHT = 1000;

export const SCHED_DEFAULTS = {
  lowWatermark: 0.8,
  highWatermark: 0.95,
  maxConcurrentInvocations: 64,
  maxQueueLength: 100,
  maxQueueDelayMs: 60_000,
  maxConcurrentStarts: 'auto' as number | 'auto',
  preferWarm: true,
  /** measured here: an idle 256 MiB VM of today's tickless guest under TCG took 0.33–0.47 % of a core
   *  (bench/runs/2026-11-29-integ9-idle-cpu.txt); the former 250 Hz guest took 3.4 % */
  idleVmCpu: 0.005,
  maxInstances: 4,
  /** a function whose starts keep failing backs off: base, doubling per further failure, up to max (start-failures.ts) */
  startBackoffBaseMs: 1000,
  startBackoffMaxMs: 60_000,
  /**
   * issue 18: the node's capacity under overload goes max-min fair among the functions with demand (`max-min`,
   * the default since session 6, when admission's guess for a run not yet measured was bounded by what is
   * known instead of the queueing deadline; docs/reliability.md 'Fairness: the default')
   */
  fairness: 'max-min' as 'max-min' | 'off',
};

/** issue 24: node.memory defaults (docs/density.md says how they were chosen) */
export const MEMORY_DEFAULTS = {
  // measured, with its guard on: the decision core's default too (docs/density.md, "Defaults")
  accounting: DEFAULT_MEMORY_ACCOUNTING.accounting,
  reserve: DEFAULT_MEMORY_ACCOUNTING.reserve,
  sampleIntervalMs: 2000,
  guard: { enabled: true, intervalMs: 500, evictBelow: 0.1, refuseBelow: 0.05, stopBelow: 0.02, psiSomeEvict: 20, psiFullRefuse: 10, psiAvailableBelow: 0.2 },
  // host-wide: the daemon changes it only when told to (measured: bench/runs/2026-12-07-ksm.md)
  ksm: 'off' as 'off' | 'on',
};

const tierSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, - and _'),
    path: z.string().min(1),
    latencyRank: z.number().int().min(0),
    capacityMiB: z.number().int().positive(),
  })
  .strict();

export const configSchema = z
  .object({
    stateDir: z.string().default(defaultStateDir),
    cacheDir: z.string().default(defaultCacheDir),
    log: z.object({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') }).strict().default({}),
    api: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Required when host is not a loopback address. Also read from FAASCELL_TOKEN (checked by the same rule). */
        token: z.string().min(TOKEN_MIN_LENGTH, `at least ${TOKEN_MIN_LENGTH} characters`).optional(),
        bodyLimitBytes: z.number().int().positive().default(6 * MiB),
        /** Largest function code archive accepted by PUT /v1/functions/:name (base64 decoded); an archive may unpack to 4× this. */
        maxCodeBytes: z.number().int().positive().default(50 * MiB),
        // ---- issue 19 (secedge): bounded input, slow clients, who may call (docs/security.md)
        /** Deepest nesting of arrays and objects accepted in a JSON body (400 naming the field beyond it). */
        maxJsonDepth: z.number().int().min(2).max(1000).default(API_LIMIT_DEFAULTS.maxJsonDepth),
        /** A client must have sent a request's headers within this (then 408 and the socket is closed). */
        headersTimeoutMs: z.number().int().min(100).default(API_LIMIT_DEFAULTS.headersTimeoutMs),
        /** A client must have sent a whole request (headers and body) within this. The answer's wait is not counted. */
        requestTimeoutMs: z.number().int().min(100).default(API_LIMIT_DEFAULTS.requestTimeoutMs),
        /** An idle kept-alive connection is closed after this. */
        keepAliveTimeoutMs: z.number().int().min(100).default(API_LIMIT_DEFAULTS.keepAliveTimeoutMs),
        /** Open client connections per listener (TCP, unix socket); more are closed at once. */
        maxConnections: z.number().int().min(1).default(API_LIMIT_DEFAULTS.maxConnections),
        /** Host names (besides localhost, *.localhost and IP literals) the TCP listener answers; ["*"]: any. */
        allowedHosts: z.array(z.string().regex(/^(\*|[A-Za-z0-9.-]+)$/, 'a host name without port, or *')).default([]),
        /** Serve the API on TCP (api.host:api.port). false: on the unix socket only. */
        tcp: z.boolean().default(true),
        /** The API on a unix socket, mode 0600 (0660 with socketGroup). Default: stateDir/api.sock; false: none. */
        socket: z.union([z.string().min(1), z.literal(false)]).optional(),
        /** Group that may use the unix socket too (mode 0660). */
        socketGroup: z.string().regex(/^[a-z_][a-z0-9_-]*\$?$/, 'a group name').optional(),
      })
      .strict()
      .default({}),
    runtime: z
      .object({
        driver: z.enum(['qemu', 'firecracker']).default('qemu'),
        accelerator: z.enum(['auto', 'kvm', 'tcg']).default('auto'),
        qemuBinary: z.string().default('qemu-system-x86_64'),
        firecrackerBinary: z.string().default('firecracker'),
        /** How long a cold boot may take until the agent says ready. */
        bootTimeoutMs: z.number().int().positive().default(60_000),
      })
      .strict()
      .default({}),
    image: z
      .object({
        kernel: z.enum(['auto', 'minimal', 'debian']).default('auto'),
        // --- guest tuning (issue 9): each is part of the image version; see docs/configuration.md
        /** Tickless minimal kernel (NO_HZ_IDLE, HZ=100): idle VMs cost almost no host CPU under TCG. */
        tickless: z.boolean().default(true),
        /** 'dax': EROFS root fs mapped as persistent memory with DAX (shared host page cache); 'squashfs': on virtio-blk. */
        rootfs: z.enum(['dax', 'squashfs']).default('dax'),
        /** virtio-balloon free page reporting: memory the guest frees goes back to the host. */
        freePageReporting: z.boolean().default(true),
        /**
         * issue 21, the Python image (docs/python.md): 'cached' uses it when its root fs has been
         * built (faascell image build --runtime python3; scripts/setup.sh does) and refreshes the
         * image around it when the agent or /init changed (a second); 'build' builds what is missing
         * at start (minutes the first time: ~400 MB of Debian packages); 'off': no Python functions.
         */
        python: z.enum(['cached', 'build', 'off']).default('cached'),
      })
      .strict()
      .default({}),
    functionDefaults: z
      .object({
        memoryMiB: z.number().int().min(128).default(256),
        vcpus: z.number().int().min(1).default(1),
        timeoutMs: z.number().int().positive().default(30_000),
        maxInstances: z.number().int().positive().default(SCHED_DEFAULTS.maxInstances),
      })
      .strict()
      .default({}),
    functionLimits: z
      .object({
        maxMemoryMiB: z.number().int().min(128).default(4096),
        maxVcpus: z.number().int().min(1).default(Math.max(1, os.cpus().length)),
        maxTimeoutMs: z.number().int().positive().default(15 * 60_000),
        maxInstances: z.number().int().positive().default(64),
        /** A result larger than this (JSON bytes) is refused with result_too_large (OpenWhisk's default: 1 MiB). */
        maxResultBytes: z.number().int().positive().default(MiB),
        /** Logs beyond this many bytes per activation are cut, with a note (OpenWhisk's default: 10 MiB). */
        maxLogBytes: z.number().int().positive().default(10 * MiB),
      })
      .strict()
      .default({}),
    node: z
      .object({
        /** Memory all VMs together may use (sum of their memory sizes). Default: half of the host's RAM. */
        memoryBudgetMiB: z
          .number()
          .int()
          .positive()
          .default(() => Math.floor(os.totalmem() / MiB / 2)),
        /** Starting a VM past high × budget evicts idle VMs down to low × budget, all or nothing (never past the budget). */
        lowWatermark: z.number().min(0).max(1).default(SCHED_DEFAULTS.lowWatermark),
        highWatermark: z.number().min(0).max(1).default(SCHED_DEFAULTS.highWatermark),
        /** Host cores the scheduler counts on for starts (default: the number of `cpus`, else of the host). */
        cores: z.number().positive().optional(),
        /** Host CPU one idle VM takes (fraction of a core): counted against start slots (`faascell bench` measures it). */
        idleVmCpu: z.number().min(0).max(1).default(SCHED_DEFAULTS.idleVmCpu),
        /** Host CPUs VMs may run on (empty: all). */
        cpus: z.array(z.number().int().min(0)).default([]),
        /** Pin each VM's VMM process to one CPU of `cpus`, round-robin. */
        pinVms: z.boolean().default(false),
        // issue 24 (density): how VMs are charged against memoryBudgetMiB, and the guard against the host's limit
        memory: z
          .object({
            /**
             * measured: each VM counts what it costs the host — its PSS (private pages plus its share of shared
             * ones: a snapshot's RAM file, the root fs, QEMU), at most its size — plus `reserve` × its headroom;
             * nominal: each VM counts its size (memoryMiB). docs/density.md.
             */
            accounting: z.enum(['measured', 'nominal']).default(MEMORY_DEFAULTS.accounting),
            /** measured: fraction of each VM's headroom (size − PSS) kept in reserve for its growth. */
            reserve: z.number().min(0).max(1).default(MEMORY_DEFAULTS.reserve),
            /** How often every live VM's PSS is read from /proc (ms). */
            sampleIntervalMs: z.number().int().min(100).default(MEMORY_DEFAULTS.sampleIntervalMs),
            /**
             * Before the host runs out (MemAvailable, PSI, the memory cgroup of the VMs and its ancestors), the
             * node evicts idle VMs, then refuses starts, then stops the newest growing VM (typed failure
             * memory_pressure). Fractions of a limit still available.
             */
            guard: z
              .object({
                enabled: z.boolean().default(MEMORY_DEFAULTS.guard.enabled),
                intervalMs: z.number().int().min(50).default(MEMORY_DEFAULTS.guard.intervalMs),
                evictBelow: z.number().min(0).max(1).default(MEMORY_DEFAULTS.guard.evictBelow),
                refuseBelow: z.number().min(0).max(1).default(MEMORY_DEFAULTS.guard.refuseBelow),
                stopBelow: z.number().min(0).max(1).default(MEMORY_DEFAULTS.guard.stopBelow),
                /** PSI memory avg10 (percent) from which idle VMs are evicted (some) / starts refused too (full); 0: ignored. */
                psiSomeEvict: z.number().min(0).max(100).default(MEMORY_DEFAULTS.guard.psiSomeEvict),
                psiFullRefuse: z.number().min(0).max(100).default(MEMORY_DEFAULTS.guard.psiFullRefuse),
                /** PSI some counts only while the tightest source has less than this fraction available (1: always); docs/density.md */
                psiAvailableBelow: z.number().min(0).max(1).default(MEMORY_DEFAULTS.guard.psiAvailableBelow),
              })
              .strict()
              .default({}),
            /**
             * Kernel same-page merging of the VMs' guest memory: on turns ksmd on while the daemon runs (host-wide)
             * and puts back what it found when it stops; off leaves the host's setting alone. docs/density.md.
             */
            ksm: z.enum(['off', 'on']).default(MEMORY_DEFAULTS.ksm),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    admission: z
      .object({
        /** Invocations running at once on this node; more wait in their function's queue. */
        maxConcurrentInvocations: z.number().int().positive().default(SCHED_DEFAULTS.maxConcurrentInvocations),
        /** Requests waiting per function beyond its free instance slots; one more is refused with 429. */
        maxQueueLength: z.number().int().min(0).default(SCHED_DEFAULTS.maxQueueLength),
        /** How long a request may wait for an instance before it is refused with 503. */
        maxQueueDelayMs: z.number().int().positive().default(SCHED_DEFAULTS.maxQueueDelayMs),
        /** Boots and restores at once: a number, or auto = cores minus the CPU idle and busy VMs take (at least 1). */
        maxConcurrentStarts: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
        /** A request waits for a busy instance that frees up before a new start could finish, instead of starting one. */
        preferWarm: z.boolean().default(SCHED_DEFAULTS.preferWarm),
        /**
         * A function whose starts keep failing backs off: from its second failed start in a row, no start for
         * startBackoffBaseMs, doubling with each further failure up to startBackoffMaxMs; meanwhile requests that
         * only a start could serve are refused at once (503 start_backoff with Retry-After).
         */
        startBackoffBaseMs: z.number().int().positive().default(SCHED_DEFAULTS.startBackoffBaseMs),
        startBackoffMaxMs: z.number().int().positive().default(SCHED_DEFAULTS.startBackoffMaxMs),
        /**
         * issue 18: when the node cannot serve all offered load, 'max-min' shares its CPU (runs and starts)
         * max-min fair among the functions with demand, weighted by each function's `share`; 'off': whoever
         * got instances first keeps them (functions waiting for a start go first come, first served).
         */
        fairness: z.enum(['max-min', 'off']).default(SCHED_DEFAULTS.fairness),
      })
      .strict()
      .default({}),
    snapshots: z
      .object({
        enabled: z.boolean().default(true),
        /** shared-memory: RAM file mapped copy-on-write at restore (fast); full-stream: RAM inside the state file. */
        kind: z.enum(['shared-memory', 'full-stream']).default('shared-memory'),
        tiers: z.array(tierSchema).min(1).optional(),
        /** Drop a snapshot's pages from the page cache after writing it (honest cold-storage restores). */
        uncache: z.boolean().default(false),
        /** Record a restored VM's working set during its first invocation and read it ahead on later restores (REAP). */
        prefetch: z.boolean().default(false),
        /**
         * A restored clone's kernel clock and CRNG: set before its first run ('before-run'),
         * or right after the first run replied ('deferred'; Date and the JS randomness are
         * corrected before the run either way).
         */
        kernelResync: z.enum(['before-run', 'deferred']).default('before-run'),
        /**
         * A cold start that leaves a snapshot: 'copy' copies the RAM file while the guest is paused
         * for the snapshot and lets the same VM serve the request; 'restore' (the former path) stops
         * it and serves from a restore of its own snapshot.
         */
        coldSnapshot: z.enum(['copy', 'restore']).default('copy'),
        /**
         * issue 9: how a restored clone's resync (clock, randomness) reaches its agent: 'with-run'
         * carried by its first run (one channel round trip), 'message' a separate request before
         * the clone counts as ready (the behaviour before issue 9; images built before it need it).
         */
        resync: z.enum(['with-run', 'message']).default('with-run'),
      })
      .strict()
      .default({}),
    // ---- least privilege and resource limits per VMM (docs/security.md)
    jail: z
      .object({
        /** Each VMM as its own unprivileged uid in its own mount namespace. auto: when the daemon is root and jail.user exists. */
        enabled: z.union([z.boolean(), z.literal('auto')]).default('auto'),
        /** Created by scripts/setup.sh; its group is every VMM's group, its /etc/subuid block the VMMs' uids. */
        user: z.string().regex(/^[a-z_][a-z0-9_-]*\$?$/, 'a user name').default('faascell-vmm'),
        /** uids to give the VMMs, one per VM (default: jail.user's /etc/subuid block; none there: all share jail.user's uid). */
        uidRange: z.object({ first: z.number().int().min(1), count: z.number().int().min(1) }).strict().optional(),
        /** QEMU's seccomp sandbox (obsolete, elevateprivileges, spawn, resourcecontrol denied). */
        seccomp: z.boolean().default(true),
      })
      .strict()
      .default({}),
    limits: z
      .object({
        /** Which cgroup hierarchy carries the per-VM limits: auto (v2 where a controller is there, else v1), v2, v1, off. */
        cgroup: z.enum(['auto', 'v2', 'v1', 'off']).default('auto'),
        /** Parent cgroup of the VMs' cgroups (path inside each hierarchy); default: the daemon's own cgroup. */
        cgroupParent: z.string().regex(/^\/[A-Za-z0-9._/@:-]*$/, 'an absolute cgroup path').optional(),
        /** Memory a VMM may use besides its guest's memory (and, under TCG, its code cache). */
        memoryOverheadMiB: z.number().int().min(16).default(64),
        /**
         * TCG only: translated-code cache per VM (`-accel tcg,tb-size=`; QEMU's own default is 1024); part of
         * the memory limit. 32 (issue 9): a booted Node guest fills 66-76 MiB with QEMU's default; 32 saves
         * ~44 MiB per VM for ~0.1-0.15 s of cold boot (docs/performance-guest.md).
         */
        tcgCodeCacheMiB: z.number().int().min(16).max(4096).default(32),
        /**
         * issue 24: TCG only: the code cache of a VM restored from a snapshot (the cache is not in a snapshot: a
         * clone fills it anew); null: tcgCodeCacheMiB. Part of the clone's memory limit instead of tcgCodeCacheMiB.
         * 16: a hello clone fills 22 MiB of a 32 MiB cache; 16 saves ~7.7 MiB per clone with no slower restore
         * or warm run, 12 and 8 slow both (docs/density.md, bench/runs/2026-12-07-clone-memory-breakdown-s5.md).
         * 14 since session 6: 2.6 MiB less again, no slower (bench/runs/2026-12-07-clone-memory-thp-s6.md, run 2).
         */
        tcgCodeCacheRestoreMiB: z.number().int().min(4).max(4096).nullable().default(14),
        /** issue 24: MALLOC_ARENA_MAX in every VMM's environment (glibc's malloc arenas); null: glibc's default (8 per core). */
        vmmMallocArenaMax: z.number().int().min(1).max(64).nullable().default(null),
        /** issue 24: MALLOC_MMAP_THRESHOLD_ in every VMM's environment (KiB; a fixed threshold also keeps glibc trimming freed memory at 128 KiB); null: glibc's dynamic threshold. */
        vmmMallocMmapThresholdKiB: z.number().int().min(4).max(32 * 1024).nullable().default(null),
        /**
         * issue 24: transparent huge pages for VMMs: 'off' starts each VMM with PR_SET_THP_DISABLE (a launcher the
         * set-up compiles, src/runtimes/jail/thp-off.c), so QEMU's madvised RAM blocks and code cache take 4 KiB
         * pages as touched; 'inherit': the host's setting. Default off: a clone 42.7 -> 40.7 MiB PSS, restores no
         * slower (docs/density.md, bench/runs/2026-12-07-clone-memory-thp-s6.md).
         */
        vmmThp: z.enum(['off', 'inherit']).default('off'),
        /** Relative CPU weight of a VM (1-10000, 100 = an equal share). */
        cpuWeight: z.number().int().min(1).max(10_000).default(100),
        /**
         * issue 18: CPU weight of a VM while it boots or restores (until it is ready for its first run), then
         * cpuWeight: starts are not starved by busy VMs. 'off': cpuWeight throughout. Needs a cpu cgroup
         * controller (docs/reliability.md "Starts first"). Default off: 400 for every start let busy functions'
         * scale-out starts take CPU from their own runs (test/e2e/overload.test.ts failed 2 of 3); 400 for first starts
         * only (startCpuWeightScope 'first') passed it 3 of 3, but as the default it changes the simulator's default
         * node, which the conformance tests' daemon (no cpu cgroup: weight 1) no longer matches (see the docs).
         */
        startCpuWeight: z.union([z.literal('off'), z.number().int().min(1).max(10_000)]).default('off'),
        /**
         * issue 18: which starts get startCpuWeight. 'first': only a start of a function that has no instance (none
         * ready, none starting: its first, or after all were evicted) — a starved function gets its first instance
         * early while a busy function's scale-out starts take no CPU from its own busy runs; 'all': every start.
         */
        startCpuWeightScope: z.enum(['first', 'all']).default('first'),
        /**
         * issue 18: CPU weight of the daemon process itself, in a cgroup of its own beside its VMs' group (whose VMs
         * together weigh one default share, 100): under overload its HTTP server and event loop keep their turns.
         * 'off': the daemon stays in its cgroup. Needs a cpu cgroup controller (docs/reliability.md).
         */
        daemonCpuWeight: z.union([z.literal('off'), z.number().int().min(1).max(10_000)]).default(DAEMON_CPU_WEIGHT),
        /** Hard CPU cap in host CPUs per vCPU (e.g. 1.0); null: none. */
        cpuQuota: z.number().min(0.01).max(64).nullable().default(null),
        /**
         * issue 19: host CPUs an idle VM may use (the whole VM); what a function leaves running after
         * its result is held to this until its next run. null: no cap. Needs a cpu cgroup controller.
         */
        idleCpuQuota: z.number().min(0.01).max(64).nullable().default(0.1),
        /** Threads a VMM may have. */
        pidsMax: z.number().int().min(16).max(1_000_000).default(256),
        /** Longest message a guest may send on its channel (a run's result and logs travel in one: keep it above functionLimits.maxResultBytes + maxLogBytes). */
        guestMessageMaxBytes: z.number().int().min(64 * 1024).default(16 * MiB),
        /** issue 19: a running VM's console file is rotated at this size, one previous file kept (at most twice this per VM). */
        consoleMaxBytes: z.number().int().min(4096).default(MiB),
      })
      .strict()
      .default({}),
    activations: z
      .object({
        retain: z.number().int().positive().default(100_000),
        // issue 19: what guests log is kept within these (per activation: functionLimits.maxLogBytes);
        // past one, the oldest logs are dropped and their records keep a one-line note
        /** Log bytes kept per function. */
        maxLogBytesPerFunction: z.number().int().min(0).default(64 * MiB),
        /** Log bytes kept for all functions together. */
        maxLogBytesTotal: z.number().int().min(0).default(256 * MiB),
      })
      .strict()
      .default({}),
    // networking for functions with `network: egress` (docs/network.md)
    network: z
      .object({
        /** Host ends of the per-VM veth pairs, one /30 per VM; must not overlap any route of the host. */
        hostCidr: z
          .string()
          .refine((s) => (parseCidr(s)?.prefix ?? 99) <= 30, 'must be an IPv4 CIDR A.B.C.D/N with N at most 30')
          .default('10.200.0.0/16'),
        /** Resolver the guests' DNS queries (sent to their gateway) are forwarded to; unset: names do not resolve. */
        dns: z
          .string()
          .refine((s) => parseIpv4(s) !== undefined, 'must be an IPv4 address')
          .optional(),
        /** Namespaces (with tap and veth) kept ready, so a start does not wait for network set-up. */
        poolSize: z.number().int().min(0).max(64).default(2),
        /** Set up the host and fill the pool when the daemon starts, even before an egress function exists. */
        prewarm: z.boolean().default(false),
      })
      .strict()
      .default({}),
    /** OpenWhisk's REST API under /api/v1 (docs/openwhisk.md). */
    openwhisk: z
      .object({
        enabled: z.boolean().default(true),
        /** The one namespace this node serves; `_` in a path means it too. */
        namespace: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_@.-]*$/, 'an OpenWhisk entity name').default('guest'),
        /** A blocking invoke waits this long for its result, then answers 202 with the activation id (OpenWhisk: 60 s). */
        blockingWaitMs: z.number().int().positive().default(60_000),
        /** issue 22: serve web actions under /api/v1/web (public, as in OpenWhisk: docs/security.md) */
        webActions: z.boolean().default(true),
        /** issue 22: the built-in /whisk.system/alarms feeds (docs/openwhisk.md) */
        alarms: z
          .object({
            /** a firing at most this late still fires (a timer delayed by load, a restart that short) */
            graceMs: z.number().int().min(0).default(60_000),
            /** firings that fell due longer ago (the daemon was down): skipped, or the latest one fired once */
            missedFirings: z.enum(['skip', 'fire-once']).default('skip'),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    policies: policiesConfigSchema.default({}),
    /** issue 13: a FaaSCell cluster on NATS JetStream (docs/cluster.md); no `cluster.nats`: a single node */
    cluster: clusterConfigSchema.default({}),
    // ---- observability (docs/observability.md) ----
    telemetry: z
      .object({
        /** GET /metrics (Prometheus text format) */
        metrics: z.object({ enabled: z.boolean().default(true) }).strict().default({}),
        /** How often each VMM process's RSS, PSS and CPU time are read from /proc. */
        sampleIntervalMs: z.number().int().min(500).default(5000),
        otlp: z
          .object({
            /** OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. Unset: no tracing at all. */
            endpoint: z.string().url().optional(),
            headers: z.record(z.string()).default({}),
            serviceName: z.string().min(1).default('faascell'),
          })
          .strict()
          .default({}),
        /** The live dashboard at /ui. */
        dashboard: z
          .object({
            enabled: z.boolean().default(true),
            /** how often a connected page's node state is refreshed */
            refreshMs: z.number().int().min(100).default(1000),
            /** activations kept for the start-path mix and the latency plot */
            windowMinutes: z.number().int().min(1).max(120).default(10),
            maxActivations: z.number().int().min(10).default(2000),
          })
          .strict()
          .default({}),
        /** Each VM's console output, kept after the VM is gone (stateDir/consoles/VMID.log). */
        consoleLogs: z
          .object({
            /** newest files kept; older ones are deleted (0: keep none) */
            keep: z.number().int().min(0).default(200),
            /** bytes kept per VM (the tail of its console) */
            maxBytes: z.number().int().min(1024).default(64 * 1024),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type Tier = z.infer<typeof tierSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Validate a parsed configuration object; errors name the offending key. */
export function parseConfig(input: unknown, source = 'configuration'): Config {
  // FAASCELL_TOKEN goes through the schema like a token in the file (issue 19: it used to skip the length rule)
  const envToken = process.env.FAASCELL_TOKEN;
  const fromEnv = envToken !== undefined && envToken !== '' && !(isObj(input) && isObj(input.api) && input.api.token !== undefined);
  const r = configSchema.safeParse(fromEnv ? deepMerge(input ?? {}, { api: { token: envToken } }) : (input ?? {}));
  if (!r.success) {
    const first = r.error.issues[0];
    const key = first?.path.join('.') || '(root)';
    const origin = (i: z.ZodIssue): string => (fromEnv && i.path.join('.') === 'api.token' ? ' (from FAASCELL_TOKEN)' : '');
    const all = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}${origin(i)}: ${i.message}`).join('; ');
    throw new ConfigError(`${source}: invalid key ${key}: ${all}`, key);
  }
  const cfg = r.data;
  const g = cfg.node.memory.guard;
  if (!(g.stopBelow <= g.refuseBelow && g.refuseBelow <= g.evictBelow)) {
    throw new ConfigError(`${source}: invalid key node.memory.guard: stopBelow ≤ refuseBelow ≤ evictBelow must hold`, 'node.memory.guard');
  }
  if (cfg.node.lowWatermark > cfg.node.highWatermark) {
    throw new ConfigError(`${source}: invalid key node.lowWatermark: must not exceed node.highWatermark`, 'node.lowWatermark');
  }
  const names = new Set<string>();
  for (const t of cfg.snapshots.tiers ?? []) {
    if (names.has(t.name)) throw new ConfigError(`${source}: invalid key snapshots.tiers: duplicate tier ${t.name}`, 'snapshots.tiers');
    names.add(t.name);
  }
  const netProblem = networkConfigProblem(cfg.network);
  if (netProblem) throw new ConfigError(`${source}: invalid key ${netProblem.key}: ${netProblem.message}`, netProblem.key);
  if (cfg.api.headersTimeoutMs > cfg.api.requestTimeoutMs) throw new ConfigError(`${source}: invalid key api.headersTimeoutMs: must not exceed api.requestTimeoutMs`, 'api.headersTimeoutMs');
  if (!cfg.api.tcp && cfg.api.socket === false) throw new ConfigError(`${source}: invalid key api.tcp: with api.socket false too the API would listen nowhere`, 'api.tcp');
  return cfg;
}

/** Load a YAML or JSON file (by content: JSON is YAML) and validate it. Relative paths resolve against the file. */
export function loadConfigFile(file: string | undefined, overrides: Record<string, unknown> = {}): { config: Config; baseDir: string } {
  let raw: unknown = {};
  let baseDir = process.cwd();
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${file}: cannot read the configuration file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    try {
      raw = YAML.parse(text) ?? {};
    } catch (err) {
      throw new ConfigError(`${file}: not valid YAML/JSON: ${(err as Error).message}`);
    }
    baseDir = path.dirname(path.resolve(file));
  }
  const merged = deepMerge(raw, overrides);
  const config = parseConfig(merged, file ?? 'configuration');
  config.stateDir = path.resolve(baseDir, config.stateDir);
  config.cacheDir = path.resolve(baseDir, config.cacheDir);
  if (typeof config.api.socket === 'string') config.api.socket = path.resolve(baseDir, config.api.socket);
  return { config, baseDir };
}

/** Where the API's unix socket is (issue 19): api.socket, by default stateDir/api.sock; undefined: none. */
export function apiSocketPath(cfg: Config): string | undefined {
  if (cfg.api.socket === false) return undefined;
  return cfg.api.socket ?? path.join(cfg.stateDir, API_SOCKET_NAME);
}

/** Snapshot tiers in effect: configured ones, or a tmpfs tier and a disk tier. */
export function effectiveTiers(cfg: Config): Tier[] {
  if (cfg.snapshots.tiers) return cfg.snapshots.tiers;
  return [
    // one tmpfs directory per state directory: two daemons never clean up each other's snapshots
    { name: 'shm', path: `/dev/shm/faascell-${createHash('sha256').update(cfg.stateDir).digest('hex').slice(0, 12)}`, latencyRank: 0, capacityMiB: 4096 },
    { name: 'disk', path: path.join(cfg.stateDir, 'snapshots'), latencyRank: 1, capacityMiB: 20480 },
  ];
}

function deepMerge(a: unknown, b: unknown): unknown {
  if (!isObj(a) || !isObj(b)) return b === undefined ? a : b;
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = deepMerge(a[k], v);
  return out;
}
function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
