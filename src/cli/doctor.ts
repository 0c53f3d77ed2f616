// `faascell doctor`: what is installed, which accelerator will run, what is
// missing and the exact command that installs it.

import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { findImage } from '../image/builder.js';
import { findPythonImage } from '../image/python.js';
import { kvmDeviceState, detectAccelerator } from '../runtimes/qemu/accel.js';
import { createDriver } from '../runtimes/index.js';
import type { Config } from '../config/schema.js';
import { lookupUser, readSubUids } from '../runtimes/jail/ids.js';
import { detectHostCgroups } from '../runtimes/jail/cgroups.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** a missing optional part does not make the doctor fail */
  optional?: boolean;
}

/** Debian packages the project needs, by the command or file that proves each is there. */
export const DEBIAN_PACKAGES: Array<{ pkg: string; probe: string; why: string; optional?: boolean }> = [
  { pkg: 'qemu-system-x86', probe: 'qemu-system-x86_64', why: 'the VMM' },
  { pkg: 'busybox-static', probe: '/bin/busybox', why: 'the guest initramfs' },
  { pkg: 'squashfs-tools', probe: 'mksquashfs', why: 'the guest root filesystem' },
  { pkg: 'cpio', probe: 'cpio', why: 'packing the initramfs' },
  { pkg: 'linux-source-6.1', probe: '/usr/src/linux-source-6.1.tar.xz', why: 'the minimal guest kernel (else Debian\'s generic kernel is used)', optional: true },
  { pkg: 'build-essential', probe: 'gcc', why: 'building the minimal kernel', optional: true },
  { pkg: 'flex', probe: 'flex', why: 'building the minimal kernel', optional: true },
  { pkg: 'bison', probe: 'bison', why: 'building the minimal kernel', optional: true },
  { pkg: 'bc', probe: 'bc', why: 'building the minimal kernel', optional: true },
  { pkg: 'libelf-dev', probe: '/usr/include/libelf.h', why: 'building the minimal kernel', optional: true },
  { pkg: 'libssl-dev', probe: '/usr/include/openssl/ssl.h', why: 'building the minimal kernel', optional: true },
  // networking for functions with network: egress (docs/network.md); without them such starts fail with the reason
  { pkg: 'iproute2', probe: 'ip', why: 'namespaces, veths and taps of functions with network: egress', optional: true },
  { pkg: 'nftables', probe: 'nft', why: 'the allowlist and NAT of functions with network: egress', optional: true },
  { pkg: 'conntrack', probe: 'conntrack', why: 'recycling network slots (else each is destroyed and made anew)', optional: true },
];

