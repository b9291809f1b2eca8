import { LRUCache } from 'lru-cache';
import { integer, markFactory, optionsObject } from '../validate.js';
import type { RateLimitResult, RateLimitStore, TokenBucket } from './rate-limit-store.js';

export interface MemoryRateLimitStoreOptions {
  /**
   * Most keys tracked at once; past it the least recently seen key is forgotten (it comes back
   * with a full bucket), so a flood of distinct clients cannot exhaust memory; default 10000.
   */
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  /** `now` of the last take, ms. */
  at: number;
}

/** Token buckets in this process, in a bounded LRU map (`lru-cache`). */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly local = true;
  readonly #buckets: LRUCache<string, Bucket>;

  constructor(input: MemoryRateLimitStoreOptions = {}) {
    const options = optionsObject(input, 'memoryRateLimitStore', ['maxKeys']) as MemoryRateLimitStoreOptions;
    const maxKeys = options.maxKeys ?? 10_000;
    integer('memoryRateLimitStore: options', 'maxKeys', maxKeys, { min: 1 });
    this.#buckets = new LRUCache({ max: maxKeys });
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, cost: number, now: number, bucket: TokenBucket): RateLimitResult {
    let state = this.#buckets.get(key);
    if (state === undefined) {
      state = { tokens: bucket.capacity, at: now };
      this.#buckets.set(key, state);
    } else if (now > state.at) {
      state.tokens = Math.min(bucket.capacity, state.tokens + (now - state.at) * bucket.refillPerMs);
    }
    // A clock that stepped back must not refill twice the same interval later.
    state.at = now;
    if (state.tokens >= cost) {
      state.tokens -= cost;
      return { allowed: true, remaining: Math.floor(state.tokens), resetMs: Math.ceil((bucket.capacity - state.tokens) / bucket.refillPerMs) };
    }
    return { allowed: false, remaining: Math.floor(state.tokens), resetMs: Math.ceil((cost - state.tokens) / bucket.refillPerMs) };
  }
}

/** An in-process rate-limit store: the default of `rateLimit`. Give several balancers one to share limits within a process. */
export function memoryRateLimitStore(options?: MemoryRateLimitStoreOptions): MemoryRateLimitStore {
  return new MemoryRateLimitStore(options);
}

markFactory(memoryRateLimitStore, 'memoryRateLimitStore()');
