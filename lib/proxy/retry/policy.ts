import type { IncomingMessage } from 'node:http';
import type { Strategy } from '../../strategies/strategy.js';
import type { Target } from '../../target.js';
import type { Exchange } from '../exchange.js';
import { type BackoffOptions, type BackoffPolicy, resolveBackoff } from './backoff.js';
import { integer as checkInteger, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject } from '../../validate.js';

/** What `retry.condition` is told about the attempt that did not succeed. */
export interface RetryFailure {
  /** The failure (connect error, reset, timeout...; its `code` such as `'ECONNREFUSED'`); undefined when a response status triggered the retry. */
  error?: Error & { code?: string };
  /** The response status listed in `retry.onStatus`; undefined for a failure. */
  status?: number;
  /** The attempt that did not succeed: 1 for the first, 2 for the first retry... */
  attempt: number;
  /** The target it was sent to. */
  target: Target;
}

/**
 * Asked before each retry the policy allows: `false` vetoes it, `true` allows it even for a method
 * not in `retry.methods` (a POST: only if duplicates are harmless), `undefined` keeps the default.
 */
export type RetryCondition = (failure: RetryFailure, req: IncomingMessage) => boolean | undefined;

export function resolveOnStatus(input: unknown): ReadonlySet<number> {
  const list = input ?? [];
  if (!Array.isArray(list) || !list.every((s) => Number.isInteger(s) && s >= 400 && s <= 599)) {
    throw new TypeError(`loadBalance: options.retry.onStatus must be an array of status codes from 400 to 599, got ${JSON.stringify(list) ?? String(list)}`);
  }
  return new Set(list as number[]);
}

/** Failover: when and how often a failed request is sent again, to another target. */
export interface RetryOptions {
  /** Further attempts after the first, each on a target not tried yet when the pool has one; default 2. */
  retries?: number;
  /** Methods retried after a failure; default the idempotent ones: GET, HEAD, OPTIONS, PUT, DELETE. Add 'POST' only if your backends tolerate duplicates. A request no target received (refused connect, refused HTTP/2 stream) is retried whatever its method. */
  methods?: readonly string[];
  /** Largest request body kept so it can be replayed, bytes; default 65536. A larger body streams through and its request is never retried. */
  maxBodyBytes?: number;
  /** Milliseconds one attempt may wait for its response head before it is abandoned and retried; default 0 (off: only `proxyTimeout` and `timeout` apply). */
  perTryTimeout?: number;
  /** Retries allowed as a percentage of requests over the last 10 seconds (Envoy's retry budget); default 20. Retries after a refused connection (nothing reached the target) are not counted. */
  budgetPercent?: number;
  /** Retries always allowed per 10-second window, whatever the budget; default 10. */
  minRetries?: number;
  /**
   * Response statuses (400–599) that send the request to another target instead of being relayed,
   * like NGINX `proxy_next_upstream http_502 http_503 http_504`; default [] (every response is relayed).
   * Only for a method in `methods` and a replayable body; the last attempt's response is relayed as it is.
   */
  onStatus?: readonly number[];
  /** Longest hold-off, ms, when a 503 (with 503 in `onStatus`) carries `Retry-After`: its target gets no new requests for that long while another is ready; default 60000; 0 ignores `Retry-After`. */
  maxRetryAfter?: number;
  /** Jittered exponential wait before each retry, ms; default `{ base: 25, max: 250 }` (Envoy's); false retries at once (and never on the same target). */
  backoff?: BackoffOptions | false;
  /**
   * How long, ms from the first attempt, a request whose target refuses or resets connections
   * (ECONNREFUSED, ECONNRESET: it is restarting) keeps being tried after `retries` are spent, one
   * try every `interval` ms (Caddy's `lb_try_duration`); default 1000; 0 stops at `retries`. Never
   * past `timeout` or the client leaving; needs `backoff`. The cost: a request to a target that
   * stays down waits this long for its 502.
   */
  tryDuration?: number;
  /** Milliseconds between the tries `tryDuration` adds (Caddy's `lb_try_interval`); default 100. */
  interval?: number;
  /** Called before each retry the policy allows: false vetoes it, true allows it even for a method not in `methods`, undefined keeps the default; default none. */
  condition?: RetryCondition;
}

export interface RetryPolicy {
  retries: number;
  methods: ReadonlySet<string>;
  maxBodyBytes: number;
  perTryTimeout: number;
  budgetPercent: number;
  minRetries: number;
  onStatus: ReadonlySet<number>;
  maxRetryAfter: number;
  backoff: BackoffPolicy | undefined;
  tryDuration: number;
  interval: number;
  condition: RetryCondition | undefined;
}

