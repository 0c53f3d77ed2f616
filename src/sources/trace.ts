// TraceSource: replays a trace inside the daemon's process, straight into the
// Dispatcher, on the actor system's clock. The conformance test runs it under a
// virtual clock against real VmPool/Worker actors and compares every decision
// with the simulator's; with the real clock it is an in-process load generator.
// (`faascell replay` is the other way to replay: an HTTP client of the daemon.)

import type { ActorRef } from '../core/actor.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { DispatcherMsg } from '../dispatcher/dispatcher.js';
import type { InvocationResult } from '../sinks/types.js';
import { ArrivalExpander, type ExpandOptions } from '../traces/expand.js';
import type { Trace } from '../traces/types.js';
import type { Source } from './types.js';

export interface TraceSourceOptions {
  trace: Trace;
  dispatcher: ActorRef<DispatcherMsg>;
  clock: Clock;
  /** trace time × timeScale = replay time (0.1: ten times faster); default 1 */
  timeScale?: number;
  /** replay only the first durationMs of (scaled) trace time */
  durationMs?: number;
  expand?: ExpandOptions;
  /** deployed function name of a trace function (default: its trace name) */
  functionName?: (traceFn: number) => string;
  params?: (traceFn: number) => unknown;
  /** every outcome, with the request's arrival number */
  onResult?: (res: InvocationResult, arrival: number) => void;
}

export class TraceSource implements Source {
  readonly name = 'trace';
  private timers: TimerHandle[] = [];
  private sent = 0;
  private answered = 0;
  private stopped = false;
  private t0 = 0;
  private allScheduled = false;
  private whenDone: (() => void) | undefined;

  constructor(private readonly o: TraceSourceOptions) {}

  /** Arrivals sent so far, and answered. */
  get progress(): { sent: number; answered: number } {
    return { sent: this.sent, answered: this.answered };
  }

  async start(): Promise<void> {
    this.t0 = this.o.clock.now();
    const x = new ArrivalExpander(this.o.trace, this.o.expand);
    const scale = this.o.timeScale ?? 1;
    const tr = this.o.trace;
    const end = Math.min(tr.nSlots * tr.slotMs * scale, this.o.durationMs ?? Infinity);
    // one timer per slot expands it and schedules its arrivals (a long trace never sits in memory)
    const schedule = (slot: number): void => {
      if (this.stopped) return;
      if (slot >= tr.nSlots || slot * tr.slotMs * scale >= end) {
        this.allScheduled = true;
        this.checkDone();
        return;
      }
      const n = x.slot(slot);
      for (let i = 0; i < n; i++) {
        const at = x.times[i]! * scale;
        if (at >= end) break;
        const fn = x.fns[i]!;
        this.timers.push(this.o.clock.setTimer(this.t0 + at - this.o.clock.now(), () => this.send(fn)));
      }
      this.timers.push(this.o.clock.setTimer(this.t0 + (slot + 1) * tr.slotMs * scale - this.o.clock.now(), () => schedule(slot + 1)));
    };
    schedule(0);
  }

  /** Resolves when every arrival of the trace has been sent and answered. */
  done(): Promise<void> {
    return new Promise((r) => {
      this.whenDone = r;
      this.checkDone();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) t.cancel();
    this.timers = [];
  }

  private send(fn: number): void {
    if (this.stopped) return;
    const arrival = this.sent++;
    const o = this.o;
    o.dispatcher.tell({
      kind: 'invoke',
      req: {
        fn: o.functionName ? o.functionName(fn) : o.trace.functions[fn]!.name,
        params: o.params ? o.params(fn) : {},
        receivedAt: o.clock.now(),
        sink: {
          name: 'trace',
          deliver: (res) => {
            this.answered++;
            o.onResult?.(res, arrival);
            this.checkDone();
          },
        },
      },
    });
  }

  private checkDone(): void {
    if (this.allScheduled && this.answered === this.sent && this.whenDone) {
      const w = this.whenDone;
      this.whenDone = undefined;
      w();
    }
  }
}
