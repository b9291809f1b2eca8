import type https from 'node:https';
import http from 'node:http';
import type { ClientIpHeader, TrustProxy } from './proxy/client-ip.js';
import { resolveAffinity, type AffinityOptions, type ResolvedAffinity } from './affinity/options.js';
import type { ResponseCacheMiddleware } from './cache/middleware.js';
import { ResponseCache } from './cache/response-cache.js';
import type { HealthCheckSpec } from './health/checker.js';
import { resolveHooks, type ProxyHooks } from './proxy/hooks.js';
import { MountScope } from './proxy/mount-scope.js';
import { resolveOutlierOptions, type OutlierDetectionOptions, type ResolvedOutlierOptions } from './health/outlier.js';
import { PROTECTION_OPTIONS, resolveProtection, type ProtectionOptions, type ResolvedProtection } from './protect/options.js';
import { resolveRetryOptions, type RetryOptions, type RetryPolicy } from './proxy/retry/policy.js';
import { type HedgeOptions, type HedgePolicy, resolveHedge } from './proxy/hedge/options.js';
import { type MirrorOption, type MirrorPolicySpec, resolveMirror } from './proxy/mirror/options.js';
import { pickFunction, type PickFunction } from './strategies/pick-function.js';
import type { Strategy } from './strategies/strategy.js';
import { ResponseTransformer, type TransformBody, type TransformResponseOptions } from './proxy/transform.js';
import { isDiscovery, type Discovery } from './discovery/discovery.js';
import type { TargetSpec } from './pool.js';
import { resolveStripHeaders } from './proxy/unkeyed-headers.js';
import { type CookieRewrite, type CookieRewriter, resolveCookieRewrite } from './proxy/cookie-rewrite.js';
import { type Http2SessionOptions, type ResolvedHttp2Session, resolveHttp2Session } from './proxy/engines/http2/options.js';
import { fail, integer, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject } from './validate.js';

