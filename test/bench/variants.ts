/**
 * The variants the HTTP benchmark compares. This module only names them; `servers.ts` builds them
 * (it imports Express, fastify and the peers, so only the server processes load it).
 */
export type Group = 'ceiling' | 'library' | 'peer';

export interface Variant {
  id: string;
  label: string;
  group: Group;
  /** Whether requests reach the backends (false: answered from memory, or cache hits). */
  proxies: boolean;
  /** Needs a redis-server, whose URL the server process gets as BENCH_REDIS_URL. */
  redis?: boolean;
}

export const VARIANTS: readonly Variant[] = [
  { id: 'minimal', label: 'minimal node:http proxy, keep-alive, round robin', group: 'ceiling', proxies: true },
  { id: 'node-memory', label: 'node:http answering 1 KB from memory', group: 'ceiling', proxies: false },
  { id: 'express-memory', label: 'Express 5 answering 1 KB from memory', group: 'ceiling', proxies: false },
  { id: 'lib-bare', label: 'proxy-balancer on node:http', group: 'library', proxies: true },
  { id: 'lib-express', label: 'proxy-balancer in Express 5', group: 'library', proxies: true },
  { id: 'lib-bare-cache', label: 'proxy-balancer cache hits, node:http', group: 'library', proxies: false },
  { id: 'lib-express-cache', label: 'proxy-balancer cache hits, Express 5', group: 'library', proxies: false },
  { id: 'lib-bare-cache-redis', label: 'proxy-balancer cache hits, redisStore only, node:http', group: 'library', proxies: false, redis: true },
  { id: 'lib-bare-cache-tiered', label: 'proxy-balancer cache hits, tieredStore (memory + Redis), node:http', group: 'library', proxies: false, redis: true },
  { id: 'http-proxy-bare', label: 'http-proxy on node:http, keep-alive agent', group: 'peer', proxies: true },
  { id: 'http-proxy-express', label: 'http-proxy in Express 5, keep-alive agent', group: 'peer', proxies: true },
  { id: 'hpm-express', label: 'http-proxy-middleware in Express 5', group: 'peer', proxies: true },
  { id: 'ehp-express', label: 'express-http-proxy in Express 5', group: 'peer', proxies: true },
  { id: 'fastify', label: 'fastify + @fastify/http-proxy (undici)', group: 'peer', proxies: true },
];

/** The variant every ratio is relative to. */
export const BASELINE = 'minimal';

export function variant(id: string): Variant {
  const found = VARIANTS.find((v) => v.id === id);
  if (found === undefined) throw new Error(`unknown bench variant ${JSON.stringify(id)}; known: ${VARIANTS.map((v) => v.id).join(', ')}`);
  return found;
}
