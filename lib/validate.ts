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

/**
 * Marks an exported factory, so one passed uncalled (`strategy: leastConnections`) is refused at
 * construction instead of being taken for its product: a factory is a function, and a strategy or
 * health check may legitimately be a plain function, so only identity tells them apart. A
 * registered symbol rather than a module-level set, so two copies of the package (CommonJS and
 * ESM side by side) still recognise each other's factories. `call` shows it called:
 * 'consistentHash({ key })'.
 */
export function markFactory<F extends (...args: never[]) => unknown>(fn: F, call: string): F {
  Object.defineProperty(fn, FACTORY, { value: call });
  return fn;
}

const FACTORY = Symbol.for('proxy-balancer.factory');

/** How library factory `value` is called ('leastConnections()'), or undefined if it is not one. */
export function factoryCall(value: unknown): string | undefined {
  return typeof value === 'function' ? (value as { [FACTORY]?: string })[FACTORY] : undefined;
}

/**
 * Throws if `value` (option `<fn>: options.<option>`, or an element of it) is a library factory
 * itself rather than what it makes: `loadBalance: options.strategy is the factory leastConnections
 * itself: call it, strategy: leastConnections()`.
 */
export function notFactory(value: unknown, option: string, fn = 'loadBalance'): void {
  for (const item of Array.isArray(value) ? value : [value]) {
    const call = factoryCall(item);
    if (call === undefined) continue;
    const name = (item as { name: string }).name;
    const key = /[A-Za-z0-9_$]+$/.exec(option)?.[0];
    // A target's fields are named as its other errors name them: `targets[0]: healthCheck ...`.
    const where = /[\])]$/.test(fn) ? `${fn}: ${option}` : option === '' ? `${fn}: options` : `${fn}: options.${option}`;
    const usage = key === undefined || option.endsWith(']') ? call : Array.isArray(value) ? `${key}: [${call}]` : `${key}: ${call}`;
    throw new TypeError(`${where} ${Array.isArray(value) ? 'holds' : 'is'} the factory ${name} itself: call it, ${usage}`);
  }
}

/**
 * The one check of the keys of an options object, top level or nested (`option` its dotted path,
 * '' for the top): a key not in `known` throws naming it with the closest known name, what it is
 * called here when `hints` has it (options of other libraries), or the known names; a known key
 * holding an uncalled library factory throws too. A typo must not silently turn an option off.
 */
export function knownKeys(
  object: Record<string, unknown>,
  option: string,
  known: readonly string[],
  fn = 'loadBalance',
  hints: Readonly<Record<string, string>> = {},
): void {
  for (const name of Object.keys(object)) {
    const path = option === '' ? name : `${option}.${name}`;
    if (known.includes(name)) {
      notFactory(object[name], path, fn);
      continue;
    }
    const hint = Object.hasOwn(hints, name) ? hints[name] : undefined;
    if (hint !== undefined) throw new TypeError(`${fn}: unknown option ${JSON.stringify(path)}: ${hint}`);
    const near = closest(name, known);
    const prefix = option === '' ? '' : `${option}.`;
    throw new TypeError(
      near === undefined
        ? `${fn}: unknown option ${JSON.stringify(path)} (expected one of ${known.join(', ')})`
        : `${fn}: unknown option ${JSON.stringify(path)} — did you mean ${JSON.stringify(prefix + near)}?`,
    );
  }
}

/**
 * The known name nearest to `name` (case ignored) by optimal string alignment distance (Damerau:
 * a swap of neighbours counts one), if within 2 edits and one per 3 letters of the longer name, so
 * a short stranger ('foo') is not offered an unrelated short name ('on').
 */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    const allowed = Math.min(2, Math.floor(Math.max(name.length, candidate.length) / 3));
    if (distance <= allowed && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0].push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
      rows[i].push(d);
    }
  }
  return rows[a.length][b.length];
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

/**
 * The options object of factory `fn`: undefined reads as {}; anything but a plain object (an
 * uncalled factory named as such), or a key not in `known`, throws. See {@link knownKeys}.
 */
export function optionsObject(input: unknown, fn: string, known: readonly string[], hints?: Readonly<Record<string, string>>): Record<string, unknown> {
  return nestedObject(input, '', known, { fn, hints }) ?? {};
}

/** Where a nested options object sits and what it is, for {@link nestedObject}. */
export interface NestedObject {
  /** Factory named in errors; default 'loadBalance'. */
  fn?: string;
  /** What the object must be, for the message; default 'an object'. */
  expected?: string;
  /** Messages for names of other libraries' options, by name. */
  hints?: Readonly<Record<string, string>>;
}

/**
 * Option `option` (a dotted path, '' for a factory's options themselves) as an options object with
 * the keys `known`, or undefined when absent. Every factory and every nested object goes through
 * here, so all of them refuse the same mistakes with the same words.
 */
export function nestedObject(
  input: unknown,
  option: string,
  known: readonly string[],
  { fn = 'loadBalance', expected = 'an object', hints }: NestedObject = {},
): Record<string, unknown> | undefined {
  if (input === undefined) return undefined;
  notFactory(input, option, fn);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail(option, expected, input, fn);
  knownKeys(input as Record<string, unknown>, option, known, fn, hints);
  return input as Record<string, unknown>;
}
