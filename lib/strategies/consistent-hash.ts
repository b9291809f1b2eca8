import type { IncomingMessage } from 'node:http';
import { clientIp } from '../proxy/client-ip.js';
import { hash32, hash32Words } from './hash.js';
import type { Strategy } from './strategy.js';
import type { Target } from '../target.js';
import { fail, integer, markFactory, optionsObject, knownKeys } from '../validate.js';

/**
 * What a request is hashed on: `'path'` is the path of `req.url` without the query, `'url'` is
 * `req.url` as received, `'ip'` the client address (resolved through the balancer's `trustProxy`
 * rules), `{ header }` a request header (its first value if repeated), `{ cookie }` a cookie from
 * the `Cookie` header, and a function any string derived from the request (undefined or '' for none).
 */
export type HashKey = 'path' | 'url' | 'ip' | { header: string } | { cookie: string } | ((req: IncomingMessage) => string | undefined);

export interface ConsistentHashOptions {
  /** What a request is hashed on. */
  key: HashKey;
  /** Virtual nodes per unit of weight; default 160 (as NGINX/ketama). */
  replicas?: number;
}

/** Reads a request's hash key; undefined or '' means it has none. */
export type KeyReader = (req: IncomingMessage) => string | undefined;

const DEFAULT_REPLICAS = 160;
/** Seed of the second 32-bit hash of a target key. */
const KEY_SEED = 0x9747b28c;
const RADIX_BITS = 16;
const RADIX_MASK = (1 << RADIX_BITS) - 1;

/**
 * Ketama-style consistent hashing: every target puts round(replicas * weight) points on a 32-bit
 * ring and a request goes to the first point at or after the hash of its key. Points depend only on
 * target keys, never on snapshot order, so adding or removing a target remaps only the keys that
 * land on its own points (about 1/n of them).
 *
 * Points are hashed from numbers (a 64-bit hash of the target key, and the replica number) rather
 * than from ketama's `key#i` strings, and sorted by radix rather than by comparison: a 10,000-target
 * ring holds 1.6 million points, and this builds it in about a tenth of a second instead of half.
 *
 * Requests without a key (no such header or cookie, or the key function returned nothing) are
 * spread by round robin instead, so a missing key never piles every such request onto one target.
 */
export class ConsistentHash implements Strategy {
  readonly name: string;
  readonly #readKey: KeyReader;
  readonly #replicas: number;
  #lastSeen: readonly Target[] | undefined;
  /** Ring positions, ascending. */
  #points = new Uint32Array(0);
  /** Snapshot index owning each point. */
  #owners = new Uint32Array(0);
  #nextUnkeyed = 0;

  constructor(name: string, readKey: KeyReader, replicas: number) {
    this.name = name;
    this.#readKey = readKey;
    this.#replicas = replicas;
  }

  pick(targets: readonly Target[], req: IncomingMessage): Target {
    const key = this.#readKey(req);
    if (key === undefined || key === '') return this.#rotate(targets);
    if (targets !== this.#lastSeen) this.#build(targets);
    return targets[this.#owners[this.#firstPointFrom(hash32(key))]];
  }

  #rotate(targets: readonly Target[]): Target {
    const index = this.#nextUnkeyed % targets.length;
    this.#nextUnkeyed = index + 1;
    return targets[index];
  }

  /** Index of the first point at or after `hash`, wrapping to 0 past the last. */
  #firstPointFrom(hash: number): number {
    const points = this.#points;
    let low = 0;
    let high = points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (points[middle] < hash) low = middle + 1;
      else high = middle;
    }
    return low === points.length ? 0 : low;
  }

  #build(targets: readonly Target[]): void {
    let total = 0;
    for (const target of targets) total += this.#pointCount(target);
    const points = new Uint32Array(total);
    const owners = new Uint32Array(total);
    let next = 0;
    for (let index = 0; index < targets.length; index++) {
      const { key } = targets[index];
      // 64 bits of key, so two targets' whole point sets coincide only by a 1-in-2^64 fluke.
      const high = hash32(key);
      const low = hash32(key, KEY_SEED);
      for (let replica = this.#pointCount(targets[index]) - 1; replica >= 0; replica--) {
        points[next] = hash32Words(high, low, replica);
        owners[next++] = index;
      }
    }
    sortPairs(points, owners);
    let size = 0;
    for (let i = 0; i < total; i++) {
      if (size > 0 && points[size - 1] === points[i]) {
        // Two targets claim one point: the smaller key keeps it, so the ring never depends on snapshot order.
        if (targets[owners[i]].key < targets[owners[size - 1]].key) owners[size - 1] = owners[i];
        continue;
      }
      points[size] = points[i];
      owners[size++] = owners[i];
    }
    this.#points = points.subarray(0, size);
    this.#owners = owners.subarray(0, size);
    this.#lastSeen = targets;
  }

  #pointCount(target: Target): number {
    // The declared weight: following slow start's ramp would move keys twice.
    return Math.max(1, Math.round(this.#replicas * target.configuredWeight));
  }
}

