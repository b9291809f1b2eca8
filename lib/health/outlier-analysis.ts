import { fail, finiteNumber, integer, nestedObject } from '../validate.js';

/** Why passive detection ejected a target. */
export type EjectionReason = 'consecutive' | 'successRate' | 'failurePercentage' | 'latency';

export const EJECTION_REASONS: readonly EjectionReason[] = ['consecutive', 'successRate', 'failurePercentage', 'latency'];

/** Envoy's success-rate detection: a target whose success rate is an outlier among its peers'. */
export interface SuccessRateOptions {
  /**
   * Ejects a target whose success rate over the interval is below mean − stdevFactor × stdev of the
   * qualifying targets' rates; number > 0, default 1.9 (Envoy's `success_rate_stdev_factor` 1900 / 1000).
   * One bad target among n is at most √(n − 1) standard deviations below the mean: 1.9 needs n ≥ 5.
   */
  stdevFactor?: number;
  /** Fewest targets with `requestVolume` requests in the interval for the analysis to run; integer ≥ 1, default 5 (Envoy `success_rate_minimum_hosts`). */
  minimumHosts?: number;
  /** Requests a target needs in the interval to be judged and to count toward the mean; integer ≥ 1, default 100 (Envoy `success_rate_request_volume`). */
  requestVolume?: number;
}

/** Envoy's failure-percentage detection: a target failing more than a fixed share of its requests. */
export interface FailurePercentageOptions {
  /** Ejects a target whose failed share of requests in the interval is at least this, %; 0–100, default 85 (Envoy `failure_percentage_threshold`). */
  threshold?: number;
  /** Fewest targets with `requestVolume` requests in the interval for the analysis to run; integer ≥ 1, default 5 (Envoy `failure_percentage_minimum_hosts`). */
  minimumHosts?: number;
  /** Requests a target needs in the interval to be judged; integer ≥ 1, default 50 (Envoy `failure_percentage_request_volume`). */
  requestVolume?: number;
}

/** Latency detection (no Envoy equivalent): a target much slower than the pool's median target. */
export interface LatencyOutlierOptions {
  /** Ejects a target whose latency over the interval exceeds this many times the median of the qualifying targets'; number > 1, default 3. */
  factor?: number;
  /** Fewest targets with `requestVolume` responses in the interval for the analysis to run; integer ≥ 2, default 3 (a median of two is their mean). */
  minimumHosts?: number;
  /** Responses (time to response head) a target needs in the interval to be judged; integer ≥ 1, default 50. */
  requestVolume?: number;
  /** `'mean'`: the mean time to response head over the interval (default); `'peak'`: the slowest one. */
  measure?: 'mean' | 'peak';
}

export type ResolvedSuccessRate = Required<SuccessRateOptions>;
export type ResolvedFailurePercentage = Required<FailurePercentageOptions>;
export type ResolvedLatencyOutlier = Required<LatencyOutlierOptions>;

/** What one target did during an analysis interval. */
export interface IntervalFigures {
  /** Attempts that ended (answered or failed). */
  requests: number;
  failures: number;
  /** Responses whose time to head was measured, their sum and the slowest, ms. */
  timed: number;
  latencySum: number;
  latencyPeak: number;
}

export function emptyFigures(): IntervalFigures {
  return { requests: 0, failures: 0, timed: 0, latencySum: 0, latencyPeak: 0 };
}

/** The interval detections that are on. */
export interface IntervalDetection {
  interval: number;
  successRate: ResolvedSuccessRate | undefined;
  failurePercentage: ResolvedFailurePercentage | undefined;
  latency: ResolvedLatencyOutlier | undefined;
}

const PREFIX = 'loadBalance: options.outlierDetection';

function section<T extends object>(input: unknown, name: string, known: readonly string[]): Partial<T> | undefined {
  if (input === undefined || input === false) return undefined;
  if (input === true) return {};
  return nestedObject(input, `outlierDetection.${name}`, known, { expected: 'an object, true or false' }) as Partial<T>;
}

function count(prefix: string, name: string, value: unknown, fallback: number, min = 1): number {
  return value === undefined ? fallback : integer(prefix, name, value, { min });
}

export function resolveSuccessRate(input: unknown): ResolvedSuccessRate | undefined {
  const o = section<SuccessRateOptions>(input, 'successRate', ['stdevFactor', 'minimumHosts', 'requestVolume']);
  if (o === undefined) return undefined;
  const prefix = `${PREFIX}.successRate`;
  return {
    stdevFactor: o.stdevFactor === undefined ? 1.9 : finiteNumber(prefix, 'stdevFactor', o.stdevFactor, { exclusive: true }),
    minimumHosts: count(prefix, 'minimumHosts', o.minimumHosts, 5),
    requestVolume: count(prefix, 'requestVolume', o.requestVolume, 100),
  };
}

export function resolveFailurePercentage(input: unknown): ResolvedFailurePercentage | undefined {
  const o = section<FailurePercentageOptions>(input, 'failurePercentage', ['threshold', 'minimumHosts', 'requestVolume']);
  if (o === undefined) return undefined;
  const prefix = `${PREFIX}.failurePercentage`;
  return {
    threshold: o.threshold === undefined ? 85 : finiteNumber(prefix, 'threshold', o.threshold, { max: 100, unit: '%' }),
    minimumHosts: count(prefix, 'minimumHosts', o.minimumHosts, 5),
    requestVolume: count(prefix, 'requestVolume', o.requestVolume, 50),
  };
}

