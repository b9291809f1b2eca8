import createDebug from 'debug';
import type { Pool } from '../pool.js';
import type { Target } from '../target.js';
import { clampDelay } from '../timer.js';
import { fail, type IntegerRange, integer, milliseconds, nestedObject } from '../validate.js';
import {
  analyse,
  type Candidate,
  type EjectionReason,
  emptyFigures,
  type FailurePercentageOptions,
  type IntervalDetection,
  type IntervalFigures,
  intervalLatency,
  type LatencyOutlierOptions,
  resolveFailurePercentage,
  resolveLatencyOutlier,
  resolveSuccessRate,
  type SuccessRateOptions,
} from './outlier-analysis.js';

const log = createDebug('proxy-balancer:health');

/**
 * Passive health: eject targets whose requests keep failing (NGINX `max_fails`, Envoy outlier
 * detection), and with `successRate`, `failurePercentage` or `latency` targets that fail more often
 * or answer much slower than their peers over each `interval`.
 */
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
  /** How often `successRate`, `failurePercentage` and `latency` judge the requests of the interval just ended, ms; default 10000 (Envoy's `interval`). */
  interval?: number;
  /** Eject targets whose success rate is an outlier among their peers' (Envoy `success_rate_*`); true for the defaults; default off. */
  successRate?: SuccessRateOptions | boolean;
  /** Eject targets that fail at least a fixed share of their requests (Envoy `failure_percentage_*`); true for the defaults; default off. */
  failurePercentage?: FailurePercentageOptions | boolean;
  /** Eject targets much slower than the pool's median target; true for the defaults; default off. */
  latency?: LatencyOutlierOptions | boolean;
}

export interface ResolvedOutlierOptions {
  consecutiveFailures: number;
  count5xx: boolean;
  baseEjectionTime: number;
  maxEjectionTime: number;
  maxEjectionPercent: number;
  unejectOnHealthCheck: boolean;
  /** The interval detections, or undefined when none is on. */
  intervals: IntervalDetection | undefined;
}

const OPTIONS = [
  'consecutiveFailures',
  'count5xx',
  'baseEjectionTime',
  'maxEjectionTime',
  'maxEjectionPercent',
  'unejectOnHealthCheck',
  'interval',
  'successRate',
  'failurePercentage',
  'latency',
];

/** One target's passive-health figures, as shown in `stats()`. */
export interface OutlierStatus {
  consecutiveFailures: number;
  /** Ejections since the target joined. */
  ejections: number;
  /** When the current ejection ends (ms since the epoch), or 0 when not ejected. */
  ejectedUntil: number;
  /** Why the current ejection happened; undefined when not ejected. */
  ejectionReason: EjectionReason | undefined;
  /** Ejections since the target joined, by reason. */
  ejectionsByReason: { [reason in EjectionReason]: number };
  /** The last analysed interval (with `successRate`, `failurePercentage` or `latency`): attempts, failures, and latency by `latency.measure` (mean unless 'peak'), ms, or null without a response. */
  lastInterval?: { requests: number; failures: number; latency: number | null };
}

export interface OutlierEvents {
  ejected(target: Target, durationMs: number, ejections: number, reason: EjectionReason): void;
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
  /** The interval now running. */
  figures: IntervalFigures;
  /** The interval analysed last. */
  previous: IntervalFigures | undefined;
}

export function resolveOutlierOptions(input: unknown): ResolvedOutlierOptions | undefined {
  if (input === false) return undefined;
  const options = (nestedObject(input, 'outlierDetection', OPTIONS, { expected: 'an object or false' }) ?? {}) as OutlierDetectionOptions;
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
    intervals: resolveIntervals(options),
  };
}

function resolveIntervals(options: OutlierDetectionOptions): IntervalDetection | undefined {
  const successRate = resolveSuccessRate(options.successRate);
  const failurePercentage = resolveFailurePercentage(options.failurePercentage);
  const latency = resolveLatencyOutlier(options.latency);
  const interval =
    options.interval === undefined ? 10_000 : milliseconds('loadBalance: options.outlierDetection', 'interval', options.interval, { positive: true });
  if (successRate === undefined && failurePercentage === undefined && latency === undefined) return undefined;
  return { interval, successRate, failurePercentage, latency };
}

/**
 * Counts consecutive failures per target and ejects a target after too many: for the base time,
 * times the number of ejections in a row, capped. With interval detections on, it also counts each
 * target's attempts, failures and latencies per interval and ejects the outliers when it ends. Never
 * ejects past `maxEjectionPercent`.
 */
export class OutlierDetector {
  readonly #options: ResolvedOutlierOptions;
  readonly #pool: Pool;
  readonly #events: OutlierEvents;
  readonly #records = new Map<Target, Record>();
  readonly #recheckDelay: number;
  readonly #intervals: IntervalDetection | undefined;
  readonly #ticker: NodeJS.Timeout | undefined;

  /** `recheckDelay`: how soon to ask `confirm` again when it says no (the active check interval). */
  constructor(options: ResolvedOutlierOptions, pool: Pool, events: OutlierEvents, recheckDelay: number) {
    this.#options = options;
    this.#pool = pool;
    this.#events = events;
    this.#recheckDelay = recheckDelay;
    this.#intervals = options.intervals;
    if (this.#intervals !== undefined) {
      this.#ticker = setInterval(this.#analyse, clampDelay(this.#intervals.interval));
      this.#ticker.unref();
    }
  }

  get count5xx(): boolean {
    return this.#options.count5xx;
  }

  /** A request on `target` succeeded; `latency`: ms to its response head. */
  success(target: Target, latency: number): void {
    if (this.#intervals === undefined) {
      const record = this.#records.get(target);
      if (record !== undefined) record.consecutiveFailures = 0;
      return;
    }
    const record = this.#record(target);
    record.consecutiveFailures = 0;
    tally(record.figures, latency);
  }

