import type { BalancerEvents } from '../observe/events.js';
import type { Pool, PoolObserver } from '../pool.js';
import type { Target, TargetState } from '../target.js';
import type { CheckResult, HealthCheckSpec } from './checker.js';
import { HealthMonitor, normalizeChecker, type NormalizedChecker } from './monitor.js';
import { OutlierDetector, type OutlierStatus, type ResolvedOutlierOptions } from './outlier.js';
import { SlowStart } from './slow-start.js';

/** Emits a balancer event. */
export type Notify = <E extends keyof BalancerEvents>(event: E, ...args: BalancerEvents[E]) => void;

export interface HealthOptions {
  healthCheck: HealthCheckSpec | undefined;
  outlierDetection: ResolvedOutlierOptions | undefined;
  slowStart: number;
}

/** One target's health figures in `stats()`. */
export interface TargetHealth extends Partial<OutlierStatus> {
  /** The latest active check, if any ran. */
  lastCheck: CheckResult | undefined;
  /** Whether slow start is still ramping the target's weight. */
  slowStart: boolean;
}

/** Re-check delay for a confirmed re-admission when no checker sets one. */
const DEFAULT_RECHECK = 1000;

/**
 * Joins the health layers to the pool: active checks decide `up`/`down`, passive detection
 * ejects and re-admits, slow start ramps targets that join or recover, and every transition
 * becomes a balancer event.
 */
export class HealthSupervisor implements PoolObserver {
  readonly #pool: Pool;
  readonly #notify: Notify;
  readonly #checker: NormalizedChecker | undefined;
  readonly #monitor: HealthMonitor;
  readonly #outliers: OutlierDetector | undefined;
  readonly #slowStart: SlowStart | undefined;
  #started = false;

  constructor(pool: Pool, options: HealthOptions, notify: Notify) {
    this.#pool = pool;
    this.#notify = notify;
    this.#checker = options.healthCheck === undefined ? undefined : normalizeChecker(options.healthCheck, 'loadBalance: options.healthCheck');
    this.#monitor = new HealthMonitor({
      transition: (target, healthy) => pool.setHealthy(target, healthy),
      passed: (target, _result, startedAt) => this.#outliers?.checkPassed(target, startedAt),
    });
    this.#outliers =
      options.outlierDetection &&
      new OutlierDetector(
        options.outlierDetection,
        pool,
        {
          ejected: (target, durationMs, ejections, reason) => notify('ejected', target, { durationMs, ejections, reason }),
          confirm: (target, since) => this.#confirmed(target, since),
        },
        this.#checker?.interval ?? DEFAULT_RECHECK,
      );
    this.#slowStart = options.slowStart > 0 ? new SlowStart(pool, options.slowStart) : undefined;
    pool.observe(this);
    this.#started = true;
  }

  /** Whether 5xx responses count as failures for passive detection. */
  get count5xx(): boolean {
    return this.#outliers?.count5xx ?? false;
  }

  /** A request on `target` got a response that is not a failure, its head after `latency` ms. */
  success(target: Target, latency: number): void {
    this.#outliers?.success(target, latency);
  }

  /** A request on `target` failed; `latency`: ms to its response head (a counted 5xx), NaN without one. */
  failure(target: Target, why: string, latency = Number.NaN): void {
    this.#outliers?.failure(target, why, latency);
  }

  /** Resolves once every checked target has had its first check. */
  firstRound(): Promise<void> {
    return this.#monitor.firstRound();
  }

  status(target: Target): TargetHealth {
    return {
      lastCheck: this.#monitor.status(target)?.lastCheck,
      slowStart: this.#slowStart?.ramping(target) ?? false,
      ...this.#outliers?.status(target),
    };
  }

  close(): void {
    this.#monitor.close();
    this.#outliers?.close();
    this.#slowStart?.close();
  }

  added(target: Target): void {
    const spec = this.#pool.healthCheckOf(target);
    const checker = spec === false ? undefined : spec === undefined ? this.#checker : normalizeChecker(spec, `healthCheck of ${target.key}`);
    if (checker !== undefined) this.#pool.setHealthy(target, this.#monitor.watch(target, checker));
    if (this.#started && target.state === 'up') this.#slowStart?.begin(target);
  }

  removed(target: Target): void {
    this.#monitor.unwatch(target);
    this.#outliers?.forget(target);
    this.#slowStart?.forget(target);
  }

  stateChanged(target: Target, from: TargetState, to: TargetState): void {
    if (to === 'up') {
      if (from === 'down' || from === 'ejected') this.#slowStart?.begin(target);
      this.#notify('targetUp', target, from);
    } else if ((to === 'down' || to === 'ejected') && from === 'up') {
      this.#notify('targetDown', target, { state: to, check: this.#monitor.status(target)?.lastCheck });
    }
  }

  panicChanged(active: boolean, up: number, eligible: number): void {
    this.#notify('panic', { active, up, eligible });
  }

  // An ejected target comes back only once an active check made after its ejection passed.
  #confirmed(target: Target, since: number): boolean {
    const status = this.#monitor.status(target);
    if (status === undefined) return true;
    return status.lastCheck?.ok === true && status.lastCheck.at >= since;
  }
}
