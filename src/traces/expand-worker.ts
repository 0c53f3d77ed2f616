// The worker side of ThreadedArrivals (expand-thread.ts): expands the trace's slots
// in order with the same ArrivalExpander (same seed, so the same arrivals) and posts
// them in batches of whole slots, their typed arrays transferred, never more than
// WINDOW batches ahead of the thread that simulates.
import { workerData, type MessagePort } from 'node:worker_threads';
import { ArrivalExpander, type ExpandableTrace, type ExpandOptions } from './expand.js';
import { BATCH_ARRIVALS, CLOSED, CONSUMED, POSTED, WINDOW, type ArrivalBatch } from './expand-thread.js';

export interface ExpandWorkerData {
  trace: ExpandableTrace;
  opts: ExpandOptions;
  ctrl: SharedArrayBuffer;
  port: MessagePort;
}

const d = workerData as ExpandWorkerData;
const ctrl = new Int32Array(d.ctrl);
let posted = 0;

function post(batch: ArrivalBatch, transfer: ArrayBuffer[] = []): void {
  // wait until the simulating thread has taken all but WINDOW − 1 of the batches posted (or closed the stream)
  for (;;) {
    const consumed = Atomics.load(ctrl, CONSUMED);
    if (Atomics.load(ctrl, CLOSED) !== 0 || posted - consumed < WINDOW) break;
    Atomics.wait(ctrl, CONSUMED, consumed);
  }
  if (Atomics.load(ctrl, CLOSED) !== 0) return;
  d.port.postMessage(batch, transfer);
  posted++;
  Atomics.store(ctrl, POSTED, posted);
  Atomics.notify(ctrl, POSTED);
}

try {
  const t = d.trace;
  const x = new ArrivalExpander(t, d.opts);
  let cap = BATCH_ARRIVALS;
  let times = new Float64Array(cap);
  let fns = new Uint32Array(cap);
  let counts: number[] = [];
  let first = 0;
  let fill = 0;
  for (let s = 0; s < t.nSlots && Atomics.load(ctrl, CLOSED) === 0; s++) {
    const n = x.slot(s);
    if (fill + n > cap && counts.length > 0) {
      post({ first, counts: Uint32Array.from(counts), times, fns }, [times.buffer, fns.buffer]);
      cap = Math.max(BATCH_ARRIVALS, n);
      times = new Float64Array(cap);
      fns = new Uint32Array(cap);
      counts = [];
      first = s;
      fill = 0;
    } else if (n > cap) {
      // the batch's first slot, larger than a batch: a batch of its own size
      cap = n;
      times = new Float64Array(cap);
      fns = new Uint32Array(cap);
    }
    times.set(x.times.subarray(0, n), fill);
    fns.set(x.fns.subarray(0, n), fill);
    fill += n;
    counts.push(n);
  }
  if (counts.length > 0) post({ first, counts: Uint32Array.from(counts), times, fns }, [times.buffer, fns.buffer]);
} catch (err) {
  post({ first: 0, counts: new Uint32Array(0), error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}
