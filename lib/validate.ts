/**
 * Option validation for every factory that reads options, so every invalid option gets the same
 * TypeError naming the option, what it must be and what it got:
 * `loadBalance: options.proxyTimeout must be a non-negative number of milliseconds, got -5`.
 */

import { MAX_TIMER_MS, MAX_TIMER_SECONDS } from './timer.js';

/** Where a factory's options are named in errors: `<fn>: options`. */
export const LOAD_BALANCE_OPTIONS = 'loadBalance: options';

/**
 * Throws `<prefix>.<name> must be <expected>, got <value>`. `prefix` names the options object
 * ('httpHealthCheck: options'), `name` the option under it ('' for the object itself).
 */
export function invalidOption(prefix: string, name: string, expected: string, value: unknown): never {
  throw new TypeError(`${prefix}${name ? `.${name}` : ''} must be ${expected}, got ${describeValue(value)}`);
}

/** {@link invalidOption} for option `option` (a dotted path, '' for the object itself) of factory `fn`. */
export function fail(option: string, expected: string, value: unknown, fn = 'loadBalance'): never {
  return invalidOption(`${fn}: options`, option, expected, value);
}

/** How a rejected value appears in a message: strings quoted, objects by kind (never their contents). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value instanceof RegExp) return String(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

export function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** Bounds of an integer option; `unit` ends its wording: 'a non-negative integer of bytes'. */
export interface IntegerRange {
  /** Smallest allowed value; default 0. */
  min?: number;
  /** Largest allowed value; default none, but {@link MAX_TIMER_MS} or {@link MAX_TIMER_SECONDS} for a duration (unit 'milliseconds' or 'seconds'). */
  max?: number;
  /** What the integer counts, for the message. */
  unit?: string;
}

/**
 * The default bound of a duration, by unit: what a timer holds, so an option can never become a
 * timer that overflows (Node then fires it after 1 ms) or a socket timeout cut short with a warning.
 */
const DURATION_MAX: Readonly<Record<string, number>> = { milliseconds: MAX_TIMER_MS, seconds: MAX_TIMER_SECONDS };

/** Returns `value` if it is an integer within `range`, else throws naming `<prefix>.<name>`. */
export function integer(prefix: string, name: string, value: unknown, { min = 0, max, unit }: IntegerRange = {}): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    const kind =
      max !== undefined
        ? `an integer from ${min} to ${max}`
        : min === 0
          ? 'a non-negative integer'
          : min === 1
            ? 'a positive integer'
            : `an integer of at least ${min}`;
    invalidOption(prefix, name, unit === undefined ? kind : `${kind} of ${unit}`, value);
  }
  const longest = max === undefined && unit !== undefined ? DURATION_MAX[unit] : undefined;
  if (longest !== undefined && value > longest) tooLong(prefix, name, longest, unit!, value);
  return value;
}

/** Bounds of a duration option in milliseconds. */
export interface DurationRange {
  /** Above 0 (else 0 or more); default false. */
  positive?: boolean;
  /** Smallest allowed value; default none beyond `positive`. */
  min?: number;
  /** Whole milliseconds only; default false. */
  integer?: boolean;
  /** Largest allowed value; default {@link MAX_TIMER_MS}, the longest a timer holds. */
  max?: number;
}

/**
 * Returns `value` if it is a finite number of milliseconds (above 0 when `positive`, else 0 or
 * more; whole with `integer`; at least `min`; at most `max`, by default what a timer holds), else
 * throws naming `<prefix>.<name>`.
 */
export function milliseconds(
  prefix: string,
  name: string,
  value: unknown,
  { positive = false, min, integer: whole = false, max = MAX_TIMER_MS }: DurationRange = {},
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (whole && !Number.isInteger(value)) || (positive ? value <= 0 : value < 0)) {
    invalidOption(prefix, name, `a ${positive ? 'positive' : 'non-negative'} ${whole ? 'integer' : 'number'} of milliseconds`, value);
  }
  if (min !== undefined && value < min) invalidOption(prefix, name, `at least ${min} milliseconds`, value);
  if (value > max) tooLong(prefix, name, max, 'milliseconds', value);
  return value;
}

/** Throws `<prefix>.<name> must be at most 2147483647 milliseconds (about 24.8 days), got …`. */
function tooLong(prefix: string, name: string, max: number, unit: string, value: number): never {
  const ms = unit === 'seconds' ? max * 1000 : max;
  return invalidOption(prefix, name, `at most ${max} ${unit} (${roughly(ms)})`, value);
}

/** A duration for people: 'about 24.8 days' (rounded down, so it never promises more than the bound). */
function roughly(ms: number): string {
  for (const [size, unit] of [
    [86_400_000, 'days'],
    [3_600_000, 'hours'],
    [60_000, 'minutes'],
  ] as const) {
    if (ms >= size) return `about ${Math.floor((ms / size) * 10) / 10} ${unit}`;
  }
  return `about ${Math.floor(ms / 100) / 10} seconds`;
}

/** A non-negative integer option of `loadBalance` (`prefix` + `name`, e.g. 'circuitBreaker.maxPending'), or `fallback` when absent. */
export function count(options: Record<string, unknown>, name: string, fallback: number, unit: string, prefix = ''): number {
  const value = options[name];
  return value === undefined ? fallback : integer(LOAD_BALANCE_OPTIONS, prefix + name, value, { unit });
}

/** Throws for a key of a nested option object that is not one of `known`: a typo must not silently turn a protection off. */
export function knownKeys(object: Record<string, unknown>, option: string, known: readonly string[], fn = 'loadBalance'): void {
  for (const name of Object.keys(object)) {
    if (!known.includes(name)) throw new TypeError(`${fn}: unknown option ${option === '' ? name : `${option}.${name}`} (expected one of ${known.join(', ')})`);
  }
}

/** Bounds of a real-number option: at least `min` (or above it with `exclusive`), at most `max`. */
export interface NumberRange {
  min?: number;
  /** `min` itself is not allowed. */
  exclusive?: boolean;
  max?: number;
  /** What the number measures, for the message. */
  unit?: string;
}

/** Returns `value` if it is a finite number within `range`, else throws naming `<prefix>.<name>`. */
export function finiteNumber(prefix: string, name: string, value: unknown, { min = 0, exclusive = false, max, unit }: NumberRange = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (exclusive ? value <= min : value < min) || (max !== undefined && value > max)) {
    const low = exclusive ? `above ${min}` : `at least ${min}`;
    const kind = max === undefined ? `a number ${low}` : `a number ${low} and at most ${max}`;
    invalidOption(prefix, name, unit === undefined ? kind : `${kind} (${unit})`, value);
  }
  return value;
}

/** The options object of factory `fn`: undefined reads as {}; anything but an object, or a key not in `known`, throws. */
export function optionsObject(input: unknown, fn: string, known: readonly string[]): Record<string, unknown> {
  if (input === undefined) return {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail('', 'an object', input, fn);
  knownKeys(input as Record<string, unknown>, '', known, fn);
  return input as Record<string, unknown>;
}
