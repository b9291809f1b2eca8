import { performance } from 'node:perf_hooks';
import type { Target } from '../target.js';
import { finiteNumber, integer, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject, fail } from '../validate.js';
import { GradientLimit, type GradientSettings, MAX_WINDOW_SAMPLES } from './gradient-limit.js';
import { logProtect } from './log.js';

/**
 * An adaptive concurrency limit per target, Envoy's adaptive concurrency filter (gradient
 * controller) with Envoy's defaults: requests past a target's limit go to the ready target with
 * the most room, or get 503 with `Retry-After` at once when every one is at its limit.
 */
export interface AdaptiveConcurrencyOptions {
  /** Milliseconds of latency samples per limit update (Envoy's `concurrency_update_interval`, which has no default; its example uses 100 ms); default 100. */
  sampleWindow?: number;
  /** Percentile of a window's latencies taken as its sampleRTT, and of the minRTT samples, 1–100 (Envoy's `sample_aggregate_percentile`); default 50. */
  percentile?: number;
  /** Share of minRTT added to it before it is compared with sampleRTT, 0–1 (Envoy's `min_rtt_calc_params.buffer`, 25%); default 0.25. */
  buffer?: number;
  /** Milliseconds between minRTT measurements (Envoy's `min_rtt_calc_params.interval`, no default; its example uses 60 s); default 60000. */
  minRttInterval?: number;
  /** Requests sampled per minRTT measurement, count (Envoy's `min_rtt_calc_params.request_count`); default 50, at most 1000. */
  minRttRequests?: number;
  /** Random extra delay before each minRTT measurement, as a share of `minRttInterval`, 0–1 (Envoy's `min_rtt_calc_params.jitter`, 15%); default 0.15. */
  jitter?: number;
  /** The limit while minRTT is measured, and the lowest it goes, requests (Envoy's `min_concurrency`); default 3. */
  minConcurrency?: number;
  /** The highest the limit goes, requests (Envoy's `max_concurrency_limit`); default 1000. */
  maxConcurrency?: number;
}

const OPTIONS: readonly string[] = ['sampleWindow', 'percentile', 'buffer', 'minRttInterval', 'minRttRequests', 'jitter', 'minConcurrency', 'maxConcurrency'];

/** Checks `options.adaptiveConcurrency` (`true` for the defaults, an object, or false/absent for off). */
export function resolveAdaptiveConcurrency(input: unknown): GradientSettings | undefined {
  if (input === undefined || input === false) return undefined;
  const o = input === true ? {} : nestedObject(input, 'adaptiveConcurrency', OPTIONS, { expected: 'true, false or an object' })!;
  const at = (name: string): string => `adaptiveConcurrency.${name}`;
  const settings: GradientSettings = {
    sampleWindow: o.sampleWindow === undefined ? 100 : milliseconds(LOAD_BALANCE_OPTIONS, at('sampleWindow'), o.sampleWindow, { positive: true }),
    percentile:
      o.percentile === undefined ? 50 : finiteNumber(LOAD_BALANCE_OPTIONS, at('percentile'), o.percentile, { exclusive: true, max: 100, unit: 'a percentile' }),
    buffer: o.buffer === undefined ? 0.25 : finiteNumber(LOAD_BALANCE_OPTIONS, at('buffer'), o.buffer, { max: 1, unit: 'a share of minRTT' }),
    minRttInterval: o.minRttInterval === undefined ? 60_000 : milliseconds(LOAD_BALANCE_OPTIONS, at('minRttInterval'), o.minRttInterval, { positive: true }),
    minRttRequests:
      o.minRttRequests === undefined
        ? 50
        : integer(LOAD_BALANCE_OPTIONS, at('minRttRequests'), o.minRttRequests, { min: 1, max: MAX_WINDOW_SAMPLES, unit: 'requests' }),
    jitter: o.jitter === undefined ? 0.15 : finiteNumber(LOAD_BALANCE_OPTIONS, at('jitter'), o.jitter, { max: 1, unit: 'a share of minRttInterval' }),
    minConcurrency: o.minConcurrency === undefined ? 3 : integer(LOAD_BALANCE_OPTIONS, at('minConcurrency'), o.minConcurrency, { min: 1, unit: 'requests' }),
    maxConcurrency: o.maxConcurrency === undefined ? 1000 : integer(LOAD_BALANCE_OPTIONS, at('maxConcurrency'), o.maxConcurrency, { min: 1, unit: 'requests' }),
  };
  if (settings.minConcurrency > settings.maxConcurrency)
    fail(at('minConcurrency'), `at most maxConcurrency (${settings.maxConcurrency})`, settings.minConcurrency);
  return settings;
}

