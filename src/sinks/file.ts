// A sink that appends every outcome as one JSON line to a file (used for
// replay records and as a durable log of asynchronous invocations).

import { createWriteStream, type WriteStream } from 'node:fs';
import type { InvocationResult, Sink } from './types.js';

export class FileSink implements Sink {
  readonly name = 'file';
  private readonly out: WriteStream;

  constructor(file: string) {
    this.out = createWriteStream(file, { flags: 'a' });
  }

  deliver(res: InvocationResult): void {
    this.out.write(JSON.stringify({ activation: res.activation, result: res.result, error: res.error?.toJSON() }) + '\n');
  }

  close(): Promise<void> {
    return new Promise((r) => this.out.end(r));
  }
}

/** A sink that hands the outcome to a callback: the HTTP source answers its request with it. */
export class CallbackSink implements Sink {
  readonly name = 'callback';
  constructor(private readonly cb: (res: InvocationResult) => void) {}
  deliver(res: InvocationResult): void {
    this.cb(res);
  }
}
