/**
 * The variants the HTTP benchmark compares. This module only names them; `servers.ts` builds them
 * (it imports Express, fastify and the peers, so only the server processes load it).
 */
export type Group = 'ceiling' | 'library' | 'feature' | 'tls' | 'peer';

/** What loads a variant: autocannon over HTTP/1.1, or h2load over TLS speaking h2 or HTTP/1.1. */
export type Load = 'autocannon' | 'h2load-h2' | 'h2load-h1';

export interface Variant {
  id: string;
  label: string;
  group: Group;
  /** Whether requests reach the backends (false: answered from memory, or cache hits). */
  proxies: boolean;
  /** Needs a redis-server, whose URL the server process gets as BENCH_REDIS_URL. */
  redis?: boolean;
  /** Path and query requested; default `DEFAULT_PATH`. `[<id>]` in it becomes a new id in every request (autocannon only). */
  path?: string;
  /** Default `'autocannon'`. */
  load?: Load;
  /** Its targets speak HTTP/2 with prior knowledge: it is given h2c backends (`startBackends({ h2c: true })`). */
  h2c?: boolean;
}

/** What every variant requests unless it says otherwise: a cacheable 1 KB answer. */
export const DEFAULT_PATH = '/bench/item?id=1';
/** Answered uncacheable (`Cache-Control: no-store`) by the backends (`NO_STORE_PATH` of backends.ts), a new URL each request. */
const NO_STORE = '/no-store/item?id=[<id>]';
/** The same, one URL: concurrent misses of one key wait for each other (the cache coalesces them). */
const NO_STORE_HOT = '/no-store/item?id=1';

export const VARIANTS: readonly Variant[] = [
  { id: 'minimal', label: 'minimal node:http proxy, keep-alive, round robin', group: 'ceiling', proxies: true },
  { id: 'node-memory', label: 'node:http answering 1 KB from memory', group: 'ceiling', proxies: false },
  { id: 'express-memory', label: 'Express 5 answering 1 KB from memory', group: 'ceiling', proxies: false },
  { id: 'lib-bare', label: 'proxy-balancer on node:http', group: 'library', proxies: true },
  { id: 'lib-express', label: 'proxy-balancer in Express 5', group: 'library', proxies: true },
  { id: 'lib-express4', label: 'proxy-balancer in Express 4', group: 'library', proxies: true },
  { id: 'lib-connect', label: 'proxy-balancer in Connect', group: 'library', proxies: true },
  { id: 'lib-bare-cache', label: 'proxy-balancer cache hits, node:http', group: 'library', proxies: false },
  { id: 'lib-express-cache', label: 'proxy-balancer cache hits, Express 5', group: 'library', proxies: false },
  { id: 'lib-bare-cache-redis', label: 'proxy-balancer cache hits, redisStore only, node:http', group: 'library', proxies: false, redis: true },
  { id: 'lib-bare-cache-tiered', label: 'proxy-balancer cache hits, tieredStore (memory + Redis), node:http', group: 'library', proxies: false, redis: true },
  // One feature each over lib-bare (their "× plain" is relative to it), then all of them together.
  { id: 'lib-metrics', label: '+ metrics (lb.metrics() called), node:http', group: 'feature', proxies: true },
  { id: 'lib-rate-limit', label: '+ rateLimit (never refusing), node:http', group: 'feature', proxies: true },
  { id: 'lib-least-conn', label: '+ leastConnections(), node:http', group: 'feature', proxies: true },
  { id: 'lib-health', label: '+ httpHealthCheck every 1 s, node:http', group: 'feature', proxies: true },
  { id: 'lib-cache-miss', label: '+ responseCache(), misses (no-store, new URLs), node:http', group: 'feature', proxies: true, path: NO_STORE },
  { id: 'lib-cache-hot-miss', label: '+ responseCache(), one hot no-store URL, node:http', group: 'feature', proxies: true, path: NO_STORE_HOT },
  { id: 'lib-bare-h2c', label: 'proxy-balancer on node:http, HTTP/2 (h2c) targets', group: 'library', proxies: true, h2c: true },
  { id: 'lib-affinity', label: '+ cookie affinity, node:http', group: 'feature', proxies: true },
  { id: 'lib-access-log', label: "+ a 'response' event listener (access log), node:http", group: 'feature', proxies: true },
  { id: 'lib-peak-ewma', label: '+ peakEwma(), node:http', group: 'feature', proxies: true },
  // Defaults switched off: their cost is lib-bare's count minus theirs.
  { id: 'lib-no-tracing', label: '− tracing (tracing: false), node:http', group: 'feature', proxies: true },
  { id: 'lib-no-outlier', label: '− outlier detection (outlierDetection: false), node:http', group: 'feature', proxies: true },
  { id: 'lib-no-retry', label: '− retries (retry: false), node:http', group: 'feature', proxies: true },
  { id: 'lib-all', label: '+ all five (new-URL misses), node:http', group: 'feature', proxies: true, path: NO_STORE },
  // The library as an HTTP/2 server's request listener, beside the same over HTTPS/1.1, both loaded by h2load.
  { id: 'lib-h2', label: 'proxy-balancer, http2.createSecureServer, h2', group: 'tls', proxies: true, load: 'h2load-h2' },
  { id: 'lib-https1', label: 'proxy-balancer, https.createServer, HTTP/1.1', group: 'tls', proxies: true, load: 'h2load-h1' },
  { id: 'http-proxy-bare', label: 'http-proxy on node:http, keep-alive agent', group: 'peer', proxies: true },
  { id: 'http-proxy-express', label: 'http-proxy in Express 5, keep-alive agent', group: 'peer', proxies: true },
  { id: 'http-proxy-express4', label: 'http-proxy in Express 4, keep-alive agent', group: 'peer', proxies: true },
  { id: 'http-proxy-connect', label: 'http-proxy in Connect, keep-alive agent', group: 'peer', proxies: true },
  { id: 'httpxy-express', label: 'httpxy in Express 5, keep-alive agent', group: 'peer', proxies: true },
  { id: 'hpm-express', label: 'http-proxy-middleware 3 in Express 5', group: 'peer', proxies: true },
  { id: 'hpm4-express', label: 'http-proxy-middleware 4 (httpxy) in Express 5', group: 'peer', proxies: true },
  { id: 'ehp-express', label: 'express-http-proxy in Express 5', group: 'peer', proxies: true },
  { id: 'fastify', label: 'fastify + @fastify/http-proxy (undici)', group: 'peer', proxies: true },
];

/** The variant every ratio is relative to. */
export const BASELINE = 'minimal';
/** The plain balancer the `feature` variants are relative to. */
export const PLAIN = 'lib-bare';

export function variant(id: string): Variant {
  const found = VARIANTS.find((v) => v.id === id);
  if (found === undefined) throw new Error(`unknown bench variant ${JSON.stringify(id)}; known: ${VARIANTS.map((v) => v.id).join(', ')}`);
  return found;
}
