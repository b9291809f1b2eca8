import createDebug from 'debug';
import type { Pool } from '../pool.js';
import type { Target } from '../target.js';
import { fail, type IntegerRange, integer } from '../validate.js';

const log = createDebug('proxy-balancer:health');

/** Passive health: eject targets whose requests keep failing (NGINX `max_fails`, Envoy outlier detection). */
export interface OutlierDetectionOptions {
  /** Consecutive failed requests that eject a target; default 3. */
  consecutiveFailures?: number;
  /** Also count 5xx responses as failures, not only connect errors, resets and timeouts; default false. */
  count5xx?: boolean;
  /** Milliseconds a first ejection lasts; the n-th in a row lasts n times longer; default 10000. */
  baseEjectionTime?: number;
  /** Upper bound on one ejection, ms; default 300000. A target back for this long starts its count afresh. */
  maxEjectionTime?: number;
  /** Never eject more than this percentage of the pool's targets; default 50. */
  maxEjectionPercent?: number;
  /**
   * An active health check that starts after an ejection and passes ends that ejection at once
   * (Envoy's `successful_active_health_check_uneject_host`); default true. false: an ejected target
   * sits out its whole ejection time, whatever its checks say. No effect without `healthCheck`.
   */
  unejectOnHealthCheck?: boolean;
}

export type ResolvedOutlierOptions = Required<OutlierDetectionOptions>;

/** One target's passive-health figures, as shown in `stats()`. */
export interface OutlierStatus {
  consecutiveFailures: number;
  /** Ejections since the target joined. */
  ejections: number;
  /** When the current ejection ends (ms since the epoch), or 0 when not ejected. */
  ejectedUntil: number;
}

export interface OutlierEvents {
  ejected(target: Target, durationMs: number, ejections: number): void;
  /**
   * Asked when an ejection ends: may the target come back now? With an active checker this holds
   * the target out until a check after `since` passed; without one, always yes.
   */
  confirm(target: Target, since: number): boolean;
}

interface Record extends OutlierStatus {
  /** When the current ejection began (ms since the epoch), or 0. */
  ejectedAt: number;
  inARow: number;
  readmittedAt: number;
  timer: NodeJS.Timeout | undefined;
}

export function resolveOutlierOptions(input: unknown): ResolvedOutlierOptions | undefined {
  if (input === false) return undefined;
  const options = (input ?? {}) as OutlierDetectionOptions;
  if (typeof options !== 'object' || options === null) fail('outlierDetection', 'an object or false', options);
  const count = (name: keyof OutlierDetectionOptions, fallback: number, range: IntegerRange = {}): number =>
    integer('loadBalance: options.outlierDetection', name, options[name] ?? fallback, { min: 1, ...range });
  const count5xx = options.count5xx ?? false;
  if (typeof count5xx !== 'boolean') fail('outlierDetection.count5xx', 'a boolean', count5xx);
  const unejectOnHealthCheck = options.unejectOnHealthCheck ?? true;
  if (typeof unejectOnHealthCheck !== 'boolean') fail('outlierDetection.unejectOnHealthCheck', 'a boolean', unejectOnHealthCheck);
  return {
    consecutiveFailures: count('consecutiveFailures', 3, { unit: 'failures' }),
    count5xx,
    baseEjectionTime: count('baseEjectionTime', 10_000, { unit: 'milliseconds' }),
    maxEjectionTime: count('maxEjectionTime', 300_000, { unit: 'milliseconds' }),
    maxEjectionPercent: count('maxEjectionPercent', 50, { max: 100 }),
    unejectOnHealthCheck,
  };
}

/**
 * Counts consecutive failures per target and ejects a target after too many: for the base time,
 * times the number of ejections in a row, capped. Never ejects past `maxEjectionPercent`.
 */
export class OutlierDetector {
  readonly #options: ResolvedOutlierOptions;
  readonly #pool: Pool;
  readonly #events: OutlierEvents;
  readonly #records = new Map<Target, Record>();
  readonly #recheckDelay: number;

  /** `recheckDelay`: how soon to ask `confirm` again when it says no (the active check interval). */
  constructor(options: ResolvedOutlierOptions, pool: Pool, events: OutlierEvents, recheckDelay: number) {
    this.#options = options;
    this.#pool = pool;
    this.#events = events;
    this.#recheckDelay = recheckDelay;
  }

