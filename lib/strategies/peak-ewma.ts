import { performance } from 'node:perf_hooks';
import type { Outcome, Strategy, StrategyTargetStats } from './strategy.js';
import type { Target } from '../target.js';
import { finiteNumber, integer, milliseconds, optionsObject, markFactory } from '../validate.js';

export interface PeakEwmaOptions {
  /**
   * Time constant of the moving average, ms; default 10000 (Finagle's `decayTime`). A sample's
   * weight grows with the time since the previous one, so a latency peak fades to 1/e of its excess
   * in this long whatever the request rate; a target without samples fades toward 0 as fast.
   */
  decay?: number;
  /** Latency estimate of a target that has answered nothing yet, ms; default 100. */
  defaultLatency?: number;
  /**
   * Answers over which the estimate follows a target that became faster, at most; default 20. Each
   * answer below the estimate weighs at least 1/decaySamples, so a target answering often sheds
   * an old peak within a few dozen answers instead of after about `decay` × 3 (the anchors' 30 s);
   * one that answers rarely still fades by `decay`. 0: time alone (Finagle's and Linkerd's).
   */
  decaySamples?: number;
  /**
   * Share of picks spent refreshing the stalest estimate, from 0 to 0.1; default 0.02. Every
   * 1/probe-th pick goes to the target whose last answer is oldest (when that answer is over
   * `decay / 100` ms old and no probe of it is awaited), and a probe's answer below the estimate moves it
   * halfway there at once: a target starved for being slow is seen to have recovered within
   * seconds, where the fade alone takes about 16 s. 0 turns probing off (Finagle's and Linkerd's
   * behaviour).
   */
  probe?: number;
}

const FN = 'peakEwma';
const OPTIONS = ['decay', 'defaultLatency', 'decaySamples', 'probe'];
/** Estimates a probe reads per round: a large pool is scanned a window at a time. */
const PROBE_SCAN = 16;
/** How far a probe's faster answer moves the estimate toward itself: halfway, so one lucky answer of a slow target does not make it look fast. */
const PROBE_WEIGHT = 0.5;

/** One target's latency estimate: `latency` ms as of `stamp` (a `performance.now()` reading). */
interface Estimate {
  latency: number;
  stamp: number;
  /** Whether `latency` came from a response rather than the default. */
  sampled: boolean;
  /** A probe was sent to the target and its answer is awaited. */
  probed: boolean;
  /** Probes sent to the target. */
  probes: number;
}

/**
 * Finagle's and Linkerd's peak-EWMA: power of two random choices, the candidate with the lower
 * cost winning, cost = latency estimate × (inFlight + 1) / weight. The estimate is a moving average
 * of time to response head that jumps to any slower sample at once, so a target that slows down
 * loses traffic on its next answer instead of after many.
 *
 * Between samples the estimate fades toward 0: a target starved for being slow is tried again after
 * a while and gets the chance to show it recovered. The fade is computed when read. With the
 * default decay that while is about 16 s, and a target still answering sheds a peak no faster. So,
 * beyond the anchors, each faster answer weighs at least 1/`decaySamples`, and a small share of
 * picks (`probe`) goes to the target with the stalest estimate, whose faster answer counts for half
 * the estimate: a recovered target is back in rotation within a few seconds.
 */
class PeakEwma implements Strategy {
  readonly name = 'peak-ewma';
  readonly #decay: number;
  readonly #defaultLatency: number;
  /** The largest share of the estimate a faster answer leaves standing: 1 - 1/decaySamples (1 for time alone). */
  readonly #keptAtMost: number;
  /** Picks between probes; 0 without probing. */
  readonly #probeEvery: number;
  /** How old, ms, an estimate's last sample must be for a probe to refresh it. */
  readonly #stale: number;
  #picks = 0;
  /** Where the next probe's scan of the snapshot starts. */
  #cursor = 0;
  /** Kept across snapshots, so an ejected target returns with what was learnt of it. */
  readonly #estimates = new WeakMap<Target, Estimate>();
  #lastSeen: readonly Target[] | undefined;
  /** Per snapshot index: its target's estimate, so `pick` looks nothing up. */
  #snapshotEstimates: Estimate[] = [];

  constructor(decay: number, defaultLatency: number, decaySamples: number, probe: number) {
    this.#decay = decay;
    this.#defaultLatency = defaultLatency;
    this.#keptAtMost = decaySamples === 0 ? 1 : 1 - 1 / decaySamples;
    this.#probeEvery = probe === 0 ? 0 : Math.round(1 / probe);
    this.#stale = decay / 100;
  }

