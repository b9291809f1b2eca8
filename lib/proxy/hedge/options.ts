import { finiteNumber, invalidOption, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject } from '../../validate.js';

/**
 * Hedged requests (Dean & Barroso's "The Tail at Scale", Finagle's backup requests, Envoy's
 * `hedge_policy`): a request whose first attempt has no response head after `delay` goes to a
 * second target too; the first head wins and the other attempt is cancelled.
 */
export interface HedgeOptions {
  /**
   * When the hedge goes: milliseconds after the first attempt was sent, or a percentile of the
   * recent first attempts' time to response head (`'p95'`, `'p99'`, `'p99.9'`: from p50 to below
   * p100); default the percentile 1 − `maxExtraLoad` (Finagle's rule: `'p95'` with the default budget).
   */
  delay?: number | string;
  /**
   * Hedges allowed as a fraction of hedgeable requests over the last 10 seconds (Finagle's
   * `maxExtraLoad`); above 0, at most 1; default 0.05. Past it, no hedge is sent until the window moves on.
   */
  maxExtraLoad?: number;
  /** Methods hedged; default GET, HEAD, OPTIONS. A request whose body cannot be replayed is never hedged. */
  methods?: readonly string[];
  /** Shortest delay a percentile may give, milliseconds (Finagle's `minSendBackupAfterMs`); default 1. */
  minDelay?: number;
}

export interface HedgePolicy {
  /** Fixed delay, ms; undefined when learned from `percentile`. */
  delay: number | undefined;
  /** Percentile (50 ≤ p < 100) of recent first-attempt latencies the delay is learned at; undefined with a fixed delay. */
  percentile: number | undefined;
  maxExtraLoad: number;
  methods: ReadonlySet<string>;
  minDelay: number;
}

const HEDGE_OPTIONS: readonly string[] = ['delay', 'maxExtraLoad', 'methods', 'minDelay'];
const SAFE = ['GET', 'HEAD', 'OPTIONS'];
const PERCENTILE = /^p(\d{2}(?:\.\d{1,3})?)$/;
const PERCENTILE_WANTED = "a number of milliseconds or a percentile from 'p50' to 'p99.999'";

/** The hedging policy of `options.hedge`, or undefined when it is off (undefined or false). */
export function resolveHedge(input: unknown): HedgePolicy | undefined {
  if (input === false || input === undefined) return undefined;
  const options = nestedObject(input, 'hedge', HEDGE_OPTIONS, { expected: 'an object or false' }) as HedgeOptions;
  const maxExtraLoad = finiteNumber(LOAD_BALANCE_OPTIONS, 'hedge.maxExtraLoad', options.maxExtraLoad ?? 0.05, {
    min: 0,
    exclusive: true,
    max: 1,
    unit: 'a fraction of requests',
  });
  const methods = options.methods ?? SAFE;
  if (!Array.isArray(methods) || methods.length === 0 || !methods.every((m) => typeof m === 'string' && m !== '')) {
    invalidOption(LOAD_BALANCE_OPTIONS, 'hedge.methods', 'a non-empty array of method names', methods);
  }
  const minDelay = milliseconds(LOAD_BALANCE_OPTIONS, 'hedge.minDelay', options.minDelay ?? 1);
  const given = options.delay;
  let delay: number | undefined;
  let percentile: number | undefined;
  if (typeof given === 'number') {
    delay = milliseconds(LOAD_BALANCE_OPTIONS, 'hedge.delay', given);
    // Every request sent twice at once, with nothing to hold it back, is double the load, not a hedge.
    if (delay === 0 && maxExtraLoad === 1) invalidOption(LOAD_BALANCE_OPTIONS, 'hedge.delay', 'above 0 when hedge.maxExtraLoad is 1 (no budget)', 0);
  } else if (given === undefined) {
    percentile = (1 - maxExtraLoad) * 100;
    if (percentile < 50)
      invalidOption(LOAD_BALANCE_OPTIONS, 'hedge.maxExtraLoad', 'at most 0.5 without a hedge.delay (its percentile, 1 − maxExtraLoad, from p50)', maxExtraLoad);
  } else {
    const match = typeof given === 'string' ? PERCENTILE.exec(given) : null;
    percentile = match === null ? Number.NaN : Number(match[1]);
    if (!(percentile >= 50 && percentile < 100)) invalidOption(LOAD_BALANCE_OPTIONS, 'hedge.delay', PERCENTILE_WANTED, given);
  }
  return { delay, percentile, maxExtraLoad, methods: new Set(methods.map((m) => m.toUpperCase())), minDelay };
}
