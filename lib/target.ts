/**
 * Where a target stands in its pool: `up` takes traffic; `down` failed its active health checks;
 * `ejected` failed requests and sits out an ejection (passive detection); `draining` is leaving.
 * Only `up` targets are in the ready snapshot strategies pick from (up backups only while no primary
 * is up; all but `draining` in panic mode).
 */
export type TargetState = 'up' | 'down' | 'ejected' | 'draining';

/** Weight of the latest latency sample in the moving average. */
const EWMA_ALPHA = 0.2;

/**
 * One upstream server. Counters are kept by the balancer; strategies read them (and may keep
 * their own state keyed by the target object, which stays the same for the target's whole life).
 */
export class Target {
  /** Upstream base URL. */
  readonly url: URL;
  /** `url.href` without a trailing slash: the identity used by `pool.add/remove/drain` and in stats. */
  readonly key: string;
  /** Declared share of traffic. */
  configuredWeight: number;
  /** Share of traffic strategies balance by now: the declared weight, scaled down while slow start ramps it up. */
  weight: number;
  /** `Host` sent with `changeOrigin`: the declared `hostname` with the URL's port, else the URL's host. */
  readonly host: string;
  /** Current state; changed only through the pool so the ready snapshot follows. */
  state: TargetState = 'up';
  /** A backup target: in the ready snapshot only while no primary is up (see `Pool`). */
  backup: boolean;
  /** Requests (and open WebSocket tunnels) currently dispatched to this target. */
  inFlight = 0;
  /** Requests dispatched since the target joined the pool. */
  total = 0;
  /** Requests that ended without a complete upstream response (connect errors, resets, timeouts). */
  errors = 0;
  /** Exponentially weighted moving average of time to response headers, in ms; 0 before the first response. */
  latency = 0;
  /** Spoken to over HTTP/2 (`h2c://`, `http2: true`): h2c for an `http:` URL, TLS with ALPN `h2` for `https:`. Read once per request to pick the engine. */
  readonly http2: boolean;

  constructor(url: URL, weight: number, backup = false, hostname?: string, http2 = false) {
    this.url = url;
    this.http2 = http2;
    this.key = targetKey(url);
    this.host = hostname === undefined ? url.host : url.port === '' ? hostname : `${hostname}:${url.port}`;
    this.configuredWeight = weight;
    this.weight = weight;
    this.backup = backup;
  }

  /** Folds one time-to-headers sample (ms) into `latency`. */
  recordLatency(ms: number): void {
    this.latency = this.latency === 0 ? ms : this.latency + EWMA_ALPHA * (ms - this.latency);
  }
}

/** The protocol a target is spoken to in, as stats and the status page list it: `http/1.1`, `h2c` or `h2`. */
export function targetProtocol(target: Target): 'http/1.1' | 'h2c' | 'h2' {
  if (!target.http2) return 'http/1.1';
  return target.url.protocol === 'https:' ? 'h2' : 'h2c';
}

export function targetKey(url: URL): string {
  const href = url.href;
  return href.endsWith('/') ? href.slice(0, -1) : href;
}
