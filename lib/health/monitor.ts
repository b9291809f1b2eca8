import createDebug from 'debug';
import type { Target } from '../target.js';
import { failureReason } from '../proxy/connect-error.js';
import { clampDelay, MAX_TIMER_MS } from '../timer.js';
import { describeValue, integer, invalidOption, milliseconds } from '../validate.js';
import type { CheckResult, HealthCheckSchedule, HealthCheckSpec, HealthProbe } from './checker.js';

/** Probe results, failures and up/down transitions. */
const log = createDebug('proxy-balancer:health');

/** A checker with every schedule field filled in. */
export type NormalizedChecker = Required<HealthCheckSchedule> & { check: HealthProbe };

export interface HealthEvents {
  /** A target crossed a threshold: healthy true = up, false = down. */
  transition(target: Target, healthy: boolean, result: CheckResult): void;
  /** A check passed; it started at `startedAt` (ms since the epoch). */
  passed?(target: Target, result: CheckResult, startedAt: number): void;
}

export interface HealthStatus {
  lastCheck: CheckResult | undefined;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  healthy: boolean;
}

const DEFAULTS: Required<HealthCheckSchedule> = {
  interval: 5000,
  timeout: 2000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  jitter: 0.1,
  initialState: 'healthy',
};

const DELAY = { positive: true };

const TIMED_OUT = Symbol('timed out');

/**
 * Validates the schedule fields of `source` and returns only those that are set, so defaults stay
 * in one place (`normalizeChecker`). `prefix` names the source in errors, e.g. 'httpHealthCheck: options'.
 */
export function validateSchedule(source: HealthCheckSchedule, prefix: string): HealthCheckSchedule {
  const { interval, timeout, healthyThreshold, unhealthyThreshold, jitter, initialState } = source;
  if (interval !== undefined) milliseconds(prefix, 'interval', interval, DELAY);
  if (timeout !== undefined) milliseconds(prefix, 'timeout', timeout, DELAY);
  if (healthyThreshold !== undefined) integer(prefix, 'healthyThreshold', healthyThreshold, { min: 1 });
  if (unhealthyThreshold !== undefined) integer(prefix, 'unhealthyThreshold', unhealthyThreshold, { min: 1 });
  if (jitter !== undefined && (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1))) {
    invalidOption(prefix, 'jitter', 'a number from 0 to 1', jitter);
  }
  if (initialState !== undefined && initialState !== 'healthy' && initialState !== 'unhealthy') {
    invalidOption(prefix, 'initialState', "'healthy' or 'unhealthy'", initialState);
  }
  const schedule: HealthCheckSchedule = {};
  for (const name of Object.keys(DEFAULTS) as Array<keyof HealthCheckSchedule>) {
    if (source[name] !== undefined) (schedule as Record<string, unknown>)[name] = source[name];
  }
  return schedule;
}

/**
 * Validates a health check as given by the user and fills the schedule defaults. A bare function is
 * a probe with the default schedule. `option` names the spec in errors, e.g.
 * 'loadBalance: options.healthCheck'.
 */
export function normalizeChecker(spec: HealthCheckSpec, option: string): NormalizedChecker {
  if (typeof spec === 'function') return { ...DEFAULTS, check: spec };
  if (typeof spec !== 'object' || spec === null || typeof spec.check !== 'function') {
    invalidOption(option, '', 'a health check (a probe function, or an object with a check() method)', spec);
  }
  // Bound so a checker written as a class keeps its `this`.
  return { ...DEFAULTS, ...validateSchedule(spec, option), check: spec.check.bind(spec) };
}

function verdict(value: unknown): CheckResult {
  const at = Date.now();
  if (value === true) return { ok: true, detail: 'ok', at };
  if (value === TIMED_OUT) return { ok: false, detail: 'timeout', at };
  return { ok: false, detail: value === false ? 'failed' : `resolved ${describeValue(value)}, not true`, at };
}

function timeoutReason(ms: number): DOMException {
  return new DOMException(`health check timed out after ${ms} ms`, 'TimeoutError');
}

function noop(): void {}

/** Timer callbacks take the watch as an argument rather than closing over it. */
function runProbe(watch: Watch): void {
  void watch.probe();
}

/** The polling state of one target. Replaced, not reused, when its checker changes. */
class Watch {
  readonly first: Promise<void>;
  healthy: boolean;
  lastCheck: CheckResult | undefined;
  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  /** A target declared 'unhealthy' at start waits for one pass only, not `healthyThreshold`. */
  private everHealthy: boolean;
  private stopped = false;
  /** The wait before the next probe, or the running probe's deadline: never both. */
  private timer: NodeJS.Timeout | undefined;
  /** The running probe's; also its identity, so a probe that settles after a stop or a timeout is ignored. */
  private controller: AbortController | undefined;
  private resolveFirst!: () => void;

  constructor(
    readonly target: Target,
    readonly checker: NormalizedChecker,
    private readonly events: HealthEvents,
  ) {
    this.healthy = checker.initialState === 'healthy';
    this.everHealthy = this.healthy;
    this.first = new Promise((resolve) => (this.resolveFirst = resolve));
    // Spread over a whole interval so targets added together don't probe in lock-step.
    this.wait(Math.random() * checker.interval);
  }

