import type { StoreGuard } from '../store-guard.js';

/** The parameters of one token bucket. */
export interface TokenBucket {
  /** Most tokens the bucket holds: the burst a key may spend at once, tokens. */
  readonly capacity: number;
  /** Refill speed, tokens per millisecond (a bucket refills continuously, up to `capacity`). */
  readonly refillPerMs: number;
}

/** What a store answers for one `take`. */
export interface RateLimitResult {
  /** Whether the tokens were taken (the request may pass). */
  allowed: boolean;
  /** Whole tokens left in the bucket after this take. */
  remaining: number;
  /**
   * Milliseconds until the bucket is full again when `allowed`; when refused, milliseconds until
   * `cost` tokens will be there (what `Retry-After` says).
   */
  resetMs: number;
}

/**
 * Where rate-limit buckets live. `take` must be atomic per key: two concurrent takes on one key
 * never both spend the same token, even across processes for a shared store.
 */
export interface RateLimitStore {
  /**
   * Refills `key`'s bucket for the time elapsed up to `now` (ms since the epoch), then takes
   * `cost` tokens if it holds that many. A key never seen starts with a full bucket.
   */
  take(key: string, cost: number, now: number, bucket: TokenBucket): RateLimitResult | Promise<RateLimitResult>;
  /**
   * The deadline and circuit breaker the store runs its takes under (`redisRateLimitStore` has
   * one). A store with neither this nor `local` is put behind a default guard by the limiter.
   */
  readonly guard?: StoreGuard;
  /** The store lives in this process and cannot hang (the default in-memory store): no guard around it. */
  readonly local?: boolean;
}
