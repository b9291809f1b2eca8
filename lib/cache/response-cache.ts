import { isPromise } from '../promise.js';
import { mayHaveBody } from '../protect/reject.js';
import createDebug from 'debug';
import { LRUCache } from 'lru-cache';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { Capture, KEEP_ONLY, PASS, STORE, SWALLOW, type CaptureMode, type CaptureOwner } from './capture.js';
import { compressorFor, resolveCompress, type CompressOptions, type ResolvedCompress } from './compress.js';
import { NO_DIRECTIVES, parseCacheControl, type Directives } from './directives.js';
import { buildEntry, combineParts, headerValue, refreshEntry, withoutField, type EntryContext } from './entry.js';
import { defaultCacheKey, keyOfUrl, partialKey, requestTarget, variantKey, varyNames, type CacheKey } from './key.js';
import { memoryStore } from './memory-store.js';
import { sharedHeaders } from './private-cookie.js';
import { currentAge, mayServeOnError, responsePolicy, storability, usability, type ResponsePolicy, type StoreDecision } from './policy.js';
import { parseContentRange } from './range.js';
import { partialAnswers, serveEntry } from './serve.js';
import {
  appendCacheStatus,
  cacheIdentifier,
  CacheStatusMembers,
  COLLAPSED,
  COLLAPSED_IN_VAIN,
  markCacheStatus,
  NOT_COLLAPSED,
  type Collapsed,
  type Detail,
  type Forward,
} from './status.js';
import { entrySize, isVaryIndex, settle, type CachedResponse, type CacheEntry, type CacheStore } from './store.js';
import { guardStore, selfGuarded } from '../store-guard.js';
import { clampDelay } from '../timer.js';
import { integer, milliseconds, optionsObject, invalidOption } from '../validate.js';
import { clientGone } from '../proxy/client-gone.js';

const log = createDebug('proxy-balancer:cache');

/** Options of `responseCache()`. */
export interface ResponseCacheOptions {
  /** Bytes the default in-memory store may hold; default 67108864 (64 MiB). Ignored when `store` is given. */
  maxSize?: number;
  /** Largest response body stored, bytes; default 1048576 (1 MiB). Larger bodies stream through unbuffered and are not stored. */
  maxEntrySize?: number;
  /** Where entries live; default an in-memory LRU store of `maxSize` bytes. `redisStore(client)` shares them between instances. */
  store?: CacheStore;
  /** Primary cache key of a request; default `defaultCacheKey`: scheme, `Host`, path and query, plus any forwarding (and other unkeyed) headers the request carries. */
  key?: CacheKey;
  /**
   * Name this cache gives itself in the RFC 9211 `Cache-Status` member it appends to every response
   * it handles (`proxy-balancer; hit; ttl=42`, `proxy-balancer; fwd=uri-miss; stored`,
   * `proxy-balancer; fwd=uri-miss; detail=private`...); default 'proxy-balancer'; false for no Cache-Status.
   */
  cacheStatus?: string | false;
  /**
   * An extra response header reporting HIT, MISS, STALE, REVALIDATED or BYPASS, e.g. 'x-cache'
   * (MISS also for responses that will not be stored: Cache-Status tells them apart); default false
   * (none). Before Cache-Status, the default was 'x-cache'.
   */
  header?: string | false;
  /** Store responses that carry Set-Cookie; default false (they are usually per user). */
  storeSetCookie?: boolean;
  /**
   * Targeted cache-control fields this cache obeys (RFC 9213), lower-case, in precedence order: the
   * first one present with a valid value replaces Cache-Control and Expires for this cache (and
   * is still relayed). Default `['cdn-cache-control']`; `[]` for none. Put your own first to
   * address this cache alone, e.g. `['proxy-balancer-cache-control', 'cdn-cache-control']`.
   */
  targetedFields?: readonly string[];
  /**
   * Store a POST response that has explicit freshness and a Content-Location equal to its URL,
   * to answer later GETs of that URL (RFC 9110 §9.3.3); default false (few origins mean it).
   */
  storePost?: boolean;
  /** Milliseconds concurrent misses for one key wait for the first one's response before going upstream themselves; default 5000. */
  coalesceTimeout?: number;
  /** Milliseconds a stale entry is kept past its freshness, to be revalidated (ETag/Last-Modified) or served within a request's max-stale; default 3600000. */
  keepStale?: number;
  /** Compress uncompressed text-like responses for clients that accept it (br, gzip), cached per encoding; default false. */
  compress?: boolean | CompressOptions;
}

