import type { Pool } from '../pool.js';
import type { Target } from '../target.js';
import { clampDelay } from '../timer.js';

/** Samples kept per target: one minute at the default interval. */
export const SAMPLE_COUNT = 60;
/** Default interval between samples, ms. */
export const SAMPLE_INTERVAL = 1000;

/** One target's recent samples, a fixed-size ring: latency (EWMA, ms) and its request and error counters. */
class Ring {
  readonly latency = new Float64Array(SAMPLE_COUNT);
  readonly total = new Float64Array(SAMPLE_COUNT);
  readonly errors = new Float64Array(SAMPLE_COUNT);
  readonly at = new Float64Array(SAMPLE_COUNT);
  /** Index of the next write. */
  next = 0;
  size = 0;

  push(target: Target, now: number): void {
    const i = this.next;
    this.latency[i] = target.latency;
    this.total[i] = target.total;
    this.errors[i] = target.errors;
    this.at[i] = now;
    this.next = (i + 1) % SAMPLE_COUNT;
    if (this.size < SAMPLE_COUNT) this.size++;
  }

  /** Index of the oldest sample kept. */
  get oldest(): number {
    return this.size < SAMPLE_COUNT ? 0 : this.next;
  }
}

/** A target's recent figures, from its samples. */
export interface RecentFigures {
  /** Latency samples (EWMA of time to response head, ms), oldest first, from the first response on. */
  latencyHistory: number[];
  /** Requests per second over the sampled window (up to a minute). */
  requestRate: number;
  /** Failed attempts over attempts in the sampled window; null when there were none. */
  errorRate: number | null;
}

/**
 * Keeps the last minute of latency and counter samples per target for the status page: a sample of
 * every member on a timer that does not hold the process open, stopped by `lb.close()`.
 */
export class Sampler {
  readonly #pool: Pool;
  readonly #rings = new Map<Target, Ring>();
  readonly #timer: NodeJS.Timeout;

  constructor(pool: Pool, intervalMs = SAMPLE_INTERVAL) {
    this.#pool = pool;
    this.sample();
    this.#timer = setInterval(() => this.sample(), clampDelay(intervalMs));
    this.#timer.unref();
  }

  /** Takes one sample of every member; forgets targets that left the pool. */
  sample(now = Date.now()): void {
    const members = this.#pool.targets;
    for (const target of members) {
      let ring = this.#rings.get(target);
      if (ring === undefined) {
        ring = new Ring();
        this.#rings.set(target, ring);
      }
      ring.push(target, now);
    }
    if (this.#rings.size > members.length) {
      const current = new Set(members);
      for (const target of this.#rings.keys()) if (!current.has(target)) this.#rings.delete(target);
    }
  }

  /** Recent figures of `target`, its current counters measured against its oldest sample. */
  recent(target: Target, now = Date.now()): RecentFigures {
    const ring = this.#rings.get(target);
    if (ring === undefined || ring.size === 0) {
      return { latencyHistory: [], requestRate: 0, errorRate: target.total > 0 ? target.errors / target.total : null };
    }
    const latencyHistory: number[] = [];
    for (let n = 0, i = ring.oldest; n < ring.size; n++, i = (i + 1) % SAMPLE_COUNT) {
      const latency = ring.latency[i]!;
      // 0 is "no response yet", not a fast one.
      if (latency > 0 || latencyHistory.length > 0) latencyHistory.push(Math.round(latency * 100) / 100);
    }
    const first = ring.oldest;
    const requests = target.total - ring.total[first]!;
    const seconds = (now - ring.at[first]!) / 1000;
    return {
      latencyHistory,
      requestRate: seconds > 0 ? Math.round((requests / seconds) * 100) / 100 : 0,
      errorRate: requests > 0 ? (target.errors - ring.errors[first]!) / requests : null,
    };
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
