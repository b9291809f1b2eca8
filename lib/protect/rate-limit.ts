import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientIp } from '../proxy/client-ip.js';
import { clientKey } from './client-key.js';
import type { Rejection } from './reject.js';
import type { RateLimitResult, RateLimitStore, TokenBucket } from './rate-limit-store.js';
import { MemoryRateLimitStore } from './token-bucket-store.js';
import { guardStore, selfGuarded } from '../store-guard.js';
import { fail as failOption, isPositiveInteger, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject } from '../validate.js';

/**
 * Token-bucket rate limiting per key (NGINX `limit_req`, Envoy's local rate limit): each key's
 * bucket holds up to `burst` tokens and refills at `limit` tokens per `windowMs`; a request takes
 * one token or is answered 429.
 */
export interface RateLimitOptions {
  /** Requests per `windowMs` a key may make, sustained (the refill rate). Positive integer; required. */
  limit: number;
  /** The window `limit` is counted over, ms; default 60000. Tokens refill continuously, not all at once at the end of a window. */
  windowMs?: number;
  /** Requests a key may make at once from a full bucket (the bucket's capacity). Positive integer; default `limit`. */
  burst?: number;
  /** What requests are counted by; default the client IP (`clientIp(req)`, resolved through `trustProxy`), IPv6 grouped by `ipv6Subnet`. Return undefined to exempt a request. */
  key?: (req: IncomingMessage) => string | undefined;
  /** With the default key, IPv6 clients are counted per prefix of this many bits (one client usually holds a whole /64 and picks addresses in it at will); 128 counts each address. Integer 1-128; default 64. */
  ipv6Subnet?: number;
  /** Where the buckets live; default an in-memory LRU store of `maxKeys` keys. `redisRateLimitStore(client)` shares limits between instances. */
  store?: RateLimitStore;
  /** Keys the default in-memory store tracks at most (least recently seen forgotten first); default 10000. Not allowed with `store`. */
  maxKeys?: number;
  /** Add `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy` to every response; default true. 429 answers carry them and `Retry-After` regardless. */
  headers?: boolean;
  /**
   * When the store fails or does not answer within its guard's timeout (Redis hung or unreachable):
   * true answers 503 with `Retry-After` (the guard's cool-down, in seconds); default false, the
   * request goes through unlimited (fail open, as Envoy's rate-limit filter does).
   */
  failClosed?: boolean;
  /** The inverse of `failClosed`, kept from earlier versions: false answers 503 when the store fails; default true. Give one of the two. */
  failOpen?: boolean;
}

/** A `rateLimit` option, checked and ready to count requests. */
export class RateLimiter {
  readonly bucket: TokenBucket;
  readonly store: RateLimitStore;
  readonly failOpen: boolean;
  /** The 503 answered when the store failed and `failClosed` is set. */
  readonly storeFailed: Rejection;
  /** 429 answers given so far (`lb.metrics()`, the status page). */
  refused = 0;
  readonly #key: ((req: IncomingMessage) => string | undefined) | undefined;
  readonly #subnet: number;
  readonly #headers: boolean;
  readonly #limit: string;
  readonly #policy: string;

