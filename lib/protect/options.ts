import type { CircuitBreakerOptions } from './circuit-breaker.js';
import type { RequestFilter } from './filter.js';
import { IpFilter, type IpFilterOptions } from './ip-filter.js';
import { PathRewriter, type PathRewrite } from './path-rewrite.js';
import { RateLimiter, type RateLimitOptions } from './rate-limit.js';
import { MethodFilter } from './request-limits.js';
import { type PrematureResetOptions, type ResolvedPrematureResets, resolvePrematureResets } from './premature-reset.js';
import { count, fail, knownKeys } from '../validate.js';
import { type AdaptiveConcurrencyOptions, resolveAdaptiveConcurrency } from './adaptive-concurrency.js';
import type { GradientSettings } from './gradient-limit.js';
import { type LoadSheddingOptions, type ResolvedLoadShedding, resolveLoadShedding } from './load-shedding.js';

/**
 * The protection options of `loadBalance()`. Each is off unless set. Always on, whatever the
 * options: requests with ambiguous framing are refused (400), absolute-form targets are reduced to
 * origin form, and error answers never carry backend details.
 */
export interface ProtectionOptions {
  /** Token-bucket rate limit per client IP (or your key): 429 with `Retry-After` and `RateLimit-*` headers; default off. */
  rateLimit?: RateLimitOptions;
  /** Requests (and WebSocket tunnels) in flight per target at most, like HAProxy's `maxconn`; the next ones queue. Integer; default 0 (no cap). */
  maxConnections?: number;
  /** Requests waiting per target for a connection slot at most; more get 503 at once. Integer; default 100. Needs `maxConnections`. */
  maxQueue?: number;
  /** Milliseconds a request may wait in a target's queue before it gets 503; default 5000; 0 waits until a slot frees or the client leaves. Needs `maxConnections`. */
  queueTimeout?: number;
  /** Pool-wide caps on requests in flight, requests queued and retries in flight (Envoy's circuit breakers); default none. */
  circuitBreaker?: CircuitBreakerOptions;
  /** Largest request body, bytes, counted while it streams (a chunked body or a lying `Content-Length` cannot pass more): 413; default 0 (no limit). */
  maxBodySize?: number;
  /**
   * Most request header fields, count: 431 past it, as Envoy (100) and HAProxy (101) answer; default
   * 100. 0 lifts this limit, but a request Node cut short at its own `maxHeadersCount` (whose extra
   * fields it drops though it framed the body by them) is still refused with 431.
   */
  maxHeaders?: number;
  /** Most request header bytes (names, values, `: ` and CRLF): 431; default 0 (only Node's own `maxHeaderSize`, 16 KiB, also answered 431). */
  maxHeaderSize?: number;
  /** Methods let through, e.g. `['GET', 'HEAD', 'POST']`, upper-cased (`'get'` means GET); others get 405 with `Allow`; default all. */
  allowedMethods?: readonly string[];
  /** Client addresses allowed and denied, single IPs or CIDR ranges, IPv4 and IPv6 (the client IP honours `trustProxy`): 403; default none. */
  ipFilter?: IpFilterOptions;
  /** Your own check, sync or async, run after the built-in ones and before any backend is touched: `false` → 403, `{ status, message }` → that answer; default none. */
  filter?: RequestFilter;
  /** Public path prefixes mapped to upstream prefixes, `{ '/api': '/internal/v2' }` (or http-proxy-middleware's `{ '^/api': '' }`), or a function `(path, req) => path`; a path that climbs out of its prefix gets 400, one outside every prefix 404; default none. */
  pathRewrite?: PathRewrite;
  /** Milliseconds an open WebSocket tunnel may stay silent (no byte either way) before both sides are closed; default 0 (no idle timeout). */
  webSocketIdleTimeout?: number;
  /** HTTP/2 Rapid Reset (CVE-2023-44487): a client connection whose streams are mostly reset early is closed, like Envoy's `overload.premature_reset_*`; default `{ totalStreams: 500, minStreamLifetime: 1000 }`; `false` turns it off. */
  prematureResets?: PrematureResetOptions | false;
  /** An adaptive concurrency limit per target, Envoy's adaptive concurrency filter (gradient controller): `true` for Envoy's defaults, or its settings; default off. */
  adaptiveConcurrency?: AdaptiveConcurrencyOptions | boolean;
  /** Shed new requests (503) while this process is overloaded: event-loop delay (toobusy-js), utilization, heap, RSS (@fastify/under-pressure); `true` for a 70 ms event-loop delay limit; default off. */
  loadShedding?: LoadSheddingOptions | boolean;
}

export const PROTECTION_OPTIONS: readonly string[] = [
  'rateLimit',
  'maxConnections',
  'maxQueue',
  'queueTimeout',
  'circuitBreaker',
  'maxBodySize',
  'maxHeaders',
  'maxHeaderSize',
  'allowedMethods',
  'ipFilter',
  'filter',
  'pathRewrite',
  'webSocketIdleTimeout',
  'prematureResets',
  'adaptiveConcurrency',
  'loadShedding',
];

