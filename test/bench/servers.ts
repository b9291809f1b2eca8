import fastifyHttpProxy from '@fastify/http-proxy';
import express from 'express';
import expressHttpProxy from 'express-http-proxy';
import Fastify from 'fastify';
import http, { type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Redis } from 'ioredis';
import { loadBalance, redisStore, responseCache, tieredStore, type CacheStore } from 'proxy-balancer';
import { BODY, listen, RESPONSE_HEADERS } from './backends.js';

export interface Running {
  port: number;
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

function inExpress(handler: express.RequestHandler | RequestListener): express.Express {
  const app = express();
  app.use(handler as express.RequestHandler);
  return app;
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
    case 'http-proxy-bare':
      return listening(httpProxyHandler(targets));
    case 'http-proxy-express':
      return listening(inExpress(httpProxyHandler(targets)));
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
