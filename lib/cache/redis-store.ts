import { decodeEntry, encodeEntry, type CacheStore } from './store.js';
import { guardOptions, STORE_GUARD_OPTIONS, StoreGuard, type StoreGuardOptions } from '../store-guard.js';
import { markFactory, optionsObject } from '../validate.js';

/**
 * The part of an ioredis client the store uses (ioredis is an optional peer dependency): a `Redis`
 * for one server, or a `Cluster`.
 */
export interface RedisLike {
  getBuffer(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer, mode: 'PX', ttl: number): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
  scan(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', n: number): Promise<[string, string[]]>;
  /** Asked by an open circuit after each cool-down, to find the server back. */
  ping?(): Promise<unknown>;
  /** ioredis connection state; while 'reconnecting', 'close' or 'end', every operation fails at once. */
  readonly status?: string;
  /** True on an ioredis `Cluster`. */
  readonly isCluster?: boolean;
  /** A Cluster's connections to its nodes; `nodes('master')` are the ones a prefix purge scans. */
  nodes?(role: 'master'): RedisLike[];
}

/** Also the deadline and circuit breaker every command runs under (`StoreGuardOptions`: `timeout` 50 ms, `failureThreshold` 5, `coolDown` 1000 ms, `maxPending` 1000). */
export interface RedisStoreOptions extends StoreGuardOptions {
  /**
   * Prepended to every key so several caches can share one Redis; default 'proxy-balancer:cache:'.
   * On a Cluster, keep hash tags (`{...}`) out of it unless every entry should live in one slot.
   */
  prefix?: string;
}

/** A `redisStore`: a CacheStore that also says which client and prefix it uses (for `tieredStore`). */
export interface RedisCacheStore extends CacheStore {
  readonly client: RedisLike;
  readonly prefix: string;
  readonly guard: StoreGuard;
}

const GLOB = /[*?[\]\\]/g;

/**
 * Keeps cache entries in Redis so every instance sharing the server shares hits. Entries expire
 * through Redis TTLs; Redis's own `maxmemory` policy bounds the total (use `allkeys-lru`).
 *
 * Works on one server or on a Redis Cluster (pass an ioredis `Cluster`). Every operation but a
 * prefix purge touches one key, so entries need no hash tags and spread over all slots; a prefix
 * purge scans every master.
 *
 * Every command runs under the store's guard: past `timeout` (default 50 ms), while the client is
 * reconnecting, or while the circuit is open after `failureThreshold` failures in a row, it fails at
 * once, so a read is a miss and a write is skipped instead of stalling the request; a purge rejects,
 * so it never reports success it did not have.
 */
export function redisStore(client: RedisLike, options: RedisStoreOptions = {}): RedisCacheStore {
  if (typeof client?.getBuffer !== 'function' || typeof client.scan !== 'function') {
    throw new TypeError('redisStore: client must be an ioredis client');
  }
  optionsObject(options, 'redisStore', ['prefix', ...STORE_GUARD_OPTIONS]);
  const prefix = options.prefix ?? 'proxy-balancer:cache:';
  if (typeof prefix !== 'string') throw new TypeError('redisStore: options.prefix must be a string');
  const cluster = client.isCluster === true;
  if (cluster && typeof client.nodes !== 'function') throw new TypeError('redisStore: a Cluster client must have nodes()');
  const guard = new StoreGuard('redisStore', guardOptions(options), client);
  return {
    client,
    prefix,
    guard,
    async get(key) {
      const data = await guard.run(() => client.getBuffer(prefix + key));
      return data === null ? undefined : decodeEntry(data);
    },
    async set(key, entry, ttl) {
      await guard.run(() => client.set(prefix + key, encodeEntry(entry), 'PX', Math.max(1, Math.ceil(ttl))));
    },
    async delete(key) {
      return (await guard.run(() => client.del(prefix + key))) > 0;
    },
    async deletePrefix(keyPrefix) {
      const pattern = `${(prefix + keyPrefix).replace(GLOB, '\\$&')}*`;
      if (!cluster) return purgeNode(guard, client, pattern, (keys) => guard.run(() => client.del(...keys)));
      const masters = client.nodes!('master');
      if (masters.length === 0) throw new Error('redisStore: no Redis Cluster master is connected');
      // One DEL per key through the Cluster client: keys found on one master may hash to different
      // slots (a multi-key DEL would fail with CROSSSLOT), and a slot moved mid-scan is followed.
      const delEach = async (keys: string[]): Promise<number> =>
        (await Promise.all(keys.map((k) => guard.run(() => client.del(k))))).reduce((a, b) => a + b, 0);
      const counts = await Promise.all(masters.map((node) => purgeNode(guard, node, pattern, delEach)));
      return counts.reduce((a, b) => a + b, 0);
    },
  };
}

markFactory(redisStore, 'redisStore(client)');

/** SCANs one server for `pattern`, deleting what it finds batch by batch; returns how many went. Each command has the guard's deadline, not the whole purge. */
async function purgeNode(guard: StoreGuard, node: RedisLike, pattern: string, del: (keys: string[]) => Promise<number>): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await guard.run(() => node.scan(cursor, 'MATCH', pattern, 'COUNT', 500));
    cursor = next;
    if (keys.length > 0) deleted += await del(keys);
  } while (cursor !== '0');
  return deleted;
}
