import type { IncomingMessage, ServerResponse } from 'node:http';
import { EJECTION_REASONS } from '../health/outlier-analysis.js';
import type { Pool } from '../pool.js';
import type { BalancerStats } from './stats.js';
import type { Target, TargetState } from '../target.js';
import { fail, optionsObject } from '../validate.js';
import { isLabelName, PROMETHEUS_CONTENT_TYPE, renderExposition, type Labels, type MetricFamily, type Sample } from './exposition.js';
import { CODE_CLASSES, DEFAULT_BUCKETS, METHODS, type MetricsRecorder, type TargetSeries } from './recorder.js';
import { refusedMethod } from './read-only.js';
import { def, type FamilyDef } from './family.js';
import { addOverload, OVERLOAD_FAMILIES, overloadDefinitions } from './overload-metrics.js';

/**
 * A prom-client `Registry` (or anything with the same methods). Only these are used, so prom-client
 * itself is never imported: any version from 13 on (async `metrics()`) fits; the tests use 15.
 */
export interface MetricsRegistry {
  // biome-ignore lint/suspicious/noExplicitAny: prom-client types its parameter as its own Metric class
  registerMetric(metric: any): void;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Options of `lb.metrics()`. */
export interface MetricsOptions {
  /** Labels added to every series, e.g. `{ balancer: 'api' }`: needed to tell balancers apart when several share a registry. */
  labels?: Readonly<Record<string, string>>;
  /**
   * Upper bounds of the request-duration histogram, seconds, ascending; default
   * `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]`. Fixed by the first `lb.metrics()` call of a balancer.
   */
  buckets?: readonly number[];
  /**
   * A prom-client `Registry` to register the balancer's metrics into, next to your own. The
   * handler then serves that whole registry. Several balancers may share one registry, each with
   * distinct `labels`.
   */
  registry?: MetricsRegistry;
}

/** What `lb.metrics()` returns: a handler serving the Prometheus text format, mountable anywhere (`app.get('/metrics', lb.metrics())`). */
export type MetricsHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/** The parts of a balancer its metrics are read from. */
export interface MetricsSubject {
  readonly pool: Pool;
  stats(): BalancerStats;
}

/** Optional features whose figures are exported when configured. */
export interface MetricsFeatures {
  /** The rate limiter, whose `refused` counts 429 answers. */
  rateLimit: { readonly refused: number } | undefined;
  outlierDetection: boolean;
  /** The strategy reports what it balances each target by (`targetStats`). */
  strategyStats: boolean;
  /** Targets have adaptive concurrency limits (`adaptiveConcurrency`). */
  adaptiveConcurrency: boolean;
}

const RESERVED_LABELS = new Set(['target', 'method', 'code_class', 'state', 'le', 'result', 'discovery', 'reason', 'store', 'mirror']);
const MIRROR_RESULTS = ['completed', 'failed', 'skipped'] as const;
const STORE_RESULTS = ['succeeded', 'timedOut', 'failed', 'shortCircuited'] as const;
const STORE_RESULT_LABELS: Record<(typeof STORE_RESULTS)[number], string> = {
  succeeded: 'succeeded',
  timedOut: 'timed_out',
  failed: 'failed',
  shortCircuited: 'short_circuited',
};
const AFFINITY_RESULTS = ['sticky', 'placed', 'replaced'] as const;
const HEDGE_RESULTS = [
  ['sent', 'sent'],
  ['won', 'won'],
  ['cancelled', 'cancelled'],
  ['budget_refused', 'budgetRefused'],
  ['no_target', 'noTarget'],
] as const;
const STATES: readonly TargetState[] = ['up', 'down', 'ejected', 'draining'];
const OPTIONS: readonly string[] = ['labels', 'buckets', 'registry'];

/** Every family `lb.metrics()` may export, in output order. */
export const FAMILIES = {
  requests: def(
    'requests_total',
    'counter',
    'Requests proxied to a target, by method and upstream status class (1xx-5xx; error: failed before a response head; aborted: the client left first). Each attempt of a retried request counts on its own target.',
  ),
  duration: def('request_duration_seconds', 'histogram', 'Time from dispatch to a target until the response to the client ended, per attempt, in seconds.'),
  tunnels: def('websocket_tunnels_total', 'counter', 'WebSocket tunnels to a target that ended.'),
  inFlight: def('in_flight', 'gauge', 'Requests and WebSocket tunnels open on a target now.'),
  up: def('target_up', 'gauge', 'Whether a target takes traffic (state up): 1 or 0.', 'average'),
  state: def(
    'target_state',
    'gauge',
    "A target's state: 1 for the current one of up, down (failed active checks), ejected (failed requests), draining.",
    'average',
  ),
  weight: def('target_weight', 'gauge', 'Weight strategies balance a target by now (lower while slow start ramps).', 'average'),
  backup: def('target_backup', 'gauge', 'Whether a target is a backup (serves only while too few primaries are up): 1 or 0.', 'max'),
  strategyScore: def(
    'strategy_score',
    'gauge',
    "A target's score in the strategy's own unit, lower preferred (peakEwma: latency estimate ms x (in flight + 1) / weight; leastRequest: (in flight + 1)^bias / weight).",
    'average',
  ),
  strategyLatency: def('strategy_latency_seconds', 'gauge', "The strategy's latency estimate of a target (peakEwma: the peak EWMA), in seconds.", 'average'),
  strategyProbes: def('strategy_probes_total', 'counter', 'Requests the strategy sent to a target to refresh its stale latency estimate (peakEwma probe).'),
  ejections: def(
    'ejections_total',
    'counter',
    'Times passive outlier detection ejected a target, by reason: consecutive (failures in a row), successRate, failurePercentage, latency.',
  ),
  retries: def('retries_total', 'counter', 'Attempts sent again after a failure or a status in retry.onStatus.'),
  hedges: def(
    'hedges_total',
    'counter',
    'Hedged requests (hedge option) by result: sent (a second attempt to another target), won (answered by the hedge), cancelled (an attempt cancelled because the other answered first or the client left), budget_refused (due but over hedge.maxExtraLoad), no_target (due but no other target ready).',
  ),
  hedgeDelay: def(
    'hedge_delay_seconds',
    'gauge',
    'The delay after which a hedge is sent now (fixed, or the learned percentile), in seconds; absent until learned.',
    'average',
  ),
  unavailable: def('unavailable_total', 'counter', 'Requests answered 503 because no target was available.'),
  prematureResetCloses: def(
    'premature_reset_closes_total',
    'counter',
    'HTTP/2 client connections closed for resetting most of their streams early (prematureResets).',
  ),
  panic: def('panic', 'gauge', 'Panic mode: 1 while too few targets are up and traffic goes to all of them.', 'max'),
  backupsActive: def('backups_active', 'gauge', 'Backup targets serving: 1 while too few primary targets are up.', 'max'),
  affinity: def(
    'affinity_total',
    'counter',
    'Requests and WebSocket handshakes by session affinity outcome: sticky (sent to the target their cookie named), placed (no cookie), replaced (a cookie naming no ready target, placed afresh).',
  ),
  rateLimited: def('rate_limited_total', 'counter', 'Requests refused with 429 by the rate limit.'),
  cacheHits: def('cache_hits_total', 'counter', 'Requests answered from the response cache with a fresh entry.'),
  cacheMisses: def('cache_misses_total', 'counter', 'Requests the response cache could not answer and sent upstream.'),
  cacheStale: def('cache_stale_total', 'counter', 'Stale cache entries served (stale-while-revalidate, stale-if-error).'),
  cacheRevalidated: def('cache_revalidated_total', 'counter', 'Stale cache entries the upstream confirmed with 304.'),
  cacheBypass: def('cache_bypass_total', 'counter', 'Requests the response cache stayed out of (other methods, no-store, Range).'),
  cacheStored: def('cache_stored_total', 'counter', 'Responses stored in the response cache.'),
  cacheCoalesced: def('cache_coalesced_total', 'counter', "Cache misses that waited for another request's response instead of going upstream."),
  discoveryTargets: def('discovery_targets', 'gauge', "Targets in a discovery source's last good set.", 'average'),
  discoveryUpdates: def('discovery_updates_total', 'counter', 'Target sets a discovery source delivered.'),
  discoveryErrors: def('discovery_errors_total', 'counter', 'Failed discovery rounds (resolution errors, invalid sets); the last good set stays in the pool.'),
  discoveryFailing: def('discovery_failing', 'gauge', "1 while a discovery source's latest round failed and the pool holds an older set.", 'max'),
  discoveryLastUpdate: def(
    'discovery_last_update_timestamp_seconds',
    'gauge',
    'When a discovery source last delivered a set, seconds since the epoch (0 before the first).',
    'max',
  ),
  storeUp: def(
    'store_up',
    'gauge',
    "Whether a shared store (the cache's or the rate limiter's Redis) is used: 1 while its circuit is closed, 0 while open or probing.",
    'average',
  ),
  storeOperations: def(
    'store_operations_total',
    'counter',
    'Shared-store operations by result: succeeded, timed_out (past the guard timeout; the request went on without it), failed, short_circuited (not sent: circuit open or too many pending).',
  ),
  storePending: def('store_pending', 'gauge', 'Shared-store operations sent and not answered yet by the store.'),
  mirrorCopies: def(
    'mirror_copies_total',
    'counter',
    'Request copies for a mirror policy (mirror: its URLs), by result: completed (answered in full), failed (error, timeout, aborted), skipped (not sent: over maxInFlight or maxBodyBytes, or the mirror refused a connection less than 1 s ago).',
  ),
  mirrorInFlight: def('mirror_in_flight', 'gauge', 'Request copies of a mirror policy in flight now.'),
  ...OVERLOAD_FAMILIES,
} as const;

const FN = 'lb.metrics';

/** Checks `lb.metrics()` options; a TypeError names the bad one. */
export function validateMetricsOptions(input: unknown): MetricsOptions {
  const options = optionsObject(input, FN, OPTIONS) as MetricsOptions;
  const labels = options.labels;
  if (labels !== undefined) {
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) fail('labels', 'an object of label names to string values', labels, FN);
    for (const [name, value] of Object.entries(labels)) {
      if (!isLabelName(name) || RESERVED_LABELS.has(name))
        throw new TypeError(`lb.metrics: options.labels: ${JSON.stringify(name)} is not a usable label name`);
      if (typeof value !== 'string') fail(`labels.${name}`, 'a string', value, FN);
    }
  }
  const buckets = options.buckets;
  if (buckets !== undefined) {
    const ok =
      Array.isArray(buckets) &&
      buckets.length > 0 &&
      buckets.every((b, i) => typeof b === 'number' && Number.isFinite(b) && b > 0 && (i === 0 || b > buckets[i - 1]!));
    if (!ok) fail('buckets', 'a non-empty ascending array of positive numbers of seconds', buckets, FN);
  }
  const registry = options.registry;
  if (
    registry !== undefined &&
    (typeof registry?.registerMetric !== 'function' || typeof registry.metrics !== 'function' || typeof registry.removeSingleMetric !== 'function')
  ) {
    fail('registry', 'a prom-client Registry', registry, FN);
  }
  return options;
}