  async probe(): Promise<void> {
    const startedAt = Date.now();
    const controller = new AbortController();
    this.controller = controller;
    const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
      this.timer = setTimeout(resolve, clampDelay(this.checker.timeout), TIMED_OUT).unref();
    });
    let result: CheckResult;
    try {
      // Raced rather than trusting the signal: a probe that ignores it still fails on time. Such
      // a probe is abandoned, not awaited, or one hung probe would freeze the target's state.
      const value = await Promise.race([this.checker.check(this.target, controller.signal), deadline]);
      if (this.controller !== controller) return;
      if (value === TIMED_OUT) controller.abort(timeoutReason(this.checker.timeout));
      result = verdict(value);
    } catch (error) {
      if (this.controller !== controller) return;
      result = { ok: false, detail: failureReason(error), at: Date.now() };
    }
    clearTimeout(this.timer);
    this.controller = undefined;
    try {
      this.record(result);
      if (result.ok) this.events.passed?.(this.target, result, startedAt);
    } finally {
      // The transition listener may have unwatched this target (or closed the monitor).
      if (!this.stopped) this.wait(this.nextDelay());
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.controller?.abort();
    this.controller = undefined;
    this.resolveFirst();
  }

  private wait(ms: number): void {
    // Jitter stretches an interval by up to 100%: one at the bound would overflow the timer, and
    // an overflowing timer fires after 1 ms, a probe storm.
    this.timer = setTimeout(runProbe, clampDelay(ms), this).unref();
  }

  private nextDelay(): number {
    const { interval, jitter } = this.checker;
    return interval * (1 + jitter * (2 * Math.random() - 1));
  }

  private record(result: CheckResult): void {
    this.lastCheck = result;
    this.resolveFirst();
    if (result.ok) {
      this.consecutiveSuccesses++;
      this.consecutiveFailures = 0;
      if (!this.healthy && (!this.everHealthy || this.consecutiveSuccesses >= this.checker.healthyThreshold)) this.transition(true, result);
    } else {
      this.consecutiveFailures++;
      this.consecutiveSuccesses = 0;
      if (log.enabled) log('%s check failed (%d in a row): %s', this.target.key, this.consecutiveFailures, result.detail);
      if (this.healthy && this.consecutiveFailures >= this.checker.unhealthyThreshold) this.transition(false, result);
    }
  }

  private transition(healthy: boolean, result: CheckResult): void {
    this.healthy = healthy;
    if (healthy) this.everHealthy = true;
    if (log.enabled) {
      const streak = healthy ? this.consecutiveSuccesses : this.consecutiveFailures;
      log('%s is %s after %d %s (%s)', this.target.key, healthy ? 'up' : 'down', streak, healthy ? 'passes' : 'failures', result.detail);
    }
    this.events.transition(this.target, healthy, result);
  }
}

/**
 * Polls targets with their health checkers and reports threshold crossings. Probes of one target
 * run one at a time; each gets `timeout` ms. Timers are unref'd: the monitor never keeps the process
 * alive by itself, yet `close()` must still be called to abort in-flight probes.
 */
export class HealthMonitor {
  private readonly watches = new Map<Target, Watch>();
  private closed = false;

  constructor(private readonly events: HealthEvents) {}

  /**
   * Starts polling `target` with `checker` and returns its initial state (`checker.initialState`).
   * Watching a watched target replaces its checker and restarts from that initial state; the caller
   * applies the returned state. After `close()` nothing is polled.
   */
  watch(target: Target, checker: HealthCheckSpec): boolean {
    const normalized = normalizeChecker(checker, 'healthCheck');
    this.watches.get(target)?.stop();
    this.watches.delete(target);
    const healthy = normalized.initialState === 'healthy';
    if (!this.closed) this.watches.set(target, new Watch(target, normalized, this.events));
    return healthy;
  }

  /** Stops polling `target`: its wait is cleared and an in-flight probe aborted and ignored. */
  unwatch(target: Target): void {
    this.watches.get(target)?.stop();
    this.watches.delete(target);
  }

  /** Latest result and streaks, for stats; undefined for a target not watched. */
  status(target: Target): HealthStatus | undefined {
    const watch = this.watches.get(target);
    if (!watch) return undefined;
    const { lastCheck, consecutiveFailures, consecutiveSuccesses, healthy } = watch;
    return { lastCheck, consecutiveFailures, consecutiveSuccesses, healthy };
  }

  /**
   * Resolves once every target watched now has completed one check (or stopped being watched):
   * within about `interval + timeout`. The process stays alive while it is pending.
   */
  async firstRound(): Promise<void> {
    const firsts = Array.from(this.watches.values(), (watch) => watch.first);
    if (firsts.length === 0) return;
    // The monitor's timers are unref'd, so `await monitor.firstRound()` at start-up, before
    // anything else holds the event loop, would otherwise let the process exit mid-await.
    const keepAlive = setInterval(noop, MAX_TIMER_MS);
    try {
      await Promise.all(firsts);
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Stops all polling: timers cleared, in-flight probes aborted, their late results ignored. Idempotent. */
  close(): void {
    this.closed = true;
    for (const watch of this.watches.values()) watch.stop();
    this.watches.clear();
  }
}
