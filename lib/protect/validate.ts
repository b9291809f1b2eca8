/** Throws the TypeError every invalid option gets: it names the option, what it must be and what it got. */
export function fail(option: string, expected: string, value: unknown, fn = 'loadBalance'): never {
  throw new TypeError(`${fn}: options.${option} must be ${expected}, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

export function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** A non-negative integer option, or `fallback` when absent. */
export function count(options: Record<string, unknown>, name: string, fallback: number, unit: string, prefix = ''): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail(prefix + name, `a non-negative integer of ${unit}`, value);
  return value;
}

/** Throws for a key of a nested option object that is not one of `known`: a typo must not silently turn a protection off. */
export function knownKeys(object: Record<string, unknown>, option: string, known: readonly string[], fn = 'loadBalance'): void {
  for (const name of Object.keys(object)) {
    if (!known.includes(name)) throw new TypeError(`${fn}: unknown option ${option === '' ? name : `${option}.${name}`} (expected one of ${known.join(', ')})`);
  }
}