export function sameBuckets(a: readonly number[] | Float64Array, b: readonly number[]): boolean {
  return a.length === b.length && b.every((v, i) => a[i] === v);
}

export { DEFAULT_BUCKETS };

function family(d: FamilyDef): MetricFamily {
  return { name: d.name, help: d.help, type: d.type, samples: [] };
}

/** One balancer as a source of metric families, with its constant labels. */
export class MetricsSource {
  readonly labels: Labels;
  readonly #subject: MetricsSubject;
  readonly #recorder: MetricsRecorder;
  readonly #features: MetricsFeatures;
  /** `le` label values, rendered once. */
  readonly #le: string[];

  constructor(subject: MetricsSubject, recorder: MetricsRecorder, labels: Labels, features: MetricsFeatures) {
    this.#subject = subject;
    this.#recorder = recorder;
    this.labels = { ...labels };
    this.#features = features;
    this.#le = [...Array.from(recorder.bounds, String), '+Inf'];
  }

  /** The families this balancer exports (cache ones only with a cache, the rate-limit one only with a rate limit). */
  definitions(): FamilyDef[] {
    const stats = this.#subject.stats();
    return this.#defs(stats);
  }

  #defs(stats: BalancerStats): FamilyDef[] {
    const defs: FamilyDef[] = [
      FAMILIES.requests,
      FAMILIES.duration,
      FAMILIES.tunnels,
      FAMILIES.inFlight,
      FAMILIES.up,
      FAMILIES.state,
      FAMILIES.weight,
      FAMILIES.backup,
    ];
    if (this.#features.strategyStats) defs.push(FAMILIES.strategyScore, FAMILIES.strategyLatency);
    if (stats.targets.some((t) => t.balancing?.probes !== undefined)) defs.push(FAMILIES.strategyProbes);
    if (this.#features.outlierDetection) defs.push(FAMILIES.ejections);
    if (stats.hedging !== undefined) defs.push(FAMILIES.hedges, FAMILIES.hedgeDelay);
    defs.push(FAMILIES.retries, FAMILIES.unavailable, FAMILIES.prematureResetCloses, FAMILIES.panic, FAMILIES.backupsActive);
    if (stats.affinity !== undefined) defs.push(FAMILIES.affinity);
    if (this.#features.rateLimit !== undefined) defs.push(FAMILIES.rateLimited);
    if (stats.cache !== undefined) {
      defs.push(
        FAMILIES.cacheHits,
        FAMILIES.cacheMisses,
        FAMILIES.cacheStale,
        FAMILIES.cacheRevalidated,
        FAMILIES.cacheBypass,
        FAMILIES.cacheStored,
        FAMILIES.cacheCoalesced,
      );
    }
    if (stats.discovery !== undefined) {
      defs.push(FAMILIES.discoveryTargets, FAMILIES.discoveryUpdates, FAMILIES.discoveryErrors, FAMILIES.discoveryFailing, FAMILIES.discoveryLastUpdate);
    }
    if (stats.stores !== undefined) defs.push(FAMILIES.storeUp, FAMILIES.storeOperations, FAMILIES.storePending);
    if (stats.mirror !== undefined) defs.push(FAMILIES.mirrorCopies, FAMILIES.mirrorInFlight);
    overloadDefinitions(defs, this.#features.adaptiveConcurrency, stats.process !== undefined);
    return defs;
  }

  /** Reads the balancer's figures now. */
  collect(): MetricFamily[] {
    const subject = this.#subject;
    const pool = subject.pool;
    const stats = subject.stats();
    const members = pool.targets;
    this.#recorder.prune((target) => pool.get(target) === target);
    const series = new Map<Target, TargetSeries | undefined>();
    for (const target of members) series.set(target, this.#recorder.series(target));
    for (const s of this.#recorder.all()) series.set(s.target, s);

    const families = new Map<string, MetricFamily>();
    for (const d of this.#defs(stats)) families.set(d.name, family(d));
    const add = (d: FamilyDef, value: number, labels: Labels = this.labels, name = d.name): void => {
      families.get(d.name)!.samples.push({ name, labels, value });
    };
    const base = this.labels;

    for (const [target, s] of series) {
      const target_ = { ...base, target: target.key };
      if (s !== undefined) {
        for (let m = 0; m < METHODS.length; m++) {
          for (let c = 0; c < CODE_CLASSES.length; c++) {
            const n = s.requestCount(m, c);
            if (n > 0) add(FAMILIES.requests, n, { ...target_, method: METHODS[m]!, code_class: CODE_CLASSES[c]! });
          }
        }
        if (s.tunnels > 0) add(FAMILIES.tunnels, s.tunnels, target_);
      }
      let cumulative = 0;
      for (let i = 0; i < this.#le.length; i++) {
        cumulative += s?.buckets[i] ?? 0;
        add(FAMILIES.duration, cumulative, { ...target_, le: this.#le[i]! }, `${FAMILIES.duration.name}_bucket`);
      }
      add(FAMILIES.duration, s?.durationSum ?? 0, target_, `${FAMILIES.duration.name}_sum`);
      add(FAMILIES.duration, s?.durationCount ?? 0, target_, `${FAMILIES.duration.name}_count`);
    }

    members.forEach((target, i) => {
      const t = stats.targets[i];
      const target_ = { ...base, target: target.key };
      add(FAMILIES.inFlight, target.inFlight, target_);
      add(FAMILIES.up, target.state === 'up' ? 1 : 0, target_);
      for (const state of STATES) add(FAMILIES.state, target.state === state ? 1 : 0, { ...target_, state });
      add(FAMILIES.weight, target.weight, target_);
      add(FAMILIES.backup, target.backup ? 1 : 0, target_);
      const balancing = t?.balancing;
      if (balancing !== undefined) {
        add(FAMILIES.strategyScore, balancing.score, target_);
        if (balancing.latency !== undefined) add(FAMILIES.strategyLatency, balancing.latency / 1000, target_);
        if (balancing.probes !== undefined && families.has(FAMILIES.strategyProbes.name)) add(FAMILIES.strategyProbes, balancing.probes, target_);
      }
      if (this.#features.outlierDetection) {
        for (const reason of EJECTION_REASONS) add(FAMILIES.ejections, t?.ejectionsByReason?.[reason] ?? 0, { ...target_, reason });
      }
    });

    add(FAMILIES.retries, stats.retries);
    const hedging = stats.hedging;
    if (hedging !== undefined) {
      for (const [result, value] of HEDGE_RESULTS) add(FAMILIES.hedges, hedging[value], { ...base, result });
      if (hedging.delay !== null) add(FAMILIES.hedgeDelay, hedging.delay / 1000);
    }
    add(FAMILIES.unavailable, stats.unavailable);
    add(FAMILIES.prematureResetCloses, stats.prematureResetCloses);
    add(FAMILIES.panic, stats.panic ? 1 : 0);
    add(FAMILIES.backupsActive, stats.onBackups ? 1 : 0);
    const affinity = stats.affinity;
    if (affinity !== undefined) for (const result of AFFINITY_RESULTS) add(FAMILIES.affinity, affinity[result], { ...base, result });
    const rateLimit = this.#features.rateLimit;
    if (rateLimit !== undefined) add(FAMILIES.rateLimited, rateLimit.refused);
    const cache = stats.cache;
    if (cache !== undefined) {
      add(FAMILIES.cacheHits, cache.hits);
      add(FAMILIES.cacheMisses, cache.misses);
      add(FAMILIES.cacheStale, cache.stale);
      add(FAMILIES.cacheRevalidated, cache.revalidated);
      add(FAMILIES.cacheBypass, cache.bypass);
      add(FAMILIES.cacheStored, cache.stored);
      add(FAMILIES.cacheCoalesced, cache.coalesced);
    }
    for (const source of stats.discovery ?? []) {
      const labels = { ...base, discovery: source.name };
      add(FAMILIES.discoveryTargets, source.targets, labels);
      add(FAMILIES.discoveryUpdates, source.updates, labels);
      add(FAMILIES.discoveryErrors, source.errors, labels);
      add(FAMILIES.discoveryFailing, source.failing ? 1 : 0, labels);
      add(FAMILIES.discoveryLastUpdate, source.lastUpdate / 1000, labels);
    }
    for (const store of stats.stores ?? []) {
      const labels = { ...base, store: store.name };
      add(FAMILIES.storeUp, store.circuit === 'closed' ? 1 : 0, labels);
      for (const result of STORE_RESULTS) add(FAMILIES.storeOperations, store[result], { ...labels, result: STORE_RESULT_LABELS[result] });
      add(FAMILIES.storePending, store.pending, labels);
    }
    for (const policy of stats.mirror ?? []) {
      const labels = { ...base, mirror: policy.targets.join(',') };
      for (const result of MIRROR_RESULTS) add(FAMILIES.mirrorCopies, policy[result], { ...labels, result });
      add(FAMILIES.mirrorInFlight, policy.inFlight, labels);
    }
    addOverload(stats, add, base, this.#features.adaptiveConcurrency);
    return [...families.values()];
  }
}

/** Serves `body()` as the exposition text, for GET and HEAD. */
export function exposition(body: () => string | Promise<string>, contentType: () => string): MetricsHandler {
  return (req, res, next) => {
    if (refusedMethod(req, res)) return;
    let text: string | Promise<string>;
    try {
      text = body();
    } catch (err) {
      failed(res, err, next);
      return;
    }
    const send = (out: string): void => {
      res.statusCode = 200;
      res.setHeader('content-type', contentType());
      res.setHeader('cache-control', 'no-store');
      res.setHeader('content-length', Buffer.byteLength(out));
      res.end(req.method === 'HEAD' ? undefined : out);
    };
    if (typeof text === 'string') send(text);
    else text.then(send, (err: unknown) => failed(res, err, next));
  };
}

function failed(res: ServerResponse, err: unknown, next: ((err?: unknown) => void) | undefined): void {
  if (next !== undefined) return next(err);
  res.statusCode = 500;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end('metrics collection failed\n');
}

/** Renders one balancer's families as the text format. */
export function textHandler(source: MetricsSource): MetricsHandler {
  return exposition(
    () => renderExposition(source.collect()),
    () => PROMETHEUS_CONTENT_TYPE,
  );
}

// ---- prom-client registries

interface Binding {
  sources: Set<MetricsSource>;
  /** Names registered into the registry by us. */
  registered: Set<string>;
  /** Families of the current scrape: every family's `get()` of one `registry.metrics()` runs in the same tick. */
  scrape: Map<string, Sample[]> | undefined;
}

const bindings = new WeakMap<MetricsRegistry, Binding>();

function sameLabels(a: Labels, b: Labels): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function scrape(binding: Binding): Map<string, Sample[]> {
  if (binding.scrape !== undefined) return binding.scrape;
  const merged = new Map<string, Sample[]>();
  for (const source of binding.sources) {
    for (const fam of source.collect()) {
      const list = merged.get(fam.name);
      if (list === undefined) merged.set(fam.name, fam.samples);
      else list.push(...fam.samples);
    }
  }
  binding.scrape = merged;
  queueMicrotask(() => (binding.scrape = undefined));
  return merged;
}

/** A family as prom-client's registry reads it: `get()` resolves to its values. */
function collector(binding: Binding, d: FamilyDef): object {
  return {
    name: d.name,
    help: d.help,
    type: d.type,
    aggregator: d.aggregator,
    get: async () => ({
      name: d.name,
      help: d.help,
      type: d.type,
      aggregator: d.aggregator,
      values: (scrape(binding).get(d.name) ?? []).map((s) =>
        s.name === d.name ? { labels: s.labels, value: s.value } : { metricName: s.name, labels: s.labels, value: s.value },
      ),
    }),
    // Counters mirror the balancer's own: a registry reset cannot clear them.
    reset: () => {},
  };
}

/** Adds a balancer to a registry's families; returns what takes it out again. */
export function register(registry: MetricsRegistry, source: MetricsSource): () => void {
  let binding = bindings.get(registry);
  if (binding === undefined) {
    binding = { sources: new Set(), registered: new Set(), scrape: undefined };
    bindings.set(registry, binding);
  }
  for (const other of binding.sources) {
    if (sameLabels(other.labels, source.labels)) {
      throw new TypeError('lb.metrics: another balancer with the same labels is registered in this registry; give each one distinct options.labels');
    }
  }
  const added: string[] = [];
  for (const d of source.definitions()) {
    if (binding.registered.has(d.name)) continue;
    try {
      registry.registerMetric(collector(binding, d));
    } catch (err) {
      for (const name of added) {
        registry.removeSingleMetric(name);
        binding.registered.delete(name);
      }
      throw new TypeError(`lb.metrics: cannot register ${d.name} in the registry: ${(err as Error)?.message}`);
    }
    binding.registered.add(d.name);
    added.push(d.name);
  }
  binding.sources.add(source);
  const owner = binding;
  return () => {
    if (!owner.sources.delete(source) || owner.sources.size > 0) return;
    for (const name of owner.registered) registry.removeSingleMetric(name);
    owner.registered.clear();
  };
}

/** The handler of `lb.metrics({ registry })`: the whole registry, in its own content type. */
export function registryHandler(registry: MetricsRegistry): MetricsHandler {
  return exposition(
    () => registry.metrics(),
    () => registry.contentType ?? PROMETHEUS_CONTENT_TYPE,
  );
}
