// NetworkManager: allocates what connects host and guest. Guests have no
// network device at all (functions are untrusted; none is needed to answer a
// request): each VM gets a private run directory holding its unix sockets (QMP,
// agent channel), console log and pid file. The manager also reaps what a
// killed daemon left behind: stale run directories and their VMM processes.

import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Actor, type Reply } from '../core/actor.js';

/** sun_path is 108 bytes on Linux, including the NUL */
const MAX_SOCKET_PATH = 107;
const LONGEST_SOCKET_NAME = 'channel.sock';

export interface VmEndpoints {
  vmId: string;
  runDir: string;
}

export type NetworkMsg =
  | { kind: 'allocate'; vmId: string; reply: Reply<VmEndpoints> }
  | { kind: 'release'; vmId: string }
  | { kind: 'list'; reply: Reply<string[]> };

export class NetworkManager extends Actor<NetworkMsg> {
  private readonly live = new Set<string>();

  constructor(private readonly runRoot: string) {
    super();
    const probe = path.join(runRoot, 'vm-0123456789ab', LONGEST_SOCKET_NAME);
    if (Buffer.byteLength(probe) > MAX_SOCKET_PATH) {
      throw new Error(`state directory path too long for unix sockets (${probe.length} > ${MAX_SOCKET_PATH} bytes): choose a shorter stateDir`);
    }
  }

  protected override preStart(): void {
    mkdirSync(this.runRoot, { recursive: true, mode: 0o700 });
    const reaped = reapStaleRunDirs(this.runRoot);
    if (reaped.dirs > 0) this.log.warn('reaped VMs left behind by a previous daemon', reaped);
  }

  protected receive(msg: NetworkMsg): void {
    switch (msg.kind) {
      case 'allocate': {
        const runDir = path.join(this.runRoot, msg.vmId);
        mkdirSync(runDir, { recursive: true, mode: 0o700 });
        this.live.add(msg.vmId);
        msg.reply.resolve({ vmId: msg.vmId, runDir });
        return;
      }
      case 'release':
        this.live.delete(msg.vmId);
        // the driver removes the directory on stop; this is the safety net
        rmSync(path.join(this.runRoot, msg.vmId), { recursive: true, force: true });
        return;
      case 'list':
        msg.reply.resolve([...this.live]);
        return;
    }
  }
}

/**
 * Kill VMM processes whose pid file is in a run directory nobody owns any more
 * (the daemon that made them was killed) and remove the directories. A pid is
 * only killed if its command line still names that run directory, so a reused
 * pid is never hit.
 */
export function reapStaleRunDirs(runRoot: string): { dirs: number; killed: number } {
  let dirs = 0;
  let killed = 0;
  let entries: string[];
  try {
    entries = readdirSync(runRoot);
  } catch {
    return { dirs, killed };
  }
  for (const name of entries) {
    const dir = path.join(runRoot, name);
    for (const pidFile of ['vmm.pid', 'qemu.pid', 'firecracker.pid']) {
      let pid: number;
      try {
        pid = parseInt(readFileSync(path.join(dir, pidFile), 'utf8').trim(), 10);
      } catch {
        continue;
      }
      if (!Number.isInteger(pid) || pid <= 1) continue;
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.includes(dir)) {
          process.kill(pid, 'SIGKILL');
          killed++;
        }
      } catch {
        // process already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
    dirs++;
  }
  return { dirs, killed };
}