/** Cache counters, as in `lb.stats().cache`. */
export interface CacheStats {
  hits: number;
  misses: number;
  /** Stale entries served: stale-while-revalidate and stale-if-error. */
  stale: number;
  /** Stale entries confirmed by the upstream with 304. */
  revalidated: number;
  /** Requests the cache stayed out of (other methods, request no-store). */
  bypass: number;
  /** Responses stored. */
  stored: number;
  /** Misses that waited for another request's response instead of going upstream. */
  coalesced: number;
}

/** What the cache sends misses to: the proxy, or the rest of a middleware chain. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const kDetached = Symbol('proxy-balancer.detached');

/** Whether `req` is one the cache made itself to revalidate in the background: let it through untouched. */
export function isDetached(req: IncomingMessage): boolean {
  return (req as IncomingMessage & { [kDetached]?: true })[kDetached] === true;
}

/**
 * fetch: a GET miss others may wait for; range: a Range miss (nobody waits for a part);
 * revalidate: a stale entry checked upstream in the foreground; background: the same, detached;
 * unsafe: a method that invalidates; pass: relayed and not stored (a HEAD miss); bypass: relayed
 * untouched, watched only to add Cache-Status after the upstream's (another safe method, a
 * no-store request, a GET with a body).
 */
type Kind = 'fetch' | 'range' | 'revalidate' | 'background' | 'unsafe' | 'pass' | 'bypass';

/** The methods RFC 9110 §9.2.1 defines as safe; every other method invalidates on success (RFC 9111 §4.4). */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const PREFIX = 'responseCache: options';
const OPTIONS: readonly string[] = [
  'maxSize',
  'maxEntrySize',
  'store',
  'key',
  'cacheStatus',
  'header',
  'storeSetCookie',
  'targetedFields',
  'storePost',
  'coalesceTimeout',
  'keepStale',
  'compress',
];
/** How long a key whose response was not storable skips miss coalescing, ms. */
const HIT_FOR_PASS_MS = 10_000;

const NO_PRESET: ReadonlyMap<string, string> = new Map();

/** One request the cache is watching: its key, what it found stored, and why it went upstream. */
class Lookup extends Capture {
  freshness = 0;
  /** The directives the response is stored under (decided when its head is committed). */
  policy: ResponsePolicy | undefined;
  /** For a 206 being stored: the part it holds. */
  partial: CachedResponse['partial'];
  settle: (() => void) | undefined;
  /** The client's own If-None-Match / If-Modified-Since, set aside while the cache revalidates with its validators. */
  clientValidators: [string | undefined, string | undefined] = [undefined, undefined];
  /** Why the request went forward (Cache-Status `fwd`). */
  fwd: Forward = 'uri-miss';
  /** Whether it waited for another request's response first (Cache-Status `collapsed`). */
  collapsed: Collapsed = NOT_COLLAPSED;
  /** For a bypassed request, why (Cache-Status `detail`). */
  detail: Detail | '' = '';
  /** The Cache-Status member this cache appended to the response, kept out of what it stores. */
  member: string | undefined;
  /**
   * Header fields the app had set on the response before the cache (X-Powered-By, rate-limit
   * counters...): they belong to this exchange, not to the stored response, unless the upstream
   * replaced them.
   */
  readonly preset: ReadonlyMap<string, string>;
  constructor(
    owner: CaptureOwner,
    req: IncomingMessage,
    res: ServerResponse,
    limit: number,
    readonly kind: Kind,
    readonly key: string,
    readonly requestCc: Directives,
    /** The stored response being revalidated (or standing by for stale-if-error). */
    readonly stale: CachedResponse | undefined,
    readonly requestTime: number,
  ) {
    super(owner, req, res, limit);
    const names = res.getHeaderNames();
    this.preset = names.length === 0 ? NO_PRESET : new Map(names.map((name) => [name, String(res.getHeader(name))]));
  }
}

/**
 * An RFC 9111 shared cache in front of a handler (the balancer's proxy, or any middleware chain):
 * serves fresh hits without touching the handler, revalidates stale entries, coalesces concurrent
 * misses, serves stale on errors and while revalidating when the response allows it.
 */
export class ResponseCache implements CaptureOwner {
  readonly store: CacheStore;
  readonly #key: CacheKey;
  readonly #maxEntrySize: number;
  readonly #header: string | undefined;
  readonly #members: CacheStatusMembers | undefined;
  readonly #storeSetCookie: boolean;
  readonly #storePost: boolean;
  readonly #targets: readonly string[];
  readonly #coalesceTimeout: number;
  readonly #keepStale: number;
  readonly #compress: ResolvedCompress | undefined;
  readonly #inflight = new Map<string, Promise<void>>();
  // Keys whose last response could not be stored (Varnish's hit-for-pass): their misses go to the
  // origin side by side instead of queueing behind each other for a response that will not come.
  readonly #passing = new LRUCache<string, true>({ max: 10_000, ttl: HIT_FOR_PASS_MS });
  readonly #refreshing = new Set<string>();
  readonly #stats: CacheStats = { hits: 0, misses: 0, stale: 0, revalidated: 0, bypass: 0, stored: 0, coalesced: 0 };

