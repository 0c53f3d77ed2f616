// Pure VmConfig -> qemu-system-x86_64 argv. No I/O, so it is unit-testable and
// a restore gets exactly the device layout of its snapshot source.

import path from 'node:path';
import { GUEST_MAC } from '../../network/plan.js';
import type { Accelerator, MemoryBacking, VmConfig } from '../types.js';

/** Files the VMM creates inside runDir. */
export interface RunFiles {
  qmpSocket: string;
  channelSocket: string;
  consoleLog: string;
  pidFile: string;
}

export function runFiles(runDir: string): RunFiles {
  return {
    qmpSocket: path.join(runDir, 'qmp.sock'),
    channelSocket: path.join(runDir, 'channel.sock'),
    consoleLog: path.join(runDir, 'console.log'),
    pidFile: path.join(runDir, 'qemu.pid'),
  };
}

export interface CmdlineOptions {
  /** Start with `-incoming defer` (a restore: state comes via QMP migrate-incoming). */
  incoming?: boolean;
  /** Where ttyS0 goes: a file in runDir (default) or the process's stdout (accelerator probe). */
  serial?: 'file' | 'stdio';
  /** Overrides cfg.memory (restore uses the snapshot's RAM file privately). */
  memory?: MemoryBacking;
}

export class VmConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VmConfigError';
  }
}

export const MIN_MEMORY_MIB = 32;
export const MAX_MEMORY_MIB = 256 * 1024;
export const MAX_VCPUS = 64;

/** QemuOpts values: a literal comma is written as ",,". */
export function escapeOptValue(v: string): string {
  return v.replaceAll(',', ',,');
}

function requireAbsolute(what: string, p: string): void {
  if (typeof p !== 'string' || p.length === 0) throw new VmConfigError(`${what} is missing`);
  if (!path.isAbsolute(p)) throw new VmConfigError(`${what} must be an absolute path, got "${p}"`);
  if (p.includes('\n') || p.includes('\0')) throw new VmConfigError(`${what} contains a newline or NUL`);
}

export function validateVmConfig(cfg: VmConfig): void {
  if (!cfg.vmId || !/^[A-Za-z0-9._-]{1,128}$/.test(cfg.vmId)) {
    throw new VmConfigError(`vmId must be 1-128 characters of [A-Za-z0-9._-], got "${cfg.vmId}"`);
  }
  if (!Number.isInteger(cfg.memoryMiB) || cfg.memoryMiB < MIN_MEMORY_MIB || cfg.memoryMiB > MAX_MEMORY_MIB) {
    throw new VmConfigError(`memoryMiB must be an integer between ${MIN_MEMORY_MIB} and ${MAX_MEMORY_MIB}, got ${cfg.memoryMiB}`);
  }
  if (!Number.isInteger(cfg.vcpus) || cfg.vcpus < 1 || cfg.vcpus > MAX_VCPUS) {
    throw new VmConfigError(`vcpus must be an integer between 1 and ${MAX_VCPUS}, got ${cfg.vcpus}`);
  }
  if (cfg.accelerator !== 'kvm' && cfg.accelerator !== 'tcg') {
    throw new VmConfigError(`accelerator must be "kvm" or "tcg", got "${String(cfg.accelerator)}"`);
  }
  requireAbsolute('runDir', cfg.runDir);
  requireAbsolute('image.kernelPath', cfg.image.kernelPath);
  requireAbsolute('image.initrdPath', cfg.image.initrdPath);
  requireAbsolute('image.rootfsPath', cfg.image.rootfsPath);
  if (cfg.memory.kind === 'file') requireAbsolute('memory.path', cfg.memory.path);
  else if (cfg.memory.kind !== 'anonymous') throw new VmConfigError(`unknown memory kind "${(cfg.memory as { kind: string }).kind}"`);
  if (cfg.cpuAffinity) {
    for (const c of cfg.cpuAffinity) {
      if (!Number.isInteger(c) || c < 0 || c > 4095) throw new VmConfigError(`cpuAffinity entries must be CPU numbers, got ${c}`);
    }
  }
  if (cfg.extraCmdline?.includes('\n')) throw new VmConfigError('extraCmdline must be a single line');
  if (cfg.network) {
    requireAbsolute('network.netnsPath', cfg.network.netnsPath);
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(cfg.network.tap)) throw new VmConfigError(`network.tap must be an interface name (1-15 of [A-Za-z0-9_.-]), got "${cfg.network.tap}"`);
  }
}

export function accelArgs(accel: Accelerator): string[] {
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max'];
}

export function kernelCmdline(cfg: VmConfig): string {
  return [cfg.image.cmdline, cfg.extraCmdline].filter((s) => s && s.trim()).join(' ').trim();
}

/** Builds argv (without the binary). Throws VmConfigError on bad input. */
export function buildQemuArgs(cfg: VmConfig, opts: CmdlineOptions = {}): string[] {
  validateVmConfig(cfg);
  const memory = opts.memory ?? cfg.memory;
  if (memory.kind === 'file') requireAbsolute('memory.path', memory.path);
  const f = runFiles(cfg.runDir);
  const machine = ['microvm', 'pit=on', 'pic=on', 'rtc=on'];
  const args: string[] = [];
  if (memory.kind === 'file') machine.push('memory-backend=mem');
  args.push('-name', `faascell-${cfg.vmId}`);
  args.push('-M', machine.join(','));
  args.push(...accelArgs(cfg.accelerator));
  args.push('-m', String(cfg.memoryMiB), '-smp', String(cfg.vcpus));
  if (memory.kind === 'file') {
    args.push(
      '-object',
      `memory-backend-file,id=mem,size=${cfg.memoryMiB}M,mem-path=${escapeOptValue(memory.path)},share=${memory.share ? 'on' : 'off'}`,
    );
  }
  args.push('-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot');
  // -serial file: takes the rest of the string verbatim (no QemuOpts escaping).
  args.push('-serial', opts.serial === 'stdio' ? 'stdio' : `file:${f.consoleLog}`);
  args.push('-kernel', cfg.image.kernelPath, '-initrd', cfg.image.initrdPath, '-append', kernelCmdline(cfg));
  args.push('-qmp', `unix:${escapeOptValue(f.qmpSocket)},server=on,wait=off`);
  args.push(
    '-device',
    'virtio-serial-device',
    '-chardev',
    `socket,id=agent,path=${escapeOptValue(f.channelSocket)},server=on,wait=off`,
    '-device',
    // a named port, not virtconsole: QEMU drops console output when the socket is full,
    // a port is flow-controlled (the guest's /init finds it by this name)
    'virtserialport,chardev=agent,name=faascell.agent',
  );
  args.push(
    '-drive',
    `file=${escapeOptValue(cfg.image.rootfsPath)},if=none,id=rootfs,format=raw,readonly=on`,
    '-device',
    'virtio-blk-device,drive=rootfs',
  );
  // One virtio-net NIC in every VM, last so the other devices keep their slots
  // (docs/network.md). The device layout is the same with and without networking,
  // so a snapshot restores either way; without a tap peer nothing the guest sends
  // goes anywhere. vnet_hdr=off: the NIC offers the same features either way.
  if (cfg.network) args.push('-netdev', `tap,id=net0,ifname=${cfg.network.tap},script=no,downscript=no,vnet_hdr=off`);
  args.push('-device', `virtio-net-device,mac=${GUEST_MAC}${cfg.network ? ',netdev=net0' : ''}`);
  args.push('-pidfile', f.pidFile);
  if (opts.incoming) args.push('-incoming', 'defer');
  return args;
}
