import type { AffinityStats, SessionAffinity } from '../affinity/session-affinity.js';
import type { CacheStats, ResponseCache } from '../cache/response-cache.js';
import type { DiscoveryFeeds, DiscoveryStats } from '../discovery/feed.js';
import type { HealthSupervisor, TargetHealth } from '../health/supervisor.js';
import type { Pool } from '../pool.js';
import type { ConnectionQueue } from '../protect/connection-queue.js';
import type { PrematureResets } from '../protect/premature-reset.js';
import type { AdaptiveConcurrency, ConcurrencyLimitStats } from '../protect/adaptive-concurrency.js';
import type { LoadShedder, ProcessHealth } from '../protect/load-shedding.js';
import type { StatusRetry } from '../proxy/retry/status.js';
import type { HedgeStats, Hedging } from '../proxy/hedge/hedging.js';
import type { ResponseTransformer, TransformStats } from '../proxy/transform.js';
import type { Strategy, StrategyTargetStats } from '../strategies/strategy.js';
import { type TargetState, targetProtocol } from '../target.js';
import type { StoreHealth } from '../store-guard.js';
import type { StoreWatch } from './store-watch.js';
import type { Mirror } from '../proxy/mirror/mirror.js';
import type { MirrorStats } from '../proxy/mirror/policy.js';

/** One target's figures in `lb.stats()`. */
export interface TargetStats extends TargetHealth {
  url: string;
  /** What the balancer speaks to it: `http/1.1`, `h2c` (HTTP/2 with prior knowledge) or `h2` (HTTP/2 over TLS). */
  protocol: 'http/1.1' | 'h2c' | 'h2';
  /** Declared weight. */
  weight: number;
  /** Weight strategies balance by now (lower while slow start ramps). */
  effectiveWeight: number;
  state: TargetState;
  /** Requests and WebSocket tunnels open now. */
  inFlight: number;
  /** Requests waiting for a connection slot on this target (`maxConnections`); 0 without a cap. */
  queued: number;
  /** Requests dispatched since the target joined (retries included). */
  total: number;
  /** Attempts that failed upstream (connect error, reset, timeout). */
  errors: number;
  /** Moving average of time to response head, ms (0 before the first response). */
  latency: number;
  /** A backup target: serves only while too few primaries are up. */
  backup: boolean;
  /** When its hold-off after a 503 with `Retry-After` ends (ms since the epoch; `retry.onStatus`), 0 when none. */
  heldOffUntil: number;
  /** What the strategy balances the target by now (peakEwma, leastRequest): score to 4 significant digits, latency in ms to 2 decimals; undefined for strategies that say nothing. */
  balancing: StrategyTargetStats | undefined;
  /** Its adaptive concurrency limit, minRTT and sampleRTT (`adaptiveConcurrency`); undefined when off. */
  concurrency: ConcurrencyLimitStats | undefined;
}

/** What `lb.stats()` returns. */
export interface BalancerStats {
  strategy: string;
  /** Targets in the ready snapshot. */
  ready: number;
  /** Panic mode: too few targets up, so traffic goes to all that are not draining. */
  panic: boolean;
  /** Requests and tunnels open now, over all targets. */
  inFlight: number;
  /** Requests answered 503 before reaching a target: none ready, the strategy refused, the circuit breaker, or the balancer closing. */
  unavailable: number;
  /** Attempts sent again after a failure or a status in `retry.onStatus`. */
  retries: number;
  /** Hedged requests (`hedge`): hedges sent, won, cancelled attempts, budget refusals, the current delay; undefined when hedging is off. */
  hedging: HedgeStats | undefined;
  /** HTTP/2 client connections closed for resetting most of their streams early (`prematureResets`). */
  prematureResetCloses: number;
  /** Response cache counters, when a cache is configured. */
  cache: CacheStats | undefined;
  /** `transformResponse` counters, when a transform is configured. */
  transforms: TransformStats | undefined;
  /** Session affinity counters, when `affinity` is configured. */
  affinity: AffinityStats | undefined;
  /** Backup targets are serving: no primary is up (with `panicThreshold`, too few). */
  onBackups: boolean;
  /** Per discovery source (`dnsTargets()`...): its last set, updates, failures; undefined without one. */
  discovery: DiscoveryStats[] | undefined;
  /** The shared stores (Redis) the cache and rate limiter use, each with its circuit and counters; undefined without one. */
  stores: StoreHealth[] | undefined;
  /** Per mirror policy (`mirror`): copies sent, completed, failed, skipped and in flight; undefined without mirroring. */
  mirror: MirrorStats[] | undefined;
  /** Requests answered 503 because every ready target was at its adaptive concurrency limit; 0 when `adaptiveConcurrency` is off. */
  concurrencyRefused: number;
  /** The process's event-loop delay and utilization, heap and RSS, and the requests shed for them (`loadShedding`); undefined when off. */
  process: ProcessHealth | undefined;
  targets: TargetStats[];
}

