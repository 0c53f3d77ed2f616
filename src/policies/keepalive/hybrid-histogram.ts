import type { FunctionView, InstanceView, KeepAliveDecision, KeepAlivePolicy } from '../types.js';

export interface HybridHistogramOptions {
  /** Histogram bin width (minutes). Paper: 1. */
  binMinutes?: number;
  /** Histogram range (minutes); idle times beyond it are "out of bounds". Paper: 240 (4 h). */
  rangeMinutes?: number;
  /** Percentile that sets the pre-warm window. Paper: 5. */
  headPercentile?: number;
  /** Percentile that sets the keep-alive window. Paper: 99. */
  tailPercentile?: number;
  /** Safety margin: pre-warm window shrunk and keep-alive window grown by this much. Paper: 10. */
  marginPercent?: number;
  /** In-bounds idle times needed before the histogram is trusted. */
  minSamples?: number;
  /** Above this share of out-of-bounds idle times the histogram is not trusted. */
  maxOutOfBoundsPercent?: number;
  /** Keep-alive used while the histogram is not representative (s). Paper: 4 h (the histogram range). */
  fallbackTtlSeconds?: number;
}

export interface HistogramWindows {
  representative: boolean;
  /** Pre-warm window (ms after the instance became idle); 0 = no pre-warming. */
  prewarmMs: number;
  /** Keep-alive window (ms after the instance became idle). */
  keepAliveMs: number;
  samples: number;
  outOfBounds: number;
}

interface FnState {
  lastArrival: number;
  bins: Uint32Array;
  inBounds: number;
  outOfBounds: number;
  /** Windows cached until the next sample. */
  cached: HistogramWindows | undefined;
}

/**
 * Hybrid histogram keep-alive (Shahrad et al., "Serverless in the Wild", ATC'20).
 *
 * Per function, a histogram of idle times (here: times between consecutive
 * invocation arrivals of that function) in `binMinutes` bins up to
 * `rangeMinutes`. The histogram is representative when it holds at least
 * `minSamples` in-bounds idle times and at most `maxOutOfBoundsPercent` of all
 * idle times fell beyond the range. Then
 *   pre-warm window   = lower edge of the head-percentile bin × (1 − margin)
 *   keep-alive window = upper edge of the tail-percentile bin × (1 + margin)
 * and an idle instance is stopped at once and re-created after the pre-warm
 * window, staying warm until the keep-alive window closes (pre-warm 0: it just
 * stays warm for the keep-alive window). Otherwise a fixed keep-alive of
 * `fallbackTtlSeconds` is used. The paper's ARIMA forecast for functions with
 * mostly out-of-bounds idle times is not implemented: they get the fallback.
 */
export class HybridHistogramKeepAlive implements KeepAlivePolicy {
  readonly name = 'hybrid-histogram';
  readonly binMs: number;
  readonly nBins: number;
  private readonly head: number;
  private readonly tail: number;
  private readonly margin: number;
  private readonly minSamples: number;
  private readonly maxOob: number;
  private readonly fallbackMs: number;
  private readonly state = new Map<string, FnState>();

  constructor(opts: HybridHistogramOptions = {}) {
    const binMinutes = opts.binMinutes ?? 1;
    const rangeMinutes = opts.rangeMinutes ?? 240;
    if (!(binMinutes > 0)) throw new Error('hybrid-histogram: binMinutes must be > 0');
    if (!(rangeMinutes >= binMinutes)) throw new Error('hybrid-histogram: rangeMinutes must be >= binMinutes');
    this.binMs = binMinutes * 60_000;
    this.nBins = Math.ceil(rangeMinutes / binMinutes);
    this.head = (opts.headPercentile ?? 5) / 100;
    this.tail = (opts.tailPercentile ?? 99) / 100;
    if (!(this.head >= 0 && this.tail <= 1 && this.head <= this.tail)) {
      throw new Error('hybrid-histogram: need 0 <= headPercentile <= tailPercentile <= 100');
    }
    this.margin = (opts.marginPercent ?? 10) / 100;
    this.minSamples = opts.minSamples ?? 10;
    this.maxOob = (opts.maxOutOfBoundsPercent ?? 10) / 100;
    this.fallbackMs = (opts.fallbackTtlSeconds ?? 4 * 3600) * 1000;
  }

  onInvocation(fn: FunctionView, now: number): void {
    let st = this.state.get(fn.name);
    if (!st) {
      st = { lastArrival: now, bins: new Uint32Array(this.nBins), inBounds: 0, outOfBounds: 0, cached: undefined };
      this.state.set(fn.name, st);
      return;
    }
    const it = now - st.lastArrival;
    st.lastArrival = now;
    const bin = Math.floor(it / this.binMs);
    if (bin < this.nBins) {
      st.bins[bin]! += 1;
      st.inBounds++;
    } else {
      st.outOfBounds++;
    }
    st.cached = undefined;
  }

  onIdle(inst: InstanceView, _fn?: FunctionView, _now?: number): KeepAliveDecision {
    const w = this.windows(inst.fn);
    if (w.prewarmMs <= 0) return { keepWarmMs: w.keepAliveMs };
    return { prewarmAfterMs: w.prewarmMs, keepWarmMs: Math.max(0, w.keepAliveMs - w.prewarmMs) };
  }

  /** The current windows of a function (exposed for tests and reports). */
  windows(fn: string): HistogramWindows {
    const st = this.state.get(fn);
    if (!st) return { representative: false, prewarmMs: 0, keepAliveMs: this.fallbackMs, samples: 0, outOfBounds: 0 };
    if (st.cached) return st.cached;
    const total = st.inBounds + st.outOfBounds;
    const representative = st.inBounds >= this.minSamples && st.outOfBounds <= this.maxOob * total;
    let w: HistogramWindows;
    if (!representative) {
      w = { representative, prewarmMs: 0, keepAliveMs: this.fallbackMs, samples: st.inBounds, outOfBounds: st.outOfBounds };
    } else {
      // Percentiles over the in-bounds samples; the scan stops at the tail bin,
      // which for frequent functions is near the start.
      const headCount = this.head * st.inBounds;
      const tailCount = this.tail * st.inBounds;
      let cum = 0;
      let headBin = -1;
      let tailBin = this.nBins - 1;
      for (let i = 0; i < this.nBins; i++) {
        cum += st.bins[i]!;
        if (headBin < 0 && cum > 0 && cum >= headCount) headBin = i;
        if (cum >= tailCount && cum > 0) {
          tailBin = i;
          break;
        }
      }
      if (headBin < 0) headBin = tailBin;
      const prewarmMs = Math.round(headBin * this.binMs * (1 - this.margin));
      const keepAliveMs = Math.round((tailBin + 1) * this.binMs * (1 + this.margin));
      w = { representative, prewarmMs, keepAliveMs, samples: st.inBounds, outOfBounds: st.outOfBounds };
    }
    st.cached = w;
    return w;
  }
}
