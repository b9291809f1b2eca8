/** The gradient controller's settings, resolved (see `AdaptiveConcurrencyOptions` for units and defaults). */
export interface GradientSettings {
  sampleWindow: number;
  percentile: number;
  buffer: number;
  minRttInterval: number;
  minRttRequests: number;
  jitter: number;
  minConcurrency: number;
  maxConcurrency: number;
}

/** Most latency samples one window keeps; past it a reservoir keeps a uniform sample of the window. */
export const MAX_WINDOW_SAMPLES = 1000;

/** Envoy clamps the gradient so one window can at most halve or double the limit. */
const MIN_GRADIENT = 0.5;
const MAX_GRADIENT = 2;

/** Windows in a row ending at the minimum limit after which minRTT is measured again (Envoy: 5): a too-low minRTT would pin the limit there. */
const WINDOWS_AT_MIN_BEFORE_REMEASURE = 5;

/**
 * One target's adaptive concurrency limit, Envoy's gradient controller: minRTT is the
 * `percentile` of `minRttRequests` latencies taken with the limit pinned to `minConcurrency`,
 * measured at start and again every `minRttInterval` (+ up to `jitter` of it, so targets do not
 * all measure at once); between measurements, every `sampleWindow` the window's `percentile`
 * latency (sampleRTT) moves the limit:
 * `limit = clamp(limit × gradient + √(limit × gradient))` with
 * `gradient = clamp(minRTT × (1 + buffer) / sampleRTT, 0.5, 2)`.
 * Windows close when a sample arrives after their end, so an idle target costs no timer; a
 * window with no sample leaves the limit where it is, as in Envoy.
 */
export class GradientLimit {
  readonly #settings: GradientSettings;
  /** Requests this target may have in flight now. */
  limit: number;
  /** Latency at low concurrency, ms; 0 until first measured. */
  minRtt = 0;
  /** The last window's aggregate latency, ms; 0 before the first window. */
  sampleRtt = 0;
  /** The last gradient applied (1 before the first window). */
  gradient = 1;
  /** Measuring minRTT now: the limit is pinned to `minConcurrency`. */
  measuring = false;
  /** Times a request chosen for this target found it at its limit (it went to another target or got 503). */
  blocked = 0;
  /** The limit to return to once the minRTT measurement ends. */
  #deferred: number;
  /** Requests started before this (the last minRTT measurement began) are not sampled. */
  #epoch = 0;
  #windowStart = 0;
  #nextMinRtt = 0;
  #windowsAtMin = 0;
  readonly #samples: Float64Array;
  readonly #sorted: Float64Array;
  #count = 0;
  /** Samples offered this window, kept or not (the reservoir's denominator). */
  #seen = 0;

  constructor(settings: GradientSettings, now: number) {
    this.#settings = settings;
    this.limit = settings.minConcurrency;
    this.#deferred = settings.minConcurrency;
    this.#samples = new Float64Array(MAX_WINDOW_SAMPLES);
    this.#sorted = new Float64Array(MAX_WINDOW_SAMPLES);
    this.#startMeasuring(now);
  }

  /**
   * Records the latency (ms) of a request that started at `startedAt` and ended at `now`; returns
   * true when the limit was recalculated.
   */
  sample(latency: number, startedAt: number, now: number): boolean {
    if (startedAt < this.#epoch) return false;
    this.#keep(latency);
    const s = this.#settings;
    if (this.measuring) {
      if (this.#count < s.minRttRequests) return false;
      this.minRtt = this.#aggregate();
      this.measuring = false;
      this.limit = this.#deferred;
      this.#windowStart = now;
      this.#nextMinRtt = now + s.minRttInterval * (1 + Math.random() * s.jitter);
      return true;
    }
    if (now - this.#windowStart < s.sampleWindow) return false;
    if (now >= this.#nextMinRtt) {
      this.#startMeasuring(now);
      return true;
    }
    this.sampleRtt = this.#aggregate();
    this.#windowStart = now;
    const previous = this.limit;
    this.limit = this.#next();
    this.#windowsAtMin = previous === s.minConcurrency && this.limit === s.minConcurrency ? this.#windowsAtMin + 1 : 0;
    if (this.#windowsAtMin >= WINDOWS_AT_MIN_BEFORE_REMEASURE) this.#startMeasuring(now);
    return true;
  }

  #next(): number {
    const s = this.#settings;
    const raw = (this.minRtt * (1 + s.buffer)) / this.sampleRtt;
    this.gradient = Number.isNaN(raw) ? MIN_GRADIENT : Math.max(MIN_GRADIENT, Math.min(MAX_GRADIENT, raw));
    const scaled = this.limit * this.gradient;
    // Envoy truncates to a whole number of requests.
    const limit = Math.floor(scaled + Math.sqrt(scaled));
    return Math.max(s.minConcurrency, Math.min(s.maxConcurrency, limit));
  }

  #startMeasuring(now: number): void {
    this.measuring = true;
    this.#deferred = this.limit;
    this.limit = this.#settings.minConcurrency;
    this.#windowsAtMin = 0;
    this.#epoch = now;
    this.#count = this.#seen = 0;
  }

  #keep(latency: number): void {
    this.#seen++;
    if (this.#count < MAX_WINDOW_SAMPLES) {
      this.#samples[this.#count++] = latency;
      return;
    }
    const slot = Math.floor(Math.random() * this.#seen);
    if (slot < MAX_WINDOW_SAMPLES) this.#samples[slot] = latency;
  }

  /** The window's `percentile` latency (nearest rank); empties the window. */
  #aggregate(): number {
    const n = this.#count;
    const sorted = this.#sorted.subarray(0, n);
    sorted.set(this.#samples.subarray(0, n));
    sorted.sort();
    this.#count = this.#seen = 0;
    const rank = Math.ceil((this.#settings.percentile / 100) * n);
    return sorted[rank > 0 ? rank - 1 : 0]!;
  }
}
