import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { CachedResponse } from './store.js';

/** Cache-Control directives that matter to a shared cache, parsed once per message. */
export interface Directives {
  noStore: boolean;
  noCache: boolean;
  private: boolean;
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  onlyIfCached: boolean;
  /** Seconds, or -1 when absent. */
  maxAge: number;
  sMaxAge: number;
  maxStale: number;
  minFresh: number;
  staleWhileRevalidate: number;
  staleIfError: number;
}

const NONE: Directives = Object.freeze({
  noStore: false,
  noCache: false,
  private: false,
  public: false,
  mustRevalidate: false,
  proxyRevalidate: false,
  onlyIfCached: false,
  maxAge: -1,
  sMaxAge: -1,
  maxStale: -1,
  minFresh: -1,
  staleWhileRevalidate: -1,
  staleIfError: -1,
});

const QUOTES = /^"|"$/g;
const DIGITS = /^\d+$/;

/** Parses Cache-Control (RFC 9111 §5.2); unknown directives are ignored, bad numbers count as absent. */
export function parseCacheControl(header: string | string[] | undefined): Directives {
  if (header === undefined || header === '') return NONE;
  const text = Array.isArray(header) ? header.join(',') : header;
  const d: Directives = { ...NONE };
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value =
      eq === -1
        ? ''
        : part
            .slice(eq + 1)
            .trim()
            .replace(QUOTES, '');
    switch (name) {
      case 'no-store':
        d.noStore = true;
        break;
      // `no-cache="Set-Cookie"` (qualified) still means revalidate for a simple cache.
      case 'no-cache':
        d.noCache = true;
        break;
      case 'private':
        d.private = true;
        break;
      case 'public':
        d.public = true;
        break;
      case 'must-revalidate':
        d.mustRevalidate = true;
        break;
      case 'proxy-revalidate':
        d.proxyRevalidate = true;
        break;
      case 'only-if-cached':
        d.onlyIfCached = true;
        break;
      case 'max-age':
        d.maxAge = seconds(value);
        break;
      case 's-maxage':
        d.sMaxAge = seconds(value);
        break;
      // A bare max-stale accepts any staleness.
      case 'max-stale':
        d.maxStale = value === '' ? Number.MAX_SAFE_INTEGER : seconds(value);
        break;
      case 'min-fresh':
        d.minFresh = seconds(value);
        break;
      case 'stale-while-revalidate':
        d.staleWhileRevalidate = seconds(value);
        break;
      case 'stale-if-error':
        d.staleIfError = seconds(value);
        break;
    }
  }
  return d;
}

function seconds(value: string): number {
  if (value === '' || !DIGITS.test(value)) return -1;
  return Math.min(Number(value), 2 ** 31);
}

/** Statuses a cache may store without explicit freshness (RFC 9110 §15.1 "heuristically cacheable"). */
const HEURISTIC_STATUSES = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]);
/** Statuses this cache stores at all (206 partial content is not reassembled). */
const STORABLE_STATUSES = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]);
/** RFC 9111 §4.2.2 suggests 10% of the time since last modification; capped so a stale object cannot live for weeks. */
const HEURISTIC_FRACTION = 0.1;
const HEURISTIC_CAP = 24 * 3600_000;

export interface StoreDecision {
  /** Why not, for X-Cache/debug; undefined when storable. */
  refused: string | undefined;
  freshness: number;
}

/**
 * Whether a shared cache may store this response to this request (RFC 9111 §3, §3.5), and for how
 * long it is fresh (§4.2.1, §4.2.2).
 */
export function storability(
  req: IncomingMessage,
  requestCc: Directives,
  status: number,
  headers: IncomingHttpHeaders,
  cc: Directives,
  storeSetCookie: boolean,
  now: number,
): StoreDecision {
  const refuse = (refused: string): StoreDecision => ({ refused, freshness: 0 });
  if (!STORABLE_STATUSES.has(status)) return refuse(`status ${status}`);
  if (requestCc.noStore || cc.noStore) return refuse('no-store');
  if (cc.private) return refuse('private');
  if (headers.vary?.includes('*')) return refuse('vary *');
  if (!storeSetCookie && headers['set-cookie'] !== undefined) return refuse('set-cookie');
  if (req.headers.authorization !== undefined && !cc.public && !cc.mustRevalidate && cc.sMaxAge < 0) return refuse('authorization');
  const freshness = freshnessLifetime(status, headers, cc, now);
  const explicit = cc.sMaxAge >= 0 || cc.maxAge >= 0 || headers.expires !== undefined;
  if (!explicit && !cc.public && !HEURISTIC_STATUSES.has(status)) return refuse('no freshness information');
  return { refused: undefined, freshness };
}

/** Freshness lifetime in ms: s-maxage, else max-age, else Expires − Date, else a heuristic. */
export function freshnessLifetime(status: number, headers: IncomingHttpHeaders, cc: Directives, now: number): number {
  if (cc.sMaxAge >= 0) return cc.sMaxAge * 1000;
  if (cc.maxAge >= 0) return cc.maxAge * 1000;
  const date = parseDate(headers.date) ?? now;
  if (headers.expires !== undefined) {
    // An invalid Expires (e.g. "0") means already expired.
    const expires = parseDate(headers.expires);
    return expires === undefined ? 0 : Math.max(0, expires - date);
  }
  const lastModified = parseDate(headers['last-modified']);
  if (lastModified !== undefined && HEURISTIC_STATUSES.has(status)) {
    return Math.min(HEURISTIC_CAP, Math.max(0, (date - lastModified) * HEURISTIC_FRACTION));
  }
  return 0;
}

export function parseDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** current_age (RFC 9111 §4.2.3), ms. */
export function currentAge(entry: CachedResponse, now: number): number {
  const apparentAge = Math.max(0, entry.responseTime - entry.date);
  const correctedAgeValue = entry.ageValue * 1000 + (entry.responseTime - entry.requestTime);
  return Math.max(apparentAge, correctedAgeValue) + (now - entry.responseTime);
}

/** How a stored response may be used for a request now. */
export type Usability = 'fresh' | 'stale-while-revalidate' | 'revalidate' | 'stale-if-error-only';

/**
 * Decides between serving as is, serving stale while revalidating, or revalidating first,
 * honouring the request's own max-age, min-fresh and max-stale.
 */
export function usability(entry: CachedResponse, requestCc: Directives, now: number): { use: Usability; age: number } {
  const age = currentAge(entry, now);
  if (entry.noCache || requestCc.noCache) return { use: 'revalidate', age };
  let lifetime = entry.freshness;
  if (requestCc.maxAge >= 0) lifetime = Math.min(lifetime, requestCc.maxAge * 1000);
  const needed = requestCc.minFresh >= 0 ? requestCc.minFresh * 1000 : 0;
  if (age + needed < lifetime) return { use: 'fresh', age };
  const staleness = age - entry.freshness;
  if (!entry.mustRevalidate) {
    if (requestCc.maxStale >= 0 && staleness <= requestCc.maxStale * 1000) return { use: 'fresh', age };
    if (staleness < entry.staleWhileRevalidate) return { use: 'stale-while-revalidate', age };
  }
  return { use: 'revalidate', age };
}

/** Whether a stale response may stand in for an error now (stale-if-error, RFC 5861 §4). */
export function mayServeOnError(entry: CachedResponse, now: number): boolean {
  if (entry.mustRevalidate) return false;
  return currentAge(entry, now) - entry.freshness < entry.staleIfError;
}
