import createDebug from 'debug';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { Capture, KEEP_ONLY, pairs, PASS, STORE, SWALLOW, type CaptureMode, type CaptureOwner } from './capture.js';
import { compressorFor, resolveCompress, type CompressOptions, type ResolvedCompress } from './compress.js';
import { defaultCacheKey, keyOfUrl, variantKey, varyNames, type CacheKey } from './key.js';
import { memoryStore } from './memory-store.js';
import { sharedHeaders } from './private-cookie.js';
import { freshnessLifetime, mayServeOnError, parseCacheControl, parseDate, storability, usability, type Directives } from './policy.js';
import { serveEntry } from './serve.js';
import { markCacheStatus } from './status.js';
import { entrySize, isVaryIndex, type CachedResponse, type CacheEntry, type CacheStore } from './store.js';
import { integer } from '../validate.js';

const log = createDebug('proxy-balancer:cache');

/** Options of `responseCache()`. */
export interface ResponseCacheOptions {
  /** Bytes the default in-memory store may hold; default 67108864 (64 MiB). Ignored when `store` is given. */
  maxSize?: number;
  /** Largest response body stored, bytes; default 1048576 (1 MiB). Larger bodies stream through unbuffered and are not stored. */
  maxEntrySize?: number;
  /** Where entries live; default an in-memory LRU store of `maxSize` bytes. `redisStore(client)` shares them between instances. */
  store?: CacheStore;
  /** Primary cache key of a request; default `GET <scheme>://<host><path+query>` plus any forwarding headers. */
  key?: CacheKey;
  /** Response header reporting HIT, MISS, STALE, REVALIDATED or BYPASS; default 'x-cache'; false for none. */
  header?: string | false;
  /** Store responses that carry Set-Cookie; default false (they are usually per user). */
  storeSetCookie?: boolean;
  /** Milliseconds concurrent misses for one key wait for the first one's response before going upstream themselves; default 5000. */
  coalesceTimeout?: number;
  /** Milliseconds a stale entry that can be revalidated (ETag/Last-Modified) is kept past its freshness; default 3600000. */
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
  /** Requests the cache stayed out of (other methods, no-store, Range). */
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

type Kind = 'fetch' | 'revalidate' | 'background' | 'unsafe' | 'pass';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const NOT_STORED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'age', 'proxy-connection', 'trailer', 'upgrade']);
/** Header fields a 304 may update in the stored response (RFC 9111 §3.2: all but these). */
const NOT_UPDATED_BY_304 = new Set(['content-length', 'content-encoding', 'content-type', 'content-range', 'transfer-encoding']);

const NO_PRESET: ReadonlyMap<string, string> = new Map();

/** One request the cache is watching: its key, what it found stored, and why it went upstream. */
class Lookup extends Capture {
  freshness = 0;
  settle: (() => void) | undefined;
  /** The client's own If-None-Match / If-Modified-Since, set aside while the cache revalidates with its validators. */
  clientValidators: [string | undefined, string | undefined] = [undefined, undefined];
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
  readonly #storeSetCookie: boolean;
  readonly #coalesceTimeout: number;
  readonly #keepStale: number;
  readonly #compress: ResolvedCompress | undefined;
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #refreshing = new Set<string>();
  readonly #stats: CacheStats = { hits: 0, misses: 0, stale: 0, revalidated: 0, bypass: 0, stored: 0, coalesced: 0 };

