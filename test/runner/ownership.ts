// What a test run owns on this shared machine, and the sweep that ends it. A process belongs to the run
// when its environment carries the run's id (everything the tests spawn inherits it: daemons, nats-server,
// prometheus, chromium), or when its command line or working directory names the run's root or tmpfs
// prefix (the VMMs: the daemon starts them with a clean environment, but their sockets, pid files and
// RAM files are in the run's directories). Files: the run's root, /dev/shm entries with the run's prefix,
// and snapshot tiers whose owner marker names a state directory under the root. Nothing else is read
// for a decision, and nothing else is ever signalled or removed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { OWNER_SUFFIX } from '../../src/snapshots/tier-owner.js';
import { RUN_ID_ENV, SHM_ROOT, shmPrefix } from '../support/test-run.js';

export interface TestRunScope {
  id: string;
  /** the run's root directory (the tests' TMPDIR) */
  root: string;
  /** where tmpfs entries are made (SHM_ROOT; a test of this module passes its own) */
  shmRoot?: string;
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  cmdline: string[];
  environ: string[];
  cwd?: string;
}

const under = (dir: string): string => (dir.endsWith('/') ? dir : `${dir}/`);

/** Why a process belongs to the run, or undefined when it does not. */
export function whyOwned(run: TestRunScope, p: ProcessInfo): string | undefined {
  if (p.environ.includes(`${RUN_ID_ENV}=${run.id}`)) return `its environment has ${RUN_ID_ENV}=${run.id}`;
  const root = under(run.root);
  const shm = path.join(run.shmRoot ?? SHM_ROOT, shmPrefix(run.id));
  if (p.cmdline.some((a) => a === run.root || a.includes(root) || a.includes(shm))) return "its command line names the run's directories";
  if (p.cwd !== undefined && (p.cwd === run.root || p.cwd.startsWith(root))) return "it runs in the run's directory";
  return undefined;
}

function readNul(file: string): string[] {
  try {
    return fs.readFileSync(file, 'latin1').split('\0').filter((s) => s !== '');
  } catch {
    return []; // gone, or a process this user may not read
  }
}

/** Every user-space process on the machine, as /proc shows it now. */
export function listProcesses(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const dir = `/proc/${name}`;
    const cmdline = readNul(`${dir}/cmdline`);
    if (cmdline.length === 0) continue; // a kernel thread, a zombie, or gone
    let ppid = 0;
    try {
      const stat = fs.readFileSync(`${dir}/stat`, 'latin1');
      ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      continue;
    }
    let cwd: string | undefined;
    try {
      cwd = fs.readlinkSync(`${dir}/cwd`);
    } catch {
      cwd = undefined;
    }
    out.push({ pid: Number(name), ppid, cmdline, environ: readNul(`${dir}/environ`), cwd });
  }
  return out;
}

/** This process and its ancestors: the sweep never signals the runner that called it. */
function selfAndAncestors(all: ProcessInfo[]): Set<number> {
  const parent = new Map(all.map((p) => [p.pid, p.ppid]));
  const mine = new Set<number>();
  for (let pid: number | undefined = process.pid; pid !== undefined && pid > 1 && !mine.has(pid); pid = parent.get(pid)) mine.add(pid);
  return mine;
}

export function ownedProcesses(run: TestRunScope, all = listProcesses()): Array<ProcessInfo & { why: string }> {
  const spared = selfAndAncestors(all);
  return all.flatMap((p) => {
    const why = spared.has(p.pid) ? undefined : whyOwned(run, p);
    return why === undefined ? [] : [{ ...p, why }];
  });
}

/** tmpfs entries of the run: its prefixed names, and tiers (with their markers) owned by a state dir under the root. */
export function ownedShmEntries(run: TestRunScope): string[] {
  const shmRoot = run.shmRoot ?? SHM_ROOT;
  let names: string[];
  try {
    names = fs.readdirSync(shmRoot);
  } catch {
    return [];
  }
  const found = new Set<string>();
  for (const n of names) {
    const p = path.join(shmRoot, n);
    if (n.startsWith(shmPrefix(run.id))) found.add(p);
    else if (n.endsWith(OWNER_SUFFIX)) {
      try {
        const owner = JSON.parse(fs.readFileSync(p, 'utf8')) as { stateDir?: unknown };
        if (typeof owner.stateDir === 'string' && owner.stateDir.startsWith(under(run.root))) {
          found.add(p);
          const tier = p.slice(0, -OWNER_SUFFIX.length);
          if (fs.existsSync(tier)) found.add(tier);
        }
      } catch {
        // not a marker we can read: not ours to judge
      }
    }
  }
  return [...found].sort();
}

/** Mount points inside the run's directories (a test's tmpfs), deepest first. */
export function ownedMounts(run: TestRunScope, mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const shm = path.join(run.shmRoot ?? SHM_ROOT, shmPrefix(run.id));
  return mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === run.root || m.startsWith(under(run.root)) || m.startsWith(shm)))
    .map((m) => m.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
}

export interface SweepReport {
  /** processes of the run still alive after its suites ended (killed) */
  processes: string[];
  /** mounts left inside the run's directories (unmounted) */
  mounts: string[];
  /** the run's /dev/shm entries left (removed) */
  shm: string[];
  /** what the tests left in the run's root (removed with it) */
  tmp: string[];
}

async function waitGone(pids: number[], ms: number): Promise<void> {
  const end = Date.now() + ms;
  const alive = (pid: number): boolean => fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'latin1').includes(') Z ');
  while (pids.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

/** Kill the run's processes, unmount and remove its files; report what there was. Touches nothing else. */
export async function sweep(run: TestRunScope, opts: { removeRoot: boolean }): Promise<SweepReport> {
  const procs = ownedProcesses(run);
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitGone(
    procs.map((p) => p.pid),
    5_000,
  );
  const mounts = ownedMounts(run);
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // reported; the root is then kept (below)
    }
  }
  const shm = ownedShmEntries(run);
  for (const e of shm) fs.rmSync(e, { recursive: true, force: true });
  let tmp: string[] = [];
  try {
    tmp = fs.readdirSync(run.root).sort();
  } catch {
    tmp = [];
  }
  // never remove across a mount that would not go away: a bind mount's files are not the run's
  const stuck = ownedMounts(run);
  if (opts.removeRoot && stuck.length === 0) fs.rmSync(run.root, { recursive: true, force: true });
  return {
    processes: procs.map((p) => `pid ${p.pid} (${p.why}): ${p.cmdline.join(' ').slice(0, 200)}`),
    mounts: mounts.map((m) => (stuck.includes(m) ? `${m} (could not be unmounted: ${run.root} kept)` : m)),
    shm,
    tmp,
  };
}
