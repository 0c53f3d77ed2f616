// Which process runs a daemon on a state directory: `<stateDir>/daemon.pid`, written at start
// and removed at a clean stop. `faascell gc` refuses to touch the tiers of a state directory
// whose daemon still runs (a pid file left by a killed daemon names a process that is gone).
import fs from 'node:fs';
import path from 'node:path';
import { processAlive } from './process-alive.js';

export const DAEMON_PID_FILE = 'daemon.pid';

export function writeDaemonPid(stateDir: string, pid = process.pid): void {
  fs.mkdirSync(stateDir, { recursive: true });
  fs.writeFileSync(path.join(stateDir, DAEMON_PID_FILE), `${pid}\n`);
}

export function removeDaemonPid(stateDir: string, pid = process.pid): void {
  if (daemonPid(stateDir) === pid) fs.rmSync(path.join(stateDir, DAEMON_PID_FILE), { force: true });
}

function daemonPid(stateDir: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(path.join(stateDir, DAEMON_PID_FILE), 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of a living daemon on this state directory, if any. */
export function runningDaemon(stateDir: string): number | undefined {
  const pid = daemonPid(stateDir);
  if (pid === undefined) return undefined;
  return processAlive(pid) ? pid : undefined;
}