  constructor(input: ResponseCacheOptions = {}) {
    const options = optionsObject(input, 'responseCache', OPTIONS) as ResponseCacheOptions;
    const maxEntrySize = options.maxEntrySize ?? 1024 * 1024;
    positiveInteger('maxEntrySize', maxEntrySize);
    if (options.maxSize !== undefined) positiveInteger('maxSize', options.maxSize);
    if (options.store !== undefined && typeof options.store?.get !== 'function') throw new TypeError('responseCache: options.store must be a CacheStore');
    if (options.key !== undefined && typeof options.key !== 'function') throw new TypeError('responseCache: options.key must be a function of the request');
    const header = options.header ?? false;
    if (header !== false && (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(header) || header.toLowerCase() === 'cache-status')) {
      throw new TypeError(`responseCache: options.header must be a header field name other than Cache-Status, or false, got ${String(header)}`);
    }
    const cacheStatus = options.cacheStatus ?? 'proxy-balancer';
    this.#members = cacheStatus === false ? undefined : new CacheStatusMembers(cacheIdentifier(cacheStatus));
    const store = options.store ?? memoryStore({ maxSize: options.maxSize });
    this.store = selfGuarded(store) ? store : guardStore(store, ['get', 'set', 'delete', 'deletePrefix'], 'cache store');
    this.#key = options.key ?? defaultCacheKey;
    this.#maxEntrySize = maxEntrySize;
    this.#header = header === false ? undefined : header.toLowerCase();
    this.#storeSetCookie = options.storeSetCookie ?? false;
    if (typeof this.#storeSetCookie !== 'boolean') invalidOption(PREFIX, 'storeSetCookie', 'a boolean', options.storeSetCookie);
    this.#storePost = options.storePost ?? false;
    if (typeof this.#storePost !== 'boolean') throw new TypeError(`responseCache: options.storePost must be a boolean, got ${String(options.storePost)}`);
    this.#targets = targetedFields(options.targetedFields);
    this.#coalesceTimeout = milliseconds(PREFIX, 'coalesceTimeout', options.coalesceTimeout ?? 5000, { integer: true });
    this.#keepStale = milliseconds(PREFIX, 'keepStale', options.keepStale ?? 3600_000, { integer: true });
    this.#compress = resolveCompress(options.compress);
  }

  /**
   * Serves `req` from the cache or hands it to `next` while watching the response. `replay` runs a
   * detached request through the same handler for background revalidation; without it, a
   * stale-while-revalidate entry is revalidated in the foreground instead.
   */
  handle(req: IncomingMessage, res: ServerResponse, next: Handler, replay?: Handler): void {
    if (isDetached(req)) return next(req, res);
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      this.#stats.bypass++;
      this.#label(res, 'BYPASS');
      if (!SAFE.has(method)) {
        const limit = this.#storePost && method === 'POST' ? this.#maxEntrySize : 0;
        new Lookup(this, req, res, limit, 'unsafe', this.#key(req), NO_DIRECTIVES, undefined, Date.now()).fwd = 'method';
      } else this.#bypass(req, res, 'method', '');
      next(req, res);
      return;
    }
    const requestCc = requestDirectives(req);
    // A GET with a body ("fat GET") is answered by a backend that may read the body, which is not in
    // the key: storing that answer would let one client's body shape everyone's.
    if (requestCc.noStore || mayHaveBody(req)) {
      this.#stats.bypass++;
      this.#label(res, 'BYPASS');
      this.#bypass(req, res, 'bypass', requestCc.noStore ? 'no-store' : 'request-body');
      next(req, res);
      return;
    }
    const key = this.#key(req);
    // An in-memory store answers at once: without a Vary index in the way, no callback is needed.
    const found = this.#get(key);
    if (!isPromise(found) && (found === undefined || !isVaryIndex(found))) {
      this.#decide(req, res, next, replay, key, key, requestCc, found, undefined);
      return;
    }
    this.#lookup(key, req, (entry, storeKey) => this.#decide(req, res, next, replay, key, storeKey, requestCc, entry, undefined), found);
  }

  /** Watches a request the cache stays out of, only to append its Cache-Status member after the upstream's own. */
  #bypass(req: IncomingMessage, res: ServerResponse, fwd: Forward, detail: Detail | ''): void {
    if (this.#members === undefined) return;
    const lookup = new Lookup(this, req, res, 0, 'bypass', '', NO_DIRECTIVES, undefined, 0);
    lookup.fwd = fwd;
    lookup.detail = detail;
  }

  /** Removes a URL's stored responses (every variant), or every URL under a prefix (`{ prefix: 'https://shop.example/products/' }`). */
  async purge(target: string | URL | { prefix: string }): Promise<number> {
    if (typeof target === 'object' && !(target instanceof URL)) {
      return this.store.deletePrefix(keyOfUrl(new URL(target.prefix)));
    }
    const key = keyOfUrl(new URL(String(target)));
    const removed = (await this.store.delete(key)) ? 1 : 0;
    return removed + (await this.store.deletePrefix(`${key}\u0001`));
  }

  stats(): CacheStats {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    await this.store.close?.();
  }

  // ---- lookup

  /** Finds the stored response for `req`: the entry at `key`, or the variant its Vary index selects; `then` also gets the key it lives at. */
  #lookup(
    key: string,
    req: IncomingMessage,
    then: (entry: CachedResponse | undefined, storeKey: string) => void,
    found: CacheEntry | undefined | Promise<CacheEntry | undefined> = this.#get(key),
  ): void {
    const withPrimary = (entry: CacheEntry | undefined): void => {
      if (entry === undefined || !isVaryIndex(entry)) return then(entry, key);
      const storeKey = variantKey(key, entry.vary, req);
      const variant = this.#get(storeKey);
      if (isPromise(variant))
        variant.then(
          (v) => then(v as CachedResponse | undefined, storeKey),
          () => then(undefined, storeKey),
        );
      else then(variant as CachedResponse | undefined, storeKey);
    };
    if (isPromise(found)) found.then(withPrimary, () => then(undefined, key));
    else withPrimary(found);
  }

  #get(key: string): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    try {
      return this.store.get(key);
    } catch (err) {
      log('store get failed: %s', (err as Error).message);
      return undefined;
    }
  }

  #decide(
    req: IncomingMessage,
    res: ServerResponse,
    next: Handler,
    replay: Handler | undefined,
    key: string,
    storeKey: string,
    requestCc: Directives,
    entry: CachedResponse | undefined,
    /** Why the request first missed, when it then waited for another request's response (collapsed). */
    collapsedFrom: Forward | undefined,
  ): void {
    const collapsed = collapsedFrom === undefined ? NOT_COLLAPSED : COLLAPSED_IN_VAIN;
    if (entry !== undefined) {
      const now = Date.now();
      const { use, age } = usability(entry, requestCc, now);
      if (use === 'fresh') {
        this.#stats.hits++;
        const members = this.#members;
        const member =
          members === undefined
            ? undefined
            : collapsedFrom === undefined
              ? members.hitWithTtl(entry.freshness, age)
              : members.forwarded(collapsedFrom, '', 0, COLLAPSED);
        serveEntry(req, res, entry, age, this.#header, 'HIT', member);
        return;
      }
      if (use === 'stale-while-revalidate' && replay !== undefined) {
        this.#stats.stale++;
        // Served without going forward: a hit, stale, which its negative ttl says (RFC 9211 §3).
        serveEntry(req, res, entry, age, this.#header, 'STALE', this.#members?.hitWithTtl(entry.freshness, age));
        this.#refreshInBackground(req, key, entry, replay);
        return;
      }
      if (requestCc.onlyIfCached) return gatewayTimeout(res);
      // `request` when the entry was fresh and only the request's own directives (no-cache, max-age, min-fresh) sent it forward.
      const fwd = requestCc !== NO_DIRECTIVES && usability(entry, NO_DIRECTIVES, now).use === 'fresh' ? 'request' : 'stale';
      this.#fetch(req, res, next, 'revalidate', key, requestCc, entry, fwd, collapsed);
      return;
    }
    // The primary key holds a Vary index when the lookup went on to a variant's key.
    const fwd = storeKey === key ? 'uri-miss' : 'vary-miss';
    if (req.method === 'GET' && req.headers.range !== undefined) return this.#fromPart(req, res, next, key, storeKey, requestCc, fwd);
    if (requestCc.onlyIfCached) return gatewayTimeout(res);
    const pending = req.method === 'GET' && collapsedFrom === undefined && !this.#passing.has(key) ? this.#inflight.get(key) : undefined;
    if (pending !== undefined) {
      this.#stats.coalesced++;
      void this.#waitFor(pending).then(() => {
        // A client that left while it waited must not become the next leader: nothing would settle it.
        if (clientGone(res)) return;
        this.#lookup(key, req, (found, at) => this.#decide(req, res, next, replay, key, at, requestCc, found, fwd));
      });
      return;
    }
    this.#fetch(req, res, next, req.method === 'GET' ? 'fetch' : 'pass', key, requestCc, undefined, fwd, collapsed);
  }

  /** A Range request without a complete stored response: answered from a stored part holding the range, else fetched. */
  #fromPart(req: IncomingMessage, res: ServerResponse, next: Handler, key: string, storeKey: string, requestCc: Directives, missed: Forward): void {
    const answer = (part: CacheEntry | undefined): void => {
      let fwd = missed;
      if (part !== undefined && !isVaryIndex(part)) {
        fwd = 'partial';
        if (partialAnswers(req, part)) {
          const { use, age } = usability(part, requestCc, Date.now());
          if (use === 'fresh') {
            this.#stats.hits++;
            serveEntry(req, res, part, age, this.#header, 'HIT', this.#members?.hitWithTtl(part.freshness, age));
            return;
          }
          fwd = 'stale';
        }
      }
      if (requestCc.onlyIfCached) return gatewayTimeout(res);
      this.#fetch(req, res, next, 'range', key, requestCc, undefined, fwd, NOT_COLLAPSED);
    };
    const found = this.#get(partialKey(storeKey));
    if (isPromise(found)) found.then(answer, () => answer(undefined));
    else answer(found);
  }

  #waitFor(pending: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, clampDelay(this.#coalesceTimeout))));
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
  }

  #fetch(
    req: IncomingMessage,
    res: ServerResponse,
    next: Handler,
    kind: Kind,
    key: string,
    requestCc: Directives,
    stale: CachedResponse | undefined,
    fwd: Forward,
    collapsed: Collapsed,
  ): void {
    const lookup = new Lookup(this, req, res, this.#maxEntrySize, kind, key, requestCc, stale, Date.now());
    lookup.fwd = fwd;
    lookup.collapsed = collapsed;
    if (stale !== undefined) lookup.clientValidators = addValidators(req, stale);
    if (kind === 'fetch' && !this.#passing.has(key) && !clientGone(res)) {
      const pending = new Promise<void>((resolve) => (lookup.settle = resolve));
      this.#inflight.set(key, pending);
      void pending.then(() => {
        if (this.#inflight.get(key) === pending) this.#inflight.delete(key);
      });
    }
    next(req, res);
  }

  #refreshInBackground(req: IncomingMessage, key: string, entry: CachedResponse, replay: Handler): void {
    if (this.#refreshing.has(key)) return;
    this.#refreshing.add(key);
    const detached = detachedExchange(req);
    const lookup = new Lookup(this, detached.req, detached.res, this.#maxEntrySize, 'background', key, NO_DIRECTIVES, entry, Date.now());
    lookup.settle = () => this.#refreshing.delete(key);
    addValidators(detached.req, entry);
    log('refreshing %s in the background', key);
    replay(detached.req, detached.res);
  }

  // ---- the response, as the capture sees it

  decide(capture: Capture): CaptureMode {
    const lookup = capture as Lookup;
    const res = lookup.res;
    const status = res.statusCode;
    const { kind, stale } = lookup;
    if (kind === 'bypass') {
      this.#report(lookup, lookup.detail);
      return PASS;
    }
    if (kind === 'unsafe') {
      const mode = this.#afterUnsafe(lookup, status);
      this.#report(lookup, mode === STORE ? 'stored' : '');
      return mode;
    }
    if (stale !== undefined && status === 304) return SWALLOW;
    if (stale !== undefined && status >= 500 && mayServeOnError(stale, Date.now())) return SWALLOW;
    if (kind !== 'background') {
      this.#stats.misses++;
      this.#label(res, 'MISS');
    }
    if (kind === 'pass') {
      this.#report(lookup, 'head');
      return PASS;
    }
    if (this.#compress !== undefined) this.#compressIfWanted(lookup);
    const decision = this.#storable(lookup, status);
    if (decision.refused !== undefined) {
      if (log.enabled) log('not storing %s (%d): %s', lookup.key, status, decision.refused);
      if (kind === 'fetch') this.#passing.set(lookup.key, true);
      this.#report(lookup, decision.refused);
      return kind === 'background' ? SWALLOW : PASS;
    }
    lookup.freshness = decision.freshness;
    if (kind !== 'background') this.#report(lookup, this.#kept(lookup, decision.freshness));
    return kind === 'background' ? KEEP_ONLY : STORE;
  }

  /**
   * Whether a storable response will be kept, as far as its head tells: `too-large` when its
   * Content-Length is past maxEntrySize, `no-validator` when it is never fresh and cannot be
   * revalidated (#save drops it). A body without Content-Length that outgrows maxEntrySize is
   * dropped after this head went out saying `stored`.
   */
  #kept(lookup: Lookup, freshness: number): Detail | 'stored' {
    const res = lookup.res;
    if (Number(res.getHeader('content-length')) > this.#maxEntrySize) return 'too-large';
    const cc = lookup.policy!.cc;
    const validated = res.getHeader('etag') !== undefined || res.getHeader('last-modified') !== undefined;
    const ttl = this.#retention(freshness, cc.staleWhileRevalidate * 1000, cc.staleIfError * 1000, validated, cc.noCache);
    return ttl > 0 ? 'stored' : 'no-validator';
  }

  /**
   * How long an entry is kept, ms: past its freshness while it can still serve (revalidated with
   * its validators, or within a request's max-stale). An entry never fresh and without validators
   * could only be refetched.
   */
  #retention(freshness: number, staleWhileRevalidate: number, staleIfError: number, validated: boolean, noCache: boolean): number {
    const useful = validated || (freshness > 0 && !noCache);
    return freshness + Math.max(staleWhileRevalidate, staleIfError, useful ? this.#keepStale : 0);
  }

  /** Appends this cache's Cache-Status member for a request that went forward, after any the upstream sent. */
  #report(lookup: Lookup, outcome: Detail | 'stored' | ''): void {
    if (this.#members === undefined) return;
    const member = this.#members.forwarded(lookup.fwd, outcome, 0, lookup.collapsed);
    lookup.member = member;
    appendCacheStatus(lookup.res, member);
  }

  /** Whether the response now committed may be stored, under which directives, and for how long it is fresh. */
  #storable(lookup: Lookup, status: number): StoreDecision {
    const headers = sharedHeaders(lookup.res) as unknown as http.IncomingHttpHeaders;
    if (status === 206) {
      // A part is kept only with a complete length to place it in, and only when a part was asked for.
      lookup.partial = lookup.req.headers.range === undefined ? undefined : parseContentRange(headers['content-range']);
      if (lookup.partial === undefined) return { refused: 'content-range', freshness: 0 };
    }
    const policy = responsePolicy(headers, this.#targets);
    lookup.policy = policy;
    return storability(lookup.req, lookup.requestCc, status, headers, policy, this.#storeSetCookie, Date.now());
  }

  /**
   * An unsafe method's response: a non-error one invalidates the URL and its same-origin
   * Location/Content-Location (RFC 9111 §4.4). With `storePost`, a POST response with explicit
   * freshness whose Content-Location is its own URL is then stored for GETs (RFC 9110 §9.3.3).
   */
  #afterUnsafe(lookup: Lookup, status: number): CaptureMode {
    if (status >= 400) return PASS;
    this.#invalidate(lookup);
    if (!this.#storePost || lookup.req.method !== 'POST') return PASS;
    const location = lookup.res.getHeader('content-location');
    if (typeof location !== 'string' || this.#urlKey(lookup.req, location) !== lookup.key) return PASS;
    const headers = sharedHeaders(lookup.res) as unknown as http.IncomingHttpHeaders;
    const policy = responsePolicy(headers, this.#targets);
    const cc = policy.cc;
    if (cc.maxAge < 0 && cc.sMaxAge < 0 && (policy.targeted || headers.expires === undefined)) return PASS;
    const decision = storability(lookup.req, NO_DIRECTIVES, status, headers, policy, this.#storeSetCookie, Date.now());
    if (decision.refused !== undefined) return PASS;
    lookup.policy = policy;
    lookup.freshness = decision.freshness;
    return STORE;
  }

  complete(capture: Capture, body: Buffer | undefined): void {
    const lookup = capture as Lookup;
    try {
      this.#completed(lookup, body);
    } finally {
      lookup.settle?.();
      lookup.settle = undefined;
      if (lookup.kind === 'background') lookup.res.emit('close');
    }
  }

  #completed(lookup: Lookup, body: Buffer | undefined): void {
    const { res, stale, kind } = lookup;
    if (lookup.mode === SWALLOW && stale !== undefined) {
      if (res.statusCode === 304) {
        const refreshed = refreshEntry(stale, res, lookup.requestTime, this.#context(lookup));
        this.#stats.revalidated++;
        // A Set-Cookie the 304 brought is this client's: answered, not kept (unless storeSetCookie).
        const kept = this.#storeSetCookie || res.getHeader('set-cookie') === undefined ? refreshed : withoutField(refreshed, 'set-cookie');
        this.#save(lookup.key, lookup.req, kept);
        if (kind !== 'background') this.#answer(lookup, refreshed, 'REVALIDATED', 304);
        return;
      }
      if (res.statusCode >= 500 && kind !== 'background') {
        this.#stats.stale++;
        log('upstream answered %d: serving stale %s', res.statusCode, lookup.key);
        this.#answer(lookup, stale, 'STALE', res.statusCode);
      }
      return;
    }
    if (body === undefined || !lookup.mode?.keep || lookup.policy === undefined) return;
    const declared = res.getHeader('content-length');
    if (declared !== undefined && Number(declared) !== body.length) return;
    const partial = lookup.partial;
    if (partial !== undefined && body.length !== partial.end - partial.start + 1) return;
    const entry = buildEntry(res, body, lookup.requestTime, lookup.freshness, lookup.policy, this.#context(lookup), partial);
    this.#save(lookup.key, lookup.req, entry);
  }

  #context(lookup: Lookup): EntryContext {
    return { own: this.#header, member: lookup.member, preset: lookup.preset, targets: this.#targets };
  }

  #compressIfWanted(lookup: Lookup): void {
    const res = lookup.res;
    const compressor = compressorFor(
      this.#compress!,
      lookup.req.headers['accept-encoding'],
      res.statusCode,
      res.getHeaders(),
      (name, value) => res.setHeader(name, value),
      (name) => res.removeHeader(name),
    );
    if (compressor !== undefined) lookup.transformWith(compressor);
  }

  /** Answers from storage after going forward: `fwdStatus` is what the upstream said (304, or the error a stale entry stands in for). */
  #answer(lookup: Lookup, entry: CachedResponse, label: string, fwdStatus: number): void {
    const res = lookup.res;
    lookup.release();
    restoreValidators(lookup.req, lookup.clientValidators);
    if (clientGone(res) || res.headersSent) return;
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const now = Date.now();
    serveEntry(lookup.req, res, entry, currentAge(entry, now), this.#header, label, this.#members?.forwarded(lookup.fwd, '', fwdStatus, lookup.collapsed));
  }

  #save(key: string, req: IncomingMessage, entry: CachedResponse): void {
    const names = varyNames(headerValue(entry.headers, 'vary'));
    const validated = entry.etag !== undefined || entry.lastModified !== undefined;
    const ttl = this.#retention(entry.freshness, entry.staleWhileRevalidate, entry.staleIfError, validated, entry.noCache);
    if (ttl <= 0) return;
    const size = entrySize(entry);
    if (size > this.#maxEntrySize + 64 * 1024) return;
    const storeKey = names.length === 0 ? key : variantKey(key, names, req);
    if (names.length > 0) {
      entry.varyValues = Object.fromEntries(names.map((n) => [n, String(req.headers[n] ?? '')]));
      void settle(this.store.set(key, { vary: names }, ttl, 64), log);
    }
    if (entry.partial !== undefined) {
      void this.#savePart(storeKey, entry, ttl);
      return;
    }
    this.#stats.stored++;
    if (log.enabled) log('stored %s (%d bytes, fresh %d ms)', storeKey, entry.body.length, entry.freshness);
    void settle(this.store.set(storeKey, entry, ttl, size), log);
  }

  /** Stores a part next to the variant's complete response, combined with the part already there when they fit (RFC 9111 §3.4). */
  async #savePart(storeKey: string, part: CachedResponse, ttl: number): Promise<void> {
    const at = partialKey(storeKey);
    let older: CacheEntry | undefined;
    try {
      older = await this.#get(at);
    } catch {
      older = undefined;
    }
    const combined = combineParts(older === undefined || isVaryIndex(older) ? undefined : older, part);
    const size = entrySize(combined);
    if (size > this.#maxEntrySize + 64 * 1024) return;
    this.#stats.stored++;
    if (combined.partial === undefined) {
      if (log.enabled) log('combined parts into %s (%d bytes)', storeKey, combined.body.length);
      await settle(this.store.set(storeKey, combined, ttl, size), log);
      await settle(this.store.delete(at), log);
      return;
    }
    if (log.enabled) log('stored part %s (bytes %d-%d/%d)', at, combined.partial.start, combined.partial.end, combined.partial.total);
    await settle(this.store.set(at, combined, ttl, size), log);
  }

  /** The key of the GET entry of `location`, resolved against the request's own URL; undefined when unparseable. */
  #urlKey(req: IncomingMessage, location: string): string | undefined {
    const base = `${(req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'}://${req.headers.host ?? ''}${requestTarget(req)}`;
    try {
      const url = new URL(location, base);
      // Only the same origin: a response must not touch another site's entries (RFC 9111 §4.4).
      return url.origin === new URL(base).origin ? keyOfUrl(url) : undefined;
    } catch {
      return undefined;
    }
  }

  #invalidate(lookup: Lookup): void {
    const keys = [lookup.key];
    for (const name of ['location', 'content-location']) {
      const value = lookup.res.getHeader(name);
      const key = typeof value === 'string' ? this.#urlKey(lookup.req, value) : undefined;
      if (key !== undefined) keys.push(key);
    }
    // The key, every variant and every stored part of it.
    for (const key of keys) {
      void settle(this.store.delete(key), log);
      void settle(this.store.deletePrefix(`${key}\u0001`), log);
    }
    if (log.enabled) log('invalidated %s after %s', keys.join(', '), lookup.req.method);
  }

  #label(res: ServerResponse, label: string): void {
    markCacheStatus(res, label);
    if (this.#header !== undefined && !res.headersSent) res.setHeader(this.#header, label);
  }
}

function positiveInteger(name: string, value: unknown): void {
  integer(PREFIX, name, value, { min: 1 });
}

const PRAGMA_NO_CACHE = parseCacheControl('no-cache');

function requestDirectives(req: IncomingMessage): Directives {
  const cc = req.headers['cache-control'];
  if (cc !== undefined) return parseCacheControl(cc);
  // HTTP/1.0 clients say it with Pragma (RFC 9111 §5.4).
  return req.headers.pragma?.includes('no-cache') ? PRAGMA_NO_CACHE : NO_DIRECTIVES;
}

function targetedFields(input: unknown): readonly string[] {
  if (input === undefined) return ['cdn-cache-control'];
  if (!Array.isArray(input) || !input.every((name) => typeof name === 'string' && /^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(name))) {
    throw new TypeError(`responseCache: options.targetedFields must be an array of header field names, got ${String(input)}`);
  }
  return input.map((name: string) => name.toLowerCase());
}

function gatewayTimeout(res: ServerResponse): void {
  res.writeHead(504, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end('Gateway Timeout\n');
}

/**
 * Replaces the client's validators with the stored response's, so a 304 refers to what we hold.
 * Returns the client's own, to judge later whether the client itself gets a 304.
 */
function addValidators(req: IncomingMessage, stale: CachedResponse): [string | undefined, string | undefined] {
  const own: [string | undefined, string | undefined] = [req.headers['if-none-match'], req.headers['if-modified-since']];
  delete req.headers['if-none-match'];
  delete req.headers['if-modified-since'];
  // Both validators when there are both (RFC 9111 §4.3.1): the entity-tag decides, the date helps servers without ETags.
  if (stale.etag !== undefined) req.headers['if-none-match'] = stale.etag;
  if (stale.lastModified !== undefined) req.headers['if-modified-since'] = stale.lastModified;
  return own;
}

function restoreValidators(req: IncomingMessage, [ifNoneMatch, ifModifiedSince]: [string | undefined, string | undefined]): void {
  delete req.headers['if-none-match'];
  delete req.headers['if-modified-since'];
  if (ifNoneMatch !== undefined) req.headers['if-none-match'] = ifNoneMatch;
  if (ifModifiedSince !== undefined) req.headers['if-modified-since'] = ifModifiedSince;
}

/**
 * A request with no client behind it, for background revalidation: the original's method-less
 * copy (GET, same URL, headers, mount information), already ended, and a response that goes nowhere.
 */
function detachedExchange(original: IncomingMessage): { req: IncomingMessage; res: ServerResponse } {
  const req = new http.IncomingMessage(new net.Socket());
  Object.setPrototypeOf(req, Object.getPrototypeOf(original));
  (req as IncomingMessage & { [kDetached]?: true })[kDetached] = true;
  req.method = 'GET';
  req.url = original.url;
  req.headers = { ...original.headers };
  // A refresh fetches the whole response, whatever part the request that triggered it wanted.
  delete req.headers['cache-control'];
  delete req.headers.pragma;
  delete req.headers.range;
  delete req.headers['if-range'];
  const mounted = original as IncomingMessage & { baseUrl?: string; originalUrl?: string };
  Object.assign(req, { baseUrl: mounted.baseUrl, originalUrl: mounted.originalUrl });
  req.push(null);
  // A complete message: an IncomingMessage that ends incomplete reports 'aborted', and the proxy would abort.
  req.complete = true;
  const res = new http.ServerResponse(req);
  return { req, res };
}
