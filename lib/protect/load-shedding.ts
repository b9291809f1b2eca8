import { fail, finiteNumber, integer, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject } from '../validate.js';
import { logProtect } from './log.js';
import { type LoadListener, type ProcessLoad, processMonitor } from './process-load.js';
import type { Rejection } from './reject.js';

/**
 * Load shedding for the balancer's own process, as toobusy-js and @fastify/under-pressure do it:
 * while the process is over a limit, new requests and WebSocket handshakes get 503 with
 * `Retry-After` before any work is done on them. Each limit is off at 0 but `maxEventLoopDelay`.
 */
export interface LoadSheddingOptions {
  /**
   * Mean event-loop delay over a sample interval, ms, past which requests are shed with probability
   * `(delay − max) / max` (all of them from twice the limit), toobusy-js's rule; default 70
   * (toobusy-js's `maxLag`); 0 turns this limit off.
   */
  maxEventLoopDelay?: number;
  /** Event-loop utilization over a sample interval, 0–1, past which every request is shed (@fastify/under-pressure's `maxEventLoopUtilization`); default 0 (off). */
  maxEventLoopUtilization?: number;
  /** V8 heap in use, bytes, past which every request is shed (@fastify/under-pressure's `maxHeapUsedBytes`); default 0 (off). */
  maxHeapUsedBytes?: number;
  /** Resident set size, bytes, past which every request is shed (@fastify/under-pressure's `maxRssBytes`); default 0 (off). */
  maxRssBytes?: number;
  /** Milliseconds between readings of the process's figures; one timer serves every balancer of the process, at the shortest interval asked; default 500 (toobusy-js's `interval`; under-pressure's `sampleInterval` is 1000). */
  sampleInterval?: number;
}

const OPTIONS: readonly string[] = ['maxEventLoopDelay', 'maxEventLoopUtilization', 'maxHeapUsedBytes', 'maxRssBytes', 'sampleInterval'];

/** Resolved {@link LoadSheddingOptions}. */
export interface ResolvedLoadShedding {
  maxEventLoopDelay: number;
  maxEventLoopUtilization: number;
  maxHeapUsedBytes: number;
  maxRssBytes: number;
  sampleInterval: number;
}

/** Checks `options.loadShedding` (`true` for the defaults, an object, or false/absent for off). */
export function resolveLoadShedding(input: unknown): ResolvedLoadShedding | undefined {
  if (input === undefined || input === false) return undefined;
  const o = input === true ? {} : nestedObject(input, 'loadShedding', OPTIONS, { expected: 'true, false or an object' })!;
  const at = (name: string): string => `loadShedding.${name}`;
  const bytes = (name: string): number => (o[name] === undefined ? 0 : integer(LOAD_BALANCE_OPTIONS, at(name), o[name], { unit: 'bytes' }));
  const resolved: ResolvedLoadShedding = {
    maxEventLoopDelay: o.maxEventLoopDelay === undefined ? 70 : milliseconds(LOAD_BALANCE_OPTIONS, at('maxEventLoopDelay'), o.maxEventLoopDelay),
    maxEventLoopUtilization:
      o.maxEventLoopUtilization === undefined
        ? 0
        : finiteNumber(LOAD_BALANCE_OPTIONS, at('maxEventLoopUtilization'), o.maxEventLoopUtilization, { max: 1, unit: 'a share of time' }),
    maxHeapUsedBytes: bytes('maxHeapUsedBytes'),
    maxRssBytes: bytes('maxRssBytes'),
    sampleInterval: o.sampleInterval === undefined ? 500 : milliseconds(LOAD_BALANCE_OPTIONS, at('sampleInterval'), o.sampleInterval, { min: 10 }),
  };
  if (resolved.maxEventLoopDelay + resolved.maxEventLoopUtilization + resolved.maxHeapUsedBytes + resolved.maxRssBytes === 0)
    fail('loadShedding', 'an object with at least one limit above 0 (or false to turn shedding off)', input);
  return resolved;
}

/** Why requests are shed. */
export type OverloadReason = 'eventLoopDelay' | 'eventLoopUtilization' | 'heapUsedBytes' | 'rssBytes';

/** The process's health and the shedding it causes, in `lb.stats()` and the `overload` event. */
export interface ProcessHealth extends ProcessLoad {
  /** Share of new requests shed now, 0–1. */
  shedding: number;
  /** The limit the process is over, if any. */
  reason: OverloadReason | undefined;
  /** Requests and handshakes shed since the balancer started. */
  shed: number;
}

/**
 * One balancer's shedding decision: the shared monitor reports each reading, this turns it into
 * the share of requests to shed; a request costs one field read while that share is 0.
 */
export class LoadShedder implements LoadListener {
  readonly #options: ResolvedLoadShedding;
  readonly #changed: (health: ProcessHealth) => void;
  readonly rejection: Rejection;
  /** Share of new requests shed now. */
  shedding = 0;
  reason: OverloadReason | undefined = undefined;
  shed = 0;

  constructor(options: ResolvedLoadShedding, retryAfter: number, changed: (health: ProcessHealth) => void) {
    this.#options = options;
    this.#changed = changed;
    this.rejection = Object.freeze({ status: 503, headers: Object.freeze({ 'retry-after': String(retryAfter) }) });
    processMonitor.add(this);
  }

  get sampleInterval(): number {
    return this.#options.sampleInterval;
  }

  /** Whether to shed this request (counted when so). */
  sheds(): boolean {
    const share = this.shedding;
    if (share === 0 || (share < 1 && Math.random() >= share)) return false;
    this.shed++;
    return true;
  }

  update(load: ProcessLoad): void {
    const o = this.#options;
    const was = this.reason;
    let share = 0;
    let reason: OverloadReason | undefined;
    if (o.maxEventLoopUtilization > 0 && load.eventLoopUtilization > o.maxEventLoopUtilization) reason = 'eventLoopUtilization';
    else if (o.maxHeapUsedBytes > 0 && load.heapUsedBytes > o.maxHeapUsedBytes) reason = 'heapUsedBytes';
    else if (o.maxRssBytes > 0 && load.rssBytes > o.maxRssBytes) reason = 'rssBytes';
    if (reason !== undefined) share = 1;
    else if (o.maxEventLoopDelay > 0 && load.eventLoopDelay > o.maxEventLoopDelay) {
      reason = 'eventLoopDelay';
      share = Math.min(1, (load.eventLoopDelay - o.maxEventLoopDelay) / o.maxEventLoopDelay);
    }
    this.shedding = share;
    this.reason = reason;
    if (reason === was) return;
    if (logProtect.enabled)
      logProtect(reason === undefined ? 'load shedding stopped' : `shedding ${Math.round(share * 100)}% of requests: ${reason} over its limit`);
    this.#changed(this.health());
  }

  health(): ProcessHealth {
    const load = processMonitor.load;
    return {
      eventLoopDelay: Math.round(load.eventLoopDelay * 100) / 100,
      eventLoopUtilization: Math.round(load.eventLoopUtilization * 1000) / 1000,
      heapUsedBytes: load.heapUsedBytes,
      rssBytes: load.rssBytes,
      shedding: Math.round(this.shedding * 1000) / 1000,
      reason: this.reason,
      shed: this.shed,
    };
  }

  /** Stops hearing the monitor (the balancer is closing; it refuses new requests itself). */
  close(): void {
    processMonitor.delete(this);
    this.shedding = 0;
  }
}
