import createDebug from 'debug';
import { EventEmitter } from 'node:events';
import { isPromise } from './promise.js';
import { StoreUnavailableError } from './proxy/errors.js';
import { clampDelay } from './timer.js';
import { integer, milliseconds, optionsObject } from './validate.js';

const log = createDebug('proxy-balancer:store');

/**
 * How a shared store (Redis) is kept from stalling traffic: every operation gets a deadline the
 * library owns, whatever the client's own settings, and a circuit breaker stops calling a store that
 * keeps failing. Envoy gives its rate-limit service 20 ms; a cache that cannot reach its store is a
 * miss, not an outage.
 */
export interface StoreGuardOptions {
  /** Longest one store operation may take before the request goes on without it, ms; default 50. */
  timeout?: number;
  /** Consecutive failures (errors, time-outs, a reconnecting client) that open the circuit; default 5. */
  failureThreshold?: number;
  /** How long an open circuit sends nothing to the store before one probe operation may test it, ms; default 1000. */
  coolDown?: number;
  /** Operations sent to the store and not yet answered by it, at most; past it, operations fail at once instead of queueing; default 1000. */
  maxPending?: number;
}

export const STORE_GUARD_OPTIONS = ['timeout', 'failureThreshold', 'coolDown', 'maxPending'] as const;

/** The guard's own options among a store factory's (which also holds e.g. `prefix`). */
export function guardOptions(options: StoreGuardOptions): StoreGuardOptions {
  const { timeout, failureThreshold, coolDown, maxPending } = options;
  return { timeout, failureThreshold, coolDown, maxPending };
}

/** `closed`: operations go to the store; `open`: none do (they fail at once); `half-open`: one probe is out. */
export type StoreCircuit = 'closed' | 'open' | 'half-open';

/** One store's health, in `lb.stats().stores`, the status page, metrics and the `storeDown`/`storeUp` events. */
export interface StoreHealth {
  /** Which store: 'redisStore', 'redisRateLimitStore', 'tieredStore l2', 'cache store'... */
  name: string;
  circuit: StoreCircuit;
  /** Failures in a row now (0 after any success). */
  consecutiveFailures: number;
  /** Operations the store answered in time. */
  succeeded: number;
  /** Operations that took longer than `timeout` (the request went on without them). */
  timedOut: number;
  /** Operations the store (or its client) failed, including a reconnecting client's. */
  failed: number;
  /** Operations not sent: the circuit was open, or `maxPending` were already waiting. */
  shortCircuited: number;
  /** Operations sent and not answered yet by the store. */
  pending: number;
  /** The last failure's message, undefined before any. */
  lastError: string | undefined;
  /** When the circuit last opened (ms since the epoch), 0 if never. */
  openedAt: number;
}

export interface StoreGuardEvents {
  /** The circuit opened: the store is left alone for `coolDown` ms. */
  down: [health: StoreHealth];
  /** A probe succeeded: the circuit closed, the store is used again. */
  up: [health: StoreHealth];
}

/** The connection states of an ioredis client in which a command would wait in its offline queue. */
const OFFLINE = new Set(['reconnecting', 'close', 'end', 'disconnecting']);

/** A client that reports its connection state as ioredis does, and can be pinged. */
export interface ClientStatus {
  readonly status?: string;
  ping?(): Promise<unknown>;
}

/**
 * A deadline and a circuit breaker around one store's operations. After `failureThreshold`
 * failures in a row the circuit opens: operations fail at once for `coolDown` ms, then one probe
 * goes out; its success closes the circuit, its failure opens it again.
 */
