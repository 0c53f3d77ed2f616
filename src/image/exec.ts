// Small process helpers for the image builder.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type Log = (line: string) => void;

export function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** `cmd` in the directories of `searchPath` (default $PATH). */
export function which(cmd: string, searchPath = process.env.PATH ?? '/usr/bin:/bin'): string | undefined {
  for (const dir of searchPath.split(delimiter)) {
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Run a command, collecting stdout (binary) and stderr. With `log`, stdout and
 * stderr lines are forwarded as they come (stdout is then not collected).
 */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: Buffer; log?: Log; prefix?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    const forward = (stream: NodeJS.ReadableStream, collect: boolean): void => {
      let partial = '';
      stream.on('data', (d: Buffer) => {
        if (collect && !opts.log) {
          out.push(d);
          return;
        }
        const text = partial + d.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) {
          if (!collect) err += `${l}\n`;
          if (opts.log && l.trim()) opts.log(`${opts.prefix ?? ''}${l}`);
        }
      });
      stream.on('end', () => {
        if (partial) {
          if (!collect) err += partial;
          if (opts.log && partial.trim()) opts.log(`${opts.prefix ?? ''}${partial}`);
        }
      });
    };
    if (child.stdout) forward(child.stdout, true);
    if (child.stderr) forward(child.stderr, false);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err.slice(-4000) }));
    if (opts.input && child.stdin) {
      child.stdin.on('error', () => {
        /* the child may exit before reading everything (e.g. a decompressor at trailing garbage) */
      });
      child.stdin.end(opts.input);
    }
  });
}

/** run() that throws with the command's stderr when it fails. */
export async function runOk(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim().slice(-1500)}`);
  return r;
}
