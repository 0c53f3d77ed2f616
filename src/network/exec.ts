// Runs the host's network tools (ip, nft, nsenter, conntrack) with a deadline.
// A failure is a NetworkSetupError carrying the step, so callers decide by type.

import { spawn } from 'node:child_process';

export type NetworkStep = 'host-setup' | 'host-teardown' | 'create-slot' | 'apply-rules' | 'recycle-slot' | 'destroy-slot' | 'reap' | 'inspect';

export class NetworkSetupError extends Error {
  constructor(
    readonly step: NetworkStep,
    message: string,
  ) {
    super(message);
    this.name = 'NetworkSetupError';
  }
}

export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` with `input` on stdin; never rejects (spawn errors become code null). */
export function runCmd(cmd: string, args: string[], input?: string, timeoutMs = 30_000): Promise<CmdResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const finish = (r: CmdResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ code: null, stdout, stderr: `${stderr}\n(killed after ${timeoutMs} ms)` });
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-4000)));
    child.on('error', (err) => finish({ code: null, stdout, stderr: err.message }));
    child.on('close', (code) => finish({ code, stdout, stderr }));
    if (input !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}

/** runCmd that throws a NetworkSetupError naming the step when the command fails. */
export async function runStep(step: NetworkStep, cmd: string, args: string[], input?: string, timeoutMs?: number): Promise<string> {
  const r = await runCmd(cmd, args, input, timeoutMs);
  if (r.code !== 0) throw new NetworkSetupError(step, `${step}: ${cmd} ${args.join(' ')} failed (exit ${r.code ?? 'none'}): ${r.stderr.trim().slice(-1500)}`);
  return r.stdout;
}

/** Runs a generated sh script (`sh -e -s`). */
export function runScript(step: NetworkStep, script: string, timeoutMs?: number): Promise<string> {
  return runStep(step, 'sh', ['-e', '-s'], script, timeoutMs);
}
