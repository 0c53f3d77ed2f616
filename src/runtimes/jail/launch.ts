// How a VMM process is started: a base command (the VMM and its arguments)
// wrapped by a list of launch layers, each an exec-chain tool that changes one
// thing about the process and then execs the next (setpriv, the THP-off
// launcher of thp.ts, a cgroup entry script, `ip netns exec`, the jail's
// mount-namespace script, taskset). Every
// layer execs, so the pid Node gets from spawn() stays the VMM's own pid.
//
// Layers are listed outermost first. Layers that need root (joining a cgroup,
// a network namespace, building the jail) must come before the layer that drops
// privileges (the jail), which is therefore always the last one.

import { shellQuote } from './shell.js';

export interface LaunchSpec {
  cmd: string;
  argv: string[];
}

export interface LaunchLayer {
  /** For logs and tests. */
  readonly name: string;
  wrap(inner: LaunchSpec): LaunchSpec;
}

/** Applies `layers` (outermost first) around `base`. */
export function composeLaunch(base: LaunchSpec, layers: readonly LaunchLayer[]): LaunchSpec {
  let spec = base;
  for (let i = layers.length - 1; i >= 0; i--) spec = layers[i]!.wrap(spec);
  return spec;
}

/**
 * PR_SET_PDEATHSIG through setpriv: the kernel kills the process when the
 * daemon dies, even by SIGKILL. A change of uid or gid clears the signal, so a
 * layer that drops privileges must set it again after doing so (the jail does).
 */
export function pdeathsigLayer(setpriv: string): LaunchLayer {
  return { name: 'pdeathsig', wrap: (inner) => ({ cmd: setpriv, argv: ['--pdeathsig', 'KILL', '--', inner.cmd, ...inner.argv] }) };
}

/** Joins a network namespace (nsenter execs the rest: the pid stays the VMM's). Needs root. */
export function netnsLayer(nsenter: string, netnsPath: string): LaunchLayer {
  return { name: 'netns', wrap: (inner) => ({ cmd: nsenter, argv: [`--net=${netnsPath}`, '--', inner.cmd, ...inner.argv] }) };
}

/** Pins the process (and every thread it creates later) to `cpus`. */
export function tasksetLayer(taskset: string, cpus: readonly number[]): LaunchLayer {
  return { name: 'taskset', wrap: (inner) => ({ cmd: taskset, argv: ['-c', cpus.join(','), inner.cmd, ...inner.argv] }) };
}

/**
 * Moves the process into cgroups before anything else runs: a shell writes its
 * own pid into each `cgroup.procs` file, then execs the rest of the chain. Must
 * run in the host's mount namespace (`ip netns exec` remounts /sys).
 */
export function cgroupEnterLayer(procsFiles: readonly string[], sh = '/bin/sh'): LaunchLayer {
  return {
    name: 'cgroup',
    wrap: (inner) => {
      if (procsFiles.length === 0) return inner;
      const writes = procsFiles.map((f) => `echo $$ > ${shellQuote(f)} || exit 125`).join('\n');
      return { cmd: sh, argv: ['-c', `${writes}\nexec "$@"`, 'faascell-cgroup', inner.cmd, ...inner.argv] };
    },
  };
}

/** One printable line for logs (each word quoted only when it has to be). */
export function describeLaunch(spec: LaunchSpec): string {
  return [spec.cmd, ...spec.argv].map((w) => (/^[A-Za-z0-9_./:=,+@%-]+$/.test(w) ? w : shellQuote(w))).join(' ');
}
