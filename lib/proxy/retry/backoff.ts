import { armTryTimeout } from '../exchange-timers.js';
import type { Exchange } from '../exchange.js';
import { clampDelay } from '../../timer.js';
import { invalidOption, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject } from '../../validate.js';

/** Back-off between attempts: exponential with full jitter (Envoy's `retry_back_off`). */
export interface BackoffOptions {
  /** Milliseconds the first retry waits at most; each further retry doubles it, up to `max`; default 25. */
  base?: number;
  /** Milliseconds any retry waits at most; default 250. */
  max?: number;
}

export interface BackoffPolicy {
  base: number;
  max: number;
}

export function resolveBackoff(input: unknown): BackoffPolicy | undefined {
  if (input === false) return undefined;
  const options = (nestedObject(input, 'retry.backoff', ['base', 'max'], { expected: 'an object or false' }) ?? {}) as BackoffOptions;
  const base = milliseconds(LOAD_BALANCE_OPTIONS, 'retry.backoff.base', options.base ?? 25, { integer: true, positive: true });
  const max = milliseconds(LOAD_BALANCE_OPTIONS, 'retry.backoff.max', options.max ?? Math.max(250, base), { integer: true, positive: true });
  if (max < base) invalidOption(LOAD_BALANCE_OPTIONS, 'retry.backoff.max', `at least retry.backoff.base (${base} milliseconds)`, max);
  return { base, max };
}

/** How long retry number `retry` (1 for the first) waits: uniform in [0, min(max, base·2^(retry-1))]. */
export function backoffDelay(policy: BackoffPolicy, retry: number): number {
  return Math.random() * Math.min(policy.max, policy.base * 2 ** (retry - 1));
}

/**
 * Sends `exchange` (a retry, already counted in flight on its target) after `delay` ms. Its per-try
 * timeout starts when it is sent, not while it waits. The client leaving or the deadline passing
 * meanwhile ends the exchange, which clears the timer.
 */
export function sendAfter(exchange: Exchange, delay: number, perTryTimeout: number, send: (exchange: Exchange) => void): void {
  if (exchange.tryTimer !== undefined) {
    clearTimeout(exchange.tryTimer);
    exchange.tryTimer = undefined;
  }
  exchange.backoff = setTimeout(onBackoffEnd, clampDelay(delay), exchange, perTryTimeout, send);
}

function onBackoffEnd(exchange: Exchange, perTryTimeout: number, send: (exchange: Exchange) => void): void {
  exchange.backoff = undefined;
  if (exchange.ended || exchange.error !== undefined) return;
  if (perTryTimeout > 0) armTryTimeout(exchange, perTryTimeout);
  send(exchange);
}