export function have(probe: string): boolean {
  if (probe.startsWith('/')) return existsSync(probe);
  try {
    execFileSync('sh', ['-c', `command -v ${probe}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function runDoctor(cfg: Config): Promise<Check[]> {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push({ name: 'node', ok: major >= 20, detail: `Node.js ${process.versions.node}`, fix: major >= 20 ? undefined : 'install Node.js 20' });
  const missing: string[] = [];
  for (const p of DEBIAN_PACKAGES) {
    const ok = have(p.probe);
    if (!ok && !p.optional) missing.push(p.pkg);
    checks.push({ name: p.pkg, ok, detail: `${p.why}${ok ? '' : ' — missing'}`, fix: ok ? undefined : `apt-get install -y ${p.pkg}`, optional: p.optional });
  }
  try {
    const { default: Database } = await import('better-sqlite3');
    new Database(':memory:').close();
    checks.push({ name: 'better-sqlite3', ok: true, detail: 'embedded database loads' });
  } catch (err) {
    checks.push({ name: 'better-sqlite3', ok: false, detail: (err as Error).message, fix: 'npm ci && npm install-scripts approve better-sqlite3 && npm rebuild better-sqlite3' });
  }
  const image = await findImage(cfg.cacheDir);
  checks.push(
    image
      ? { name: 'guest image', ok: true, detail: `${image.version} (${image.kernelKind} kernel, kernel ${mib(image.sizes.kernelBytes)}, initrd ${mib(image.sizes.initrdBytes)}, rootfs ${mib(image.sizes.rootfsBytes)}) in ${image.dir}` }
      : { name: 'guest image', ok: false, detail: `not built in ${cfg.cacheDir}`, fix: 'faascell image build' },
  );
  // issue 21: the Python image is optional (python3 functions need it)
  const python = cfg.image.python === 'off' ? undefined : await findPythonImage(cfg.cacheDir);
  checks.push(
    python
      ? { name: 'python image', ok: true, optional: true, detail: `${python.version} (rootfs ${mib(python.sizes.rootfsBytes)}) in ${python.dir}` }
      : { name: 'python image', ok: false, optional: true, detail: cfg.image.python === 'off' ? 'off (image.python)' : `not built in ${cfg.cacheDir}: python3 functions are refused`, fix: 'faascell image build --runtime python3' },
  );
  const kvm = kvmDeviceState();
  checks.push({ name: '/dev/kvm', ok: true, optional: true, detail: kvm === 'ok' ? 'present and accessible (whether it can boot the guest is probed)' : kvm === 'missing' ? 'absent: TCG (software emulation) will be used' : 'present but not accessible to this user' });
  if (image && have(cfg.runtime.qemuBinary)) {
    try {
      const d = await detectAccelerator({ image, cacheDir: cfg.cacheDir, mode: cfg.runtime.accelerator, qemuBinary: cfg.runtime.qemuBinary });
      checks.push({ name: 'accelerator', ok: true, detail: `${d.accelerator}: ${d.reason}${d.cached ? ' (cached probe)' : ''}` });
    } catch (err) {
      checks.push({ name: 'accelerator', ok: false, detail: (err as Error).message, fix: 'set runtime.accelerator: auto' });
    }
  }
  try {
    const fc = await createDriver('firecracker', { firecracker: { binary: cfg.runtime.firecrackerBinary } });
    const r = await fc.report();
    checks.push({ name: 'firecracker', ok: r.available, optional: true, detail: r.available ? `${r.binary} ${r.version ?? ''}` : `not found (${r.problems.join('; ')}); only the qemu runtime can run here` });
  } catch (err) {
    checks.push({ name: 'firecracker', ok: false, optional: true, detail: (err as Error).message });
  }
  // least privilege per VMM (docs/security.md)
  const vmmUser = lookupUser(cfg.jail.user);
  const block = vmmUser ? readSubUids(vmmUser.user, vmmUser.uid) : undefined;
  checks.push({
    name: 'VMM jail',
    ok: cfg.jail.enabled === false || (vmmUser !== undefined && process.getuid?.() === 0),
    optional: cfg.jail.enabled !== true,
    detail:
      cfg.jail.enabled === false
        ? 'off (jail.enabled: false): VMMs run as the daemon user'
        : !vmmUser
          ? `user ${cfg.jail.user} missing: VMMs would run unjailed`
          : process.getuid?.() !== 0
            ? 'the daemon must run as root to jail VMMs'
            : `user ${vmmUser.user} (gid ${vmmUser.gid}), ${block ? `a uid per VM from ${block.first}-${block.first + block.count - 1}` : 'one shared uid (no /etc/subuid block)'}, seccomp ${cfg.jail.seccomp ? 'on' : 'off'}`,
    fix: vmmUser ? undefined : 'npm run setup (creates the user and its uid block)',
  });
  const cg = detectHostCgroups(cfg.limits.cgroup, cfg.limits.cgroupParent);
  checks.push({
    name: 'cgroup limits',
    ok: cg.mode !== 'none',
    optional: cfg.limits.cgroup === 'auto' || cfg.limits.cgroup === 'off',
    detail: cg.mode === 'none' ? `none: ${cg.notes.join('; ')}` : `${cg.mode}: ${Object.entries(cg.controllers).map(([c, p]) => `${c} (${p.version})`).join(', ')}`,
  });
  if (missing.length > 0) {
    const cmd = `apt-get install -y ${missing.join(' ')}`;
    checks.push({ name: 'install', ok: false, detail: process.getuid?.() === 0 ? `run: ${cmd}` : `as root: sudo ${cmd}`, fix: cmd });
  }
  return checks;
}

function mib(b: number): string {
  return `${(b / 1048576).toFixed(1)} MiB`;
}
