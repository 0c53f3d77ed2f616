// Host end of the host<->guest agent channel: line-delimited JSON over a unix
// socket (QEMU: the virtio-serial port's chardev socket). Driver-independent.

import net from 'node:net';
import type { AgentErrorKind, AgentReady, AgentReply, AgentRequestBody } from './agent-protocol.js';
import { DeadlineExceededError, type GuestChannel } from './types.js';
import { monoNow } from '../core/clock.js';

// ---- typed failures: callers decide by class (or `code`), never by message text

export type ChannelErrorCode = 'timeout' | 'closed' | 'protocol' | 'oversize' | 'flood' | 'encode';

export class ChannelError extends Error {
  constructor(
    readonly code: ChannelErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ChannelError';
  }
}

/** No answer (or no ready message) within the deadline. The guest may be hung. */
export class ChannelTimeoutError extends ChannelError {
  constructor(message: string) {
    super('timeout', message);
    this.name = 'ChannelTimeoutError';
  }
}

/** The channel is gone: the VM exited, the agent died, or the host closed it. `cause` holds a violation that closed it. */
export class ChannelClosedError extends ChannelError {
  constructor(message = 'guest channel closed', options?: ErrorOptions) {
    super('closed', message, options);
    this.name = 'ChannelClosedError';
  }
}

/**
 * issue 19: the host could not encode a request (JSON.stringify threw: parameters nested too
 * deep for its recursion). Nothing was sent: the request's fault, not the guest's; the channel
 * and the VM stay usable.
 */
export class ChannelEncodeError extends ChannelError {
  constructor(message: string, options?: ErrorOptions) {
    super('encode', message, options);
    this.name = 'ChannelEncodeError';
  }
}

/**
 * The guest broke the protocol (malformed or unexpected message, a reply to a
 * request never sent, too much noise). The channel is closed and the VM must
 * not be used again: it is the guest's fault, never the host's.
 */
export class ChannelProtocolError extends ChannelError {
  constructor(message: string, code: 'protocol' | 'oversize' | 'flood' = 'protocol') {
    super(code, message);
    this.name = 'ChannelProtocolError';
  }
}

/** A line longer than the channel's bound (a giant message, or one that never ends). */
export class ChannelOversizeError extends ChannelProtocolError {
  constructor(readonly limitBytes: number) {
    super(`guest sent a message longer than ${limitBytes} bytes (or one that never ends)`, 'oversize');
    this.name = 'ChannelOversizeError';
  }
}

/** More messages per second than the channel accepts. */
export class ChannelFloodError extends ChannelProtocolError {
  constructor(ratePerSec: number) {
    super(`guest sent more than ${ratePerSec} messages per second`, 'flood');
    this.name = 'ChannelFloodError';
  }
}

/** True for failures caused by the guest's behaviour (its VM is to be discarded). */
export function isGuestProtocolFault(e: unknown): e is ChannelProtocolError {
  return e instanceof ChannelProtocolError;
}

export interface ChannelLimits {
  /** Longest message (line) accepted from the guest, in bytes. */
  maxLineBytes: number;
  /** Lines that are not protocol messages (tty echo, noise) tolerated over the channel's life. */
  maxNoiseLines: number;
  /** Sustained messages per second, and the burst above it. */
  ratePerSec: number;
  burst: number;
}

export const DEFAULT_CHANNEL_LIMITS: ChannelLimits = { maxLineBytes: 16 * 1024 * 1024, maxNoiseLines: 100, ratePerSec: 500, burst: 1000 };