/** One target's adaptive concurrency figures in `lb.stats()`. */
export interface ConcurrencyLimitStats {
  /** Requests the target may have in flight now. */
  limit: number;
  /** Latency at low concurrency, ms (0 before the first measurement). */
  minRtt: number;
  /** The last window's aggregate latency, ms (0 before the first window). */
  sampleRtt: number;
  /** The last gradient applied, 0.5–2. */
  gradient: number;
  /** Measuring minRTT now, with the limit pinned to `minConcurrency`. */
  measuringMinRtt: boolean;
  /** Requests chosen for this target that found it at its limit (sent elsewhere, or 503). */
  blocked: number;
}

/** A recalculated limit, for the `concurrencyLimit` event. */
export interface ConcurrencyLimitChange {
  limit: number;
  previous: number;
  minRtt: number;
  sampleRtt: number;
  measuringMinRtt: boolean;
}

/**
 * The adaptive limits of one balancer's targets (made at a target's first request, so targets
 * added at run time get one too) and the decision where a request goes when its target is full.
 */
export class AdaptiveConcurrency {
  readonly #settings: GradientSettings;
  readonly #limits = new WeakMap<Target, GradientLimit>();
  readonly #changed: (target: Target, change: ConcurrencyLimitChange) => void;
  /** Requests answered 503 because every ready target was at its limit. */
  refused = 0;

  constructor(settings: GradientSettings, changed: (target: Target, change: ConcurrencyLimitChange) => void) {
    this.#settings = settings;
    this.#changed = changed;
  }

  /** `target` if it has room under its limit, else the ready target with the most room, else undefined (counted as refused). */
  admit(target: Target, ready: readonly Target[]): Target | undefined {
    const limit = this.#limit(target);
    if (target.inFlight < limit.limit) return target;
    limit.blocked++;
    let best: Target | undefined;
    let room = 0;
    for (let i = 0; i < ready.length; i++) {
      const other = ready[i]!;
      const free = this.#limit(other).limit - other.inFlight;
      if (free > room) {
        best = other;
        room = free;
      }
    }
    if (best === undefined) {
      this.refused++;
      if (logProtect.enabled) logProtect('503: every ready target at its adaptive concurrency limit (%s: %d)', target.key, limit.limit);
    }
    return best;
  }

  /** Whether `target` has room under its limit (for a retry or a WebSocket tunnel sent there). */
  hasRoom(target: Target): boolean {
    return target.inFlight < this.#limit(target).limit;
  }

  /** A request on `target` that started at `startedAt` (performance.now()) got its response head after `latency` ms. */
  ended(target: Target, latency: number, startedAt: number): void {
    const limit = this.#limit(target);
    const previous = limit.limit;
    if (!limit.sample(latency, startedAt, performance.now())) return;
    if (limit.limit !== previous) {
      this.#changed(target, {
        limit: limit.limit,
        previous,
        minRtt: limit.minRtt,
        sampleRtt: limit.sampleRtt,
        measuringMinRtt: limit.measuring,
      });
    }
  }

  stats(target: Target): ConcurrencyLimitStats {
    const l = this.#limit(target);
    return {
      limit: l.limit,
      minRtt: Math.round(l.minRtt * 100) / 100,
      sampleRtt: Math.round(l.sampleRtt * 100) / 100,
      gradient: Math.round(l.gradient * 1000) / 1000,
      measuringMinRtt: l.measuring,
      blocked: l.blocked,
    };
  }

  #limit(target: Target): GradientLimit {
    let limit = this.#limits.get(target);
    if (limit === undefined) {
      limit = new GradientLimit(this.#settings, performance.now());
      this.#limits.set(target, limit);
    }
    return limit;
  }
}
