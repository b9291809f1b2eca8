import { LRUCache } from 'lru-cache';
import type { CacheEntry, CacheStore } from './store.js';
import { markFactory, optionsObject } from '../validate.js';

export interface MemoryStoreOptions {
  /** Bytes the store may hold, all entries together; default 64 MiB. Least recently used entries are evicted past it. */
  maxSize?: number;
}

/**
 * The default store: one process's memory, bounded by bytes, least recently used evicted first.
 * Answers synchronously, so cache hits never wait on a promise.
 */
export function memoryStore(input: MemoryStoreOptions = {}): CacheStore {
  const options = optionsObject(input, 'memoryStore', ['maxSize']) as MemoryStoreOptions;
  const maxSize = options.maxSize ?? 64 * 1024 * 1024;
  if (typeof maxSize !== 'number' || !Number.isInteger(maxSize) || maxSize <= 0) {
    throw new TypeError(`memoryStore: options.maxSize must be a positive integer of bytes, got ${String(maxSize)}`);
  }
  // Every set() passes the entry's size, so lru-cache needs no sizeCalculation.
  const lru = new LRUCache<string, CacheEntry>({ maxSize, maxEntrySize: maxSize });
  return {
    local: true,
    get: (key) => lru.get(key),
    set: (key, entry, ttl, size) => {
      lru.set(key, entry, { ttl, size: Math.max(1, size) });
    },
    delete: (key) => lru.delete(key),
    deletePrefix: (prefix) => {
      let count = 0;
      for (const key of [...lru.keys()]) {
        if (key.startsWith(prefix)) {
          lru.delete(key);
          count++;
        }
      }
      return count;
    },
  };
}

markFactory(memoryStore, 'memoryStore()');