/** Protection options after validation and defaults. */
export interface ResolvedProtection {
  rateLimit: RateLimiter | undefined;
  maxConnections: number;
  maxQueue: number;
  queueTimeout: number;
  maxRequests: number;
  maxPending: number;
  maxRetries: number;
  maxBodySize: number;
  maxHeaders: number;
  maxHeaderSize: number;
  methods: MethodFilter | undefined;
  ipFilter: IpFilter | undefined;
  filter: RequestFilter | undefined;
  pathRewrite: PathRewriter | undefined;
  webSocketIdleTimeout: number;
  prematureResets: ResolvedPrematureResets | undefined;
  adaptiveConcurrency: GradientSettings | undefined;
  loadShedding: ResolvedLoadShedding | undefined;
  /** Whether any check runs before a target is chosen. */
  admission: boolean;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Checks the protection options among `options` and fills defaults; throws a TypeError naming the first bad one. */
export function resolveProtection(options: Record<string, unknown>): ResolvedProtection {
  const maxConnections = count(options, 'maxConnections', 0, 'requests');
  if (maxConnections === 0) {
    for (const name of ['maxQueue', 'queueTimeout']) if (options[name] !== undefined) fail(name, 'left out unless maxConnections is set', options[name]);
  }
  const breaker = options.circuitBreaker ?? {};
  if (typeof breaker !== 'object' || breaker === null || Array.isArray(breaker))
    fail('circuitBreaker', 'an object { maxRequests, maxPending, maxRetries }', breaker);
  const caps = breaker as Record<string, unknown>;
  knownKeys(caps, 'circuitBreaker', ['maxRequests', 'maxPending', 'maxRetries']);
  const maxPending = count(caps, 'maxPending', 0, 'requests', 'circuitBreaker.');
  if (maxPending > 0 && maxConnections === 0)
    fail('circuitBreaker.maxPending', 'left out unless maxConnections is set (only requests waiting for a connection slot are pending)', maxPending);
  const methods = options.allowedMethods;
  if (methods !== undefined && (!Array.isArray(methods) || methods.length === 0 || !methods.every((m) => typeof m === 'string' && METHOD.test(m)))) {
    fail('allowedMethods', 'a non-empty array of method names', methods);
  }
  const ipFilter = options.ipFilter;
  if (ipFilter !== undefined && (typeof ipFilter !== 'object' || ipFilter === null || Array.isArray(ipFilter)))
    fail('ipFilter', 'an object { allow?, deny? }', ipFilter);
  if (ipFilter !== undefined) knownKeys(ipFilter as Record<string, unknown>, 'ipFilter', ['allow', 'deny']);
  const filter = options.filter;
  if (filter !== undefined && typeof filter !== 'function') {
    // http-proxy-middleware's `filter`/`pathFilter` is a path or glob: say where that goes here.
    const paths = typeof filter === 'string' || Array.isArray(filter) ? " (to proxy some paths only, mount the balancer: app.use('/api', lb))" : '';
    fail('filter', `a function (req) => verdict${paths}`, filter);
  }
  const rateLimit = options.rateLimit === undefined ? undefined : new RateLimiter(options.rateLimit);
  const maxQueue = maxConnections === 0 ? 0 : count(options, 'maxQueue', 100, 'requests');
  const resolved: ResolvedProtection = {
    rateLimit,
    maxConnections,
    maxQueue,
    queueTimeout: maxConnections === 0 ? 0 : count(options, 'queueTimeout', 5000, 'milliseconds'),
    maxRequests: count(caps, 'maxRequests', 0, 'requests', 'circuitBreaker.'),
    maxPending,
    maxRetries: count(caps, 'maxRetries', 0, 'retries', 'circuitBreaker.'),
    maxBodySize: count(options, 'maxBodySize', 0, 'bytes'),
    maxHeaders: count(options, 'maxHeaders', 100, 'header fields'),
    maxHeaderSize: count(options, 'maxHeaderSize', 0, 'bytes'),
    // Methods are case-sensitive (RFC 9110 §9.1) and every registered one is upper case: a lower-case
    // `get` in configuration is always meant as GET, and kept as written it would refuse every GET.
    methods: methods === undefined ? undefined : new MethodFilter([...new Set((methods as string[]).map((m) => m.toUpperCase()))]),
    ipFilter: ipFilter === undefined ? undefined : new IpFilter(ipFilter as IpFilterOptions),
    filter: filter as RequestFilter | undefined,
    pathRewrite: options.pathRewrite === undefined ? undefined : new PathRewriter(options.pathRewrite),
    webSocketIdleTimeout: count(options, 'webSocketIdleTimeout', 0, 'milliseconds'),
    prematureResets: resolvePrematureResets(options.prematureResets),
    adaptiveConcurrency: resolveAdaptiveConcurrency(options.adaptiveConcurrency),
    loadShedding: resolveLoadShedding(options.loadShedding),
    admission: false,
  };
  resolved.admission =
    resolved.methods !== undefined ||
    resolved.ipFilter !== undefined ||
    resolved.maxHeaderSize > 0 ||
    resolved.maxBodySize > 0 ||
    resolved.pathRewrite !== undefined ||
    resolved.rateLimit !== undefined ||
    resolved.filter !== undefined;
  return resolved;
}