/** Sorts `keys` ascending, carrying `values` along: a stable LSD radix sort in two 16-bit passes. */
function sortPairs(keys: Uint32Array, values: Uint32Array): void {
  const scratchKeys = new Uint32Array(keys.length);
  const scratchValues = new Uint32Array(values.length);
  const starts = new Uint32Array(1 << RADIX_BITS);
  radixPass(keys, values, scratchKeys, scratchValues, 0, starts);
  radixPass(scratchKeys, scratchValues, keys, values, RADIX_BITS, starts);
}

function radixPass(fromKeys: Uint32Array, fromValues: Uint32Array, toKeys: Uint32Array, toValues: Uint32Array, shift: number, starts: Uint32Array): void {
  starts.fill(0);
  for (let i = 0; i < fromKeys.length; i++) starts[(fromKeys[i] >>> shift) & RADIX_MASK]++;
  for (let digit = 0, start = 0; digit < starts.length; digit++) {
    const count = starts[digit];
    starts[digit] = start;
    start += count;
  }
  for (let i = 0; i < fromKeys.length; i++) {
    const key = fromKeys[i];
    const slot = starts[(key >>> shift) & RADIX_MASK]++;
    toKeys[slot] = key;
    toValues[slot] = fromValues[i];
  }
}

export function consistentHash(options: ConsistentHashOptions): Strategy {
  if (options === undefined) fail('', 'an object with a key', options, 'consistentHash');
  const { key, replicas } = optionsObject(options, 'consistentHash', ['key', 'replicas']);
  return new ConsistentHash('consistent-hash', keyReader(key as HashKey), replicasOption(replicas, 'consistentHash'));
}

markFactory(consistentHash, 'consistentHash({ key })');

/** Validates `replicas` for `factory`; undefined means the default. */
export function replicasOption(replicas: unknown, factory: string): number {
  return replicas === undefined ? DEFAULT_REPLICAS : integer(`${factory}: options`, 'replicas', replicas, { min: 1 });
}

/** Turns a `HashKey` option into a reader, once, so nothing is decided per request. */
function keyReader(key: HashKey): KeyReader {
  if (typeof key === 'function') return key;
  if (key === 'path') return pathOf;
  if (key === 'url') return urlOf;
  if (key === 'ip') return clientIp;
  if (typeof key === 'object' && key !== null && !Array.isArray(key)) {
    knownKeys(key as Record<string, unknown>, 'key', ['header', 'cookie'], 'consistentHash');
    const { header, cookie } = key as { header?: unknown; cookie?: unknown };
    if (isName(header) && cookie === undefined) return headerReader(header.toLowerCase());
    if (isName(cookie) && header === undefined) return cookieReader(cookie);
  }
  return fail('key', "'path', 'url', 'ip', { header: name }, { cookie: name } or a function", key, 'consistentHash');
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function pathOf(req: IncomingMessage): string | undefined {
  const url = req.url;
  if (url === undefined) return undefined;
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function urlOf(req: IncomingMessage): string | undefined {
  return req.url;
}

function headerReader(name: string): KeyReader {
  return (req) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
}

function cookieReader(name: string): KeyReader {
  return (req) => {
    const header = req.headers.cookie;
    return header === undefined ? undefined : cookieValue(header, name);
  };
}

/** The value of cookie `name` in a `Cookie` header (`a=1; b=2`), or undefined. */
function cookieValue(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    while (header.charCodeAt(start) === 0x20) start++;
    if (header.startsWith(name, start) && header.charCodeAt(start + name.length) === 0x3d) {
      return header.slice(start + name.length + 1, end).trim();
    }
    start = end + 1;
  }
  return undefined;
}
