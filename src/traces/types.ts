// In-memory form shared by every trace format: per-slot invocation counts in a
// compressed (CSR, by slot) layout, expanded lazily into arrival times.

import type { FunctionRuntime } from '../runtimes/function-runtime.js';

export interface TraceFunction {
  /** Index into Trace.functions (and the fn ids in arrivals). */
  readonly index: number;
  /** Unique name (Azure: HashFunction, deduplicated; slots: the row's name; FaaSRail: workload-rROW). */
  readonly name: string;
  /** Application (Azure: HashApp) or '' */
  readonly app: string;
  readonly owner: string;
  readonly trigger: string;
  /** Average execution time (ms) when the trace has it. */
  readonly avgDurationMs: number | undefined;
  /** Memory (MiB) when the trace has it. */
  readonly memoryMiB: number | undefined;
  /** Request params to send (slots and FaaSRail specs). */
  readonly request: unknown;
  /** Invocations of this function over the whole trace. */
  readonly total: number;
  /** FaaSRail: the workload name as the spec gives it (mapped_wreq.bench, "pyaes-3f1a…"). */
  readonly workload?: string;
  /** FaaSRail: the FunctionBench benchmark that workload runs, when it is a known one. */
  readonly benchmark?: string;
  /** FaaSRail: the trace function's average run time (the `avg` column), ms. */
  readonly traceAvgMs?: number;
  /** FaaSRail: the workload's measured standard deviation (ms), when the spec has it. */
  readonly stdevMs?: number;
  /** issue 21: the language runtime it runs in (its start costs in the simulator's profile); absent: nodejs20. */
  readonly runtime?: FunctionRuntime;
}

export interface Trace {
  readonly format: 'azure' | 'faasrail' | 'slots' | 'invocations';
  readonly source: string;
  /** Header text of each slot column, when the file names them (FaaSRail: "1-288", …). */
  readonly slotLabels?: readonly string[];
  readonly slotMs: number;
  readonly nSlots: number;
  readonly functions: readonly TraceFunction[];
  readonly totalInvocations: number;
  /** CSR by slot: the entries of slot s are [slotStart[s], slotStart[s+1]). */
  readonly slotStart: Uint32Array;
  readonly entryFn: Uint32Array;
  readonly entryCount: Uint32Array;
  /**
   * Exact arrival times, when the trace has them (a per-invocation file: what a
   * node served, `faascell trace export --format invocations`): sorted by time,
   * slot s's arrivals are [slotStart[s], slotStart[s+1]). The counts above agree
   * with them; ArrivalExpander replays these times instead of spreading counts.
   */
  readonly exact?: ExactArrivals;
}

export interface ExactArrivals {
  /** ms from the start of the trace */
  readonly times: Float64Array;
  readonly fns: Uint32Array;
  readonly slotStart: Uint32Array;
}

export interface Arrival {
  /** ms from the start of the trace */
  timeMs: number;
  fn: number;
}

/** Growable typed-array triple used while parsing. */
/** A trace's arrivals by slot (EntryBuilder.toCsr). */
export type TraceCsr = Pick<Trace, 'totalInvocations' | 'slotStart' | 'entryFn' | 'entryCount'>;

export class EntryBuilder {
  slot = new Uint32Array(1024);
  fn = new Uint32Array(1024);
  count = new Uint32Array(1024);
  length = 0;

  push(slot: number, fn: number, count: number): void {
    if (this.length === this.slot.length) {
      const grow = (a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> => {
        const b = new Uint32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.slot = grow(this.slot);
      this.fn = grow(this.fn);
      this.count = grow(this.count);
    }
    this.slot[this.length] = slot;
    this.fn[this.length] = fn;
    this.count[this.length] = count;
    this.length++;
  }

  /** One function's count per slot (slots with none are skipped); its total. */
  pushCounts(fn: number, counts: readonly number[]): number {
    let total = 0;
    counts.forEach((c, s) => {
      if (c > 0) {
        this.push(s, fn, c);
        total += c;
      }
    });
    return total;
  }

  /** Counting sort by slot into the CSR layout: the trace's arrival fields. */
  toCsr(nSlots: number): TraceCsr {
    const slotStart = new Uint32Array(nSlots + 1);
    for (let i = 0; i < this.length; i++) slotStart[this.slot[i]! + 1]!++;
    for (let s = 0; s < nSlots; s++) slotStart[s + 1]! += slotStart[s]!;
    const cursor = slotStart.slice(0, nSlots);
    const entryFn = new Uint32Array(this.length);
    const entryCount = new Uint32Array(this.length);
    let total = 0;
    for (let i = 0; i < this.length; i++) {
      const s = this.slot[i]!;
      const at = cursor[s]!++;
      entryFn[at] = this.fn[i]!;
      entryCount[at] = this.count[i]!;
      total += this.count[i]!;
    }
    return { totalInvocations: total, slotStart, entryFn, entryCount };
  }
}