export class StoreGuard extends EventEmitter<StoreGuardEvents> {
  readonly name: string;
  readonly timeout: number;
  readonly coolDown: number;
  readonly #threshold: number;
  readonly #maxPending: number;
  readonly #client: ClientStatus | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  // Made once: a store that is down is asked thousands of times a second, and a stack per refusal would cost more than the refusal.
  readonly #openError: StoreUnavailableError;
  readonly #busyError: StoreUnavailableError;
  readonly #timeoutError: StoreUnavailableError;
  #circuit: StoreCircuit = 'closed';
  #consecutive = 0;
  #openedAt = 0;
  #pending = 0;
  #succeeded = 0;
  #timedOut = 0;
  #failed = 0;
  #shortCircuited = 0;
  #lastError: string | undefined;

  /**
   * `client`: an ioredis client whose state tells when it is reconnecting (operations then fail at
   * once instead of waiting in its offline queue), and which an open circuit pings after each
   * cool-down, so the store comes back without waiting for a request to probe it (a tiered store
   * serving from L1 sends none). `fn` names the factory in option errors.
   * A factory whose options hold more than these passes only these.
   */
  constructor(name: string, options: StoreGuardOptions = {}, client?: ClientStatus, fn = name) {
    super();
    const prefix = `${fn}: options`;
    optionsObject(options, fn, STORE_GUARD_OPTIONS);
    this.name = name;
    this.timeout = milliseconds(prefix, 'timeout', options.timeout ?? 50, { positive: true });
    this.#threshold = integer(prefix, 'failureThreshold', options.failureThreshold ?? 5, { min: 1, unit: 'failures' });
    this.coolDown = milliseconds(prefix, 'coolDown', options.coolDown ?? 1000, { positive: true });
    this.#maxPending = integer(prefix, 'maxPending', options.maxPending ?? 1000, { min: 1, unit: 'operations' });
    this.#client = client;
    this.#openError = new StoreUnavailableError('ESTOREOPEN', `${name}: circuit open after ${this.#threshold} failures in a row`);
    this.#busyError = new StoreUnavailableError('ESTOREBUSY', `${name}: ${this.#maxPending} operations already waiting on the store`);
    this.#timeoutError = new StoreUnavailableError('ESTORETIMEOUT', `${name}: no answer within ${this.timeout} ms`);
  }

  get circuit(): StoreCircuit {
    return this.#circuit;
  }

  /** Whether operations go to the store now (the circuit is closed). */
  get up(): boolean {
    return this.#circuit === 'closed';
  }

  health(): StoreHealth {
    return {
      name: this.name,
      circuit: this.#circuit,
      consecutiveFailures: this.#consecutive,
      succeeded: this.#succeeded,
      timedOut: this.#timedOut,
      failed: this.#failed,
      shortCircuited: this.#shortCircuited,
      pending: this.#pending,
      lastError: this.#lastError,
      openedAt: this.#openedAt,
    };
  }

  /**
   * Runs one store operation under the deadline and the circuit: resolves with its answer, or
   * rejects with its error or a `StoreUnavailableError` (time-out, reconnecting client, open
   * circuit, too many pending). An operation that answers after its deadline is dropped. One that
   * answers synchronously (a wrapped in-process store) is returned as it is.
   */
  run<T>(operation: () => Promise<T>): Promise<T>;
  run<T>(operation: () => T | Promise<T>): T | Promise<T>;
  run<T>(operation: () => T | Promise<T>): T | Promise<T> {
    return this.#run(operation, false);
  }

