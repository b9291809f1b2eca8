/** Where a target stands in its pool. Only `up` targets are in the ready snapshot strategies pick from. */
export type TargetState = 'up' | 'draining' | 'down';

/** Weight of the latest latency sample in the moving average. */
const EWMA_ALPHA = 0.2;

/** How a target is declared: a URL, or a URL with options. */
export type TargetSpec = string | URL | TargetOptions;

export interface TargetOptions {
  /** Upstream base URL (`http:` or `https:`); its path is prepended to every proxied path. */
  url: string | URL;
  /** Relative share of traffic for weight-aware strategies. Positive finite number; default 1. */
  weight?: number;
}

/**
 * One upstream server. Counters are kept by the balancer; strategies read them (and may keep
 * their own state keyed by the target object, which stays the same for the target's whole life).
 */
export class Target {
  /** Upstream base URL. */
  readonly url: URL;
  /** `url.href` without a trailing slash: the identity used by `pool.add/remove/drain` and in stats. */
  readonly key: string;
  /** Relative share of traffic for weight-aware strategies. */
  weight: number;
  /** Current state; changed only through the pool so the ready snapshot follows. */
  state: TargetState = 'up';
  /** Requests (and open WebSocket tunnels) currently dispatched to this target. */
  inFlight = 0;
  /** Requests dispatched since the target joined the pool. */
  total = 0;
  /** Requests that ended without a complete upstream response (connect errors, resets, timeouts). */
  errors = 0;
  /** Exponentially weighted moving average of time to response headers, in ms; 0 before the first response. */
  latency = 0;

  constructor(url: URL, weight: number) {
    this.url = url;
    this.key = targetKey(url);
    this.weight = weight;
  }

  /** Folds one time-to-headers sample (ms) into `latency`. */
  recordLatency(ms: number): void {
    this.latency = this.latency === 0 ? ms : this.latency + EWMA_ALPHA * (ms - this.latency);
  }
}

export function targetKey(url: URL): string {
  const href = url.href;
  return href.endsWith('/') ? href.slice(0, -1) : href;
}