  constructor(input: unknown) {
    nestedObject(input, 'rateLimit', ['limit', 'windowMs', 'burst', 'key', 'ipv6Subnet', 'store', 'maxKeys', 'headers', 'failClosed', 'failOpen'], {
      expected: 'an object with at least a limit',
    });
    const options = input as RateLimitOptions;
    const limit = options.limit;
    if (!isPositiveInteger(limit)) fail('limit', 'a positive integer of requests', limit);
    const windowMs = milliseconds(LOAD_BALANCE_OPTIONS, 'rateLimit.windowMs', options.windowMs ?? 60_000, { positive: true });
    const burst = options.burst ?? limit;
    if (!isPositiveInteger(burst)) fail('burst', 'a positive integer of requests', burst);
    if (options.key !== undefined && typeof options.key !== 'function') fail('key', 'a function (req) => string | undefined', options.key);
    const subnet = options.ipv6Subnet ?? 64;
    if (!isPositiveInteger(subnet) || subnet > 128) fail('ipv6Subnet', 'an integer prefix length from 1 to 128', subnet);
    if (options.key !== undefined && options.ipv6Subnet !== undefined) fail('ipv6Subnet', 'left out with a key function (it shapes the default key)', subnet);
    if (options.store !== undefined && typeof options.store?.take !== 'function')
      fail('store', 'a rate-limit store (an object with a take() method)', options.store);
    if (options.store !== undefined && options.maxKeys !== undefined)
      fail('maxKeys', 'left out when a store is given (it sizes the default store)', options.maxKeys);
    if (options.maxKeys !== undefined && !isPositiveInteger(options.maxKeys)) fail('maxKeys', 'a positive integer', options.maxKeys);
    if (options.headers !== undefined && typeof options.headers !== 'boolean') fail('headers', 'a boolean', options.headers);
    if (options.failOpen !== undefined && typeof options.failOpen !== 'boolean') fail('failOpen', 'a boolean', options.failOpen);
    if (options.failClosed !== undefined && typeof options.failClosed !== 'boolean') fail('failClosed', 'a boolean', options.failClosed);
    if (options.failClosed !== undefined && options.failOpen !== undefined)
      fail('failOpen', 'left out when failClosed is given (they say the same thing)', options.failOpen);
    this.bucket = Object.freeze({ capacity: burst, refillPerMs: limit / windowMs });
    const store = options.store ?? new MemoryRateLimitStore({ maxKeys: options.maxKeys ?? 10_000 });
    this.store = selfGuarded(store) ? store : guardStore(store, ['take'], 'rate-limit store');
    this.failOpen = options.failClosed === undefined ? (options.failOpen ?? true) : !options.failClosed;
    const coolDown = this.store.guard?.coolDown ?? 1000;
    this.storeFailed = Object.freeze({ status: 503, headers: Object.freeze({ 'retry-after': String(Math.max(1, Math.ceil(coolDown / 1000))) }) });
    this.#key = options.key;
    this.#subnet = subnet;
    this.#headers = options.headers ?? true;
    this.#limit = String(burst);
    const seconds = Math.max(1, Math.ceil(windowMs / 1000));
    this.#policy = burst === limit ? `${limit};w=${seconds}` : `${limit};w=${seconds};burst=${burst}`;
  }

  /** Takes a token for `req`; undefined when its key exempts it. May throw (a key function's bug) or reject (a store's failure). */
  take(req: IncomingMessage): RateLimitResult | Promise<RateLimitResult> | undefined {
    const key = this.#key === undefined ? clientKey(clientIp(req), this.#subnet) : this.#key(req);
    if (key === undefined) return undefined;
    return this.store.take(key, 1, Date.now(), this.bucket);
  }

  /** The 429 answer for a refused take. */
  refusal(result: RateLimitResult): Rejection {
    this.refused++;
    const retryAfter = String(Math.max(1, Math.ceil(result.resetMs / 1000)));
    return {
      status: 429,
      headers: {
        'retry-after': retryAfter,
        'ratelimit-limit': this.#limit,
        'ratelimit-remaining': String(result.remaining),
        'ratelimit-reset': retryAfter,
        'ratelimit-policy': this.#policy,
      },
    };
  }

  /** Tells an allowed client where it stands, on the response the upstream is about to fill. */
  decorate(res: ServerResponse, result: RateLimitResult): void {
    if (!this.#headers) return;
    res.setHeader('ratelimit-limit', this.#limit);
    res.setHeader('ratelimit-remaining', String(result.remaining));
    res.setHeader('ratelimit-reset', String(Math.ceil(result.resetMs / 1000)));
    res.setHeader('ratelimit-policy', this.#policy);
  }
}

function fail(option: string, expected: string, value: unknown): never {
  failOption(option === '' ? 'rateLimit' : `rateLimit.${option}`, expected, value);
}