  /** A request on `target` failed; `latency`: ms to its response head (a 5xx with `count5xx`), NaN without one. */
  failure(target: Target, why: string, latency: number): void {
    const record = this.#record(target);
    if (this.#intervals !== undefined) {
      record.figures.failures++;
      tally(record.figures, latency);
    }
    record.consecutiveFailures++;
    if (record.consecutiveFailures < this.#options.consecutiveFailures || record.ejectedUntil !== 0) return;
    if (!this.#mayEject()) {
      if (log.enabled)
        log('%s failed %d times, not ejected: %d%% of the pool is out already', target.key, record.consecutiveFailures, this.#options.maxEjectionPercent);
      return;
    }
    this.#eject(target, record, 'consecutive', `${record.consecutiveFailures} consecutive failures (${why})`);
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
    if (record === undefined) return undefined;
    const status: OutlierStatus = {
      consecutiveFailures: record.consecutiveFailures,
      ejections: record.ejections,
      ejectedUntil: record.ejectedUntil,
      ejectionReason: record.ejectionReason,
      ejectionsByReason: { ...record.ejectionsByReason },
    };
    const last = record.previous;
    if (last !== undefined) {
      const measure = this.#intervals?.latency?.measure ?? 'mean';
      status.lastInterval = {
        requests: last.requests,
        failures: last.failures,
        latency: last.timed === 0 ? null : Math.round(intervalLatency(last, measure) * 100) / 100,
      };
    }
    return status;
  }

  /** The target left the pool. */
  forget(target: Target): void {
    const record = this.#records.get(target);
    if (record?.timer !== undefined) clearTimeout(record.timer);
    this.#records.delete(target);
  }

  close(): void {
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    for (const record of this.#records.values()) if (record.timer !== undefined) clearTimeout(record.timer);
    this.#records.clear();
  }

  #record(target: Target): Record {
    let record = this.#records.get(target);
    if (record === undefined) {
      record = {
        consecutiveFailures: 0,
        ejections: 0,
        ejectedAt: 0,
        ejectedUntil: 0,
        ejectionReason: undefined,
        ejectionsByReason: { consecutive: 0, successRate: 0, failurePercentage: 0, latency: 0 },
        inARow: 0,
        readmittedAt: 0,
        timer: undefined,
        figures: emptyFigures(),
        previous: undefined,
      };
      this.#records.set(target, record);
    }
    return record;
  }

  #mayEject(): boolean {
    const members = this.#pool.targets;
    const ejected = members.filter((t) => t.state === 'ejected').length;
    return ((ejected + 1) / members.length) * 100 <= this.#options.maxEjectionPercent;
  }

  /** Ends an interval: judges every target in rotation on its figures, ejects the outliers, starts the next. */
  readonly #analyse = (): void => {
    const candidates: Candidate<Target>[] = [];
    for (const [target, record] of this.#records) {
      if (target.state === 'up') candidates.push({ target, figures: record.figures });
      record.previous = record.figures;
      record.figures = emptyFigures();
    }
    for (const verdict of analyse(candidates, this.#intervals!)) {
      const record = this.#records.get(verdict.target)!;
      if (!this.#mayEject()) {
        // At the cap, every later verdict of this interval would be refused too.
        if (log.enabled) log('%s not ejected (%s): %d%% of the pool is out already', verdict.target.key, verdict.detail, this.#options.maxEjectionPercent);
        return;
      }
      this.#eject(verdict.target, record, verdict.reason, verdict.detail);
    }
  };

  #eject(target: Target, record: Record, reason: EjectionReason, why: string): void {
    const now = Date.now();
    if (record.readmittedAt !== 0 && now - record.readmittedAt > this.#options.maxEjectionTime) record.inARow = 0;
    record.inARow++;
    record.ejections++;
    // base × n grows without end over a long outage; the clamp holds whatever maxEjectionTime allows.
    const duration = clampDelay(Math.min(this.#options.baseEjectionTime * record.inARow, this.#options.maxEjectionTime));
    record.ejectedAt = now;
    record.ejectedUntil = now + duration;
    record.ejectionReason = reason;
    record.ejectionsByReason[reason]++;
    record.timer = setTimeout(this.#expire, duration, target, now);
    record.timer.unref();
    log('%s ejected for %d ms: %s; ejection #%d', target.key, duration, why, record.ejections);
    this.#pool.setEjected(target, true);
    this.#events.ejected(target, duration, record.ejections, reason);
  }

  readonly #expire = (target: Target, since: number): void => {
    const record = this.#records.get(target);
    if (record === undefined) return;
    if (!this.#events.confirm(target, since)) {
      record.timer = setTimeout(this.#expire, clampDelay(this.#recheckDelay), target, since);
      record.timer.unref();
      return;
    }
    this.#readmit(target, record, 'ejection time over');
  };

  #readmit(target: Target, record: Record, why: string): void {
    record.timer = undefined;
    record.ejectedAt = 0;
    record.ejectedUntil = 0;
    record.ejectionReason = undefined;
    record.consecutiveFailures = 0;
    record.readmittedAt = Date.now();
    log('%s re-admitted after ejection: %s', target.key, why);
    this.#pool.setEjected(target, false);
  }
}

/** Counts one ended attempt into the interval's figures; `latency` is NaN when no response head came. */
function tally(figures: IntervalFigures, latency: number): void {
  figures.requests++;
  if (Number.isNaN(latency)) return;
  figures.timed++;
  figures.latencySum += latency;
  if (latency > figures.latencyPeak) figures.latencyPeak = latency;
}