/** Options of `loadBalance()`. Every one is optional but `targets`. The protection options (rate limit, caps, filters) are documented in `ProtectionOptions`. */
export interface LoadBalanceOptions extends ProtectionOptions {
  /**
   * Upstream servers: URLs, `{ url, weight }`, and sources that find them at run time (`dnsTargets()`
   * or your own `Discovery`), in one array or a single source. Must not be empty unless `dynamic` is set.
   */
  targets?: readonly (TargetSpec | Discovery)[] | Discovery;
  /** Allow an empty pool at start-up, filled at run time through `lb.pool.add()`; default false. */
  dynamic?: boolean;
  /** How a target is chosen per request: a strategy, or a function `(targets, req) => target` among the ready targets (undefined: 503); default `roundRobin()`. One strategy instance per balancer. */
  strategy?: Strategy | PickFunction;
  /** Milliseconds the upstream may stay silent (connecting, before its response head, between body chunks); default 60000. */
  proxyTimeout?: number;
  /** Milliseconds from dispatch until the upstream response head must have arrived, whatever the activity; default 0 (no deadline). */
  timeout?: number;
  /** Seconds advertised in `Retry-After` on 503 answers when no target is available; default 1. */
  retryAfter?: number;
  /** Send the target's host as `Host` (like NGINX's default) instead of the client's; default false. */
  changeOrigin?: boolean;
  /** Append `X-Forwarded-For` and set `X-Forwarded-Proto/-Host/-Port/-Prefix` and `X-Real-IP` (the client address `trustProxy` resolves); default true. When false, a client's `X-Real-IP` goes through from a trusted peer only. */
  xForwarded?: boolean;
  /** Append an RFC 7239 `Forwarded` element; default false, and then a client's own `Forwarded` goes through from a trusted peer only. */
  forwarded?: boolean;
  /** Which peers may report the client address (IP hash, `X-Forwarded-*` pass-through); default false (none). */
  trustProxy?: TrustProxy;
  /** Header trusted proxies report client addresses in; default 'x-forwarded-for'. */
  trustedHeader?: ClientIpHeader;
  /**
   * Lower-case names of request headers that backends let override the URL, method, scheme or host
   * (`x-original-url`, `x-rewrite-url`, `x-http-method-override`, `x-http-method`, `x-method-override`,
   * `x-forwarded-scheme`, `x-forwarded-ssl`, `front-end-https`, `x-host`, `x-forwarded-server`) to
   * forward anyway; the others are removed before forwarding, so a shared cache cannot store an answer
   * one client shaped with them. Default [] (all removed).
   */
  passHeaders?: readonly string[];
  /** Upstream response headers never relayed to clients (case-insensitive); default ['server', 'x-powered-by']. */
  hideHeaders?: readonly string[];
  /** Rewrite `Location`/`Content-Location` pointing at the target to the address the client used; default true. */
  rewriteLocation?: boolean;
  /**
   * Rewrite the `Domain` attribute of upstream `Set-Cookie` fields (http-proxy-middleware's option):
   * a string replaces every domain, an object maps domains (case-insensitive, leading dot ignored)
   * to replacements with `'*'` for any other, `''` removes the attribute; default false (unchanged).
   */
  cookieDomainRewrite?: CookieRewrite;
  /** Rewrite the `Path` attribute of upstream `Set-Cookie` fields, in the same forms as `cookieDomainRewrite` (paths match exactly); default false (unchanged). */
  cookiePathRewrite?: CookieRewrite;
  /** Keep upstream connections alive between requests (one agent per balancer); default true. */
  keepAlive?: boolean;
  /** Options for the balancer's own agents: `maxSockets`, `maxFreeSockets`, `timeout` (free-socket idle ms, default 4000), TLS `ca`/`rejectUnauthorized`...; `autoSelectFamily` (default true) and `lookup` (default: `localhost` is both loopback addresses) are how `localhost` targets reach either family. */
  agentOptions?: https.AgentOptions;
  /**
   * Speak HTTP/2 to every target that does not say otherwise (its own `http2`): h2c with prior
   * knowledge to `http:` URLs, TLS with ALPN `h2` to `https:` ones; default false (HTTP/1.1, but
   * `h2c:` URLs). See README "HTTP/2 upstreams".
   */
  http2?: boolean;
  /** How HTTP/2 sessions to targets are kept (streams per session, PING keep-alive, idle close); defaults in `Http2SessionOptions`. */
  http2Session?: Http2SessionOptions;
  /** Your own agent for `http:` targets instead of the balancer's (left open on close). */
  agent?: http.Agent;
  /** Your own agent for `https:` targets instead of the balancer's (left open on close). */
  httpsAgent?: https.Agent;
  /** Active health checks for every target (a target's own `healthCheck` overrides it): `httpHealthCheck()`, `tcpHealthCheck()`, your own checker, or an async `(target, signal) => boolean`; default none. */
  healthCheck?: HealthCheckSpec;
  /** Passive detection: eject targets whose requests keep failing; default on (3 failures, 10 s base ejection); false turns it off. */
  outlierDetection?: OutlierDetectionOptions | false;
  /** Percentage of targets that must be up; below it (panic mode) traffic goes to every target that is not draining; default 0 (off: answer 503 instead). */
  panicThreshold?: number;
  /** Milliseconds over which a target that joins or recovers ramps from 10% to 100% of its weight; default 0 (off). */
  slowStart?: number;
  /** Failover of failed requests to other targets; default on (2 retries, idempotent methods, 20% budget); false turns it off. */
  retry?: RetryOptions | false;
  /** Hedged requests: a second attempt to another target when the first has no response head after a delay (fixed, or a learned percentile), within a budget of extra load; default off. */
  hedge?: HedgeOptions | false;
  /** Request mirroring: a sampled copy of each request to a shadow target, fire and forget (Envoy's `request_mirror_policies`, NGINX's `mirror`): a URL, a policy `{ target, fraction, filter, maxBodyBytes, timeout, maxInFlight, keepHost }` or several; default none. */
  mirror?: MirrorOption;
  /** A response cache (`responseCache({...})`) in front of the proxy; default none. */
  cache?: ResponseCacheMiddleware;
  /** Session affinity by cookie: `{ cookie: 'lb', secret }` keeps a client on the target that served it while that target is ready; default none. */
  affinity?: AffinityOptions;
  /** Hooks into each proxied request (`proxyReq`, `proxyRes`, `error`), as in http-proxy-middleware; default none. */
  on?: ProxyHooks;
  /** Rewrites the decoded bodies of matching responses (http-proxy-middleware's `responseInterceptor`), bounded by `maxBytes`; default none. */
  transformResponse?: TransformResponseOptions | TransformBody;
  /** An OpenTelemetry CLIENT span per upstream attempt, when `@opentelemetry/api` is installed and a tracer provider registered; default true; false never loads the API. */
  tracing?: boolean;
  /**
   * The path(s) the app mounts the balancer at (`app.use('/api', lb)` → `'/api'`; `'/'` for the
   * whole server), for WebSocket upgrades, which reach `lb.upgrade` outside the app's router: only
   * upgrades under a mount path are tunnelled, with it stripped as for HTTP. Default: learned from
   * the HTTP requests the balancer handles once `lb.upgrade` is in use.
   */
  mountPath?: string | readonly string[];
}

