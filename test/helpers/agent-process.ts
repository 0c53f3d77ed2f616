// A guest agent (Node's bundle or the Python agent) as a host process with its
// channel on fd 3 (one end of a socket pair), exactly as in the guest minus the
// virtio-serial port, and a client speaking the agent protocol to it.

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { AgentReady } from '../../src/runtimes/agent-protocol.js';
import { within } from '../support/bounded.js';

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');
export const PYTHON_AGENT = path.join(PROJECT_ROOT, 'guest', 'agent-python', 'agent.py');

export type Reply = {
  id: number;
  ok: boolean;
  result?: unknown;
  logs?: string[];
  durationMs?: number;
  resync?: Record<string, number>;
  error?: { kind: string; message: string; stack?: string; exitCode?: number };
};

export class LineReader {
  private buf = Buffer.alloc(0);
  private lines: string[] = [];
  private waiters: ((l: string | undefined) => void)[] = [];
  private ended = false;
  constructor(input: Readable) {
    input.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      let nl: number;
      while ((nl = this.buf.indexOf(10)) !== -1) {
        const line = this.buf.subarray(0, nl).toString('utf8');
        this.buf = this.buf.subarray(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    const end = (): void => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    };
    input.on('end', end);
    input.on('close', end);
    input.on('error', end);
  }
  next(timeoutMs = 10_000): Promise<string | undefined> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      // timeoutMs 0: wait as long as the stream is open (no timer keeps the test process alive).
      const timer = timeoutMs > 0 ? setTimeout(() => reject(new Error('timeout waiting for a line')), timeoutMs) : undefined;
      this.waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }
}

export class Client {
  private nextId = 1;
  private pending = new Map<number, (r: Reply) => void>();
  readonly unmatched: Reply[] = [];
  readonly ready: Promise<AgentReady>;
  constructor(
    readonly reader: LineReader,
    readonly out: Writable,
  ) {
    this.ready = reader.next().then((l) => {
      if (!l) throw new Error('agent closed before ready');
      const r = JSON.parse(l) as AgentReady;
      void this.pump();
      return r;
    });
  }
  private async pump(): Promise<void> {
    for (;;) {
      const l = await this.reader.next(0).catch(() => undefined);
      if (l === undefined) return;
      const r = JSON.parse(l) as Reply;
      const w = this.pending.get(r.id);
      if (w) {
        this.pending.delete(r.id);
        w(r);
      } else this.unmatched.push(r);
    }
  }
  raw(line: string): void {
    this.out.write(`${line}\n`);
  }
  async request(body: Record<string, unknown>, timeoutMs = 10_000): Promise<Reply> {
    await this.ready;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout on ${String(body.op)}`)), timeoutMs);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.out.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }
  async waitUnmatched(): Promise<Reply> {
    for (let i = 0; i < 200 && this.unmatched.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const r = this.unmatched.shift();
    if (!r) throw new Error('no unmatched reply');
    return r;
  }
}

export interface AgentProc extends Client {
  proc: ChildProcess;
  exited: Promise<number | null>;
}

/** Processes started here and still running (the test file's after() kills them). */
export const agentProcs = new Set<ChildProcess>();

/** Start an agent: `command` runs with the channel on fd 3 and a fresh work dir under `tmp` (Python writes no __pycache__ into the sources). */
export function startAgentProcess(command: string[], tmp: string, extraEnv: Record<string, string> = {}): AgentProc {
  const work = fs.mkdtempSync(path.join(tmp, 'work-'));
  const proc = spawn(command[0]!, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, FAASCELL_AGENT_CHANNEL: 'fd:3', FAASCELL_WORK_DIR: work, FAASCELL_INIT_UPTIME: '1.5', PYTHONDONTWRITEBYTECODE: '1', ...extraEnv },
  });
  agentProcs.add(proc);
  const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  void exited.then(() => agentProcs.delete(proc));
  const ch = proc.stdio[3] as unknown as Readable & Writable;
  const c = new Client(new LineReader(ch), ch) as AgentProc;
  c.proc = proc;
  c.exited = exited;
  return c;
}

export async function stopAgent(a: AgentProc): Promise<void> {
  a.out.end();
  const code = await within(a.exited, 5000, () => 'timeout' as const);
  if (code === 'timeout') a.proc.kill('SIGKILL');
}

export const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

export const runReq = (params: unknown = {}): Record<string, unknown> => ({ op: 'run', activationId: 'a1', params, deadlineMs: 10_000 });
