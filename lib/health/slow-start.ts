import createDebug from 'debug';
import type { Pool } from '../pool.js';
import type { Target } from '../target.js';
import { clampDelay } from '../timer.js';

const log = createDebug('proxy-balancer:health');

/** Share of its weight a target gets at the start of its ramp (Envoy's default min weight). */
const MIN_FACTOR = 0.1;
/** Weight updates per ramp: each one republishes the ready snapshot. */
const STEPS = 10;

/**
 * Ramps the weight of a target that just joined or recovered from 10% to 100% of its declared
 * weight over `window` ms, so a cold or just-restarted backend is not handed its full share at
 * once. Weight-aware strategies follow; round robin and the hashes ignore weights in flux.
 */
export class SlowStart {
  readonly #pool: Pool;
  readonly #window: number;
  readonly #ramping = new Map<Target, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(pool: Pool, window: number) {
    this.#pool = pool;
    this.#window = window;
  }

  /** Starts (or restarts) the ramp of `target`. */
  begin(target: Target): void {
    this.#ramping.set(target, Date.now());
    target.weight = target.configuredWeight * MIN_FACTOR;
    log('%s slow start over %d ms', target.key, this.#window);
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#tick, clampDelay(Math.max(this.#window / STEPS, 10)));
      this.#timer.unref();
    }
  }

  /** Whether `target` is still ramping up. */
  ramping(target: Target): boolean {
    return this.#ramping.has(target);
  }

  forget(target: Target): void {
    this.#ramping.delete(target);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#ramping.clear();
  }

  readonly #tick = (): void => {
    const now = Date.now();
    for (const [target, since] of this.#ramping) {
      const progress = (now - since) / this.#window;
      if (progress >= 1) {
        target.weight = target.configuredWeight;
        this.#ramping.delete(target);
      } else {
        target.weight = target.configuredWeight * Math.max(MIN_FACTOR, progress);
      }
    }
    if (this.#ramping.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    this.#pool.refresh();
  };
}
