import type { InvocationResult, Sink } from './types.js';

/** A sink that hands the outcome to a callback: the HTTP Source answers its request with it. */
export class CallbackSink implements Sink {
  readonly name = 'callback';
  constructor(
    private readonly cb: (res: InvocationResult) => void,
    /** told once the activation is durably accepted (a non-blocking answer waits for it) */
    private readonly onAccepted?: (activationId: string) => void,
  ) {}
  accepted(activationId: string): void {
    this.onAccepted?.(activationId);
  }
  deliver(res: InvocationResult): void {
    this.cb(res);
  }
}
