import type { CachedResponse } from 'proxy-balancer';

/** A stored 200 response received just now, fresh for `freshness` ms: what a store test puts in. */
export function cachedEntry(body: Buffer, freshness = 60_000): CachedResponse {
  const now = Date.now();
  return {
    status: 200,
    headers: ['content-type', 'application/octet-stream', 'content-length', String(body.length)],
    body,
    requestTime: now,
    responseTime: now,
    date: now,
    ageValue: 0,
    freshness,
    staleWhileRevalidate: 0,
    staleIfError: 0,
    noCache: false,
    mustRevalidate: false,
    etag: '"e"',
    lastModified: undefined,
    varyValues: undefined,
  };
}
