import { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Exchange } from '../proxy/exchange.js';
import type { Target } from '../target.js';

/** Told by the balancer when an exchange (one attempt of a request, or a WebSocket tunnel) has ended. */
export interface ExchangeObserver {
  ended(exchange: Exchange): void;
}

/** Method label values: the standard methods, everything else as `OTHER`, so the label's cardinality is bounded. */
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE', 'OTHER'] as const;

/**
 * `code_class` label values: the class of the upstream status, `error` when the attempt failed
 * before a response head arrived (connect error, reset, timeout), `aborted` when the client left first.
 */
export const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error', 'aborted'] as const;

/** Request-duration histogram bounds, seconds (prom-client's defaults). */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

const ERROR = 5;
const ABORTED = 6;
const CLASS_COUNT = CODE_CLASSES.length;

function methodIndex(method: string | undefined): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'DELETE':
      return 4;
    case 'PATCH':
      return 5;
    case 'OPTIONS':
      return 6;
    case 'CONNECT':
      return 7;
    case 'TRACE':
      return 8;
    default:
      return 9;
  }
}

function classIndex(exchange: Exchange): number {
  const status = exchange.status;
  if (status === 0) return exchange.error === undefined ? ABORTED : ERROR;
  const index = Math.floor(status / 100) - 1;
  return index < 0 ? 0 : Math.min(index, 4);
}

/** One target's counters, created the first time an exchange on it ends and kept while it is a member. */
export class TargetSeries {
  /** Requests by method and code class: `requests[method * CODE_CLASSES.length + class]`. */
  readonly requests = new Float64Array(METHODS.length * CLASS_COUNT);
  /** Per-bucket (not cumulative) duration counts; the last slot is above the highest bound. */
  readonly buckets: Float64Array;
  durationSum = 0;
  durationCount = 0;
  /** WebSocket tunnels that ended. */
  tunnels = 0;

  constructor(
    readonly target: Target,
    bucketCount: number,
  ) {
    this.buckets = new Float64Array(bucketCount + 1);
  }

  requestCount(method: number, codeClass: number): number {
    return this.requests[method * CLASS_COUNT + codeClass]!;
  }
}

/**
 * Counts ended exchanges per target for `lb.metrics()`. It runs once per exchange inside the
 * balancer's `finish`: a map lookup keyed by the target object, a few array increments and a
 * bucket scan; nothing is allocated except a target's series the first time it is seen.
 */
export class MetricsRecorder implements ExchangeObserver {
  /** Histogram bounds, seconds, ascending. */
  readonly bounds: Float64Array;
  readonly #series = new Map<Target, TargetSeries>();

  constructor(buckets: readonly number[]) {
    this.bounds = Float64Array.from(buckets);
  }

  ended(exchange: Exchange): void {
    const target = exchange.target;
    let series = this.#series.get(target);
    if (series === undefined) {
      series = new TargetSeries(target, this.bounds.length);
      this.#series.set(target, series);
    }
    if (!(exchange.client instanceof ServerResponse)) {
      series.tunnels++;
      return;
    }
    series.requests[methodIndex(exchange.req.method) * CLASS_COUNT + classIndex(exchange)]++;
    const seconds = (performance.now() - exchange.startedAt) / 1000;
    series.durationSum += seconds;
    series.durationCount++;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    series.buckets[i]++;
  }

  /** The series of `target`, if an exchange on it ended since recording began. */
  series(target: Target): TargetSeries | undefined {
    return this.#series.get(target);
  }

  /** Forgets targets that left the pool and have nothing in flight (their series stop being exported). */
  prune(isMember: (target: Target) => boolean): void {
    for (const target of this.#series.keys()) if (target.inFlight === 0 && !isMember(target)) this.#series.delete(target);
  }

  /** Every series, including those of removed targets still finishing requests. */
  all(): IterableIterator<TargetSeries> {
    return this.#series.values();
  }
}