/** Options after validation and defaults. */
export interface ResolvedOptions {
  targets: readonly TargetSpec[];
  discovery: readonly Discovery[];
  dynamic: boolean;
  strategy: Strategy | undefined;
  proxyTimeout: number;
  timeout: number;
  retryAfter: number;
  changeOrigin: boolean;
  xForwarded: boolean;
  forwarded: boolean;
  trustProxy: TrustProxy;
  trustedHeader: ClientIpHeader;
  /** The unkeyed request headers removed before forwarding: all but `passHeaders`. */
  stripHeaders: ReadonlySet<string>;
  hideHeaders: readonly string[];
  rewriteLocation: boolean;
  cookieRewrite: CookieRewriter | undefined;
  keepAlive: boolean;
  agentOptions: https.AgentOptions;
  http2: boolean;
  http2Session: ResolvedHttp2Session;
  agent: http.Agent | undefined;
  httpsAgent: https.Agent | undefined;
  healthCheck: HealthCheckSpec | undefined;
  outlierDetection: ResolvedOutlierOptions | undefined;
  panicThreshold: number;
  slowStart: number;
  retry: RetryPolicy | undefined;
  hedge: HedgePolicy | undefined;
  mirror: readonly MirrorPolicySpec[] | undefined;
  cache: ResponseCacheMiddleware | undefined;
  affinity: ResolvedAffinity | undefined;
  on: ProxyHooks | undefined;
  transformer: ResponseTransformer | undefined;
  tracing: boolean;
  protection: ResolvedProtection;
  mounts: MountScope;
}

const KNOWN: readonly string[] = [
  'targets',
  'mountPath',
  'dynamic',
  'strategy',
  'proxyTimeout',
  'timeout',
  'retryAfter',
  'changeOrigin',
  'xForwarded',
  'forwarded',
  'trustProxy',
  'trustedHeader',
  'passHeaders',
  'hideHeaders',
  'rewriteLocation',
  'cookieDomainRewrite',
  'cookiePathRewrite',
  'keepAlive',
  'agentOptions',
  'http2',
  'http2Session',
  'agent',
  'httpsAgent',
  'healthCheck',
  'outlierDetection',
  'panicThreshold',
  'slowStart',
  'retry',
  'hedge',
  'mirror',
  'cache',
  'affinity',
  'on',
  'transformResponse',
  'tracing',
  ...PROTECTION_OPTIONS,
];

/**
 * http-proxy-middleware (and http-proxy) options this library has under another name or not at
 * all, with what to write instead: people migrating paste their old options, and a bare "unknown
 * option" would leave them to find the equivalent in the README. Keep in step with README's
 * "Migrating from http-proxy-middleware". Those of the same name and meaning (`changeOrigin`,
 * `proxyTimeout`, `cookieDomainRewrite`, `cookiePathRewrite`, `pathRewrite`, `agent`, `on`) are
 * options here; `timeout` is too, though here it bounds the upstream response head.
 */
