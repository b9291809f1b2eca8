/** Latencies the learned delay is taken from: the last this many first attempts. */
const SIZE = 512;
/** The percentile is recomputed once per this many new samples, not per request. */
const EVERY = 64;

/**
 * A percentile of the most recent first-attempt latencies, in a fixed ring: recording one is a
 * store and an increment; every `EVERY` samples the ring is copied into a scratch array of the same
 * size and sorted (about 4,600 comparisons, some 70 per request). Nothing is allocated after
 * construction. Finagle keeps a 30-second windowed histogram instead; a count-based window
 * follows the traffic as closely at the rates that matter and needs no timer.
 */
export class LatencyWindow {
  readonly #ring = new Float64Array(SIZE);
  readonly #scratch = new Float64Array(SIZE);
  readonly #rank: number;
  #count = 0;
  #value = Number.NaN;

  /** `percentile`: from 50 to below 100. */
  constructor(percentile: number) {
    this.#rank = percentile / 100;
  }

  record(ms: number): void {
    this.#ring[this.#count % SIZE] = ms;
    this.#count++;
    if (this.#count % EVERY === 0) this.#recompute();
  }

  /** The percentile of the window, ms; NaN until `EVERY` samples came in. */
  get value(): number {
    return this.#value;
  }

  #recompute(): void {
    const n = Math.min(this.#count, SIZE);
    const sorted = n === SIZE ? this.#scratch : this.#scratch.subarray(0, n);
    sorted.set(n === SIZE ? this.#ring : this.#ring.subarray(0, n));
    sorted.sort();
    // Nearest rank: the smallest sample with at least `rank` of the window at or below it.
    this.#value = sorted[Math.min(n - 1, Math.ceil(this.#rank * n) - 1)]!;
  }
}
