// Accelerator detection. /dev/kvm existing proves nothing (on PVM hosts it opens
// but cannot run a stock kernel), so in auto mode we boot the image's kernel once
// with KVM and trust it only if the guest prints the probe marker. Cached by inputs.

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Accelerator, GuestImage } from '../types.js';
import { buildQemuArgs } from './cmdline.js';

const execFileP = promisify(execFile);

export const PROBE_MARKER = 'FAASCELL_PROBE_OK';
export const PROBE_CMDLINE = 'faascell.probe=1';
export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';

export type AccelMode = 'auto' | 'kvm' | 'tcg';

export interface AccelDecision {
  accelerator: Accelerator;
  reason: string;
  /** true when the answer came from <cacheDir>/accel.json */
  cached: boolean;
}

export interface DetectOptions {
  image: GuestImage;
  cacheDir: string;
  mode: AccelMode;
  log?: (msg: string) => void;
  qemuBinary?: string;
  /** Probe deadline (default 10 s). */
  probeTimeoutMs?: number;
  /** Ignore and overwrite the cached answer. */
  refresh?: boolean;
}

/** `qemu-system-x86_64 --version` first line's version, e.g. "7.2.22". Throws if the binary cannot run. */
export async function qemuVersion(binary = DEFAULT_QEMU_BINARY): Promise<string> {
  const { stdout } = await execFileP(binary, ['--version'], { timeout: 10_000 });
  const m = /version\s+([0-9][^\s]*)/i.exec(stdout);
  return m?.[1] ?? stdout.split('\n')[0]?.trim() ?? 'unknown';
}

export function kvmDeviceState(): 'ok' | 'missing' | 'no-access' {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return 'ok';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'no-access';
  }
}

interface CacheEntry {
  accelerator: Accelerator;
  reason: string;
  probedAt: string;
}
type CacheFile = Record<string, CacheEntry>;

function readCache(file: string): CacheFile {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as CacheFile) : {};
  } catch {
    return {};
  }
}

function writeCache(file: string, data: CacheFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  fs.renameSync(tmp, file); // atomic: concurrent detectors never read half a file
}

export interface ProbeResult {
  ok: boolean;
  /** What happened, for the reason string. */
  detail: string;
  ms: number;
}

/** Boots the image's kernel with the given accelerator and waits for the probe marker on ttyS0. */
export async function probeAccelerator(
  image: GuestImage,
  accelerator: Accelerator,
  opts: { qemuBinary?: string; timeoutMs?: number } = {},
): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faascell-probe-'));
  const args = buildQemuArgs(
    {
      vmId: 'accel-probe',
      memoryMiB: 256,
      vcpus: 1,
      image,
      runDir,
      accelerator,
      memory: { kind: 'anonymous' },
      extraCmdline: PROBE_CMDLINE,
    },
    { serial: 'stdio' },
  );
  const t0 = Date.now();
  const child = spawn(opts.qemuBinary ?? DEFAULT_QEMU_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  try {
    return await new Promise<ProbeResult>((resolve) => {
      let done = false;
      const finish = (r: Omit<ProbeResult, 'ms'>) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ ...r, ms: Date.now() - t0 });
      };
      const stderrSummary = () => {
        const lines = err.split('\n').map((l) => l.trim()).filter(Boolean);
        const line = lines.find((l) => /error|fail/i.test(l)) ?? lines[0];
        return line ? `: ${line.slice(0, 200)}` : '';
      };
      const timer = setTimeout(() => finish({ ok: false, detail: `no ${PROBE_MARKER} within ${timeoutMs} ms${stderrSummary()}` }), timeoutMs);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString('latin1');
        if (out.includes(PROBE_MARKER)) finish({ ok: true, detail: `guest printed ${PROBE_MARKER}` });
        if (out.length > 1 << 20) out = out.slice(-65536);
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString('latin1');
        if (err.length > 65536) err = err.slice(-65536);
      });
      child.once('error', (e) => finish({ ok: false, detail: `cannot start ${opts.qemuBinary ?? DEFAULT_QEMU_BINARY}: ${e.message}` }));
      child.once('exit', (code, sig) => {
        // stdout may still hold the marker: give the pipe a tick to drain
        setImmediate(() => {
          if (out.includes(PROBE_MARKER)) finish({ ok: true, detail: `guest printed ${PROBE_MARKER}` });
          finish({ ok: false, detail: `qemu exited (${sig ?? `code ${code}`}) without ${PROBE_MARKER}${stderrSummary()}` });
        });
      });
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await gone;
    }
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

/** Decides kvm vs tcg. See the module comment. */
export async function detectAccelerator(opts: DetectOptions): Promise<AccelDecision> {
  const log = opts.log ?? (() => undefined);
  const kvm = kvmDeviceState();
  if (opts.mode === 'tcg') return { accelerator: 'tcg', reason: 'tcg forced by configuration', cached: false };
  if (opts.mode === 'kvm') {
    if (kvm === 'missing') throw new Error('accelerator "kvm" is forced but /dev/kvm does not exist (no KVM on this host); use "auto" or "tcg"');
    if (kvm === 'no-access') throw new Error('accelerator "kvm" is forced but /dev/kvm is not accessible (add the user to the kvm group)');
    return { accelerator: 'kvm', reason: 'kvm forced by configuration', cached: false };
  }
  if (kvm === 'missing') return { accelerator: 'tcg', reason: '/dev/kvm not present; using tcg', cached: false };
  if (kvm === 'no-access') return { accelerator: 'tcg', reason: '/dev/kvm exists but is not accessible to this user; using tcg', cached: false };

  const binary = opts.qemuBinary ?? DEFAULT_QEMU_BINARY;
  const qv = await qemuVersion(binary);
  const key = `image=${opts.image.version};qemu=${qv};kernel=${os.release()};kvm=${kvm}`;
  const file = path.join(opts.cacheDir, 'accel.json');
  const cache = readCache(file);
  const hit = cache[key];
  if (hit && !opts.refresh && (hit.accelerator === 'kvm' || hit.accelerator === 'tcg')) {
    return { accelerator: hit.accelerator, reason: hit.reason, cached: true };
  }
  log(`accel: probing KVM with the guest kernel (deadline ${opts.probeTimeoutMs ?? 10_000} ms)`);
  const r = await probeAccelerator(opts.image, 'kvm', { qemuBinary: binary, timeoutMs: opts.probeTimeoutMs });
  const decision: AccelDecision = r.ok
    ? { accelerator: 'kvm', reason: `kvm probe succeeded in ${r.ms} ms (${r.detail})`, cached: false }
    : { accelerator: 'tcg', reason: `kvm probe failed: ${r.detail}; using tcg`, cached: false };
  log(`accel: ${decision.reason}`);
  try {
    writeCache(file, { ...readCache(file), [key]: { accelerator: decision.accelerator, reason: decision.reason, probedAt: new Date().toISOString() } });
  } catch (e) {
    log(`accel: cannot write ${file}: ${(e as Error).message}`);
  }
  return decision;
}