export function resolveLatencyOutlier(input: unknown): ResolvedLatencyOutlier | undefined {
  const o = section<LatencyOutlierOptions>(input, 'latency', ['factor', 'minimumHosts', 'requestVolume', 'measure']);
  if (o === undefined) return undefined;
  const prefix = `${PREFIX}.latency`;
  const measure = o.measure ?? 'mean';
  if (measure !== 'mean' && measure !== 'peak') fail('outlierDetection.latency.measure', "'mean' or 'peak'", measure);
  return {
    factor: o.factor === undefined ? 3 : finiteNumber(prefix, 'factor', o.factor, { min: 1, exclusive: true }),
    minimumHosts: count(prefix, 'minimumHosts', o.minimumHosts, 3, 2),
    requestVolume: count(prefix, 'requestVolume', o.requestVolume, 50),
    measure,
  };
}

/** A target's figures for one interval, as the analysis sees them. */
export interface Candidate<T> {
  target: T;
  figures: IntervalFigures;
}

/** One verdict of an interval's analysis: eject `target` for `reason`; `detail` says by how much, for the log. */
export interface Verdict<T> {
  target: T;
  reason: EjectionReason;
  detail: string;
}

/**
 * The interval's verdicts, worst first within each detection, in Envoy's order (success rate, then
 * failure percentage), then latency. A target appears once, for the first detection that flags it.
 */
export function analyse<T>(candidates: readonly Candidate<T>[], detection: IntervalDetection): Verdict<T>[] {
  const verdicts: Verdict<T>[] = [];
  const flagged = new Set<T>();
  const add = (list: Verdict<T>[]): void => {
    for (const verdict of list) {
      if (flagged.has(verdict.target)) continue;
      flagged.add(verdict.target);
      verdicts.push(verdict);
    }
  };
  if (detection.successRate !== undefined) add(bySuccessRate(candidates, detection.successRate));
  if (detection.failurePercentage !== undefined) add(byFailurePercentage(candidates, detection.failurePercentage));
  if (detection.latency !== undefined) add(byLatency(candidates, detection.latency));
  return verdicts;
}

function successRate(figures: IntervalFigures): number {
  return (100 * (figures.requests - figures.failures)) / figures.requests;
}

function bySuccessRate<T>(candidates: readonly Candidate<T>[], options: ResolvedSuccessRate): Verdict<T>[] {
  const judged = candidates.filter((c) => c.figures.requests >= options.requestVolume);
  if (judged.length < options.minimumHosts) return [];
  const rates = judged.map((c) => successRate(c.figures));
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  const stdev = Math.sqrt(rates.reduce((sum, rate) => sum + (rate - mean) ** 2, 0) / rates.length);
  const floor = mean - options.stdevFactor * stdev;
  return judged
    .map((c, i) => ({ c, rate: rates[i] }))
    .filter(({ rate }) => rate < floor)
    .sort((a, b) => a.rate - b.rate)
    .map(({ c, rate }) => ({
      target: c.target,
      reason: 'successRate' as const,
      detail: `success rate ${rate.toFixed(1)}% below ${floor.toFixed(1)}% (mean ${mean.toFixed(1)}% − ${options.stdevFactor} × stdev ${stdev.toFixed(1)})`,
    }));
}

function byFailurePercentage<T>(candidates: readonly Candidate<T>[], options: ResolvedFailurePercentage): Verdict<T>[] {
  const judged = candidates.filter((c) => c.figures.requests >= options.requestVolume);
  if (judged.length < options.minimumHosts) return [];
  return judged
    .map((c) => ({ c, failed: 100 - successRate(c.figures) }))
    .filter(({ failed }) => failed >= options.threshold)
    .sort((a, b) => b.failed - a.failed)
    .map(({ c, failed }) => ({
      target: c.target,
      reason: 'failurePercentage' as const,
      detail: `${failed.toFixed(1)}% of requests failed (threshold ${options.threshold}%)`,
    }));
}

/** A target's latency over the interval by `measure`, ms. */
export function intervalLatency(figures: IntervalFigures, measure: ResolvedLatencyOutlier['measure']): number {
  return measure === 'peak' ? figures.latencyPeak : figures.latencySum / figures.timed;
}

function byLatency<T>(candidates: readonly Candidate<T>[], options: ResolvedLatencyOutlier): Verdict<T>[] {
  const judged = candidates.filter((c) => c.figures.timed >= options.requestVolume);
  if (judged.length < options.minimumHosts) return [];
  const latencies = judged.map((c) => intervalLatency(c.figures, options.measure));
  const median = medianOf(latencies);
  const ceiling = options.factor * median;
  return judged
    .map((c, i) => ({ c, latency: latencies[i] }))
    .filter(({ latency }) => latency > ceiling)
    .sort((a, b) => b.latency - a.latency)
    .map(({ c, latency }) => ({
      target: c.target,
      reason: 'latency' as const,
      detail: `${options.measure} latency ${latency.toFixed(1)} ms above ${options.factor} × the median ${median.toFixed(1)} ms`,
    }));
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >>> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