const HPM_OPTIONS: Readonly<Record<string, string>> = (() => {
  const mount = "mount the balancer where it applies: app.use('/api', lb) (it answers every request it gets)";
  const hook = (name: string) => `http-proxy-middleware's; here: on: { ${name}: (…) => {…} }`;
  const logs = "http-proxy-middleware's; here: DEBUG=proxy-balancer:* for decisions, lb.on('response', info => …) for access logs";
  const location =
    "http-proxy-middleware's; here Location and Content-Location are rewritten to the client's address by default (rewriteLocation, default true)";
  const none = "http-proxy-middleware's; it has no equivalent here";
  return {
    target: "http-proxy-middleware's; here: targets: ['http://…'] (several targets balance)",
    router: "http-proxy-middleware's; here: targets (every URL it routes to) and strategy: (targets, req) => one of targets, or consistentHash({ key })",
    ws: "http-proxy-middleware's; here: server.on('upgrade', lb.upgrade)",
    pathFilter: `http-proxy-middleware's; here: ${mount}`,
    context: `http-proxy-middleware's; here: ${mount}`,
    onProxyReq: hook('proxyReq'),
    onProxyRes: hook('proxyRes'),
    onError: hook('error'),
    onProxyReqWs: "http-proxy-middleware's; WebSocket upgrades take no hook here (the handshake is forwarded as received)",
    onOpen: "http-proxy-middleware's; WebSocket tunnels take no hook here",
    onClose: "http-proxy-middleware's; WebSocket tunnels take no hook here",
    logger: logs,
    logLevel: logs,
    logProvider: logs,
    secure:
      "http-proxy-middleware's; here certificates of https: targets are verified by default, and secure: false is agentOptions: { rejectUnauthorized: false }",
    ca: "http-proxy's; here: agentOptions: { ca }",
    followRedirects: "http-proxy-middleware's; not supported: redirects reach the client, with Location rewritten to the client's address",
    headers: "http-proxy-middleware's; here: on: { proxyReq: (proxyReq) => proxyReq.setHeader(name, value) }",
    auth: "http-proxy-middleware's; here: on: { proxyReq: (proxyReq) => proxyReq.setHeader('authorization', 'Basic ' + btoa('user:password')) }",
    xfwd: "http-proxy-middleware's; here: xForwarded (default true)",
    selfHandleResponse: "http-proxy-middleware's; here: transformResponse (the decoded body in, a new body out) or on: { proxyRes } to change the head",
    autoRewrite: location,
    hostRewrite: location,
    protocolRewrite: location,
    buffer: "http-proxy-middleware's; not needed: a body a body parser already read is forwarded re-serialised",
    ignorePath: "http-proxy-middleware's; here: pathRewrite: () => '/'",
    prependPath: "http-proxy-middleware's; here a target URL's path is always prepended ({ url: 'http://host/v2' } sends /users as /v2/users)",
    toProxy: none,
    forward: none,
    preserveHeaderKeyCase: none,
    plugins: "http-proxy-middleware's; it has no equivalent here: hooks (on: { proxyReq, proxyRes, error }) and events (lb.on('response', …)) instead",
    ejectPlugins: "http-proxy-middleware's; there are no default plugins here to eject (errors are answered 502/504, on.error may answer instead)",
    ssl: "http-proxy's; here terminate TLS with your own https.createServer(options, app)",
  };
})();

function bool(options: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(name, 'a boolean', value);
  return value;
}

function ms(options: Record<string, unknown>, name: string, fallback: number): number {
  const value = options[name];
  return value === undefined ? fallback : milliseconds(LOAD_BALANCE_OPTIONS, name, value);
}

function isStrategy(value: unknown): value is Strategy {
  return typeof value === 'object' && value !== null && typeof (value as Strategy).pick === 'function';
}

