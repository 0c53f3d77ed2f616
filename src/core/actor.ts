// A small actor runtime: long-lived async tasks with typed mailboxes.
//
// - Each actor processes one message at a time, in arrival order, so its state
//   needs no locks. Long work (booting a VM) is done by *another* actor, which
//   reports back with a message: a mailbox is never blocked by I/O it waits for.
// - `tell` is fire-and-forget; `ask` carries a reply channel and a timeout.
// - Supervision: a handler that throws is logged; the actor's strategy decides
//   whether it is restarted (its `onRestart` hook resets what it must), stopped,
//   or the failure escalated to its supervisor. Nothing fails silently.

import type { Logger } from './logger.js';

export class AskTimeoutError extends Error {
  constructor(actor: string, timeoutMs: number) {
    super(`actor ${actor} did not answer within ${timeoutMs} ms`);
    this.name = 'AskTimeoutError';
  }
}

export class ActorStoppedError extends Error {
  constructor(actor: string) {
    super(`actor ${actor} is stopped`);
    this.name = 'ActorStoppedError';
  }
}

/** A reply channel carried inside a message sent with `ask`. */
export interface Reply<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

export interface ActorRef<M> {
  readonly name: string;
  tell(msg: M): void;
  /** Send a message built around a reply channel and wait for the answer. */
  ask<T>(build: (reply: Reply<T>) => M, timeoutMs: number): Promise<T>;
  readonly stopped: boolean;
}

export type SupervisionStrategy =
  | { kind: 'restart'; maxRestarts: number; withinMs: number }
  | { kind: 'stop' }
  | { kind: 'escalate' };

export interface ActorFailure {
  actor: string;
  error: unknown;
  message: unknown;
}

export abstract class Actor<M> {
  /** Set by the system when spawned. */
  self!: ActorRef<M>;
  log!: Logger;

  /** Handle one message. Throwing triggers supervision. */
  protected abstract receive(msg: M): Promise<void> | void;

  /** Called once before the first message. */
  protected preStart(): Promise<void> | void {}
  /** Called once after the actor stopped (mailbox drained or dropped). */
  protected postStop(): Promise<void> | void {}
  /** Called after a failure when the strategy restarts the actor: reset state that may be inconsistent. */
  protected onRestart(_err: unknown): Promise<void> | void {}

  /** @internal */ _receive(msg: M): Promise<void> | void {
    return this.receive(msg);
  }
  /** @internal */ _preStart(): Promise<void> | void {
    return this.preStart();
  }
  /** @internal */ _postStop(): Promise<void> | void {
    return this.postStop();
  }
  /** @internal */ _onRestart(err: unknown): Promise<void> | void {
    return this.onRestart(err);
  }
}

interface Cell<M> {
  actor: Actor<M>;
  ref: MailboxRef<M>;
}

class MailboxRef<M> implements ActorRef<M> {
  /** a handler (or preStart) is running */
  private handling = false;
  private queue: M[] = [];
  private waking: (() => void) | undefined;
  private _stopped = false;
  private readonly done: Promise<void>;
  private restarts: number[] = [];

  constructor(
    readonly name: string,
    private readonly actor: Actor<M>,
    private readonly strategy: SupervisionStrategy,
    private readonly onEscalate: (f: ActorFailure) => void,
    private readonly log: Logger,
  ) {
    this.done = this.loop();
  }

  get stopped(): boolean {
    return this._stopped;
  }

  /** A message waits, or a handler (or preStart) has not finished (it may await I/O). */
  get busy(): boolean {
    return this.handling || this.queue.length > 0;
  }

  tell(msg: M): void {
    if (this._stopped) {
      // never silently lost: said in the log
      this.log.warn('message to stopped actor dropped', { actor: this.name });
      return;
    }
    this.queue.push(msg);
    const w = this.waking;
    this.waking = undefined;
    w?.();
  }

