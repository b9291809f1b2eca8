/**
 * The longest delay a timer holds: Node stores it as a signed 32-bit integer, so past 2^31−1 ms
 * (about 24.8 days) setTimeout emits a TimeoutOverflowWarning and fires after 1 ms, and a socket
 * timeout is cut down to it with the same warning. Browsers also fire at once past it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** {@link MAX_TIMER_MS} in whole seconds, for options given in seconds. */
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/**
 * `ms` as a delay every timer holds: at most {@link MAX_TIMER_MS}, 0 for a negative or NaN one.
 * Every delay computed at run time goes through it (a `Retry-After` header, an ejection time
 * growing with the count, a back-off doubling, a jittered interval, a DNS TTL), so a huge value
 * waits as long as a timer can instead of 1 ms.
 */
export function clampDelay(ms: number): number {
  return ms > 0 ? Math.min(ms, MAX_TIMER_MS) : 0;
}
