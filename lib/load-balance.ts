import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { Balancer } from './balancer.js';
import type { ResponseCacheMiddleware } from './cache/middleware.js';
import type { BalancerEvents } from './observe/events.js';
import type { BalancerStats } from './observe/stats.js';
import { resolveOptions, type LoadBalanceOptions } from './options.js';
import { Observability, type MetricsHandler, type MetricsOptions, type StatusPageHandler, type StatusPageOptions } from './observe/index.js';
import type { Pool } from './pool.js';
import type { Strategy } from './strategies/strategy.js';

/**
 * A Connect-style middleware `(req, res, next)` that proxies every request it gets to a target of
 * its pool (it never calls `next`), usable as a plain `http.createServer()` handler too.
 */
export interface LoadBalancer {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** As the request listener of `http2.createSecureServer()` (HTTP/2 and its HTTP/1.1 fallback). */
  (req: Http2ServerRequest, res: Http2ServerResponse): void;
  /** Runtime membership: `add`, `remove`, `drain`, `get`, `targets`, `ready`. */
  readonly pool: Pool;
  /** The strategy choosing targets. */
  readonly strategy: Strategy;
  /**
   * WebSocket entry point: `server.on('upgrade', lb.upgrade)`. Same pool and strategy as HTTP, and
   * the same mount path: mounted with `app.use('/api', lb)`, it tunnels only upgrades under `/api`,
   * with `/api` stripped; others get 404, or are left to the server's other upgrade listeners.
   * The mount paths are the `mountPath` option, else learned from HTTP requests from the moment
   * this property is read.
   */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The response cache given as `cache` (purge, stats), if any. */
  readonly cache: ResponseCacheMiddleware | undefined;
  /** Per-target state, in-flight, totals, errors, latency (EWMA, ms) and health; pool-wide panic and retries. */
  stats(): BalancerStats;
  /** Resolves once every target with an active health check has been checked once (start-up gate). */
  firstHealthCheck(): Promise<void>;
  /** Resolves once every discovery source in `targets` (`dnsTargets()`...) has reported its first set or failure (start-up gate). */
  firstDiscovery(): Promise<void>;
  /** Subscribes to a balancer event: `targetUp`, `targetDown`, `ejected`, `retry`, `panic`, `response`. */
  on<E extends keyof BalancerEvents>(event: E, listener: (...args: BalancerEvents[E]) => void): LoadBalancer;
  /** Like `on`, for one occurrence. */
  once<E extends keyof BalancerEvents>(event: E, listener: (...args: BalancerEvents[E]) => void): LoadBalancer;
  /** Removes a listener added with `on` or `once`. */
  off<E extends keyof BalancerEvents>(event: E, listener: (...args: BalancerEvents[E]) => void): LoadBalancer;
  /**
   * A handler serving Prometheus metrics in the text exposition format: `app.get('/metrics', lb.metrics())`.
   * Requests are counted from the first call on; `{ registry }` registers into a prom-client registry instead.
   */
  metrics(options?: MetricsOptions): MetricsHandler;
  /** A self-refreshing HTML dashboard of the pool, to mount behind your own auth: `app.use('/_lb', auth, lb.statusPage())`; `?format=json` gives its figures. */
  statusPage(options?: StatusPageOptions): StatusPageHandler;
  /** Stops taking requests (503), waits for in-flight ones, closes tunnels and upstream connections. */
  close(): Promise<void>;
}

// The public signatures are per event; inside, one listener type serves them all.
type Listener = Parameters<Balancer['on']>[1];

/** Creates a load-balancing reverse-proxy middleware. Throws a TypeError naming any invalid option. */
export function loadBalance(options: LoadBalanceOptions): LoadBalancer {
  const resolved = resolveOptions(options);
  const balancer = new Balancer(resolved);
  const lb = ((req: IncomingMessage, res: ServerResponse) => balancer.handle(req, res)) as unknown as LoadBalancer;
  balancer.entry = lb;
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => balancer.upgrade(req, socket, head);
  const observe = new Observability(balancer, {
    rateLimit: resolved.protection.rateLimit,
    outlierDetection: resolved.outlierDetection !== undefined,
    strategyStats: typeof balancer.strategy.targetStats === 'function',
    adaptiveConcurrency: resolved.protection.adaptiveConcurrency !== undefined,
  });
  return Object.defineProperties(lb, {
    pool: { value: balancer.pool, enumerable: true },
    strategy: { value: balancer.strategy, enumerable: true },
    cache: { value: resolved.cache, enumerable: true },
    // A getter so that learning mount paths from HTTP requests costs nothing until WebSockets are
    // wired up (`server.on('upgrade', lb.upgrade)` reads it); always the same function, for `server.off`.
    upgrade: {
      get: () => {
        balancer.upgradeInUse();
        return upgrade;
      },
      enumerable: true,
    },
    stats: { value: () => balancer.stats(), enumerable: true },
    firstHealthCheck: { value: () => balancer.firstHealthCheck(), enumerable: true },
    firstDiscovery: { value: () => balancer.firstDiscovery(), enumerable: true },
    on: { value: (event: keyof BalancerEvents, listener: Listener) => (balancer.on(event, listener), lb), enumerable: true },
    once: { value: (event: keyof BalancerEvents, listener: Listener) => (balancer.once(event, listener), lb), enumerable: true },
    off: { value: (event: keyof BalancerEvents, listener: Listener) => (balancer.off(event, listener), lb), enumerable: true },
    metrics: { value: (options?: MetricsOptions) => observe.metrics(options), enumerable: true },
    statusPage: { value: (options?: StatusPageOptions) => observe.statusPage(options), enumerable: true },
    close: { value: () => (observe.close(), balancer.close()), enumerable: true },
  });
}
