import createDebug from 'debug';
import { isPromise } from '../promise.js';
import { InvalidationBus, type Invalidation, type RedisPubSubLike } from './invalidation-bus.js';
import { memoryStore } from './memory-store.js';
import { currentAge } from './policy.js';
import type { RedisCacheStore } from './redis-store.js';
import { entrySize, isVaryIndex, settle, type CacheEntry, type CacheStore } from './store.js';
import { guardStore, StoreGuard } from '../store-guard.js';
import { milliseconds, markFactory, optionsObject } from '../validate.js';

const log = createDebug('proxy-balancer:cache');

export interface TieredStoreOptions {
  /**
   * This process's own store, consulted first; default `memoryStore()` (64 MiB). One that answers
   * synchronously (memoryStore does) keeps L1 hits synchronous.
   */
  l1?: CacheStore;
  /** The store every instance shares, e.g. `redisStore(client)` (one Redis or a Cluster). Required. */
  l2: CacheStore;
  /**
   * The ioredis client (`Redis` or `Cluster`) invalidations travel on: published on it, received on
   * a subscriber connection the store makes with `duplicate()`; default the client of `l2` when it
   * is a `redisStore`.
   */
  redis?: RedisPubSubLike;
  /**
   * Pub/sub channel of the invalidations; every instance sharing `l2` must use the same one;
   * default `<l2's prefix>invalidate` for a `redisStore` (else 'proxy-balancer:cache:invalidate').
   */
  channel?: string;
  /**
   * Longest an entry stays in L1, ms; default 60000. An entry never stays past its remaining
   * freshness either; this bounds how long an invalidation lost on the way (Redis pub/sub delivers
   * at most once) can leave another instance serving a purged entry.
   */
  l1MaxTtl?: number;
}

/** A `tieredStore`. */
export interface TieredStore extends CacheStore {
  /** Whether invalidations are being received (false until subscribed, and while the subscriber reconnects). */
  readonly live: boolean;
  /** L2's guard (a `redisStore`'s own, or one the tiered store puts around another L2): its circuit says whether L2 is reachable. */
  readonly guard: StoreGuard;
  /** Resolves once the invalidation subscription is first confirmed (L1 serves from then on). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Two tiers: hits come from this process's memory (L1) without a Redis round trip; misses are
 * filled from the shared store (L2, Redis) and kept in L1; writes go to both. Every write and
 * delete is announced on Redis pub/sub, and every other instance drops its L1 copy when the message
 * arrives, so a purge or an unsafe-method invalidation anywhere reaches every L1 within a few
 * milliseconds (measured in docs/cache.md). An L1 entry lives at most its remaining freshness (and
 * `l1MaxTtl`); stale entries are always read from L2, where revalidation results are shared.
 *
 * L1 is trusted while the subscription is live, or while L2 is unreachable (its guard's circuit is
 * open): then this instance caches on its own in L1 (bounded by `l1MaxTtl`), since L2 can give no
 * answer and the origin should not take every request. When the subscriber connection drops while
 * L2 still answers, L1 is emptied and bypassed until the subscription is back, since messages may
 * have been missed meanwhile; L1 is emptied again whenever it goes from one mode to the other. Reads
 * that L2 fails or does not answer within its guard's timeout are misses, never errors or stalls.
 */
export function tieredStore(input: TieredStoreOptions): TieredStore {
  if (input === undefined) throw new TypeError('tieredStore: options must be an object { l2, l1?, redis?, channel?, l1MaxTtl? }');
  const options = optionsObject(input, 'tieredStore', ['l1', 'l2', 'redis', 'channel', 'l1MaxTtl']) as unknown as TieredStoreOptions;
  const given = options.l2;
  if (typeof given?.get !== 'function') throw new TypeError(`tieredStore: options.l2 must be a CacheStore (e.g. redisStore(client)), got ${String(given)}`);
  // L2 is the store the circuit decides about: one without a guard of its own gets one here.
  const l2 = given.guard instanceof StoreGuard ? given : guardStore(given, ['get', 'set', 'delete', 'deletePrefix'], 'tieredStore l2');
  const l1 = options.l1 ?? memoryStore();
  if (typeof l1?.get !== 'function') throw new TypeError(`tieredStore: options.l1 must be a CacheStore (e.g. memoryStore()), got ${String(l1)}`);
  const fromL2 = (given as Partial<RedisCacheStore>).client as unknown as RedisPubSubLike | undefined;
  const redis = options.redis ?? fromL2;
  if (typeof redis?.publish !== 'function' || typeof redis.duplicate !== 'function') {
    throw new TypeError('tieredStore: options.redis must be an ioredis client (needed unless l2 is a redisStore)');
  }
  const l2Prefix = (given as Partial<RedisCacheStore>).prefix;
  const channel = options.channel ?? `${l2Prefix ?? 'proxy-balancer:cache:'}invalidate`;
  if (typeof channel !== 'string' || channel === '') throw new TypeError(`tieredStore: options.channel must be a non-empty string, got ${String(channel)}`);
  const l1MaxTtl = milliseconds('tieredStore: options', 'l1MaxTtl', options.l1MaxTtl ?? 60_000, { positive: true });
  // Invalidations travel on L2's own client when they can: one guard then tells of one Redis.
  const busGuard = redis === fromL2 ? l2.guard! : new StoreGuard('tieredStore pub/sub', {}, redis);
  return new Tiered(l1, l2, l2.guard!, redis, channel, l1MaxTtl, busGuard);
}

markFactory(tieredStore, 'tieredStore({ l2 })');

class Tiered implements TieredStore {
  readonly #l1: CacheStore;
  readonly #l2: CacheStore;
  readonly #l1MaxTtl: number;
  readonly #bus: InvalidationBus;
  readonly guard: StoreGuard;
  /**
   * L2 reads in flight, by key, with the ticket of the latest: an invalidation of the key removes
   * it, and a read that comes back without its ticket does not fill L1 (it may hold what the
   * invalidation removed).
   */
  readonly #fills = new Map<string, number>();
  #tickets = 0;
  /** Bumped by every prefix invalidation and subscription change: reads begun before do not fill L1. */
  #epoch = 0;
  #ready: Promise<void>;
  #resolveReady!: () => void;

