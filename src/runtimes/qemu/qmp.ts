// Minimal QMP (QEMU Machine Protocol) client over a unix socket.
// Protocol: server greets with {"QMP": {...}}, client must send qmp_capabilities,
// then each {"execute", "arguments", "id"} gets exactly one {"return"|"error", "id"}.
// Asynchronous {"event", "data", "timestamp"} messages may interleave at any time.

import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { LineSplitter, connectUnixSocket, parseJsonObject } from '../channel.js';
import { monoNow } from '../../core/clock.js';

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** An `error` reply from QEMU. */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly qmpClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command}: ${qmpClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

export class QmpClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QmpClosedError';
  }
}

export class QmpTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QmpTimeoutError';
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface QmpConnectOptions {
  /** Overall deadline for socket connect + greeting + capabilities negotiation. */
  timeoutMs?: number;
  /** Default per-command timeout (ms). */
  commandTimeoutMs?: number;
  /** Stop retrying the connect when this returns a reason (e.g. the VMM exited). */
  abort?: () => string | undefined;
}

/**
 * Emits 'event' (QmpEvent) for every asynchronous event and `event:<NAME>` per name,
 * and 'close' (reason: string) once.
 */
export class QmpClient extends EventEmitter {
  readonly closed: Promise<void>;
  greeting: QmpGreeting | undefined;
  private readonly splitter = new LineSplitter();
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private isClosed = false;
  private closeReason = '';
  private resolveClosed!: () => void;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: Error) => void } | undefined;
  private readonly commandTimeoutMs: number;

  private constructor(
    private readonly socket: net.Socket,
    commandTimeoutMs: number,
  ) {
    super();
    this.commandTimeoutMs = commandTimeoutMs;
    this.closed = new Promise<void>((r) => (this.resolveClosed = r));
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('error', (e) => this.finish(`socket error: ${e.message}`));
    socket.on('close', () => this.finish('socket closed'));
  }

  /** Connect (retrying until the socket exists), read the greeting, negotiate capabilities. */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = monoNow() + timeoutMs;
    const sock = await connectUnixSocket(path, timeoutMs, { abort: opts.abort });
    const c = new QmpClient(sock, opts.commandTimeoutMs ?? 30_000);
    try {
      const left = Math.max(1, deadline - monoNow());
      c.greeting = await c.waitGreeting(left);
      await c.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - monoNow()) });
      return c;
    } catch (e) {
      c.close();
      throw e;
    }
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  private waitGreeting(timeoutMs: number): Promise<QmpGreeting> {
    if (this.greeting) return Promise.resolve(this.greeting);
    if (this.isClosed) return Promise.reject(new QmpClosedError(`QMP closed before greeting (${this.closeReason})`));
    return new Promise<QmpGreeting>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greetingWaiter = undefined;
        reject(new QmpTimeoutError(`no QMP greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      this.greetingWaiter = {
        resolve: (g) => {
          clearTimeout(timer);
          resolve(g);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private onData(chunk: Buffer): void {
    for (const line of this.splitter.push(chunk)) {
      const msg = parseJsonObject(line);
      if (msg) this.dispatch(msg);
    }
  }

  private dispatch(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      const g = msg.QMP as QmpGreeting;
      this.greeting = g;
      const w = this.greetingWaiter;
      this.greetingWaiter = undefined;
      w?.resolve(g);
      return;
    }
    if (typeof msg.event === 'string') {
      const ev = msg as unknown as QmpEvent;
      this.emit('event', ev);
      this.emit(`event:${ev.event}`, ev);
      return;
    }
    if ('return' in msg || 'error' in msg) {
      const id = typeof msg.id === 'string' || typeof msg.id === 'number' ? String(msg.id) : undefined;
      const p = id === undefined ? undefined : this.pending.get(id);
      if (!p || id === undefined) return; // reply to a timed-out command
      this.pending.delete(id);
      clearTimeout(p.timer);
      if ('error' in msg) {
        const err = (msg.error ?? {}) as { class?: string; desc?: string };
        p.reject(new QmpError(p.command, err.class ?? 'GenericError', err.desc ?? 'unknown error'));
      } else {
        p.resolve(msg.return);
      }
    }
  }

  /** Run one command. Resolves with its `return` value; rejects with QmpError, QmpTimeoutError or QmpClosedError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.isClosed) return Promise.reject(new QmpClosedError(`QMP ${command}: connection closed (${this.closeReason})`));
    const id = String(this.nextId++);
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(`QMP ${command}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args !== undefined) msg.arguments = args;
      this.socket.write(JSON.stringify(msg) + '\n');
    });
  }

  /**
   * Wait for the next event named `name` (and matching `predicate`). Only events
   * arriving after the call count: register before triggering the action.
   */
  waitForEvent(name: string, timeoutMs: number, predicate?: (e: QmpEvent) => boolean): Promise<QmpEvent> {
    if (this.isClosed) return Promise.reject(new QmpClosedError(`QMP closed while waiting for ${name} (${this.closeReason})`));
    return new Promise<QmpEvent>((resolve, reject) => {
      const key = `event:${name}`;
      const cleanup = () => {
        clearTimeout(timer);
        this.off(key, onEvent);
        this.off('close', onClose);
      };
      const onEvent = (e: QmpEvent) => {
        if (predicate && !predicate(e)) return;
        cleanup();
        resolve(e);
      };
      const onClose = (reason: string) => {
        cleanup();
        reject(new QmpClosedError(`QMP closed while waiting for ${name} (${reason})`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new QmpTimeoutError(`no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on(key, onEvent);
      this.on('close', onClose);
    });
  }

  /** Async iterator over events until the connection closes. */
  async *events(): AsyncGenerator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | undefined;
    const onEvent = (e: QmpEvent) => {
      queue.push(e);
      wake?.();
    };
    const onClose = () => wake?.();
    this.on('event', onEvent);
    this.on('close', onClose);
    try {
      for (;;) {
        const e = queue.shift();
        if (e) {
          yield e;
          continue;
        }
        if (this.isClosed) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('event', onEvent);
      this.off('close', onClose);
    }
  }

  close(): void {
    this.finish('closed by client');
  }

  private finish(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeReason = reason;
    this.socket.destroy();
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new QmpClosedError(`QMP ${p.command}: connection closed (${reason})`));
    }
    this.pending.clear();
    const gw = this.greetingWaiter;
    this.greetingWaiter = undefined;
    gw?.reject(new QmpClosedError(`QMP closed before greeting (${reason})`));
    this.emit('close', reason);
    this.resolveClosed();
  }
}