  constructor(options: ResponseCacheOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('responseCache: options must be an object');
    const maxEntrySize = options.maxEntrySize ?? 1024 * 1024;
    positiveInteger('maxEntrySize', maxEntrySize);
    if (options.maxSize !== undefined) positiveInteger('maxSize', options.maxSize);
    if (options.store !== undefined && typeof options.store?.get !== 'function') throw new TypeError('responseCache: options.store must be a CacheStore');
    if (options.key !== undefined && typeof options.key !== 'function') throw new TypeError('responseCache: options.key must be a function of the request');
    const header = options.header ?? 'x-cache';
    if (header !== false && (typeof header !== 'string' || header === '')) throw new TypeError('responseCache: options.header must be a header name or false');
    this.store = options.store ?? memoryStore({ maxSize: options.maxSize });
    this.#key = options.key ?? defaultCacheKey;
    this.#maxEntrySize = maxEntrySize;
    this.#header = header === false ? undefined : header.toLowerCase();
    this.#storeSetCookie = options.storeSetCookie ?? false;
    this.#coalesceTimeout = options.coalesceTimeout ?? 5000;
    this.#keepStale = options.keepStale ?? 3600_000;
    positiveInteger('coalesceTimeout', this.#coalesceTimeout, true);
    positiveInteger('keepStale', this.#keepStale, true);
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
      if (UNSAFE.has(method)) new Lookup(this, req, res, 0, 'unsafe', this.#key(req), parseCacheControl(undefined), undefined, Date.now());
      next(req, res);
      return;
    }
    const requestCc = requestDirectives(req);
    if (requestCc.noStore || req.headers.range !== undefined) {
      this.#stats.bypass++;
      this.#label(res, 'BYPASS');
      next(req, res);
      return;
    }
    const key = this.#key(req);
    this.#lookup(key, req, (entry) => this.#decide(req, res, next, replay, key, requestCc, entry, false));
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

  #lookup(key: string, req: IncomingMessage, then: (entry: CachedResponse | undefined) => void): void {
    const found = this.#get(key);
    const withPrimary = (entry: CacheEntry | undefined): void => {
      if (entry === undefined || !isVaryIndex(entry)) return then(entry);
      const variant = this.#get(variantKey(key, entry.vary, req));
      if (isPromise(variant))
        variant.then(
          (v) => then(v as CachedResponse | undefined),
          () => then(undefined),
        );
      else then(variant as CachedResponse | undefined);
    };
    if (isPromise(found)) found.then(withPrimary, () => then(undefined));
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
    requestCc: Directives,
    entry: CachedResponse | undefined,
    coalesced: boolean,
  ): void {
    if (entry !== undefined) {
      const { use, age } = usability(entry, requestCc, Date.now());
      if (use === 'fresh') {
        this.#stats.hits++;
        serveEntry(req, res, entry, age, this.#header, 'HIT');
        return;
      }
      if (use === 'stale-while-revalidate' && replay !== undefined) {
        this.#stats.stale++;
        serveEntry(req, res, entry, age, this.#header, 'STALE');
        this.#refreshInBackground(req, key, entry, replay);
        return;
      }
      if (requestCc.onlyIfCached) return gatewayTimeout(res);
      this.#fetch(req, res, next, 'revalidate', key, requestCc, entry);
      return;
    }
    if (requestCc.onlyIfCached) return gatewayTimeout(res);
    const pending = req.method === 'GET' && !coalesced ? this.#inflight.get(key) : undefined;
    if (pending !== undefined) {
      this.#stats.coalesced++;
      void this.#waitFor(pending).then(() => this.#lookup(key, req, (found) => this.#decide(req, res, next, replay, key, requestCc, found, true)));
      return;
    }
    this.#fetch(req, res, next, req.method === 'GET' ? 'fetch' : 'pass', key, requestCc, undefined);
  }

  #waitFor(pending: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#coalesceTimeout)));
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
  }

  #fetch(req: IncomingMessage, res: ServerResponse, next: Handler, kind: Kind, key: string, requestCc: Directives, stale: CachedResponse | undefined): void {
    const lookup = new Lookup(this, req, res, this.#maxEntrySize, kind, key, requestCc, stale, Date.now());
    if (stale !== undefined) lookup.clientValidators = addValidators(req, stale);
    if (kind === 'fetch') {
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
    const lookup = new Lookup(this, detached.req, detached.res, this.#maxEntrySize, 'background', key, parseCacheControl(undefined), entry, Date.now());
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
    if (kind === 'unsafe') {
      if (status < 400) this.#invalidate(lookup);
      return PASS;
    }
    if (stale !== undefined && status === 304) return SWALLOW;
    if (stale !== undefined && status >= 500 && mayServeOnError(stale, Date.now())) return SWALLOW;
    if (kind !== 'background') {
      this.#stats.misses++;
      this.#label(res, 'MISS');
    }
    if (kind === 'pass') return PASS;
    if (this.#compress !== undefined) this.#compressIfWanted(lookup);
    const headers = sharedHeaders(res);
    const cc = parseCacheControl(headers['cache-control'] as string | undefined);
    const incoming = headers as unknown as http.IncomingHttpHeaders;
    const decision = storability(lookup.req, lookup.requestCc, status, incoming, cc, this.#storeSetCookie, Date.now());
    if (decision.refused !== undefined) {
      if (log.enabled) log('not storing %s: %s', lookup.key, decision.refused);
      return kind === 'background' ? SWALLOW : PASS;
    }
    lookup.freshness = decision.freshness;
    return kind === 'background' ? KEEP_ONLY : STORE;
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
        const refreshed = refreshEntry(stale, res, lookup.requestTime, this.#header, lookup.preset);
        this.#stats.revalidated++;
        this.#save(lookup.key, lookup.req, refreshed);
        if (kind !== 'background') this.#answer(lookup, refreshed, 'REVALIDATED');
        return;
      }
      if (res.statusCode >= 500 && kind !== 'background') {
        this.#stats.stale++;
        log('upstream answered %d: serving stale %s', res.statusCode, lookup.key);
        this.#answer(lookup, stale, 'STALE');
      }
      return;
    }
    if (body === undefined || !lookup.mode?.keep) return;
    const declared = res.getHeader('content-length');
    if (declared !== undefined && Number(declared) !== body.length) return;
    this.#save(lookup.key, lookup.req, buildEntry(res, body, lookup.requestTime, lookup.freshness, this.#header, lookup.preset));
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

  #answer(lookup: Lookup, entry: CachedResponse, label: string): void {
    const res = lookup.res;
    lookup.release();
    restoreValidators(lookup.req, lookup.clientValidators);
    if (res.destroyed || res.headersSent) return;
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    serveEntry(lookup.req, res, entry, Math.max(0, Date.now() - entry.responseTime), this.#header, label);
  }

  #save(key: string, req: IncomingMessage, entry: CachedResponse): void {
    const names = varyNames(headerValue(entry.headers, 'vary'));
    const retain = entry.etag !== undefined || entry.lastModified !== undefined ? this.#keepStale : 0;
    const ttl = entry.freshness + Math.max(entry.staleWhileRevalidate, entry.staleIfError, retain);
    if (ttl <= 0) return;
    const size = entrySize(entry);
    if (size > this.#maxEntrySize + 64 * 1024) return;
    const storeKey = names.length === 0 ? key : variantKey(key, names, req);
    if (names.length > 0) {
      entry.varyValues = Object.fromEntries(names.map((n) => [n, String(req.headers[n] ?? '')]));
      void settle(this.store.set(key, { vary: names }, ttl, 64));
    }
    this.#stats.stored++;
    if (log.enabled) log('stored %s (%d bytes, fresh %d ms)', storeKey, entry.body.length, entry.freshness);
    void settle(this.store.set(storeKey, entry, ttl, size));
  }

  #invalidate(lookup: Lookup): void {
    const keys = [lookup.key];
    const base = `${(lookup.req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'}://${lookup.req.headers.host ?? ''}`;
    for (const name of ['location', 'content-location']) {
      const value = lookup.res.getHeader(name);
      if (typeof value !== 'string') continue;
      try {
        const url = new URL(value, base);
        // Only the same origin: a response must not purge another site's entries (RFC 9111 §4.4).
        if (url.origin === new URL(base).origin) keys.push(keyOfUrl(url));
      } catch {
        // an unparseable Location invalidates nothing
      }
    }
    for (const key of keys) {
      void settle(this.store.delete(key));
      void settle(this.store.deletePrefix(`${key}\u0001`));
    }
    if (log.enabled) log('invalidated %s after %s', keys.join(', '), lookup.req.method);
  }

  #label(res: ServerResponse, label: string): void {
    markCacheStatus(res, label);
    if (this.#header !== undefined && !res.headersSent) res.setHeader(this.#header, label);
  }
}

function positiveInteger(name: string, value: unknown, allowZero = false): void {
  integer('responseCache: options', name, value, { min: allowZero ? 0 : 1 });
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

async function settle(work: unknown): Promise<void> {
  try {
    await work;
  } catch (err) {
    log('store write failed: %s', (err as Error).message);
  }
}

function requestDirectives(req: IncomingMessage): Directives {
  const cc = req.headers['cache-control'];
  if (cc !== undefined) return parseCacheControl(cc);
  // HTTP/1.0 clients say it with Pragma (RFC 9111 §5.4).
  return req.headers.pragma?.includes('no-cache') ? parseCacheControl('no-cache') : parseCacheControl(undefined);
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
  if (stale.etag !== undefined) req.headers['if-none-match'] = stale.etag;
  else if (stale.lastModified !== undefined) req.headers['if-modified-since'] = stale.lastModified;
  return own;
}

function restoreValidators(req: IncomingMessage, [ifNoneMatch, ifModifiedSince]: [string | undefined, string | undefined]): void {
  delete req.headers['if-none-match'];
  delete req.headers['if-modified-since'];
  if (ifNoneMatch !== undefined) req.headers['if-none-match'] = ifNoneMatch;
  if (ifModifiedSince !== undefined) req.headers['if-modified-since'] = ifModifiedSince;
}

function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

/** Whether a header field is the exchange's own: the cache's outcome header, or one the app set that the upstream left alone. */
function ownField(name: string, value: unknown, own: string | undefined, preset: ReadonlyMap<string, string>): boolean {
  return name === own || preset.get(name) === String(value);
}

/** The response's header fields as stored. */
function flatHeaders(res: ServerResponse, body: Buffer, own: string | undefined, preset: ReadonlyMap<string, string>): string[] {
  const flat: string[] = [];
  for (const [name, value] of Object.entries(sharedHeaders(res))) {
    if (NOT_STORED.has(name) || value === undefined || ownField(name, value, own, preset)) continue;
    // HTTP/2's compat API lists ':status' among the headers of a written head.
    if (name === 'content-length' || name.charCodeAt(0) === 0x3a) continue;
    if (Array.isArray(value)) for (const v of value) flat.push(name, String(v));
    else flat.push(name, String(value));
  }
  flat.push('content-length', String(body.length));
  return flat;
}

function buildEntry(
  res: ServerResponse,
  body: Buffer,
  requestTime: number,
  freshness: number,
  own: string | undefined,
  preset: ReadonlyMap<string, string>,
): CachedResponse {
  const headers = flatHeaders(res, body, own, preset);
  return describe(res.statusCode, headers, body, requestTime, Date.now(), freshness);
}

function describe(status: number, headers: string[], body: Buffer, requestTime: number, responseTime: number, freshness: number): CachedResponse {
  const cc = parseCacheControl(headerValue(headers, 'cache-control'));
  return {
    status,
    headers,
    body,
    requestTime,
    responseTime,
    date: parseDate(headerValue(headers, 'date')) ?? responseTime,
    ageValue: Number(headerValue(headers, 'age') ?? 0) || 0,
    freshness,
    staleWhileRevalidate: Math.max(0, cc.staleWhileRevalidate) * 1000,
    staleIfError: Math.max(0, cc.staleIfError) * 1000,
    noCache: cc.noCache,
    // s-maxage implies proxy-revalidate for a shared cache (RFC 9111 §5.2.2.10).
    mustRevalidate: cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge >= 0,
    etag: headerValue(headers, 'etag'),
    lastModified: headerValue(headers, 'last-modified'),
    varyValues: undefined,
  };
}

/** A stored response updated by a 304 (RFC 9111 §4.3.4): new header values, new times, same body. */
function refreshEntry(
  stale: CachedResponse,
  res: ServerResponse,
  requestTime: number,
  own: string | undefined,
  preset: ReadonlyMap<string, string>,
): CachedResponse {
  const updates = sharedHeaders(res);
  const headers: string[] = [];
  for (let i = 0; i < stale.headers.length; i += 2) {
    const name = stale.headers[i]!;
    if (updates[name] === undefined || NOT_UPDATED_BY_304.has(name)) headers.push(name, stale.headers[i + 1]!);
  }
  for (const [name, value] of Object.entries(updates)) {
    if (value === undefined || NOT_STORED.has(name) || NOT_UPDATED_BY_304.has(name) || ownField(name, value, own, preset)) continue;
    if (Array.isArray(value)) for (const v of value) headers.push(name, String(v));
    else headers.push(name, String(value));
  }
  const now = Date.now();
  const incoming = Object.fromEntries(pairs(headers)) as http.IncomingHttpHeaders;
  const freshness = freshnessLifetime(stale.status, incoming, parseCacheControl(incoming['cache-control']), now);
  return describe(stale.status, headers, stale.body, requestTime, now, freshness);
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
  delete req.headers['cache-control'];
  delete req.headers.pragma;
  const mounted = original as IncomingMessage & { baseUrl?: string; originalUrl?: string };
  Object.assign(req, { baseUrl: mounted.baseUrl, originalUrl: mounted.originalUrl });
  req.push(null);
  // A complete message: an IncomingMessage that ends incomplete reports 'aborted', and the proxy would abort.
  req.complete = true;
  const res = new http.ServerResponse(req);
  return { req, res };
}
