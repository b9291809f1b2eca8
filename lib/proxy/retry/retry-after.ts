import { logPool } from '../../observe/log.js';
import type { Pool } from '../../pool.js';
import type { Target } from '../../target.js';
import { clampDelay } from '../../timer.js';

const DELTA_SECONDS = /^\s*(\d+)\s*$/;

/** Milliseconds a `Retry-After` value (delta-seconds or an HTTP-date, RFC 9110 §10.2.3) asks to wait; undefined when it names no future time. */
export function retryAfterMs(value: string, now: number): number | undefined {
  const seconds = DELTA_SECONDS.exec(value);
  if (seconds !== null) return Number(seconds[1]) * 1000;
  const date = Date.parse(value);
  if (Number.isNaN(date) || date <= now) return undefined;
  return date - now;
}

interface Hold {
  until: number;
  timer: NodeJS.Timeout;
}

/**
 * Holds targets that answered 503 with `Retry-After` out of the ready snapshot for that long
 * (capped at `max` ms), so strategies pick other targets meanwhile. The pool lets held targets
 * back in whenever no other target is ready, so a hold-off never empties the snapshot.
 */
export class HoldOff {
  readonly #pool: Pool;
  readonly #max: number;
  readonly #holds = new Map<Target, Hold>();

  constructor(pool: Pool, max: number) {
    this.#pool = pool;
    this.#max = max;
  }

  /** `target` answered 503 with this `Retry-After` value (or none). */
  heard(target: Target, retryAfter: string | undefined): void {
    if (retryAfter === undefined || this.#pool.get(target) !== target) return;
    const now = Date.now();
    const asked = retryAfterMs(retryAfter, now);
    if (asked === undefined || asked === 0) return;
    // `max` is bounded where it is validated; the clamp keeps a header of any size (99999999999
    // seconds, a date in the year 9999) from reaching the timer as more than it holds.
    const duration = clampDelay(Math.min(asked, this.#max));
    const until = now + duration;
    const hold = this.#holds.get(target);
    if (hold !== undefined) {
      if (until <= hold.until) return;
      clearTimeout(hold.timer);
    }
    const timer = setTimeout(this.#release, duration, target);
    timer.unref();
    this.#holds.set(target, { until, timer });
    if (logPool.enabled) logPool('%s held off for %d ms (503 with Retry-After: %s)', target.key, duration, retryAfter);
    if (hold === undefined) this.#pool.setHeldOff(target, true);
  }

  /** When the target's hold-off ends (ms since the epoch), or 0 when it has none. */
  until(target: Target): number {
    return this.#holds.get(target)?.until ?? 0;
  }

  close(): void {
    for (const hold of this.#holds.values()) clearTimeout(hold.timer);
    this.#holds.clear();
  }

  readonly #release = (target: Target): void => {
    this.#holds.delete(target);
    if (logPool.enabled) logPool('%s hold-off ended', target.key);
    this.#pool.setHeldOff(target, false);
  };
}
