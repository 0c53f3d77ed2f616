// One explicit state machine per VM instance, owned by its Worker. Every
// transition is stamped (the activation record's stages come from these stamps)
// and carries a reason for people; decisions never read the reason.
//
//        booting ──▶ initializing ──▶ idle ◀──▶ running
//                        │             ▲
//                        ▼             │
//                   snapshotting ──▶ restoring          (a cold start that leaves a snapshot:
//                                                         the Worker continues from a restore of it)
//        restoring ──▶ idle                              (restore path)
//        every live state ──▶ failed ──▶ stopping ──▶ gone
//        every live state ──▶ stopping ──▶ gone
//
// The transition table, one line per state (test/unit/instance-state.test.ts
// checks that these lines and ALLOWED agree):
//   booting      -> initializing failed stopping
//   initializing -> idle snapshotting failed stopping
//   snapshotting -> restoring failed stopping
//   restoring    -> idle failed stopping
//   idle         -> running failed stopping
//   running      -> idle failed stopping
//   failed       -> stopping
//   stopping     -> gone
//   gone         ->

export type InstanceState = 'booting' | 'restoring' | 'initializing' | 'snapshotting' | 'idle' | 'running' | 'stopping' | 'failed' | 'gone';

export const ALLOWED: Record<InstanceState, readonly InstanceState[]> = {
  booting: ['initializing', 'failed', 'stopping'],
  initializing: ['idle', 'snapshotting', 'failed', 'stopping'],
  snapshotting: ['restoring', 'failed', 'stopping'],
  restoring: ['idle', 'failed', 'stopping'],
  idle: ['running', 'failed', 'stopping'],
  running: ['idle', 'failed', 'stopping'],
  failed: ['stopping'],
  stopping: ['gone'],
  gone: [],
};

export interface Transition {
  from: InstanceState;
  to: InstanceState;
  at: number;
  reason: string;
}

export class IllegalTransition extends Error {
  constructor(from: InstanceState, to: InstanceState) {
    super(`illegal instance transition ${from} -> ${to}`);
    this.name = 'IllegalTransition';
  }
}

/** Transitions kept per instance: a long-lived warm VM makes two per invocation. */
export const HISTORY_LIMIT = 64;

export class InstanceStateMachine {
  private _state: InstanceState;
  private readonly _history: Transition[] = [];
  /** transitions dropped from the front of the history */
  dropped = 0;

  constructor(
    initial: 'booting' | 'restoring',
    at: number,
    private readonly onChange?: (t: Transition) => void,
  ) {
    this._state = initial;
    this._history.push({ from: initial, to: initial, at, reason: 'created' });
  }

  get state(): InstanceState {
    return this._state;
  }

  /** The most recent transitions (at most HISTORY_LIMIT; `dropped` counts the older ones). */
  get history(): readonly Transition[] {
    return this._history;
  }

  /** True when `to` is a legal next state. */
  can(to: InstanceState): boolean {
    return ALLOWED[this._state].includes(to);
  }

  to(to: InstanceState, reason: string, at: number): Transition {
    if (!this.can(to)) throw new IllegalTransition(this._state, to);
    const t: Transition = { from: this._state, to, at, reason };
    this._state = to;
    this._history.push(t);
    if (this._history.length > HISTORY_LIMIT) {
      this._history.shift();
      this.dropped++;
    }
    this.onChange?.(t);
    return t;
  }

  /** When the instance entered its current state. */
  get since(): number {
    return this._history[this._history.length - 1]!.at;
  }

  /** When it first entered `s` (within the kept history). */
  entered(s: InstanceState): number | undefined {
    return this._history.find((t) => t.to === s)?.at;
  }
}
