import { decodeEntry, encodeEntry, type CacheStore } from './store.js';

/** The part of an ioredis client the store uses (ioredis is an optional peer dependency). */
export interface RedisLike {
  getBuffer(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer, mode: 'PX', ttl: number): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
  scan(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', n: number): Promise<[string, string[]]>;
}

export interface RedisStoreOptions {
  /** Prepended to every key so several caches can share one Redis; default 'proxy-balancer:cache:'. */
  prefix?: string;
}

const GLOB = /[*?[\]\\]/g;

/**
 * Keeps cache entries in Redis so every instance sharing the server shares hits. Entries expire
 * through Redis TTLs; Redis's own `maxmemory` policy bounds the total (use `allkeys-lru`).
 */
export function redisStore(client: RedisLike, options: RedisStoreOptions = {}): CacheStore {
  if (typeof client?.getBuffer !== 'function' || typeof client.scan !== 'function') {
    throw new TypeError('redisStore: client must be an ioredis client');
  }
  const prefix = options.prefix ?? 'proxy-balancer:cache:';
  if (typeof prefix !== 'string') throw new TypeError('redisStore: options.prefix must be a string');
  return {
    async get(key) {
      const data = await client.getBuffer(prefix + key);
      return data === null ? undefined : decodeEntry(data);
    },
    async set(key, entry, ttl) {
      await client.set(prefix + key, encodeEntry(entry), 'PX', Math.max(1, Math.ceil(ttl)));
    },
    async delete(key) {
      return (await client.del(prefix + key)) > 0;
    },
    async deletePrefix(keyPrefix) {
      const pattern = `${(prefix + keyPrefix).replace(GLOB, '\\$&')}*`;
      let cursor = '0';
      let deleted = 0;
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) deleted += await client.del(...keys);
      } while (cursor !== '0');
      return deleted;
    },
  };
}