  constructor(l1: CacheStore, l2: CacheStore, guard: StoreGuard, redis: RedisPubSubLike, channel: string, l1MaxTtl: number, busGuard: StoreGuard) {
    this.#l1 = l1;
    this.#l2 = l2;
    this.guard = guard;
    this.#l1MaxTtl = l1MaxTtl;
    this.#ready = new Promise((resolve) => (this.#resolveReady = resolve));
    this.#bus = new InvalidationBus(redis, channel, busGuard, {
      invalidated: (kind, key) => this.#drop(kind, key),
      live: (live) => {
        if (live) this.#resolveReady();
        this.#forgetL1();
      },
    });
    guard.on('up', this.#l2Back);
  }

  /** Whether L1 may serve and keep entries: invalidations arrive, or L2 cannot answer anyway. */
  get #trustsL1(): boolean {
    return this.#bus.live || !this.guard.up;
  }

  // What L1 kept while L2 was away (and no invalidation could arrive) is not to be served once L2 answers again.
  readonly #l2Back = (): void => {
    if (!this.#bus.live) this.#forgetL1();
  };

  /** Empties L1 and discards reads in flight: what it holds may have been invalidated while nobody listened. */
  #forgetL1(): void {
    this.#epoch++;
    this.#fills.clear();
    void settle(this.#l1.deletePrefix(''), log);
  }

  get live(): boolean {
    return this.#bus.live;
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  get(key: string): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    if (this.#trustsL1) {
      const local = this.#l1.get(key);
      if (isPromise(local)) return local.then((entry) => entry ?? this.#fill(key));
      if (local !== undefined) return local;
    }
    return this.#fill(key);
  }

  set(key: string, entry: CacheEntry, ttl: number, size: number): Promise<void> {
    this.#fills.delete(key);
    this.#keep(key, entry, ttl, size);
    // Announced once L2 holds it, so whoever rereads on the message gets this entry.
    return Promise.resolve(this.#l2.set(key, entry, ttl, size)).then(() => this.#bus.publish('key', key));
  }

  async delete(key: string): Promise<boolean> {
    const local = await this.#drop('key', key);
    try {
      const shared = await this.#l2.delete(key);
      return shared || local > 0;
    } finally {
      // A read sent before the DEL may have come back meanwhile with what it removed.
      await this.#drop('key', key);
      await this.#bus.publish('key', key);
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    await this.#drop('prefix', prefix);
    try {
      return await this.#l2.deletePrefix(prefix);
    } finally {
      await this.#drop('prefix', prefix);
      await this.#bus.publish('prefix', prefix);
    }
  }

  async close(): Promise<void> {
    this.guard.off('up', this.#l2Back);
    await this.#bus.close();
    await this.#l1.close?.();
    await this.#l2.close?.();
  }

  async #fill(key: string): Promise<CacheEntry | undefined> {
    const ticket = ++this.#tickets;
    const epoch = this.#epoch;
    this.#fills.set(key, ticket);
    let entry: CacheEntry | undefined;
    try {
      entry = await this.#l2.get(key);
    } catch (err) {
      log('l2 get failed: %s', (err as Error).message);
    }
    if (this.#fills.get(key) === ticket) {
      this.#fills.delete(key);
      if (entry !== undefined && epoch === this.#epoch) this.#keep(key, entry, Number.POSITIVE_INFINITY, entrySize(entry));
    }
    return entry;
  }

  /** Puts `entry` in L1 for as long as it stays fresh (and at most `ttl` and l1MaxTtl), if L1 is trusted now. */
  #keep(key: string, entry: CacheEntry, ttl: number, size: number): void {
    if (!this.#trustsL1) return;
    const fresh = isVaryIndex(entry) ? ttl : entry.freshness - currentAge(entry, Date.now());
    const l1Ttl = Math.floor(Math.min(ttl, fresh, this.#l1MaxTtl));
    if (l1Ttl >= 1) void settle(this.#l1.set(key, entry, l1Ttl, size), log);
  }

  /** Forgets `key` (or every key under it) in L1, and discards reads in flight that could bring it back. */
  #drop(kind: Invalidation, key: string): Promise<number> {
    if (kind === 'key') {
      this.#fills.delete(key);
      return Promise.resolve(this.#l1.delete(key)).then(Number, () => 0);
    }
    this.#epoch++;
    return Promise.resolve(this.#l1.deletePrefix(key)).catch(() => 0);
  }
}