/**
 * Splits a byte stream into '\n'-terminated lines, decoding each whole line as
 * UTF-8 (a multi-byte character split across chunks stays intact: '\n' never
 * occurs inside one). Throws ChannelOversizeError once a line, complete or
 * not, exceeds `maxLineBytes`: an endless line cannot grow the buffer unbounded.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;

  constructor(private readonly maxLineBytes = Number.POSITIVE_INFINITY) {}

  /** Feed one chunk; returns the complete lines it finished (without '\n', '\r' stripped). */
  push(chunk: Buffer | string): string[] {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = buf.subarray(start, nl);
      if (this.partBytes + piece.length > this.maxLineBytes) throw new ChannelOversizeError(this.maxLineBytes);
      const whole = this.partBytes > 0 ? Buffer.concat([...this.parts, piece]) : piece;
      this.parts = [];
      this.partBytes = 0;
      let line = whole.toString('utf8');
      if (line.endsWith('\r')) line = line.slice(0, -1);
      lines.push(line);
      start = nl + 1;
    }
    if (start < buf.length) {
      const rest = buf.subarray(start);
      if (this.partBytes + rest.length > this.maxLineBytes) throw new ChannelOversizeError(this.maxLineBytes);
      this.parts.push(rest);
      this.partBytes += rest.length;
    }
    return lines;
  }

  /** Bytes received after the last newline (decoded). */
  get pending(): string {
    return Buffer.concat(this.parts).toString('utf8');
  }
}

/** Token bucket: `take()` is false once more than burst + rate × elapsed messages arrived. */
export class RateBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.ratePerSec) / 1000);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const ERROR_KINDS: ReadonlySet<AgentErrorKind> = new Set(['application', 'init', 'state', 'protocol']);

/** Checks a guest→host message (ready, or a reply: anything with `ok`) against the protocol; returns what is wrong, or undefined. Pure. */
export function checkGuestMessage(msg: Record<string, unknown>): string | undefined {
  if (msg.type === 'ready') {
    const u = msg.uptimeMs as Record<string, unknown> | undefined;
    if (typeof msg.agentVersion !== 'string' || typeof msg.node !== 'string') return 'ready: agentVersion and node must be strings';
    if (!u || typeof u !== 'object' || !['init', 'agentStart', 'ready'].every((k) => typeof u[k] === 'number' && Number.isFinite(u[k]))) return 'ready: uptimeMs.{init,agentStart,ready} must be numbers';
    return undefined;
  }
  if (!('ok' in msg)) return undefined; // not a reply: unsolicited (noise, or an echo of a request)
  if (!Number.isSafeInteger(msg.id)) return 'reply: id must be an integer';
  if (typeof msg.ok !== 'boolean') return 'reply: ok must be a boolean';
  if (msg.logs !== undefined && (!Array.isArray(msg.logs) || !msg.logs.every((l) => typeof l === 'string'))) return 'reply: logs must be an array of strings';
  if (msg.durationMs !== undefined && (typeof msg.durationMs !== 'number' || !Number.isFinite(msg.durationMs))) return 'reply: durationMs must be a number';
  if (msg.ok === false) {
    const e = msg.error as Record<string, unknown> | undefined;
    if (!e || typeof e !== 'object' || Array.isArray(e)) return 'reply: a failed reply needs an error object';
    if (!ERROR_KINDS.has(e.kind as AgentErrorKind)) return `reply: unknown error kind ${JSON.stringify(e.kind)?.slice(0, 40)}`;
    if (typeof e.message !== 'string') return 'reply: error.message must be a string';
    if (e.stack !== undefined && typeof e.stack !== 'string') return 'reply: error.stack must be a string';
  }
  return undefined;
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
  const deadline = monoNow() + timeoutMs;
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
    if (monoNow() + retryMs > deadline) {
      throw new DeadlineExceededError(`connect ${path}: timed out after ${timeoutMs} ms (${(lastErr as Error | undefined)?.message ?? 'no attempt'})`);
    }
    await sleep(retryMs);
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
  /** Called for every JSON object that is neither `ready` nor a reply (it still counts as noise). */
  onUnsolicited?: (msg: Record<string, unknown>) => void;
  log?: (msg: string) => void;
  /** Bounds on what the guest may send (DEFAULT_CHANNEL_LIMITS). */
  limits?: Partial<ChannelLimits>;
  /** Called once when the guest breaks the protocol, after the channel closed: the VM's owner should discard the VM. */
  onViolation?: (err: ChannelProtocolError) => void;
}

/** GuestChannel over a connected stream socket. */
export class SocketChannel implements GuestChannel {
  readonly closed: Promise<void>;
  private readonly splitter: LineSplitter;
  private readonly pending = new Map<number, Pending>();
  private readonly firstId: number;
  private readonly limits: ChannelLimits;
  private readonly bucket: RateBucket;
  private noiseLines = 0;
  private violation: ChannelProtocolError | undefined;
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
    this.nextId = this.firstId = opts.firstId ?? 1;
    this.limits = { ...DEFAULT_CHANNEL_LIMITS, ...opts.limits };
    this.splitter = new LineSplitter(this.limits.maxLineBytes);
    this.bucket = new RateBucket(this.limits.ratePerSec, this.limits.burst);
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

