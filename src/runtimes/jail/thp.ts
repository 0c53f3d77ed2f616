// Transparent huge pages for VMMs (issue 24, `limits.vmmThp`). With the host's THP in
// "madvise" mode QEMU asks for huge pages on its anonymous RAM blocks and its TCG code
// cache: a restored clone then holds whole 2 MiB pages where it touched a few KiB.
// `off` starts every VMM through a tiny launcher (thp-off.c beside this file) that sets
// PR_SET_THP_DISABLE and execs the rest of the launch chain; `inherit` leaves the VMM
// with the host's setting. The launcher is compiled by the set-up (and, when missing, by
// the daemon at its start) with the host's C compiler, cached by its source's hash.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../core/project-root.js';
import { cachedBinaryPath, ensureCompiledC, type CompileCResult } from '../../image/compile-c.js';
import type { LaunchLayer } from './launch.js';

export type VmmThp = 'off' | 'inherit';

/** The launcher's source, in the project tree (from the sources and from the build alike). */
export function thpOffSourcePath(root = projectRoot()): string {
  return path.join(root, 'src', 'runtimes', 'jail', 'thp-off.c');
}

/** Where the launcher built from `source` is cached: <cacheDir>/bin/faascell-thp-off-<hash of its source>. */
export function thpOffLauncherPath(cacheDir: string, source: Buffer | string): string {
  return cachedBinaryPath(path.join(cacheDir, 'bin'), 'faascell-thp-off', 'thp-off-v1\n', source);
}

export type ThpOffLauncher = CompileCResult;

/** The cached launcher, compiled first when missing. */
export async function ensureThpOffLauncher(cacheDir: string, opts: { root?: string; cc?: string } = {}): Promise<ThpOffLauncher> {
  const source = thpOffSourcePath(opts.root);
  return ensureCompiledC({ source, out: thpOffLauncherPath(cacheDir, readFileSync(source)), flags: ['-O2', '-s'], cc: opts.cc });
}

/** The launch layer: THP off for the VMM and everything it starts (inherited, kept across execve). */
export function thpOffLayer(launcher: string): LaunchLayer {
  return { name: 'thp-off', wrap: (inner) => ({ cmd: launcher, argv: [inner.cmd, ...inner.argv] }) };
}

/**
 * What the daemon starts its VMMs with for `limits.vmmThp`: the launcher's path for 'off' (built now if the
 * set-up did not), undefined for 'inherit' or when it cannot be built (said once: VMMs then keep the host's THP).
 */
export async function vmmThpOffLauncher(mode: VmmThp, cacheDir: string, log: { info(msg: string): void; warn(msg: string): void }): Promise<string | undefined> {
  if (mode !== 'off') return undefined;
  const l = await ensureThpOffLauncher(cacheDir);
  if (!l.ok) {
    log.warn(`limits.vmmThp is off but its launcher could not be built (${l.detail}): VMMs keep the host's transparent huge pages`);
    return undefined;
  }
  if (l.built) log.info(`built the VMMs' THP-off launcher: ${l.path}`);
  return l.path;
}
