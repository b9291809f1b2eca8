import type http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { loadBalance, responseCache, type LoadBalancer, type ResponseCacheMiddleware, type ResponseCacheOptions } from 'proxy-balancer';
import { closeAll, listen, request, type Reply, type TestServer } from './helpers.js';

export type Route = (req: IncomingMessage, res: ServerResponse) => void;

/** What the origin saw of one request. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * A real origin with a handler per path that counts and records every request it gets (method,
 * URL, headers), behind a real balancer with a response cache: the setup of every cache test.
 */
export interface CachedOrigin {
  origin: TestServer;
  front: TestServer;
  lb: LoadBalancer;
  cache: ResponseCacheMiddleware;
  /** Registers the handler of `path` (without query) and returns the path. */
  route(path: string, handler: Route): string;
  /** Requests the origin got for `path`. */
  hits(path: string): number;
  /** What the origin saw for `path`, oldest first. */
  seen(path: string): Seen[];
  get(path: string, headers?: http.OutgoingHttpHeaders, method?: string, body?: string): Promise<Reply>;
  close(): Promise<void>;
}

export async function cachedOrigin(options: ResponseCacheOptions = {}): Promise<CachedOrigin> {
  const routes = new Map<string, Route>();
  const log = new Map<string, Seen[]>();
  const origin = await listen((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const seen = log.get(path) ?? [];
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    log.set(path, seen);
    const handler = routes.get(path);
    if (handler === undefined) {
      res.statusCode = 404;
      res.end('no route');
      return;
    }
    handler(req, res);
  });
  const cache = responseCache({ maxSize: 4 * 1024 * 1024, ...options });
  const lb = loadBalance({ targets: [origin.url], cache });
  const front = await listen(lb);
  return {
    origin,
    front,
    lb,
    cache,
    route(path, handler) {
      routes.set(path, handler);
      return path;
    },
    hits: (path) => log.get(path)?.length ?? 0,
    seen: (path) => log.get(path) ?? [],
    get: (path, headers = {}, method = 'GET', body = undefined) =>
      request(`${front.url}${path}`, { headers: body === undefined ? headers : { 'content-length': Buffer.byteLength(body), ...headers }, method, body }),
    async close() {
      await lb.close();
      await closeAll(front, origin);
    },
  };
}

/** An HTTP-date `seconds` from now (negative: in the past). */
export function httpDate(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toUTCString();
}