  /** The protocol violation that closed the channel, if one did. */
  get violationError(): ChannelProtocolError | undefined {
    return this.violation;
  }

  private onData(chunk: Buffer): void {
    if (this.isClosed) return;
    try {
      for (const line of this.splitter.push(chunk)) {
        if (!this.bucket.take()) throw new ChannelFloodError(this.limits.ratePerSec);
        const msg = parseJsonObject(line);
        if (!msg) {
          this.noise(`not a JSON object: ${JSON.stringify(line.slice(0, 60))}`);
          continue;
        }
        this.dispatch(msg);
        if (this.isClosed) return;
      }
    } catch (e) {
      if (e instanceof ChannelProtocolError) this.violate(e);
      else throw e;
    }
  }

  /** Tolerated up to limits.maxNoiseLines (tty echo before raw mode, console noise). */
  private noise(what: string): void {
    if (++this.noiseLines > this.limits.maxNoiseLines) throw new ChannelProtocolError(`guest sent more than ${this.limits.maxNoiseLines} lines that are not protocol messages (last: ${what})`);
  }

  private violate(err: ChannelProtocolError): void {
    if (this.isClosed) return;
    this.violation = err;
    this.opts.log?.(`guest channel: protocol violation: ${err.message}`);
    this.finish(err.message, err);
    this.opts.onViolation?.(err);
  }

  private dispatch(msg: Record<string, unknown>): void {
    const bad = checkGuestMessage(msg);
    if (bad) throw new ChannelProtocolError(`malformed message from the guest: ${bad}`);
    if (msg.type === 'ready') {
      const ready = msg as unknown as AgentReady;
      this.readyMsg = ready;
      const ws = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of ws) w(ready);
      return;
    }
    if (!('ok' in msg)) {
      if (this.opts.onUnsolicited) this.opts.onUnsolicited(msg);
      this.noise(`unsolicited ${JSON.stringify(msg).slice(0, 60)}`);
      return;
    }
    const id = msg.id as number;
    const p = this.pending.get(id);
    if (p) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.resolve(msg as unknown as AgentReply);
      return;
    }
    // a late reply to a request that timed out is harmless; one to a request never sent is not
    if (id < this.firstId || id >= this.nextId) throw new ChannelProtocolError(`guest replied to request #${id}, which was never sent`);
    this.noise(`late reply #${id}`);
  }

  ready(timeoutMs: number): Promise<AgentReady> {
    if (this.readyMsg) return Promise.resolve(this.readyMsg);
    if (this.isClosed) return Promise.reject(this.violation ?? new ChannelClosedError(`guest channel closed before ready (${this.closeReason})`));
    return new Promise<AgentReady>((resolve, reject) => {
      const onReady = (m: AgentReady) => {
        clearTimeout(timer);
        this.closeWaiters = this.closeWaiters.filter((w) => w !== onClose);
        resolve(m);
      };
      const onClose = () => {
        clearTimeout(timer);
        reject(this.violation ?? new ChannelClosedError(`guest channel closed before ready (${this.closeReason})`));
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
    if (this.isClosed) return Promise.reject(new ChannelClosedError(`guest channel closed (${this.closeReason})`, { cause: this.violation }));
    const id = this.nextId++;
    let line: string;
    try {
      line = JSON.stringify({ ...req, id }) + '\n';
    } catch (err) {
      return Promise.reject(new ChannelEncodeError(`agent request ${req.op} #${id} could not be encoded: ${(err as Error).message}`, { cause: err }));
    }
    return new Promise<AgentReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Drop the entry so a late reply is ignored instead of leaking.
        this.pending.delete(id);
        reject(new ChannelTimeoutError(`agent request ${req.op} #${id} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(line, (err) => {
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

  private finish(reason: string, violation?: ChannelProtocolError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeReason = reason;
    // a request cut short by the guest's violation fails with that violation: the clearest reason
    const err = violation ?? new ChannelClosedError(`guest channel closed (${reason})`);
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
