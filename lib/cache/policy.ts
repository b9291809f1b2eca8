import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { parseCacheControl, parseTargeted, type Directives } from './directives.js';
import { parseHttpDate } from './http-date.js';
import { isEventStream } from '../proxy/event-stream.js';
import type { Detail } from './status.js';
import type { CachedResponse } from './store.js';

/** Statuses a cache may store without explicit freshness (RFC 9110 §15.1 "heuristically cacheable"). */
const HEURISTIC_STATUSES = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);
/**
 * Final statuses whose caching requirements this cache implements: those RFC 9110 defines. With
 * `must-understand`, these are stored despite `no-store`; any other is not stored at all (§5.2.2.3).
 */
const UNDERSTOOD_STATUSES = new Set([
  200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
  416, 417, 421, 422, 426, 500, 501, 502, 503, 504, 505,
]);
/** RFC 9111 §4.2.2 suggests 10% of the time since last modification; capped so a stale object cannot live for weeks. */
const HEURISTIC_FRACTION = 0.1;
const HEURISTIC_CAP = 24 * 3600_000;

/** The directives that govern a response for this cache, and where they came from. */
export interface ResponsePolicy {
  cc: Directives;
  /** A targeted field (RFC 9213) replaced Cache-Control and Expires. */
  targeted: boolean;
}

/**
 * The response's directives for this cache: the first targeted field of `targets` (e.g.
 * `CDN-Cache-Control`) that is present, non-empty and valid replaces Cache-Control and Expires
 * (RFC 9213 §2.2); otherwise Cache-Control.
 */
export function responsePolicy(headers: IncomingHttpHeaders, targets: readonly string[]): ResponsePolicy {
  for (const name of targets) {
    const value = headers[name] as unknown;
    if (value === undefined) continue;
    // An app may have set a field to a number; what came from upstream is always text.
    const parsed = parseTargeted(typeof value === 'number' ? String(value) : (value as string | string[]));
    if (parsed !== undefined) return { cc: parsed, targeted: true };
  }
  return { cc: parseCacheControl(headers['cache-control']), targeted: false };
}

export interface StoreDecision {
  /** Why not, the `detail` of the Cache-Status member (a constant: nothing is formatted per request); undefined when storable. */
  refused: Detail | undefined;
  freshness: number;
}

/**
 * Whether a shared cache may store this response to this request (RFC 9111 §3, §3.5), and for how
 * long it is fresh (§4.2.1, §4.2.2). Any final status may be stored with explicit freshness; without
 * it, only heuristically cacheable statuses or `public` responses.
 */
export function storability(
  req: IncomingMessage,
  requestCc: Directives,
  status: number,
  headers: IncomingHttpHeaders,
  policy: ResponsePolicy,
  storeSetCookie: boolean,
  responseTime: number,
): StoreDecision {
  const cc = policy.cc;
  if (status < 200 || status === 304) return refuse('status');
  if (cc.mustUnderstand && !UNDERSTOOD_STATUSES.has(status)) return refuse('must-understand');
  if (requestCc.noStore || (cc.noStore && !cc.mustUnderstand)) return refuse('no-store');
  if (cc.private) return refuse('private');
  if (varyStar(headers.vary)) return refuse('vary-star');
  if (!storeSetCookie && headers['set-cookie'] !== undefined) return refuse('set-cookie');
  // Kept, it would hold back concurrent clients (coalescing) until it ends, and replay old events.
  if (isEventStream(headers['content-type'])) return refuse('event-stream');
  if (req.headers.authorization !== undefined && !cc.public && !cc.mustRevalidate && cc.sMaxAge < 0) return refuse('authorization');
  const explicit = cc.sMaxAge >= 0 || cc.maxAge >= 0 || (!policy.targeted && headers.expires !== undefined);
  if (!explicit && !cc.public && !HEURISTIC_STATUSES.has(status)) return refuse('no-freshness');
  return { refused: undefined, freshness: freshnessLifetime(status, headers, policy, responseTime) };
}

function refuse(refused: Detail): StoreDecision {
  return { refused, freshness: 0 };
}

function varyStar(vary: unknown): boolean {
  if (vary === undefined) return false;
  return (Array.isArray(vary) ? vary.join(',') : String(vary)).includes('*');
}