  pick(targets: readonly Target[]): Target {
    const count = targets.length;
    if (count === 1) return targets[0];
    if (targets !== this.#lastSeen) this.#rebuild(targets);
    const now = performance.now();
    if (this.#probeEvery !== 0 && ++this.#picks >= this.#probeEvery) {
      this.#picks = 0;
      const probed = this.#probe(targets, now);
      if (probed !== undefined) return probed;
    }
    const first = Math.floor(Math.random() * count);
    // Drawing from count - 1 and skipping `first` keeps the second choice uniform and distinct.
    let second = Math.floor(Math.random() * (count - 1));
    if (second >= first) second++;
    const a = targets[first];
    const b = targets[second];
    return this.#cost(b, this.#snapshotEstimates[second], now) < this.#cost(a, this.#snapshotEstimates[first], now) ? b : a;
  }

  onEnd(target: Target, outcome: Outcome): void {
    const sample = outcome.latency;
    const estimate = this.#estimateOf(target);
    const probed = estimate.probed;
    estimate.probed = false;
    // No response head, no latency: failures are for outlier detection to judge.
    if (Number.isNaN(sample)) return;
    const now = performance.now();
    // The default only stands in until the first answer, which replaces it whichever is larger.
    if (sample >= estimate.latency || !estimate.sampled) estimate.latency = sample;
    else {
      let kept = Math.exp((estimate.stamp - now) / this.#decay);
      if (kept > this.#keptAtMost) kept = this.#keptAtMost;
      if (probed && kept > 1 - PROBE_WEIGHT) kept = 1 - PROBE_WEIGHT;
      estimate.latency = estimate.latency * kept + sample * (1 - kept);
    }
    estimate.stamp = now;
    estimate.sampled = true;
  }

  targetStats(target: Target): StrategyTargetStats {
    const now = performance.now();
    // Reading must not start a target's clock: it starts when a snapshot first holds it.
    const estimate = this.#estimates.get(target) ?? { latency: this.#defaultLatency, stamp: now, sampled: false, probed: false, probes: 0 };
    const figures = { score: this.#cost(target, estimate, now), latency: this.#faded(estimate, now) };
    return this.#probeEvery === 0 ? figures : { ...figures, probes: estimate.probes };
  }

  #cost(target: Target, estimate: Estimate, now: number): number {
    return (this.#faded(estimate, now) * (target.inFlight + 1)) / target.weight;
  }

  #faded(estimate: Estimate, now: number): number {
    return estimate.latency * Math.exp((estimate.stamp - now) / this.#decay);
  }

  /**
   * The target whose estimate is the stalest, if that is older than `#stale` and no probe of it is
   * awaited (a stalled target gets one probe, not one per scan). Once per `#probeEvery` picks, it
   * reads the next `PROBE_SCAN` estimates of the snapshot round the ring (all of a small pool), so
   * a pick costs the same in a pool of 10,000 and allocates nothing.
   */
  #probe(targets: readonly Target[], now: number): Target | undefined {
    const estimates = this.#snapshotEstimates;
    const count = estimates.length;
    const scanned = Math.min(count, PROBE_SCAN);
    let oldest = now - this.#stale;
    let found = -1;
    let i = this.#cursor < count ? this.#cursor : 0;
    for (let n = 0; n < scanned; n++) {
      const estimate = estimates[i];
      if (estimate.stamp < oldest && !estimate.probed) {
        oldest = estimate.stamp;
        found = i;
      }
      if (++i === count) i = 0;
    }
    this.#cursor = i;
    if (found < 0) return undefined;
    estimates[found].probed = true;
    estimates[found].probes++;
    return targets[found];
  }

  #estimateOf(target: Target): Estimate {
    let estimate = this.#estimates.get(target);
    if (estimate === undefined) {
      estimate = { latency: this.#defaultLatency, stamp: performance.now(), sampled: false, probed: false, probes: 0 };
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
    o.decaySamples === undefined ? 20 : integer(prefix, 'decaySamples', o.decaySamples, { unit: 'answers' }),
    o.probe === undefined ? 0.02 : finiteNumber(prefix, 'probe', o.probe, { max: 0.1, unit: 'a share of picks' }),
  );
}

markFactory(peakEwma, 'peakEwma()');