  ask<T>(build: (reply: Reply<T>) => M, timeoutMs: number): Promise<T> {
    if (this._stopped) return Promise.reject(new ActorStoppedError(this.name));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new AskTimeoutError(this.name, timeoutMs));
      }, timeoutMs);
      const reply: Reply<T> = {
        resolve: (v) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      };
      this.tell(build(reply));
    });
  }

  /** Stop after the messages already queued have been handled. */
  async stop(): Promise<void> {
    this._stopped = true;
    const w = this.waking;
    this.waking = undefined;
    w?.();
    await this.done;
  }

  private async loop(): Promise<void> {
    try {
      this.handling = true;
      await this.actor._preStart();
    } catch (err) {
      this.log.error('actor failed to start', { actor: this.name, err: errText(err) });
      this._stopped = true;
      this.onEscalate({ actor: this.name, error: err, message: undefined });
      return;
    }
    for (;;) {
      const msg = this.queue.shift();
      if (msg === undefined) {
        this.handling = false;
        if (this._stopped) break;
        await new Promise<void>((r) => (this.waking = r));
        continue;
      }
      this.handling = true;
      try {
        await this.actor._receive(msg);
      } catch (err) {
        await this.fail(err, msg);
      }
    }
    try {
      await this.actor._postStop();
    } catch (err) {
      this.log.error('actor postStop failed', { actor: this.name, err: errText(err) });
    }
  }

  private async fail(err: unknown, msg: M): Promise<void> {
    this.log.error('actor handler threw', { actor: this.name, err: errText(err) });
    const s = this.strategy;
    if (s.kind === 'restart') {
      const now = Date.now();
      this.restarts = this.restarts.filter((t) => now - t < s.withinMs);
      this.restarts.push(now);
      if (this.restarts.length <= s.maxRestarts) {
        try {
          await this.actor._onRestart(err);
          this.log.warn('actor restarted', { actor: this.name, restarts: this.restarts.length });
          return;
        } catch (err2) {
          this.log.error('actor restart failed', { actor: this.name, err: errText(err2) });
        }
      }
      this.onEscalate({ actor: this.name, error: err, message: msg });
      return;
    }
    if (s.kind === 'stop') {
      this._stopped = true;
      this.onEscalate({ actor: this.name, error: err, message: msg });
      return;
    }
    this.onEscalate({ actor: this.name, error: err, message: msg });
  }
}

export interface SpawnOptions {
  supervision?: SupervisionStrategy;
  /** Who hears about failures the strategy does not absorb; defaults to the system's handler. */
  onFailure?: (f: ActorFailure) => void;
}

/** Owns every actor it spawned; `shutdown` stops them in reverse spawn order. */
export class ActorSystem {
  private cells: Cell<unknown>[] = [];
  private seq = 0;

  constructor(
    private readonly log: Logger,
    /** Failures that escalate to the top end here (the daemon logs and decides). */
    private readonly onFatal: (f: ActorFailure) => void,
  ) {}

  spawn<M>(name: string, actor: Actor<M>, opts: SpawnOptions = {}): ActorRef<M> {
    const unique = this.cells.some((c) => c.ref.name === name) ? `${name}#${++this.seq}` : name;
    const log = this.log.child({ actor: unique });
    actor.log = log;
    const strategy = opts.supervision ?? { kind: 'restart', maxRestarts: 5, withinMs: 60_000 };
    const ref = new MailboxRef<M>(unique, actor, strategy, opts.onFailure ?? this.onFatal, log);
    actor.self = ref;
    this.cells.push({ actor: actor, ref: ref });
    return ref;
  }

  /** Stop one actor (after its queued messages) and forget it. */
  async stop(ref: ActorRef<unknown>): Promise<void> {
    const i = this.cells.findIndex((c) => c.ref === ref);
    if (i < 0) return;
    const [cell] = this.cells.splice(i, 1);
    await cell?.ref.stop();
  }

  /** Some actor has a message waiting or a handler running (the virtual clock waits for quiescence). */
  get busy(): boolean {
    return this.cells.some((c) => c.ref.busy);
  }

  get size(): number {
    return this.cells.length;
  }

  async shutdown(): Promise<void> {
    const cells = [...this.cells].reverse();
    this.cells = [];
    for (const c of cells) await c.ref.stop();
  }
}

export function errText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
