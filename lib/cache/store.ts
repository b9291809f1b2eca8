import type { StoreGuard } from '../store-guard.js';

/**
 * A stored response: what the cache needs to serve it again, compute its age, decide whether it
 * is still fresh, and revalidate it.
 */
export interface CachedResponse {
  status: number;
  /** Response header fields as stored: flat [name, value, name, value...], names lower-case, hop-by-hop and Age removed. */
  headers: string[];
  body: Buffer;
  /** When the request that produced it was sent, ms since the epoch (RFC 9111 request_time). */
  requestTime: number;
  /** When the response was received, ms since the epoch (response_time). */
  responseTime: number;
  /** Its Date header, ms since the epoch (date_value); responseTime when absent. */
  date: number;
  /** Its Age header, seconds (age_value). */
  ageValue: number;
  /** Freshness lifetime, ms (explicit or heuristic). */
  freshness: number;
  /** stale-while-revalidate window, ms (0: none). */
  staleWhileRevalidate: number;
  /** stale-if-error window, ms (0: none). */
  staleIfError: number;
  /** Must be revalidated before every use (no-cache), or once stale (must-revalidate, proxy-revalidate, s-maxage). */
  noCache: boolean;
  mustRevalidate: boolean;
  etag: string | undefined;
  lastModified: string | undefined;
  /** Request header values this variant was selected by (`Vary`), keyed by lower-case name. */
  varyValues: Record<string, string> | undefined;
  /** For a stored 206: which bytes `body` holds of a representation of `total` bytes (both ends inclusive). */
  partial?: { start: number; end: number; total: number };
}

/** Stored at the primary key when responses vary: which request headers select the variant. */
export interface VaryIndex {
  vary: string[];
}

export type CacheEntry = CachedResponse | VaryIndex;

export type MaybePromise<T> = T | Promise<T>;

/**
 * Where the cache keeps entries. The default keeps them in memory (`memoryStore`, an lru-cache
 * bounded by bytes); `redisStore` shares them between instances. Methods may answer synchronously
 * (the hit path then stays synchronous) or with a promise.
 */
export interface CacheStore {
  get(key: string): MaybePromise<CacheEntry | undefined>;
  /** Stores `entry` for `ttl` ms; `size` is its approximate size in bytes, for stores bounded by bytes. */
  set(key: string, entry: CacheEntry, ttl: number, size: number): MaybePromise<void>;
  /** Deletes one key; answers whether it existed. */
  delete(key: string): MaybePromise<boolean>;
  /** Deletes every key starting with `prefix` (for `purge({ prefix })`); returns how many. */
  deletePrefix(prefix: string): MaybePromise<number>;
  /** Releases connections or timers the store owns (optional). */
  close?(): MaybePromise<void>;
  /**
   * The deadline and circuit breaker the store runs its operations under (`redisStore` and
   * `tieredStore` have one). A store with neither this nor `local` is put behind a default guard
   * by the cache, so a store that hangs costs a request at most the guard's timeout.
   */
  readonly guard?: StoreGuard;
  /** The store lives in this process and cannot hang (`memoryStore`): no guard around it. */
  readonly local?: boolean;
}

export function isVaryIndex(entry: CacheEntry): entry is VaryIndex {
  return (entry as VaryIndex).vary !== undefined;
}

/** Approximate bytes an entry occupies: body plus header text plus a fixed overhead. */
export function entrySize(entry: CacheEntry): number {
  if (isVaryIndex(entry)) return 64 + entry.vary.join().length;
  let size = 256 + entry.body.length;
  for (const field of entry.headers) size += field.length;
  return size;
}

/**
 * Serializes an entry for stores that hold bytes (Redis): a JSON head, a newline, the raw body.
 * The body stays binary, so no base64 inflation.
 */
export function encodeEntry(entry: CacheEntry): Buffer {
  if (isVaryIndex(entry)) return Buffer.from(`${JSON.stringify(entry)}\n`);
  const { body, ...head } = entry;
  return Buffer.concat([Buffer.from(`${JSON.stringify(head)}\n`), body]);
}

export function decodeEntry(data: Buffer): CacheEntry {
  const newline = data.indexOf(0x0a);
  const head = JSON.parse(data.subarray(0, newline).toString()) as CacheEntry;
  if (isVaryIndex(head)) return head;
  return { ...head, body: data.subarray(newline + 1) } as CachedResponse;
}

/** Waits for a store write or delete that nobody awaits, logging (never throwing) its failure. */
export async function settle(work: unknown, log: (format: string, ...args: unknown[]) => void): Promise<void> {
  try {
    await work;
  } catch (err) {
    log('store write failed: %s', (err as Error).message);
  }
}
