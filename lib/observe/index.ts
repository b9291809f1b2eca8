import type { RateLimiter } from '../protect/rate-limit.js';
import {
  DEFAULT_BUCKETS,
  MetricsSource,
  register,
  registryHandler,
  sameBuckets,
  textHandler,
  validateMetricsOptions,
  type MetricsHandler,
  type MetricsSubject,
} from './metrics.js';
import { MetricsRecorder, type ExchangeObserver } from './recorder.js';
import { Sampler } from './sampler.js';
import { snapshot, statusPageHandler, validateStatusPageOptions, type StatusPageHandler } from './status-page.js';

export type { MetricsHandler, MetricsOptions, MetricsRegistry } from './metrics.js';
export type { StatusPageHandler, StatusPageOptions, StatusSnapshot, TargetStatus } from './status-page.js';

/** The balancer as its observers see it: figures to read, and the slot its exchange observer goes in. */
export interface ObservedBalancer extends MetricsSubject {
  observer: ExchangeObserver | undefined;
}

/** Which optional features the balancer runs, so their figures show (as 0) before anything happened. */
export interface ObservedFeatures {
  rateLimit: RateLimiter | undefined;
  outlierDetection: boolean;
  /** The strategy reports what it balances each target by (`targetStats`). */
  strategyStats: boolean;
  /** Targets have adaptive concurrency limits. */
  adaptiveConcurrency: boolean;
}

/**
 * `lb.metrics()` and `lb.statusPage()` of one balancer. Nothing runs until one of them is called:
 * the exchange recorder is attached to the balancer by the first `lb.metrics()`, the latency
 * sampler started by the first `lb.statusPage()`; `close()` (from `lb.close()`) stops the sampler
 * and takes the balancer out of any prom-client registry.
 */
export class Observability {
  readonly #balancer: ObservedBalancer;
  readonly #features: ObservedFeatures;
  #recorder: MetricsRecorder | undefined;
  #sampler: Sampler | undefined;
  readonly #unregister: Array<() => void> = [];
  #closed = false;

  constructor(balancer: ObservedBalancer, features: ObservedFeatures) {
    this.#balancer = balancer;
    this.#features = features;
  }

  metrics(input?: unknown): MetricsHandler {
    const options = validateMetricsOptions(input);
    const buckets = options.buckets ?? DEFAULT_BUCKETS;
    if (this.#recorder === undefined) {
      this.#recorder = new MetricsRecorder(buckets);
      this.#balancer.observer = this.#recorder;
    } else if (options.buckets !== undefined && !sameBuckets(this.#recorder.bounds, buckets)) {
      throw new TypeError('lb.metrics: options.buckets differ from those of an earlier lb.metrics() call on this balancer');
    }
    const source = new MetricsSource(this.#balancer, this.#recorder, options.labels ?? {}, this.#features);
    if (options.registry === undefined) return textHandler(source);
    if (!this.#closed) this.#unregister.push(register(options.registry, source));
    return registryHandler(options.registry);
  }

  statusPage(input?: unknown): StatusPageHandler {
    const options = validateStatusPageOptions(input);
    if (this.#sampler === undefined) {
      this.#sampler = new Sampler(this.#balancer.pool);
      if (this.#closed) this.#sampler.close();
    }
    const sampler = this.#sampler;
    return statusPageHandler(() => snapshot(this.#balancer, sampler, this.#features, options));
  }

  close(): void {
    this.#closed = true;
    this.#sampler?.close();
    for (const unregister of this.#unregister.splice(0)) unregister();
  }
}
