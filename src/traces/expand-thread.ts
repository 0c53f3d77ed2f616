// Arrivals expanded on a second thread (issue 23 item 5: the simulator uses both
// cores). The simulating thread asks for slot after slot as with ArrivalExpander;
// a worker (expand-worker.ts) draws and sorts them ahead, with the same expander and
// seed, so the arrivals are the same. Batches of whole slots come as transferred
// typed arrays; the simulating thread takes them synchronously from a message port
// and sleeps on a shared counter only when the worker is behind. At most WINDOW
// batches wait at once, so a long trace never exists as one array.
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { moduleWorker } from '../core/module-worker.js';
import type { ExpandableTrace, ExpandOptions, SlotArrivals } from './expand.js';

/** Shared counters (Int32 indices): batches posted by the worker, batches taken by the simulating thread, closed. */
export const POSTED = 0;
export const CONSUMED = 1;
export const CLOSED = 2;
/** arrivals per batch (~0.75 MB of times and functions; a larger slot makes a batch of its own size) */
export const BATCH_ARRIVALS = 1 << 16;
/** batches the worker may be ahead */
export const WINDOW = 4;
/** how long the simulating thread waits for one batch before it gives up (the worker is stuck or failed to start) */
const BATCH_TIMEOUT_MS = 120_000;

/** Whole slots from `first` on: slot first + i has counts[i] arrivals, one after the other in times/fns. */
export interface ArrivalBatch {
  first: number;
  counts: Uint32Array;
  times?: Float64Array;
  fns?: Uint32Array;
  /** the worker failed: its error */
  error?: string;
}

export class ThreadedArrivals implements SlotArrivals {
  times: Float64Array = new Float64Array(0);
  fns: Uint32Array = new Uint32Array(0);
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  private readonly port: MessagePort;
  private readonly worker: Worker;
  private received = 0;
  private batch: ArrivalBatch = { first: 0, counts: new Uint32Array(0) };
  /** the current batch's slot starts (by slot - first) */
  private offsets: number[] = [];
  private closed = false;
  /** the worker has ended */
  readonly stopped: Promise<void>;

  constructor(trace: ExpandableTrace, opts: ExpandOptions = {}) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const plain = { slotMs: trace.slotMs, nSlots: trace.nSlots, slotStart: trace.slotStart, entryFn: trace.entryFn, entryCount: trace.entryCount, functions: { length: trace.functions.length } };
    this.worker = moduleWorker(import.meta.url, 'expand-worker', {
      workerData: { trace: plain, opts: { spread: opts.spread, seed: opts.seed }, ctrl: this.ctrl.buffer, port: port2 },
      transferList: [port2],
    });
    // it must not keep the process alive, and its failure is reported by slot() (the worker posts it)
    this.worker.unref();
    this.worker.on('error', () => {});
    this.stopped = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Arrivals of slot s (slots asked in order) into this.times / this.fns[0..n); returns n. */
  slot(s: number): number {
    if (s < this.batch.first) throw new Error(`ThreadedArrivals: slot ${s} asked after slot ${this.batch.first}`);
    while (s - this.batch.first >= this.batch.counts.length) this.next();
    const i = s - this.batch.first;
    const n = this.batch.counts[i]!;
    const at = this.offsets[i]!;
    this.times = this.batch.times!.subarray(at, at + n);
    this.fns = this.batch.fns!.subarray(at, at + n);
    return n;
  }

  /** Stop the worker (the simulation may end before the trace does). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctrl, CLOSED, 1);
    Atomics.add(this.ctrl, CONSUMED, 1);
    Atomics.notify(this.ctrl, CONSUMED);
    this.port.close();
    void this.worker.terminate();
  }

  /** Take the next batch, waiting for the worker if it has not posted it yet. */
  private next(): void {
    if (this.closed) throw new Error('ThreadedArrivals: closed');
    let m: { message: ArrivalBatch } | undefined;
    while (!(m = receiveMessageOnPort(this.port))) {
      const posted = Atomics.load(this.ctrl, POSTED);
      if (posted === this.received && Atomics.wait(this.ctrl, POSTED, posted, BATCH_TIMEOUT_MS) === 'timed-out') {
        this.close();
        throw new Error(`ThreadedArrivals: no arrivals from the worker thread in ${BATCH_TIMEOUT_MS / 1000} s`);
      }
    }
    this.received++;
    Atomics.add(this.ctrl, CONSUMED, 1);
    Atomics.notify(this.ctrl, CONSUMED);
    const b = m.message;
    if (b.error !== undefined) {
      this.close();
      throw new Error(`ThreadedArrivals: the worker thread failed: ${b.error}`);
    }
    this.batch = b;
    const offsets = (this.offsets = new Array<number>(b.counts.length));
    let at = 0;
    for (let i = 0; i < b.counts.length; i++) {
      offsets[i] = at;
      at += b.counts[i]!;
    }
  }
}
