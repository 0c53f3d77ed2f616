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
  /** QEMU's seccomp sandbox (SANDBOX_ARG). */
  sandbox?: boolean;
  /** TCG only: size of the translated-code cache in MiB (QEMU's default is 1 GiB), which bounds the VMM's memory. */
  tcgCodeCacheMiB?: number;
  /**
   * issue 9: anonymous guest RAM as a private mapping of an empty memfd instead of QEMU's
   * anonymous memory: the host then backs it with 4 KiB pages, where anonymous RAM gets
   * transparent huge pages (QEMU asks for them) and every 4 KiB the guest touches brings in
   * 2 MiB. Free page reporting still discards (the memfd belongs to this VM alone); migration
   * streams it like anonymous RAM (not shared).
   */
  privateMemfdRam?: boolean;
}

/** microvm puts RAM up to 3 GiB below 4 GiB and the rest from 4 GiB up (checked: test/e2e/guest-tuning). */
const MICROVM_LOWMEM_MIB = 3072;
const MIB = 1024 * 1024;

/**
 * Guest-physical memory when the root fs is mapped as persistent memory: three NUMA nodes
 * back to back, [main RAM][root fs image][tail RAM]. The kernel argument memmap=SIZE!ADDR
 * makes the middle range legacy pmem instead of RAM (no NUMA support needed in the guest).
 * The small tail exists because QEMU loads the initrd at the very top of RAM, which must not
 * be the read-only image; it is anonymous memory even in snapshots (x-ignore-shared streams
 * it into the state file, a few MiB). Guest RAM is main + tail = memoryMiB.
 */
export interface MemoryLayout {
  /** RAM of the 'mem' backend: anonymous, or the snapshot RAM file (whose size this is) */
  mainMiB: number;
  pmem?: { addrMiB: number; sizeMiB: number };
  tailMiB: number;
}

/** The kernel loads at 16 MiB: below this, no room for a split (virtio-blk root instead). */
const MIN_MAIN_MIB = 64;

/**
 * undefined pmem: this VM gets the root fs on virtio-blk instead (image without an EROFS
 * root or a kernel without DAX, an odd RAM size, or RAM + image above microvm's 3 GiB split).
 */
export function memoryLayout(cfg: Pick<VmConfig, 'memoryMiB' | 'image'>): MemoryLayout {
  const img = cfg.image;
  const plain: MemoryLayout = { mainMiB: cfg.memoryMiB, tailMiB: 0 };
  if (img.rootfsFormat !== 'erofs' || !img.kernelFeatures?.includes('dax')) return plain;
  const bytes = img.sizes.rootfsBytes;
  if (!Number.isInteger(bytes) || bytes <= 0 || bytes % (2 * MIB) !== 0) return plain;
  const sizeMiB = bytes / MIB;
  // the range starts 2 MiB-aligned (memory hot-add granularity)
  if (cfg.memoryMiB % 2 !== 0) return plain;
  // keep it simple: everything below the split (bigger guests get virtio-blk)
  if (cfg.memoryMiB + sizeMiB > MICROVM_LOWMEM_MIB) return plain;
  const tailMiB = 2 * Math.ceil((img.sizes.initrdBytes + 512 * 1024) / (2 * MIB));
  const mainMiB = cfg.memoryMiB - tailMiB;
  if (mainMiB < MIN_MAIN_MIB) return plain;
  return { mainMiB, pmem: { addrMiB: mainMiB, sizeMiB }, tailMiB };
}

export function pmemRootfs(cfg: VmConfig): { addrMiB: number; sizeMiB: number } | undefined {
  return memoryLayout(cfg).pmem;
}

/**
 * The image's kernel has virtio-balloon with free page reporting and guest RAM is anonymous:
 * the VMM adds the device. Never with a RAM file: QEMU 7.2 discards a reported page of
 * file-backed RAM by punching a hole in the file even when it is mapped private, so a
 * restored clone (share=off) would zero pages of the snapshot every other clone still needs.
 * A shared-memory snapshot's source (share=on) goes without it too, as its clones must have
 * the same devices. Full-stream snapshots keep it (anonymous RAM on both sides).
 */
export function usesFreePageReporting(cfg: VmConfig, memory: VmConfig['memory'] = cfg.memory): boolean {
  return cfg.image.kernelFeatures?.includes('balloon') === true && memory.kind === 'anonymous';
}

/**
 * QEMU's seccomp filter: besides its default set, deny obsolete system calls,
 * any change of uid/gid, spawning processes (fork/exec) and changing
 * scheduling/affinity. Migration therefore never uses exec: URIs (fd: and unix: instead).
 */
export const SANDBOX_ARG = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

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

/** tcgCodeCacheMiB: TCG's translated-code cache (`tb-size`; undefined: QEMU's 1 GiB default); ignored under KVM. */
export function accelArgs(accel: Accelerator, tcgCodeCacheMiB?: number): string[] {
  if (accel === 'kvm') return ['-accel', 'kvm', '-cpu', 'host'];
  return ['-accel', tcgCodeCacheMiB ? `tcg,tb-size=${tcgCodeCacheMiB}` : 'tcg', '-cpu', 'max'];
}

