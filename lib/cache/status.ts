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

/**
 * Why a request went forward, the `fwd` parameter of RFC 9211 §2.2: `bypass` (the cache stays out:
 * a no-store request, a GET with a body), `method` (POST, PUT, DELETE, OPTIONS...), `uri-miss`
 * (nothing stored for the URL), `vary-miss` (responses stored for the URL, none for these request
 * fields), `request` (a fresh response the request's directives refused), `stale`, `partial` (a
 * stored part without the requested range).
 */
export type Forward = 'bypass' | 'method' | 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale' | 'partial';

/**
 * Why a forwarded response is not stored, sent as `detail` (RFC 9211 §2.8): its status, no-store,
 * private, Set-Cookie, a body past maxEntrySize, no freshness information... or, for a request the
 * cache bypassed, why it did.
 */
export type Detail =
  | 'status'
  | 'must-understand'
  | 'no-store'
  | 'private'
  | 'vary-star'
  | 'set-cookie'
  | 'event-stream'
  | 'authorization'
  | 'no-freshness'
  | 'no-validator'
  | 'content-range'
  | 'too-large'
  | 'head'
  | 'request-body';

const FORWARDS: readonly Forward[] = ['bypass', 'method', 'uri-miss', 'vary-miss', 'miss', 'request', 'stale', 'partial'];
const FORWARD_INDEX = new Map(FORWARDS.map((fwd, i) => [fwd, i]));
/** Index 0: nothing to say (a stored response is `stored`, which is index 1). */
const OUTCOMES: readonly (Detail | 'stored' | '')[] = [
  '',
  'stored',
  'status',
  'must-understand',
  'no-store',
  'private',
  'vary-star',
  'set-cookie',
  'event-stream',
  'authorization',
  'no-freshness',
  'no-validator',
  'content-range',
  'too-large',
  'head',
  'request-body',
];
const OUTCOME_INDEX = new Map(OUTCOMES.map((outcome, i) => [outcome, i]));

/** Whether a request was collapsed into another's (RFC 9211 §2.6): no, yes and the response was reused, yes but it went forward itself. */
export const NOT_COLLAPSED = 0;
export const COLLAPSED = 1;
export const COLLAPSED_IN_VAIN = 2;
export type Collapsed = typeof NOT_COLLAPSED | typeof COLLAPSED | typeof COLLAPSED_IN_VAIN;

/** Whether `name` can be sent as an sf-token (RFC 8941 §3.3.4); anything else printable goes as an sf-string. */
const TOKEN = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/;
const PRINTABLE = /^[\x20-\x7e]+$/;

/** Validates the cache's identifier: a non-empty printable ASCII string (a Token or String, RFC 9211 §2). */
export function cacheIdentifier(name: unknown): string {
  if (typeof name !== 'string' || !PRINTABLE.test(name)) {
    throw new TypeError(`responseCache: options.cacheStatus must be a non-empty printable ASCII name or false, got ${String(name)}`);
  }
  return TOKEN.test(name) ? name : `"${name.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * The members this cache appends to Cache-Status (RFC 9211), built once per combination: the hot
 * path picks a finished string, it does not format one. A hit's `ttl` changes every second, so a hit
 * is the constant prefix plus the number.
 */
export class CacheStatusMembers {
  /** `name; hit`: a response served from storage, without ttl. */
  readonly hit: string;
  readonly #hitTtl: string;
  readonly #id: string;
  // Keyed by a number made of the parts, so a lookup allocates nothing.
  readonly #forwarded = new Map<number, string>();

  constructor(id: string) {
    this.#id = id;
    this.hit = `${id}; hit`;
    this.#hitTtl = `${id}; hit; ttl=`;
  }

  /** A response served from storage, `ttl` its remaining freshness in seconds (negative: served stale). */
  hitWithTtl(freshnessMs: number, ageMs: number): string {
    return this.#hitTtl + Math.floor((freshnessMs - ageMs) / 1000);
  }

  /**
   * A request that went forward, and why; `outcome` is `stored`, a Detail, or '' for neither.
   * `fwdStatus` (0 for none) is sent when the cache answered from storage after forwarding (a 304
   * that revalidated it, an error it stood in for): otherwise the next hop's status is the response's own.
   */
  forwarded(fwd: Forward, outcome: Detail | 'stored' | '', fwdStatus = 0, collapsed: Collapsed = NOT_COLLAPSED): string {
    const f = FORWARD_INDEX.get(fwd)!;
    const o = OUTCOME_INDEX.get(outcome)!;
    const key = ((fwdStatus * 3 + collapsed) * OUTCOMES.length + o) * FORWARDS.length + f;
    let member = this.#forwarded.get(key);
    if (member === undefined) {
      member = `${this.#id}; fwd=${fwd}`;
      if (fwdStatus !== 0) member += `; fwd-status=${fwdStatus}`;
      if (collapsed === COLLAPSED) member += '; collapsed';
      else if (collapsed === COLLAPSED_IN_VAIN) member += '; collapsed=?0';
      if (outcome === 'stored') member += '; stored';
      else if (outcome !== '') member += `; detail=${outcome}`;
      this.#forwarded.set(key, member);
    }
    return member;
  }
}

/**
 * Appends `member` to the Cache-Status the response already carries (an upstream cache's): the
 * list runs from the cache nearest the origin to the one nearest the client (RFC 9211 §2), so
 * ours, nearer the client, goes last.
 */
export function appendCacheStatus(res: ServerResponse, member: string): void {
  if (res.headersSent) return;
  const prior = res.getHeader('cache-status');
  if (prior === undefined) res.setHeader('cache-status', member);
  else res.setHeader('cache-status', `${Array.isArray(prior) ? prior.join(', ') : String(prior)}, ${member}`);
}

/** A stored Cache-Status value without the member this cache appended to it (the upstream's part, if any). */
export function withoutOwnMember(value: string, member: string | undefined): string | undefined {
  if (member === undefined) return value;
  if (value === member) return undefined;
  return value.endsWith(`, ${member}`) ? value.slice(0, -member.length - 2) : value;
}