function isTrustProxy(value: unknown): value is TrustProxy {
  if (typeof value === 'boolean' || typeof value === 'string' || typeof value === 'function') return true;
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0;
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** Checks every option and fills defaults; throws a TypeError naming the first bad option. */
export function resolveOptions(input: LoadBalanceOptions | undefined): ResolvedOptions {
  const options = nestedObject(input, '', KNOWN, { hints: HPM_OPTIONS }) ?? fail('', 'an object', input);
  const dynamic = bool(options, 'dynamic', false);
  const given = options.targets ?? [];
  const list: unknown[] = isDiscovery(given) ? [given] : (given as unknown[]);
  if (!Array.isArray(list)) fail('targets', 'an array of URLs, { url, weight } objects and discoveries, or a discovery (dnsTargets())', given);
  if (list.length === 0 && !dynamic) fail('targets', 'a non-empty array (or set dynamic: true)', given);
  const discovery = list.filter(isDiscovery);
  const targets = discovery.length === 0 ? list : list.filter((t) => !isDiscovery(t));
  const strategy = typeof options.strategy === 'function' ? pickFunction(options.strategy as PickFunction) : options.strategy;
  if (strategy !== undefined && !isStrategy(strategy))
    fail('strategy', 'a strategy (an object with a pick() method) or a function (targets, req) => target', strategy);
  const retryAfter = integer(LOAD_BALANCE_OPTIONS, 'retryAfter', options.retryAfter ?? 1, { unit: 'seconds' });
  const trustProxy = options.trustProxy ?? false;
  if (!isTrustProxy(trustProxy)) fail('trustProxy', 'a boolean, hop count, address list or function', trustProxy);
  const trustedHeader = options.trustedHeader ?? 'x-forwarded-for';
  if (trustedHeader !== 'x-forwarded-for' && trustedHeader !== 'forwarded') fail('trustedHeader', "'x-forwarded-for' or 'forwarded'", trustedHeader);
  const hideHeaders = options.hideHeaders ?? ['server', 'x-powered-by'];
  if (!Array.isArray(hideHeaders) || !hideHeaders.every((h) => typeof h === 'string')) fail('hideHeaders', 'an array of header names', hideHeaders);
  const agentOptions = options.agentOptions ?? {};
  if (typeof agentOptions !== 'object' || agentOptions === null || Array.isArray(agentOptions)) fail('agentOptions', 'an object', agentOptions);
  // The agent hands it to socket.setTimeout, which cuts a longer one down with a warning.
  const agentTimeout = (agentOptions as https.AgentOptions).timeout;
  if (agentTimeout !== undefined) milliseconds(LOAD_BALANCE_OPTIONS, 'agentOptions.timeout', agentTimeout);
  const agent = options.agent;
  if (agent !== undefined && !(agent instanceof http.Agent)) fail('agent', 'an http.Agent', agent);
  const httpsAgent = options.httpsAgent;
  if (httpsAgent !== undefined && !(httpsAgent instanceof http.Agent)) fail('httpsAgent', 'an https.Agent', httpsAgent);
  const healthCheck = options.healthCheck;
  if (healthCheck !== undefined && typeof healthCheck !== 'function' && typeof (healthCheck as { check?: unknown })?.check !== 'function') {
    fail('healthCheck', 'a health checker (an object with a check() method) or an async function', healthCheck);
  }
  const panicThreshold = options.panicThreshold ?? 0;
  if (typeof panicThreshold !== 'number' || !(panicThreshold >= 0 && panicThreshold <= 100))
    fail('panicThreshold', 'a percentage from 0 to 100', panicThreshold);
  return {
    targets: targets as TargetSpec[],
    discovery,
    dynamic,
    strategy,
    proxyTimeout: ms(options, 'proxyTimeout', 60_000),
    timeout: ms(options, 'timeout', 0),
    retryAfter,
    changeOrigin: bool(options, 'changeOrigin', false),
    xForwarded: bool(options, 'xForwarded', true),
    forwarded: bool(options, 'forwarded', false),
    trustProxy,
    trustedHeader,
    stripHeaders: resolveStripHeaders(options.passHeaders),
    hideHeaders: (hideHeaders as string[]).map((h) => h.toLowerCase()),
    rewriteLocation: bool(options, 'rewriteLocation', true),
    cookieRewrite: resolveCookieRewrite(options.cookieDomainRewrite, options.cookiePathRewrite),
    keepAlive: bool(options, 'keepAlive', true),
    agentOptions: { timeout: 4000, ...(agentOptions as https.AgentOptions) },
    http2: bool(options, 'http2', false),
    http2Session: resolveHttp2Session(options.http2Session),
    agent: agent as http.Agent | undefined,
    httpsAgent: httpsAgent as https.Agent | undefined,
    healthCheck: healthCheck as HealthCheckSpec | undefined,
    outlierDetection: resolveOutlierOptions(options.outlierDetection),
    panicThreshold,
    slowStart: ms(options, 'slowStart', 0),
    retry: resolveRetryOptions(options.retry),
    hedge: resolveHedge(options.hedge),
    mirror: resolveMirror(options.mirror),
    cache: cacheOption(options.cache),
    affinity: resolveAffinity(options.affinity),
    on: resolveHooks(options.on),
    transformer: options.transformResponse === undefined ? undefined : new ResponseTransformer(options.transformResponse as TransformResponseOptions),
    tracing: bool(options, 'tracing', true),
    protection: resolveProtection(options),
    mounts: new MountScope(options.mountPath),
  };
}

function cacheOption(cache: unknown): ResponseCacheMiddleware | undefined {
  if (cache === undefined) return undefined;
  if (typeof cache !== 'function' || !((cache as Partial<ResponseCacheMiddleware>).cache instanceof ResponseCache)) {
    fail('cache', 'a responseCache()', cache);
  }
  return cache as ResponseCacheMiddleware;
}