  get count5xx(): boolean {
    return this.#options.count5xx;
  }

  /** A request on `target` succeeded. */
  success(target: Target): void {
    const record = this.#records.get(target);
    if (record !== undefined) record.consecutiveFailures = 0;
  }

  /** A request on `target` failed. */
  failure(target: Target, why: string): void {
    const record = this.#record(target);
    record.consecutiveFailures++;
    if (record.consecutiveFailures < this.#options.consecutiveFailures || record.ejectedUntil !== 0) return;
    if (!this.#mayEject()) {
      if (log.enabled)
        log('%s failed %d times, not ejected: %d%% of the pool is out already', target.key, record.consecutiveFailures, this.#options.maxEjectionPercent);
      return;
    }
    this.#eject(target, record, why);
  }

  /**
   * An active check of `target` that started at `startedAt` passed: with `unejectOnHealthCheck`, an
   * ejection that began before it ends now. A check already running when the target was ejected
   * says nothing about the failures that ejected it, so it does not count.
   */
  checkPassed(target: Target, startedAt: number): void {
    if (!this.#options.unejectOnHealthCheck) return;
    const record = this.#records.get(target);
    if (record === undefined || record.ejectedUntil === 0 || startedAt < record.ejectedAt) return;
    clearTimeout(record.timer);
    this.#readmit(target, record, `an active check passed ${Date.now() - record.ejectedAt} ms into a ${record.ejectedUntil - record.ejectedAt} ms ejection`);
  }

  status(target: Target): OutlierStatus | undefined {
    const record = this.#records.get(target);
    return record && { consecutiveFailures: record.consecutiveFailures, ejections: record.ejections, ejectedUntil: record.ejectedUntil };
  }

  /** The target left the pool. */
  forget(target: Target): void {
    const record = this.#records.get(target);
    if (record?.timer !== undefined) clearTimeout(record.timer);
    this.#records.delete(target);
  }

  close(): void {
    for (const record of this.#records.values()) if (record.timer !== undefined) clearTimeout(record.timer);
    this.#records.clear();
  }

  #record(target: Target): Record {
    let record = this.#records.get(target);
    if (record === undefined) {
      record = { consecutiveFailures: 0, ejections: 0, ejectedAt: 0, ejectedUntil: 0, inARow: 0, readmittedAt: 0, timer: undefined };
      this.#records.set(target, record);
    }
    return record;
  }

  #mayEject(): boolean {
    const members = this.#pool.targets;
    const ejected = members.filter((t) => t.state === 'ejected').length;
    return ((ejected + 1) / members.length) * 100 <= this.#options.maxEjectionPercent;
  }

  #eject(target: Target, record: Record, why: string): void {
    const now = Date.now();
    if (record.readmittedAt !== 0 && now - record.readmittedAt > this.#options.maxEjectionTime) record.inARow = 0;
    record.inARow++;
    record.ejections++;
    const duration = Math.min(this.#options.baseEjectionTime * record.inARow, this.#options.maxEjectionTime);
    record.ejectedAt = now;
    record.ejectedUntil = now + duration;
    record.timer = setTimeout(this.#expire, duration, target, now);
    record.timer.unref();
    log('%s ejected for %d ms after %d consecutive failures (%s); ejection #%d', target.key, duration, record.consecutiveFailures, why, record.ejections);
    this.#pool.setEjected(target, true);
    this.#events.ejected(target, duration, record.ejections);
  }

  readonly #expire = (target: Target, since: number): void => {
    const record = this.#records.get(target);
    if (record === undefined) return;
    if (!this.#events.confirm(target, since)) {
      record.timer = setTimeout(this.#expire, this.#recheckDelay, target, since);
      record.timer.unref();
      return;
    }
    this.#readmit(target, record, 'ejection time over');
  };

  #readmit(target: Target, record: Record, why: string): void {
    record.timer = undefined;
    record.ejectedAt = 0;
    record.ejectedUntil = 0;
    record.consecutiveFailures = 0;
    record.readmittedAt = Date.now();
    log('%s re-admitted after ejection: %s', target.key, why);
    this.#pool.setEjected(target, false);
  }
}
