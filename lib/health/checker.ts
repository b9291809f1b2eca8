import type { Target } from '../target.js';

/**
 * Probes one target once. Resolve `true` (healthy) or `false`; a rejection counts as unhealthy and
 * its message is kept as the check's detail. `signal` aborts when the check's `timeout` passes (or
 * the balancer closes): stop the probe then, it already counts as failed.
 */
export type HealthProbe = (target: Target, signal: AbortSignal) => Promise<boolean>;

/** How often and how strictly a checker's probes run. Every field is optional and has a default. */
export interface HealthCheckSchedule {
  /** Milliseconds between the end of one check and the start of the next, per target; default 5000. */
  interval?: number;
  /** Milliseconds a single check may take before it counts as failed; default 2000. */
  timeout?: number;
  /** Consecutive passing checks that bring a down target up (HAProxy `rise`); default 2. */
  healthyThreshold?: number;
  /** Consecutive failing checks that take an up target down (HAProxy `fall`); default 3. */
  unhealthyThreshold?: number;
  /** Fraction of `interval` by which each wait is randomly shortened or lengthened, 0–1; default 0.1. The first check of each target is spread over one whole interval. */
  jitter?: number;
  /**
   * State of a target before its first check: `'healthy'` (default) takes traffic at once and goes
   * down after `unhealthyThreshold` failures; `'unhealthy'` waits until one check passes.
   */
  initialState?: 'healthy' | 'unhealthy';
}

/**
 * An active health checker: a probe plus its schedule. `httpHealthCheck()` and `tcpHealthCheck()`
 * build one; any object of this shape (for example an instance of your own class) works the same.
 */
export interface HealthChecker extends HealthCheckSchedule {
  check: HealthProbe;
}

/** What `loadBalance({ healthCheck })` and a target's own `healthCheck` accept. */
export type HealthCheckSpec = HealthChecker | HealthProbe;

/** The latest check of one target, as shown in `stats()`. */
export interface CheckResult {
  ok: boolean;
  /** Why it failed ('status 500', 'timeout', 'ECONNREFUSED 127.0.0.1:8080': a failed connect names the addresses tried), or 'ok'. */
  detail: string;
  /** When the check finished, ms since the epoch. */
  at: number;
}