export function kernelCmdline(cfg: VmConfig): string {
  const pmem = pmemRootfs(cfg);
  const root = pmem ? `memmap=${pmem.sizeMiB}M!${pmem.addrMiB}M faascell.root=pmem` : '';
  return [cfg.image.cmdline, root, cfg.extraCmdline].filter((s) => s && s.trim()).join(' ').trim();
}

/** Builds argv (without the binary). Throws VmConfigError on bad input. */
export function buildQemuArgs(cfg: VmConfig, opts: CmdlineOptions = {}): string[] {
  validateVmConfig(cfg);
  const memory = opts.memory ?? cfg.memory;
  if (memory.kind === 'file') requireAbsolute('memory.path', memory.path);
  if (opts.tcgCodeCacheMiB !== undefined && (!Number.isInteger(opts.tcgCodeCacheMiB) || opts.tcgCodeCacheMiB < 1 || opts.tcgCodeCacheMiB > 4096)) {
    throw new VmConfigError(`tcgCodeCacheMiB must be an integer between 1 and 4096, got ${opts.tcgCodeCacheMiB}`);
  }
  const f = runFiles(cfg.runDir);
  const layout = memoryLayout(cfg);
  const pmem = layout.pmem;
  const machine = ['microvm', 'pit=on', 'pic=on', 'rtc=on'];
  const args: string[] = [];
  const memfdRam = opts.privateMemfdRam === true && memory.kind === 'anonymous';
  if ((memory.kind === 'file' || memfdRam) && !pmem) machine.push('memory-backend=mem');
  // Legacy pmem (memmap=!) becomes a device only once the kernel's PCI resource survey ran
  // (e820__reserve_resources_late): without a PCI host bridge it never does.
  if (pmem) machine.push('pcie=on');
  args.push('-name', `faascell-${cfg.vmId}`);
  args.push('-M', machine.join(','));
  args.push(...accelArgs(cfg.accelerator, opts.tcgCodeCacheMiB));
  args.push('-m', String(cfg.memoryMiB + (pmem?.sizeMiB ?? 0)), '-smp', String(cfg.vcpus));
  const ramBackend =
    memory.kind === 'file'
      ? `memory-backend-file,id=mem,size=${layout.mainMiB}M,mem-path=${escapeOptValue(memory.path)},share=${memory.share ? 'on' : 'off'}`
      : memfdRam
        ? `memory-backend-memfd,id=mem,size=${layout.mainMiB}M,share=off`
        : `memory-backend-ram,id=mem,size=${layout.mainMiB}M`;
  if (pmem) {
    // Main RAM is NUMA node 0, the root fs image node 1, the tail RAM node 2 (memoryLayout).
    // The image is mapped shared and read-only: every VM reads the same host page cache
    // pages, a guest cannot write them (ROM), and x-ignore-shared migration leaves them out
    // of snapshots.
    args.push(
      '-object',
      ramBackend,
      '-object',
      `memory-backend-file,id=rootfs,size=${pmem.sizeMiB}M,mem-path=${escapeOptValue(cfg.image.rootfsPath)},share=on,readonly=on`,
      '-object',
      `memory-backend-ram,id=mem-tail,size=${layout.tailMiB}M`,
      '-numa',
      'node,nodeid=0,memdev=mem',
      '-numa',
      'node,nodeid=1,memdev=rootfs',
      '-numa',
      'node,nodeid=2,memdev=mem-tail',
    );
  } else if (memory.kind === 'file' || memfdRam) {
    args.push('-object', ramBackend);
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
  if (!pmem) {
    args.push(
      '-drive',
      `file=${escapeOptValue(cfg.image.rootfsPath)},if=none,id=rootfs,format=raw,readonly=on`,
      '-device',
      'virtio-blk-device,drive=rootfs',
    );
  }
  // free page reporting: pages the guest frees are discarded on the host (MADV_DONTNEED), so
  // an idle VM holds only what it uses; anonymous guest RAM only (usesFreePageReporting)
  if (usesFreePageReporting(cfg, memory)) args.push('-device', 'virtio-balloon-device,free-page-reporting=on');
  // One virtio-net NIC in every VM, last so the other devices keep their slots
  // (docs/network.md). The device layout is the same with and without networking,
  // so a snapshot restores either way; without a tap peer nothing the guest sends
  // goes anywhere. vnet_hdr=off: the NIC offers the same features either way.
  if (cfg.network) args.push('-netdev', `tap,id=net0,ifname=${cfg.network.tap},script=no,downscript=no,vnet_hdr=off`);
  args.push('-device', `virtio-net-device,mac=${GUEST_MAC}${cfg.network ? ',netdev=net0' : ''}`);
  args.push('-pidfile', f.pidFile);
  if (opts.incoming) args.push('-incoming', 'defer');
  if (opts.sandbox) args.push('-sandbox', SANDBOX_ARG);
  return args;
}
