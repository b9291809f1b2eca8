import type { IncomingMessage, ServerResponse } from 'node:http';
import { ResponseCache, type CacheStats, type Handler, type ResponseCacheOptions } from './response-cache.js';
import type { CacheStore } from './store.js';
import { markFactory } from '../validate.js';

type Next = (err?: unknown) => void;

/**
 * A response cache: Connect/Express middleware in front of whatever follows it, or the `cache`
 * option of `loadBalance()` (which then caches what it proxies).
 */
export interface ResponseCacheMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: Next): void;
  /** The cache itself (shared with `loadBalance({ cache })`). */
  readonly cache: ResponseCache;
  readonly store: CacheStore;
  /** Removes a URL's stored responses (all variants), or all under `{ prefix }`; resolves how many keys went. */
  purge(target: string | URL | { prefix: string }): Promise<number>;
  stats(): CacheStats;
  /** Puts the cache in front of a plain `(req, res)` handler (bare node:http), with background revalidation. */
  wrap(handler: Handler): Handler;
}

/** Creates an RFC 9111 shared response cache. Throws a TypeError naming any invalid option. */
export function responseCache(options: ResponseCacheOptions = {}): ResponseCacheMiddleware {
  const cache = new ResponseCache(options);
  const middleware = (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    // Express gives each request its app; replaying a detached request through it refreshes stale entries in the background.
    const app = (req as IncomingMessage & { app?: { handle?: (req: IncomingMessage, res: ServerResponse, done: Next) => void } }).app;
    const replay = typeof app?.handle === 'function' ? (r: IncomingMessage, s: ServerResponse) => app.handle!(r, s, ignore) : undefined;
    cache.handle(req, res, () => next(), replay);
  };
  return Object.defineProperties(middleware, {
    cache: { value: cache, enumerable: true },
    store: { value: cache.store, enumerable: true },
    purge: { value: (target: string | URL | { prefix: string }) => cache.purge(target), enumerable: true },
    stats: { value: () => cache.stats(), enumerable: true },
    wrap: {
      value:
        (handler: Handler): Handler =>
        (req, res) =>
          cache.handle(req, res, handler, handler),
      enumerable: true,
    },
  }) as ResponseCacheMiddleware;
}

markFactory(responseCache, 'responseCache()');

function ignore(): void {}