const IDEMPOTENT = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];
const RETRY_OPTIONS: readonly string[] = [
  'retries',
  'methods',
  'maxBodyBytes',
  'perTryTimeout',
  'budgetPercent',
  'minRetries',
  'onStatus',
  'maxRetryAfter',
  'backoff',
  'tryDuration',
  'interval',
  'condition',
];

export function resolveRetryOptions(input: unknown): RetryPolicy | undefined {
  if (input === false) return undefined;
  const options = (nestedObject(input, 'retry', RETRY_OPTIONS, { expected: 'an object or false' }) ?? {}) as RetryOptions;
  const integer = (name: keyof RetryOptions, fallback: number, unit: string): number =>
    checkInteger(LOAD_BALANCE_OPTIONS, `retry.${name}`, options[name] ?? fallback, { unit });
  const ms = (name: keyof RetryOptions, fallback: number, positive = false): number =>
    milliseconds(LOAD_BALANCE_OPTIONS, `retry.${name}`, options[name] ?? fallback, { integer: true, positive });
  const methods = options.methods ?? IDEMPOTENT;
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) {
    throw new TypeError('loadBalance: options.retry.methods must be an array of method names');
  }
  const budgetPercent = checkInteger(LOAD_BALANCE_OPTIONS, 'retry.budgetPercent', options.budgetPercent ?? 20, { max: 100 });
  const condition = options.condition;
  if (condition !== undefined && typeof condition !== 'function') {
    throw new TypeError(`loadBalance: options.retry.condition must be a function, got ${typeof condition}`);
  }
  return {
    retries: integer('retries', 2, 'retries'),
    methods: new Set(methods.map((m) => m.toUpperCase())),
    maxBodyBytes: integer('maxBodyBytes', 64 * 1024, 'bytes'),
    perTryTimeout: ms('perTryTimeout', 0),
    budgetPercent,
    minRetries: integer('minRetries', 10, 'retries'),
    onStatus: resolveOnStatus(options.onStatus),
    maxRetryAfter: ms('maxRetryAfter', 60_000),
    backoff: resolveBackoff(options.backoff),
    tryDuration: ms('tryDuration', 1000),
    interval: ms('interval', 100, true),
    condition,
  };
}

const BUCKETS = 10;

/**
 * Envoy-style retry budget over a sliding 10-second window of one-second buckets, advanced by a
 * timer so counting a request costs one increment.
 */
export class RetryBudget {
  readonly #requests = new Uint32Array(BUCKETS);
  readonly #retries = new Uint32Array(BUCKETS);
  readonly #percent: number;
  readonly #min: number;
  readonly #timer: NodeJS.Timeout;
  #current = 0;

  constructor(percent: number, min: number) {
    this.#percent = percent;
    this.#min = min;
    this.#timer = setInterval(this.#advance, 1000);
    this.#timer.unref();
  }

  request(): void {
    this.#requests[this.#current]!++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  take(): boolean {
    const retries = sum(this.#retries);
    if (retries >= this.#min && retries >= (sum(this.#requests) * this.#percent) / 100) return false;
    this.#retries[this.#current]!++;
    return true;
  }

  close(): void {
    clearInterval(this.#timer);
  }

  readonly #advance = (): void => {
    this.#current = (this.#current + 1) % BUCKETS;
    this.#requests[this.#current] = 0;
    this.#retries[this.#current] = 0;
  };
}

function sum(values: Uint32Array): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

/**
 * The strategy's choice if not tried yet, else the next untried ready target after it, else an
 * untried up backup (`standby`: a request that failed on every primary goes to a backup, as NGINX
 * does); `allowSame` then falls back to the failed target.
 */
export function nextTarget(
  ready: readonly Target[],
  strategy: Strategy,
  exchange: Exchange,
  req: IncomingMessage,
  allowSame: boolean,
  standby: readonly Target[] = [],
): Target | undefined {
  const tried = exchange.tried === undefined ? [exchange.target] : [...exchange.tried, exchange.target];
  if (ready.length > 0) {
    const picked = strategy.pick(ready, req);
    if (picked !== undefined && !tried.includes(picked)) return picked;
    const start = picked === undefined ? 0 : ready.indexOf(picked);
    for (let i = 1; i <= ready.length; i++) {
      const candidate = ready[(start + i) % ready.length]!;
      if (!tried.includes(candidate)) return candidate;
    }
  }
  for (const backup of standby) if (!tried.includes(backup)) return backup;
  return allowSame && ready.length > 0 ? exchange.target : undefined;
}
