import fastifyHttpProxy from '@fastify/http-proxy';
import connect from 'connect';
import express from 'express';
import express4 from 'express4';
import expressHttpProxy from 'express-http-proxy';
import Fastify from 'fastify';
import http, { type RequestListener } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { createProxyMiddleware as createProxyMiddleware4 } from 'hpm4';
import { createProxyServer as createHttpxyServer } from 'httpxy';
import { Redis } from 'ioredis';
import {
  httpHealthCheck,
  leastConnections,
  loadBalance,
  peakEwma,
  type LoadBalanceOptions,
  redisStore,
  responseCache,
  tieredStore,
  type CacheStore,
} from 'proxy-balancer';
import { generateCertificate } from '../../examples/certificate.js';
import { BODY, listen, RESPONSE_HEADERS } from './backends.js';

export interface Running {
  port: number;
  /** Served over TLS (https: URL). */
  secure?: boolean;
  /** Client connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** Cycles through `items`: the round robin every peer is given. */
function roundRobin<T>(items: readonly T[]): () => T {
  let i = 0;
  return () => {
    const item = items[i]!;
    i = i + 1 === items.length ? 0 : i + 1;
    return item;
  };
}

function badGateway(res: http.ServerResponse): void {
  if (!res.headersSent) res.writeHead(502);
  res.end();
}

/** The hand-written ceiling: node:http client with a keep-alive agent, round robin, nothing else. */
function minimalProxy(targets: readonly string[]): RequestListener {
  const agent = new http.Agent({ keepAlive: true });
  const next = roundRobin(targets.map((t) => new URL(t)).map((u) => ({ hostname: u.hostname, port: Number(u.port) })));
  return (req, res) => {
    const { hostname, port } = next();
    const proxyReq = http.request({ hostname, port, agent, method: req.method, path: req.url, headers: req.headers }, (proxyRes) => {
      res.writeHead(proxyRes.statusCode!, proxyRes.headers);
      proxyRes.pipe(res);
    });
    proxyReq.on('error', () => badGateway(res));
    req.pipe(proxyReq);
  };
}

const fromMemory: RequestListener = (_req, res) => {
  res.writeHead(200, RESPONSE_HEADERS);
  res.end(BODY);
};

function expressFromMemory(): express.Express {
  const app = express();
  app.use((_req, res) => {
    res.set('cache-control', RESPONSE_HEADERS['cache-control']).type('text/plain').send(BODY);
  });
  return app;
}

/** http-proxy as its README shows it: one server, the target passed per request, a keep-alive agent. */
function httpProxyHandler(targets: readonly string[]): RequestListener {
  const proxy = httpProxy.createProxyServer({ agent: new http.Agent({ keepAlive: true }) });
  proxy.on('error', (_err, _req, res) => badGateway(res as http.ServerResponse));
  const next = roundRobin(targets);
  return (req, res) => proxy.web(req, res, { target: next() });
}

/** httpxy (http-proxy's fork that http-proxy-middleware 4 runs on), used as http-proxy is above. */
function httpxyHandler(targets: readonly string[]): RequestListener {
  const proxy = createHttpxyServer({ agent: new http.Agent({ keepAlive: true }) });
  proxy.on('error', (_err, _req, res) => badGateway(res as http.ServerResponse));
  const next = roundRobin(targets);
  return (req, res) => void proxy.web(req, res, { target: next() }).catch(() => badGateway(res));
}

function inExpress(handler: express.RequestHandler | RequestListener): express.Express {
  const app = express();
  app.use(handler as express.RequestHandler);
  return app;
}

function inExpress4(handler: RequestListener): RequestListener {
  const app = express4();
  app.use(handler as never);
  return app as unknown as RequestListener;
}

function inConnect(handler: RequestListener): RequestListener {
  const app = connect();
  app.use(handler as connect.SimpleHandleFunction);
  return app as unknown as RequestListener;
}

async function listening(listener: RequestListener): Promise<Running> {
  const { port, connections, close } = await listen(http.createServer(listener));
  return { port, connections, close };
}

/** A cache hit variant whose store lives in the Redis at BENCH_REDIS_URL, each variant under its own prefix. */
async function withRedisCache(id: string, targets: readonly string[], tiered: boolean): Promise<Running> {
  const url = process.env.BENCH_REDIS_URL;
  if (url === undefined) throw new Error(`bench variant ${id} needs BENCH_REDIS_URL (run.ts starts a redis-server)`);
  const client = new Redis(url, { lazyConnect: true });
  await client.connect();
  const l2 = redisStore(client, { prefix: `bench:${id}:${process.pid}:` });
  const tier = tiered ? tieredStore({ l2 }) : undefined;
  await tier?.ready();
  const store: CacheStore = tier ?? l2;
  const running = await listening(loadBalance({ targets, cache: responseCache({ store }) }));
  return {
    ...running,
    close: async () => {
      await running.close();
      await store.close?.();
      await client.quit();
    },
  };
}

let certificate: { key: string; cert: string } | undefined;

/** `listener` on HTTPS: HTTP/2 with the HTTP/1.1 fallback (`allowHTTP1`), or `https.createServer` (HTTP/1.1 only). */
async function listeningTls(listener: RequestListener, h2: boolean): Promise<Running> {
  certificate ??= generateCertificate();
  const server = h2 ? http2.createSecureServer({ ...certificate, allowHTTP1: true }, listener as never) : https.createServer(certificate, listener);
  const { port, connections, close } = await listen(server);
  return { port, secure: true, connections, close };
}

/** A rate limit no benchmark reaches: the limiter runs, and never refuses. */
const NEVER_REFUSING = { limit: 1_000_000_000, windowMs: 1000 };

/**
 * The library with one feature on (or all of them, `features: 'all'`), on bare node:http: the
 * bench's per-feature variants, each relative to lib-bare so a feature's cost shows.
 */
function withFeature(targets: readonly string[], feature: 'metrics' | 'rate-limit' | 'least-conn' | 'health' | 'cache-miss' | 'all'): RequestListener {
  const all = feature === 'all';
  const options: LoadBalanceOptions = { targets };
  if (all || feature === 'rate-limit') options.rateLimit = NEVER_REFUSING;
  if (all || feature === 'least-conn') options.strategy = leastConnections();
  if (all || feature === 'health') options.healthCheck = httpHealthCheck({ interval: 1000 });
  if (all || feature === 'cache-miss') options.cache = responseCache();
  const lb = loadBalance(options);
  if (all || feature === 'metrics') lb.metrics(); // recording starts with the first call
  return lb;
}

/**
 * Every feature on at once, for `--soak`: cache, metrics (scraped at `/metrics`), a rate limit
 * that never refuses, active health checks every second, retries of upstream 503s, least connections.
 */
function soakBalancer(targets: readonly string[]): RequestListener {
  const lb = loadBalance({
    targets,
    strategy: leastConnections(),
    cache: responseCache(),
    rateLimit: NEVER_REFUSING,
    healthCheck: httpHealthCheck({ interval: 1000 }),
    retry: { retries: 2, onStatus: [503] },
  });
  const metrics = lb.metrics();
  return (req, res) => (req.url === '/metrics' ? metrics(req, res) : lb(req, res));
}

/** Starts variant `id` on 127.0.0.1 proxying to `targets`. */
export async function startVariant(id: string, targets: readonly string[]): Promise<Running> {
  switch (id) {
    case 'minimal':
      return listening(minimalProxy(targets));
    case 'node-memory':
      return listening(fromMemory);
    case 'express-memory':
      return listening(expressFromMemory());
    case 'lib-bare':
      return listening(loadBalance({ targets }));
    case 'lib-bare-h2c':
      return listening(loadBalance({ targets: targets.map((url) => url.replace(/^http:/, 'h2c:')) }));
    case 'lib-affinity':
      return listening(loadBalance({ targets, affinity: { secret: 'bench-affinity-secret-32-bytes!!' } }));
    case 'lib-access-log': {
      const lb = loadBalance({ targets });
      lb.on('response', () => {});
      return listening(lb);
    }
    case 'lib-peak-ewma':
      return listening(loadBalance({ targets, strategy: peakEwma() }));
    case 'lib-no-tracing':
      return listening(loadBalance({ targets, tracing: false }));
    case 'lib-no-outlier':
      return listening(loadBalance({ targets, outlierDetection: false }));
    case 'lib-no-retry':
      return listening(loadBalance({ targets, retry: false }));
    case 'lib-express':
      return listening(inExpress(loadBalance({ targets })));
    case 'lib-bare-cache':
      return listening(loadBalance({ targets, cache: responseCache() }));
    case 'lib-express-cache':
      return listening(inExpress(loadBalance({ targets, cache: responseCache() })));
    case 'lib-bare-cache-redis':
      return withRedisCache(id, targets, false);
    case 'lib-bare-cache-tiered':
      return withRedisCache(id, targets, true);
    case 'lib-metrics':
    case 'lib-rate-limit':
    case 'lib-least-conn':
    case 'lib-health':
    case 'lib-cache-miss':
    case 'lib-cache-hot-miss':
    case 'lib-all':
      return listening(withFeature(targets, (id === 'lib-cache-hot-miss' ? 'cache-miss' : id.slice('lib-'.length)) as Parameters<typeof withFeature>[1]));
    case 'lib-h2':
      return listeningTls(loadBalance({ targets }), true);
    case 'lib-https1':
      return listeningTls(loadBalance({ targets }), false);
    case 'lib-soak':
      return listening(soakBalancer(targets));
    case 'http-proxy-bare':
      return listening(httpProxyHandler(targets));
    case 'http-proxy-express':
      return listening(inExpress(httpProxyHandler(targets)));
    case 'lib-express4':
      return listening(inExpress4(loadBalance({ targets })));
    case 'http-proxy-express4':
      return listening(inExpress4(httpProxyHandler(targets)));
    case 'lib-connect':
      return listening(inConnect(loadBalance({ targets })));
    case 'http-proxy-connect':
      return listening(inConnect(httpProxyHandler(targets)));
    case 'httpxy-express':
      return listening(inExpress(httpxyHandler(targets)));
    case 'hpm4-express': {
      const next = roundRobin(targets);
      return listening(inExpress(createProxyMiddleware4({ target: targets[0], router: () => next() }) as unknown as RequestListener));
    }
    case 'hpm-express': {
      const next = roundRobin(targets);
      return listening(inExpress(createProxyMiddleware({ target: targets[0], router: () => next() })));
    }
    case 'ehp-express': {
      const next = roundRobin(targets);
      return listening(inExpress(expressHttpProxy(() => next(), { memoizeHost: false })));
    }
    case 'fastify': {
      const next = roundRobin(targets);
      const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
      await app.register(fastifyHttpProxy, { upstream: targets[0]!, replyOptions: { getUpstream: () => next() } });
      let accepted = 0;
      app.server.on('connection', () => accepted++);
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as AddressInfo).port, connections: () => accepted, close: () => app.close() };
    }
    default:
      throw new Error(`unknown bench variant ${JSON.stringify(id)}`);
  }
}
