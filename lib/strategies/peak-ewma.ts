import { performance } from 'node:perf_hooks';
import type { Outcome, Strategy, StrategyTargetStats } from './strategy.js';
import type { Target } from '../target.js';
import { milliseconds, optionsObject, markFactory } from '../validate.js';

export interface PeakEwmaOptions {
  /**
   * Time constant of the moving average, ms; default 10000 (Finagle's `decayTime`). A sample's
   * weight grows with the time since the previous one, so a latency peak fades to 1/e of its excess
   * in this long whatever the request rate; a target without samples fades toward 0 as fast.
   */
  decay?: number;
  /** Latency estimate of a target that has answered nothing yet, ms; default 100. */
  defaultLatency?: number;
}

const FN = 'peakEwma';
const OPTIONS = ['decay', 'defaultLatency'];

/** One target's latency estimate: `latency` ms as of `stamp` (a `performance.now()` reading). */
interface Estimate {
  latency: number;
  stamp: number;
  /** Whether `latency` came from a response rather than the default. */
  sampled: boolean;
}

/**
 * Finagle's and Linkerd's peak-EWMA: power of two random choices, the candidate with the lower
 * cost winning, cost = latency estimate × (inFlight + 1) / weight. The estimate is a moving average
 * of time to response head that jumps to any slower sample at once, so a target that slows down
 * loses traffic on its next answer instead of after many.
 *
 * Between samples the estimate fades toward 0: a target starved for being slow is tried again after
 * a while and gets the chance to show it recovered. The fade is computed when read, so `pick` writes
 * nothing.
 */
class PeakEwma implements Strategy {
  readonly name = 'peak-ewma';
  readonly #decay: number;
  readonly #defaultLatency: number;
  /** Kept across snapshots, so an ejected target returns with what was learnt of it. */
  readonly #estimates = new WeakMap<Target, Estimate>();
  #lastSeen: readonly Target[] | undefined;
  /** Per snapshot index: its target's estimate, so `pick` looks nothing up. */
  #snapshotEstimates: Estimate[] = [];

  constructor(decay: number, defaultLatency: number) {
    this.#decay = decay;
    this.#defaultLatency = defaultLatency;
  }

  pick(targets: readonly Target[]): Target {
    const count = targets.length;
    if (count === 1) return targets[0];
    if (targets !== this.#lastSeen) this.#rebuild(targets);
    const first = Math.floor(Math.random() * count);
    // Drawing from count - 1 and skipping `first` keeps the second choice uniform and distinct.
    let second = Math.floor(Math.random() * (count - 1));
    if (second >= first) second++;
    const now = performance.now();
    const a = targets[first];
    const b = targets[second];
    return this.#cost(b, this.#snapshotEstimates[second], now) < this.#cost(a, this.#snapshotEstimates[first], now) ? b : a;
  }

  onEnd(target: Target, outcome: Outcome): void {
    const sample = outcome.latency;
    // No response head, no latency: failures are for outlier detection to judge.
    if (Number.isNaN(sample)) return;
    const estimate = this.#estimateOf(target);
    const now = performance.now();
    // The default only stands in until the first answer, which replaces it whichever is larger.
    if (sample >= estimate.latency || !estimate.sampled) estimate.latency = sample;
    else {
      const kept = Math.exp((estimate.stamp - now) / this.#decay);
      estimate.latency = estimate.latency * kept + sample * (1 - kept);
    }
    estimate.stamp = now;
    estimate.sampled = true;
  }

  targetStats(target: Target): StrategyTargetStats {
    const now = performance.now();
    // Reading must not start a target's clock: it starts when a snapshot first holds it.
    const estimate = this.#estimates.get(target) ?? { latency: this.#defaultLatency, stamp: now, sampled: false };
    return { score: this.#cost(target, estimate, now), latency: this.#faded(estimate, now) };
  }

  #cost(target: Target, estimate: Estimate, now: number): number {
    return (this.#faded(estimate, now) * (target.inFlight + 1)) / target.weight;
  }

  #faded(estimate: Estimate, now: number): number {
    return estimate.latency * Math.exp((estimate.stamp - now) / this.#decay);
  }

  #estimateOf(target: Target): Estimate {
    let estimate = this.#estimates.get(target);
    if (estimate === undefined) {
      estimate = { latency: this.#defaultLatency, stamp: performance.now(), sampled: false };
      this.#estimates.set(target, estimate);
    }
    return estimate;
  }

  #rebuild(targets: readonly Target[]): void {
    this.#lastSeen = targets;
    this.#snapshotEstimates = targets.map((target) => this.#estimateOf(target));
  }
}

/** Peak-EWMA balancing (Finagle, Linkerd): P2C on latency estimate × (in flight + 1). */
export function peakEwma(options?: PeakEwmaOptions): Strategy {
  const o = optionsObject(options, FN, OPTIONS);
  const prefix = `${FN}: options`;
  return new PeakEwma(
    o.decay === undefined ? 10_000 : milliseconds(prefix, 'decay', o.decay, { positive: true }),
    o.defaultLatency === undefined ? 100 : milliseconds(prefix, 'defaultLatency', o.defaultLatency),
  );
}

markFactory(peakEwma, 'peakEwma()');
