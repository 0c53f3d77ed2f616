// One explicit state machine per VM instance. The Worker owns it and reports
// every transition to VmPool; nothing else decides an instance's fate.
//
//   pending ─▶ booting | restoring   (once VmPool has chosen the start path)
//   booting ─▶ initializing ─▶ idle ⇄ running
//                   │            │        │
//                   ▼            ▼        ▼
//              snapshotting ─▶ restoring ─▶ idle         (cold start that leaves a snapshot behind)
//   restoring ─▶ idle                                      (restore path)
//   restoring ─▶ booting                                   (snapshot unusable: cold boot instead)
//   any ─▶ stopping ─▶ gone,  any ─▶ failed ─▶ stopping ─▶ gone

export type InstanceState =
  /** created; the start path (cold or restore) is not decided yet */
  | 'pending'
  | 'booting'
  | 'restoring'
  | 'initializing'
  | 'snapshotting'
  | 'idle'
  | 'running'
  | 'stopping'
  | 'failed'
  | 'gone';

const ALLOWED: Record<InstanceState, readonly InstanceState[]> = {
  pending: ['booting', 'restoring', 'failed', 'stopping'],
  booting: ['initializing', 'failed', 'stopping'],
  initializing: ['idle', 'snapshotting', 'failed', 'stopping'],
  snapshotting: ['restoring', 'failed', 'stopping'],
  // restoring -> booting: a missing or corrupt snapshot falls back to a cold boot in the same Worker
  restoring: ['idle', 'booting', 'failed', 'stopping'],
  idle: ['running', 'stopping', 'failed'],
  running: ['idle', 'stopping', 'failed'],
  failed: ['stopping', 'gone'],
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

export class InstanceStateMachine {
  private _state: InstanceState;
  readonly history: Transition[] = [];

  constructor(
    initial: 'pending' | 'booting' | 'restoring',
    at: number,
    private readonly onChange?: (t: Transition) => void,
  ) {
    this._state = initial;
    this.history.push({ from: initial, to: initial, at, reason: 'created' });
  }

  get state(): InstanceState {
    return this._state;
  }

  /** True when `to` is a legal next state. */
  can(to: InstanceState): boolean {
    return ALLOWED[this._state].includes(to);
  }

  to(to: InstanceState, reason: string, at = Date.now()): Transition {
    if (!this.can(to)) throw new IllegalTransition(this._state, to);
    const t: Transition = { from: this._state, to, at, reason };
    this._state = to;
    this.history.push(t);
    this.onChange?.(t);
    return t;
  }

  /** Move towards `gone` from wherever it is (used on failures and shutdown); returns false if already there. */
  end(reason: string, at = Date.now()): boolean {
    if (this._state === 'gone') return false;
    if (this._state !== 'stopping') {
      if (this._state !== 'failed' && reason.startsWith('failed')) this.to('failed', reason, at);
      this.to('stopping', reason, at);
    }
    this.to('gone', reason, at);
    return true;
  }

  /** When the instance entered its current state. */
  get since(): number {
    return this.history[this.history.length - 1]!.at;
  }
}