/**
 * Freshness lifetime in ms (RFC 9111 §4.2.1): s-maxage, else max-age, else Expires − Date (an
 * invalid Expires is already expired), else a heuristic for heuristically cacheable statuses or
 * `public` responses with Last-Modified (§4.2.2).
 */
export function freshnessLifetime(status: number, headers: IncomingHttpHeaders, policy: ResponsePolicy, responseTime: number): number {
  const cc = policy.cc;
  if (cc.sMaxAge >= 0) return cc.sMaxAge * 1000;
  if (cc.maxAge >= 0) return cc.maxAge * 1000;
  const date = parseHttpDate(headers.date) ?? responseTime;
  if (!policy.targeted && headers.expires !== undefined) {
    const expires = parseHttpDate(headers.expires);
    return expires === undefined ? 0 : Math.max(0, expires - date);
  }
  const lastModified = parseHttpDate(headers['last-modified']);
  if (lastModified !== undefined && (HEURISTIC_STATUSES.has(status) || cc.public)) {
    return Math.min(HEURISTIC_CAP, Math.max(0, (date - lastModified) * HEURISTIC_FRACTION));
  }
  return 0;
}

/**
 * age_value (RFC 9111 §5.1) in seconds: the first member of the field, if it is a non-negative
 * integer (clamped to 2^31); anything else is ignored (0).
 */
export function parseAge(value: unknown): number {
  if (value === undefined) return 0;
  const text = String(Array.isArray(value) ? (value[0] ?? '') : value);
  let start = 0;
  let end = text.indexOf(',');
  if (end === -1) end = text.length;
  while (start < end && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 0x20 || text.charCodeAt(end - 1) === 0x09)) end--;
  if (start === end) return 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return 0;
    n = Math.min(n * 10 + d, 2 ** 31);
  }
  return n;
}

/**
 * current_age (RFC 9111 §4.2.3), ms:
 *   apparent_age = max(0, response_time − date_value)
 *   response_delay = response_time − request_time
 *   corrected_age_value = age_value + response_delay
 *   corrected_initial_age = max(apparent_age, corrected_age_value)
 *   resident_time = now − response_time
 *   current_age = corrected_initial_age + resident_time
 */
export function currentAge(entry: CachedResponse, now: number): number {
  const apparentAge = Math.max(0, entry.responseTime - entry.date);
  const responseDelay = entry.responseTime - entry.requestTime;
  const correctedAgeValue = entry.ageValue * 1000 + responseDelay;
  const correctedInitialAge = Math.max(apparentAge, correctedAgeValue);
  const residentTime = now - entry.responseTime;
  return correctedInitialAge + residentTime;
}

/** How a stored response may be used for a request now. */
export type Usability = 'fresh' | 'stale-while-revalidate' | 'revalidate';

/**
 * Decides between serving as is, serving stale while revalidating, or revalidating first,
 * honouring the request's own max-age, min-fresh and max-stale. A response whose age reached its
 * freshness lifetime is stale: an upstream `Age` at or above the lifetime makes it stale on arrival.
 */
export function usability(entry: CachedResponse, requestCc: Directives, now: number): { use: Usability; age: number } {
  const age = currentAge(entry, now);
  if (entry.noCache || requestCc.noCache) return { use: 'revalidate', age };
  const staleness = age - entry.freshness;
  if (requestCc.maxAge >= 0 && age > requestCc.maxAge * 1000) return { use: 'revalidate', age };
  const needed = requestCc.minFresh >= 0 ? requestCc.minFresh * 1000 : 0;
  if (age + needed < entry.freshness) return { use: 'fresh', age };
  if (staleness < 0 || entry.mustRevalidate) return { use: 'revalidate', age };
  if (requestCc.maxStale >= 0 && staleness <= requestCc.maxStale * 1000) return { use: 'fresh', age };
  if (staleness < entry.staleWhileRevalidate) return { use: 'stale-while-revalidate', age };
  return { use: 'revalidate', age };
}

/** Whether a stale response may stand in for an error now (stale-if-error, RFC 5861 §4). */
export function mayServeOnError(entry: CachedResponse, now: number): boolean {
  if (entry.mustRevalidate || entry.noCache) return false;
  return currentAge(entry, now) - entry.freshness < entry.staleIfError;
}