/** What `collectStats` reads besides the pool and strategy: the balancer's counters and the parts it has. */
export interface StatsSources {
  inFlight: number;
  unavailable: number;
  retries: number;
  queue: ConnectionQueue | undefined;
  health: HealthSupervisor;
  heldOff: StatusRetry | undefined;
  cache: ResponseCache | undefined;
  transformer: ResponseTransformer | undefined;
  affinity: SessionAffinity | undefined;
  discovery: DiscoveryFeeds | undefined;
  stores: StoreWatch;
  resets: PrematureResets | undefined;
  hedging: Hedging | undefined;
  mirror: Mirror | undefined;
  concurrency: AdaptiveConcurrency | undefined;
  shedder: LoadShedder | undefined;
}

/** The figures `lb.stats()` returns, gathered from every part of a balancer. */
export function collectStats(pool: Pool, strategy: Strategy, parts: StatsSources): BalancerStats {
  const targets = pool.targets.map(
    (t): TargetStats => ({
      url: t.key,
      protocol: targetProtocol(t),
      weight: t.configuredWeight,
      effectiveWeight: t.weight,
      state: t.state,
      inFlight: t.inFlight,
      queued: parts.queue?.waiting(t) ?? 0,
      total: t.total,
      errors: t.errors,
      latency: Math.round(t.latency * 100) / 100,
      backup: t.backup,
      heldOffUntil: parts.heldOff?.heldOffUntil(t) ?? 0,
      balancing: rounded(strategy.targetStats?.(t)),
      concurrency: parts.concurrency?.stats(t),
      ...parts.health.status(t),
    }),
  );
  return {
    strategy: strategy.name,
    ready: pool.ready.length,
    panic: pool.panic,
    inFlight: parts.inFlight,
    unavailable: parts.unavailable,
    retries: parts.retries,
    hedging: parts.hedging?.stats(),
    prematureResetCloses: parts.resets?.sessionsClosed ?? 0,
    cache: parts.cache?.stats(),
    transforms: parts.transformer === undefined ? undefined : { ...parts.transformer.stats },
    affinity: parts.affinity?.stats(),
    onBackups: pool.onBackups,
    discovery: parts.discovery?.stats(),
    stores: parts.stores.health(),
    mirror: parts.mirror?.stats(),
    concurrencyRefused: parts.concurrency?.refused ?? 0,
    process: parts.shedder?.health(),
    targets,
  };
}

function rounded(figures: StrategyTargetStats | undefined): StrategyTargetStats | undefined {
  if (figures === undefined) return undefined;
  // Scores span orders of magnitude (a fraction of 1/weight, or ms × requests): significant digits, not decimals.
  const score = Number(figures.score.toPrecision(4));
  const shown = figures.latency === undefined ? { score } : { score, latency: Math.round(figures.latency * 100) / 100 };
  return figures.probes === undefined ? shown : { ...shown, probes: figures.probes };
}
