/** Envoy-style circuit breaking: caps over the whole pool, past which the balancer refuses at once instead of piling work up. */
export interface CircuitBreakerOptions {
  /** Requests (and WebSocket tunnels) in flight over the whole pool at most; more get 503 at once. Default 0 (no cap). */
  maxRequests?: number;
  /** Requests waiting for a connection slot (see `maxConnections`) over the whole pool at most; more get 503 at once. Default 0 (only `maxQueue` per target). */
  maxPending?: number;
  /** Retries in flight at once over the whole pool at most; past it a failed attempt is answered (502/504) instead of retried. Default 0 (only the retry budget applies). */
  maxRetries?: number;
}

/** Counts what the pool-wide caps need that the balancer does not count already. */
export class CircuitBreaker {
  readonly #maxRequests: number;
  readonly #maxRetries: number;
  #retries = 0;

  constructor(maxRequests: number, maxRetries: number) {
    this.#maxRequests = maxRequests;
    this.#maxRetries = maxRetries;
  }

  /** Whether a new request may start with `inFlight` already open. */
  admits(inFlight: number): boolean {
    return this.#maxRequests === 0 || inFlight < this.#maxRequests;
  }

  /** Whether the cap forbids another retry now; `replacing` when the failed attempt being replaced is itself a retry (it ends as the new one starts). */
  retriesCapped(replacing: boolean): boolean {
    return this.#maxRetries > 0 && this.#retries - (replacing ? 1 : 0) >= this.#maxRetries;
  }

  /** A retry attempt started. */
  retryStarted(): void {
    this.#retries++;
  }

  /** A retry attempt ended. */
  retryEnded(): void {
    this.#retries--;
  }
}
