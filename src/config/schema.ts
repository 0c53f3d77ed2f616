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

export function defaultStateDir(): string {
  return process.env.FAASCELL_STATE_DIR ?? path.join(os.homedir(), '.local', 'state', 'faascell');
}
export function defaultCacheDir(): string {
  return process.env.FAASCELL_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'faascell');
}

const MiB = 1024 * 1024;

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
        /** Required when host is not a loopback address. Also read from FAASCELL_TOKEN. */
        token: z.string().min(16).optional(),
        bodyLimitBytes: z.number().int().positive().default(6 * MiB),
        /** Largest function code archive accepted by PUT /v1/functions/:name (base64 decoded). */
        maxCodeBytes: z.number().int().positive().default(50 * MiB),
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
        /**
         * TCG translation cache per VM in MiB (issue 9): caps the host memory of generated code (QEMU's
         * default, 1 GiB, lets a long-lived VM grow; a booted Node guest fills ~70 MiB). 0: QEMU's default.
         */
        tcgTbSizeMiB: z.number().int().min(0).max(4096).default(32),
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
      })
      .strict()
      .default({}),
    functionDefaults: z
      .object({
        memoryMiB: z.number().int().min(128).default(256),
        vcpus: z.number().int().min(1).default(1),
        timeoutMs: z.number().int().positive().default(30_000),
        maxInstances: z.number().int().positive().default(4),
      })
      .strict()
      .default({}),
    functionLimits: z
      .object({
        maxMemoryMiB: z.number().int().min(128).default(4096),
        maxVcpus: z.number().int().min(1).default(Math.max(1, os.cpus().length)),
        maxTimeoutMs: z.number().int().positive().default(15 * 60_000),
        maxInstances: z.number().int().positive().default(64),
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
        /** When used memory crosses high × budget, idle VMs are evicted until it is under low × budget. */
        lowWatermark: z.number().min(0).max(1).default(0.8),
        highWatermark: z.number().min(0).max(1).default(0.95),
        /** Host CPUs VMs may run on (empty: all). */
        cpus: z.array(z.number().int().min(0)).default([]),
        /** Pin each VM's VMM process to one CPU of `cpus`, round-robin. */
        pinVms: z.boolean().default(false),
      })
      .strict()
      .default({}),
    admission: z
      .object({
        /** Invocations running or starting at once on this node; more wait in the function's queue. */
        maxConcurrentInvocations: z.number().int().positive().default(64),
        /** Requests waiting per function; one more is refused with 429. */
        maxQueueLength: z.number().int().min(0).default(100),
        /** How long a request may wait for an instance before it is refused with 503. */
        maxQueueDelayMs: z.number().int().positive().default(60_000),
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
      })
      .strict()
      .default({}),
    activations: z
      .object({ retain: z.number().int().positive().default(100_000) })
      .strict()
      .default({}),
    policies: policiesConfigSchema.default({}),
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
  const r = configSchema.safeParse(input ?? {});
  if (!r.success) {
    const first = r.error.issues[0];
    const key = first?.path.join('.') || '(root)';
    const all = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigError(`${source}: invalid key ${key}: ${all}`, key);
  }
  const cfg = r.data;
  if (cfg.node.lowWatermark > cfg.node.highWatermark) {
    throw new ConfigError(`${source}: invalid key node.lowWatermark: must not exceed node.highWatermark`, 'node.lowWatermark');
  }
  const names = new Set<string>();
  for (const t of cfg.snapshots.tiers ?? []) {
    if (names.has(t.name)) throw new ConfigError(`${source}: invalid key snapshots.tiers: duplicate tier ${t.name}`, 'snapshots.tiers');
    names.add(t.name);
  }
  if (!cfg.api.token && process.env.FAASCELL_TOKEN) cfg.api.token = process.env.FAASCELL_TOKEN;
  return cfg;
}

/** Load a YAML or JSON file (by content: JSON is YAML) and validate it. Relative paths resolve against the file. */
export function loadConfigFile(file: string | undefined, overrides: Record<string, unknown> = {}): { config: Config; baseDir: string } {
  let raw: unknown = {};
  let baseDir = process.cwd();
  if (file) {
    const text = readFileSync(file, 'utf8');
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
  return { config, baseDir };
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
