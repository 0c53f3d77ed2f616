// A guest image that names files under /img and a VM config on it, for tests that only build command lines.
import type { GuestImage, VmConfig } from '../../src/runtimes/types.js';

export function testImage(cmdline: string): GuestImage & { kernelKind: 'minimal' } {
  return {
    version: 'v1',
    dir: '/img',
    kernelPath: '/img/vmlinux',
    kernelKind: 'minimal',
    initrdPath: '/img/initrd.cpio.gz',
    rootfsPath: '/img/rootfs.sqfs',
    cmdline,
    sizes: { kernelBytes: 1, initrdBytes: 1, rootfsBytes: 1 },
  };
}

/** vm1: 256 MiB, one vCPU, TCG, anonymous memory, run directory /run/vm1. */
export function testVmConfig(image: GuestImage, over: Partial<VmConfig> = {}): VmConfig {
  return { vmId: 'vm1', memoryMiB: 256, vcpus: 1, image, runDir: '/run/vm1', accelerator: 'tcg', memory: { kind: 'anonymous' }, ...over };
}
