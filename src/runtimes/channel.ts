// Host end of the host<->guest agent channel: line-delimited JSON over a unix
// socket (QEMU: the virtio-serial port's chardev socket). Driver-independent.

import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import type { AgentReady, AgentReply, AgentRequestBody } from './agent-protocol.js';
import { DeadlineExceededError, type GuestChannel } from './types.js';

/**
 * Splits a byte stream into '\n'-terminated lines. A StringDecoder keeps a
 * multi-byte UTF-8 character that is split across chunks intact.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private buf = '';

  /** Feed one chunk; returns the complete lines it finished (without '\n', '\r' stripped). */
  push(chunk: Buffer | string): string[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', start);
      if (nl < 0) break;
      let line = this.buf.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      lines.push(line);
      start = nl + 1;
    }
    this.buf = this.buf.slice(start);
    return lines;
  }

  /** Bytes received after the last newline (decoded). */
  get pending(): string {
    return this.buf;
  }
}

/** Parses a line as a JSON object; anything else (noise, arrays, scalars) gives undefined. */
export function parseJsonObject(line: string): Record<string, unknown> | undefined {
  const t = line.trim();
  if (!t.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // not JSON: tty echo, console noise
  }
  return undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Connects to a unix socket, retrying while it does not exist yet or refuses
 * (the VMM creates it shortly after spawn). `abort` lets the caller stop
 * retrying early, e.g. when the VMM already exited.
 */
export async function connectUnixSocket(
  path: string,
  timeoutMs: number,
  opts: { retryMs?: number; abort?: () => string | undefined } = {},
): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  const retryMs = opts.retryMs ?? 10;
  let lastErr: unknown;
  for (;;) {
    const why = opts.abort?.();
    if (why) throw new Error(`connect ${path}: ${why}`);
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.createConnection({ path });
        const onErr = (e: Error) => {
          s.destroy();
          reject(e);
        };
        s.once('error', onErr);
        s.once('connect', () => {
          s.off('error', onErr);
          resolve(s);
        });
      });
    } catch (e) {
      lastErr = e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED' && code !== 'EAGAIN') throw e;
    }
    if (Date.now() + retryMs > deadline) {
      throw new DeadlineExceededError(`connect ${path}: timed out after ${timeoutMs} ms (${(lastErr as Error | undefined)?.message ?? 'no attempt'})`);
    }
    await sleep(retryMs);
  }
}

export class ChannelClosedError extends Error {
  constructor(message = 'guest channel closed') {
    super(message);
    this.name = 'ChannelClosedError';
  }
}

export class ChannelTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChannelTimeoutError';
  }
}

interface Pending {
  resolve: (r: AgentReply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface SocketChannelOptions {
  /** First request id (default 1). */
  firstId?: number;
  /** Called for every message that is neither `ready` nor a reply to a pending request. */
  onUnsolicited?: (msg: Record<string, unknown>) => void;
  log?: (msg: string) => void;
}

/** GuestChannel over a connected stream socket. */
export class SocketChannel implements GuestChannel {
  readonly closed: Promise<void>;
  private readonly splitter = new LineSplitter();
  private readonly pending = new Map<number, Pending>();
  private nextId: number;
  private readyMsg: AgentReady | undefined;
  private readyWaiters: Array<(m: AgentReady) => void> = [];
  private isClosed = false;
  private closeReason: string | undefined;
  private closeWaiters: Array<() => void> = [];
  private resolveClosed!: () => void;

  constructor(
    private readonly socket: net.Socket,
    private readonly opts: SocketChannelOptions = {},
  ) {
    this.nextId = opts.firstId ?? 1;
    this.closed = new Promise<void>((r) => (this.resolveClosed = r));
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.finish(`socket error: ${e.message}`));
    socket.on('close', () => this.finish('socket closed'));
  }

  /** Connect to `path` (retrying until it exists) and wrap it. */
  static async connect(path: string, timeoutMs: number, opts: SocketChannelOptions & { abort?: () => string | undefined } = {}): Promise<SocketChannel> {
    const s = await connectUnixSocket(path, timeoutMs, { abort: opts.abort });
    return new SocketChannel(s, opts);
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  private onData(chunk: Buffer): void {
    for (const line of this.splitter.push(chunk)) {
      const msg = parseJsonObject(line);
      if (!msg) continue;
      this.dispatch(msg);
    }
  }

  private dispatch(msg: Record<string, unknown>): void {
    if (msg.type === 'ready') {
      const ready = msg as unknown as AgentReady;
      this.readyMsg = ready;
      const ws = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of ws) w(ready);
      return;
    }
    if (typeof msg.id === 'number' && typeof msg.ok === 'boolean') {
      const p = this.pending.get(msg.id);
      if (p) {
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        p.resolve(msg as unknown as AgentReply);
        return;
      }
    }
    this.opts.onUnsolicited?.(msg);
  }

  ready(timeoutMs: number): Promise<AgentReady> {
    if (this.readyMsg) return Promise.resolve(this.readyMsg);
    if (this.isClosed) return Promise.reject(new ChannelClosedError(`guest channel closed before ready (${this.closeReason})`));
    return new Promise<AgentReady>((resolve, reject) => {
      const onReady = (m: AgentReady) => {
        clearTimeout(timer);
        this.closeWaiters = this.closeWaiters.filter((w) => w !== onClose);
        resolve(m);
      };
      const onClose = () => {
        clearTimeout(timer);
        reject(new ChannelClosedError(`guest channel closed before ready (${this.closeReason})`));
      };
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== onReady);
        this.closeWaiters = this.closeWaiters.filter((w) => w !== onClose);
        reject(new ChannelTimeoutError(`agent not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      this.readyWaiters.push(onReady);
      this.closeWaiters.push(onClose);
    });
  }

  request(req: AgentRequestBody, timeoutMs: number): Promise<AgentReply> {
    if (this.isClosed) return Promise.reject(new ChannelClosedError(`guest channel closed (${this.closeReason})`));
    const id = this.nextId++;
    return new Promise<AgentReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Drop the entry so a late reply is ignored instead of leaking.
        this.pending.delete(id);
        reject(new ChannelTimeoutError(`agent request ${req.op} #${id} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(JSON.stringify({ ...req, id }) + '\n', (err) => {
        if (err) {
          const p = this.pending.get(id);
          if (p) {
            this.pending.delete(id);
            clearTimeout(p.timer);
            p.reject(new ChannelClosedError(`write failed: ${err.message}`));
          }
        }
      });
    });
  }

  close(): void {
    this.finish('closed by host');
    this.socket.destroy();
  }

  private finish(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeReason = reason;
    const err = new ChannelClosedError(`guest channel closed (${reason})`);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    const cws = this.closeWaiters;
    this.closeWaiters = [];
    this.readyWaiters = [];
    for (const w of cws) w();
    this.socket.destroy();
    this.resolveClosed();
  }
}
