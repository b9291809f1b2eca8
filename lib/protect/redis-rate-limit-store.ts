import { createHash } from 'node:crypto';
import type { RateLimitResult, RateLimitStore, TokenBucket } from './rate-limit-store.js';
import { guardOptions, STORE_GUARD_OPTIONS, StoreGuard, type StoreGuardOptions } from '../store-guard.js';
import { markFactory, optionsObject } from '../validate.js';

/** The part of an ioredis client (`Redis` or `Cluster`) the store uses (ioredis is an optional peer dependency, never imported). */
export interface RedisScriptClient {
  evalsha(sha1: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>;
  eval(script: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>;
  /** ioredis connection state; while 'reconnecting', 'close' or 'end' a take fails at once. */
  ping?(): Promise<unknown>;
  readonly status?: string;
}

/** Also the deadline and circuit breaker every take runs under (`StoreGuardOptions`: `timeout` 50 ms, `failureThreshold` 5, `coolDown` 1000 ms, `maxPending` 1000). */
export interface RedisRateLimitStoreOptions extends StoreGuardOptions {
  /** Prepended to every key so several limiters or apps can share one Redis; default 'proxy-balancer:ratelimit:'. */
  prefix?: string;
}

// One script does refill, take and expiry, so concurrent takes from any number of instances are
// atomic. Time comes from the Redis server: instances' clocks drift, the shared bucket needs one.
// A bucket left alone until it is full again is the same as no bucket, so the key expires then.
const SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
elseif now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
end
local allowed = 0
local wait
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
  wait = math.ceil((capacity - tokens) / rate)
else
  wait = math.ceil((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - tokens) / rate)))
return {allowed, math.floor(tokens), wait}
`;

const SHA = createHash('sha1').update(SCRIPT).digest('hex');

/**
 * Token buckets in Redis, shared by every instance using the same server and prefix. Each take is
 * one `EVALSHA` (falling back to `EVAL` once when the server lost its script cache); the `now`
 * argument is ignored in favour of the Redis server's clock. Idle keys expire on their own.
 *
 * Works on a Redis Cluster too (pass an ioredis `Cluster`): the script declares its one key, so it
 * runs on that key's master and buckets spread over all slots; each master caches the script on
 * its own, and the `EVAL` fallback covers each one once.
 *
 * Each take runs under the store's guard, whatever the client's own settings: past `timeout`
 * (default 50 ms), while the client is reconnecting, or while the circuit is open after
 * `failureThreshold` failures in a row, it fails at once, and the limiter's `failClosed` decides
 * what that means (default: the request goes through).
 */
export class RedisRateLimitStore implements RateLimitStore {
  readonly guard: StoreGuard;
  readonly #client: RedisScriptClient;
  readonly #prefix: string;

  constructor(client: RedisScriptClient, options: RedisRateLimitStoreOptions = {}) {
    if (typeof client?.evalsha !== 'function' || typeof client.eval !== 'function') {
      throw new TypeError('redisRateLimitStore: client must be an ioredis client (with eval and evalsha)');
    }
    optionsObject(options, 'redisRateLimitStore', ['prefix', ...STORE_GUARD_OPTIONS]);
    const prefix = options.prefix ?? 'proxy-balancer:ratelimit:';
    if (typeof prefix !== 'string') throw new TypeError('redisRateLimitStore: options.prefix must be a string');
    this.#client = client;
    this.#prefix = prefix;
    this.guard = new StoreGuard('redisRateLimitStore', guardOptions(options), client);
  }

  async take(key: string, cost: number, _now: number, bucket: TokenBucket): Promise<RateLimitResult> {
    return this.guard.run(() => this.#take(this.#prefix + key, cost, bucket));
  }

  async #take(redisKey: string, cost: number, bucket: TokenBucket): Promise<RateLimitResult> {
    let reply: unknown;
    try {
      reply = await this.#client.evalsha(SHA, 1, redisKey, bucket.capacity, bucket.refillPerMs, cost);
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
      reply = await this.#client.eval(SCRIPT, 1, redisKey, bucket.capacity, bucket.refillPerMs, cost);
    }
    if (!Array.isArray(reply) || reply.length !== 3) throw new Error('redisRateLimitStore: unexpected script reply');
    return { allowed: Number(reply[0]) === 1, remaining: Number(reply[1]), resetMs: Number(reply[2]) };
  }
}

/** A rate-limit store in Redis, so several balancer instances share limits. */
export function redisRateLimitStore(client: RedisScriptClient, options?: RedisRateLimitStoreOptions): RedisRateLimitStore {
  return new RedisRateLimitStore(client, options);
}

markFactory(redisRateLimitStore, 'redisRateLimitStore(client)');
