import type { ServerResponse } from 'node:http';

/** What the response cache did with a request: served it (HIT, STALE, REVALIDATED), sent it upstream (MISS), or stayed out (BYPASS). */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED' | 'BYPASS';

const kCacheStatus = Symbol('proxy-balancer.cacheStatus');

/** Notes the cache's verdict on the response, for the `response` event (whether or not a header reports it). */
export function markCacheStatus(res: ServerResponse, status: string): void {
  (res as ServerResponse & { [kCacheStatus]?: string })[kCacheStatus] = status;
}

/** The cache's verdict on `res`, if a cache saw it. */
export function cacheStatusOf(res: ServerResponse): CacheStatus | undefined {
  return (res as ServerResponse & { [kCacheStatus]?: CacheStatus })[kCacheStatus];
}