  /** `probe`: the cool-down is known to be over (the ping timer fired), whatever the clock's rounding says. */
  #run<T>(operation: () => T | Promise<T>, probe: boolean): T | Promise<T> {
    const refusal = this.#admit(probe);
    if (refusal !== undefined) return Promise.reject(refusal);
    let result: T | Promise<T>;
    try {
      result = operation();
    } catch (err) {
      this.#failed++;
      this.#failure(err);
      return Promise.reject(err);
    }
    if (!isPromise(result)) {
      this.#success();
      return result;
    }
    return this.#watch(result);
  }

  #watch<T>(pending: Promise<T>): Promise<T> {
    this.#pending++;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        this.#timedOut++;
        this.#failure(this.#timeoutError);
        reject(this.#timeoutError);
      }, clampDelay(this.timeout));
      pending.then(
        (value) => {
          this.#pending--;
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.#success();
          resolve(value);
        },
        (err: unknown) => {
          this.#pending--;
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.#failed++;
          this.#failure(err);
          reject(err);
        },
      );
    });
  }

  /** Whether an operation may go out now: undefined if so (a probe, when the cool-down is over), else the error to fail it with. */
  #admit(probe: boolean): StoreUnavailableError | undefined {
    if (this.#circuit !== 'closed') {
      if (this.#circuit === 'half-open' || (!probe && Date.now() - this.#openedAt < this.coolDown)) {
        this.#shortCircuited++;
        return this.#openError;
      }
      this.#circuit = 'half-open';
      log('%s: cool-down over, probing', this.name);
    }
    if (this.#pending >= this.#maxPending) {
      this.#shortCircuited++;
      return this.#probeRefused(this.#busyError);
    }
    const status = this.#client?.status;
    if (status !== undefined && OFFLINE.has(status)) {
      const offline = new StoreUnavailableError('ESTOREOFFLINE', `${this.name}: the client is ${status}`);
      this.#failed++;
      this.#failure(offline);
      return offline;
    }
    return undefined;
  }

  #probeRefused(err: StoreUnavailableError): StoreUnavailableError {
    if (this.#circuit === 'half-open') this.#open();
    return err;
  }

  #success(): void {
    this.#succeeded++;
    this.#consecutive = 0;
    if (this.#circuit === 'closed') return;
    this.#circuit = 'closed';
    log('%s: up again, circuit closed', this.name);
    this.emit('up', this.health());
  }

  #failure(err: unknown): void {
    this.#consecutive++;
    this.#lastError = (err as Error)?.message ?? String(err);
    if (this.#circuit === 'half-open') this.#open();
    else if (this.#circuit === 'closed' && this.#consecutive >= this.#threshold) {
      this.#open();
      log('%s: down after %d failures in a row (last: %s); circuit open for %d ms', this.name, this.#consecutive, this.#lastError, this.coolDown);
      this.emit('down', this.health());
    }
  }

  #open(): void {
    this.#circuit = 'open';
    this.#openedAt = Date.now();
    if (typeof this.#client?.ping === 'function' && this.#probeTimer === undefined) {
      this.#probeTimer = setTimeout(this.#ping, clampDelay(this.coolDown));
      this.#probeTimer.unref();
    }
  }

  readonly #ping = (): void => {
    this.#probeTimer = undefined;
    if (this.#circuit !== 'open') return;
    // A failed ping opens the circuit again, which schedules the next one.
    Promise.resolve(this.#run(() => this.#client!.ping!(), true)).catch(ignore);
  };
}

function ignore(): void {}

/** Whether a store needs no guard: it guards its own operations, or lives in this process. */
export function selfGuarded(store: { guard?: StoreGuard; local?: boolean }): boolean {
  return store.guard instanceof StoreGuard || store.local === true;
}

/**
 * A store of the app's own (not one of ours) behind a guard: the named methods run under it, so a
 * store that hangs cannot stall requests either.
 */
export function guardStore<S extends object>(store: S, methods: readonly (keyof S & string)[], name: string): S & { readonly guard: StoreGuard } {
  const guard = new StoreGuard(name);
  const wrapped: Record<string, unknown> = { guard };
  for (const method of methods) {
    const fn = store[method] as unknown;
    if (typeof fn !== 'function') continue;
    wrapped[method] = (...args: unknown[]) => guard.run(() => (fn as (...a: unknown[]) => unknown).apply(store, args));
  }
  // close() releases the store's own resources: it must reach the store whatever the circuit says.
  const close = (store as { close?: unknown }).close;
  if (typeof close === 'function') wrapped.close = close.bind(store);
  return wrapped as S & { readonly guard: StoreGuard };
}
