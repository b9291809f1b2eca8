import type { IncomingMessage } from 'node:http';
import { clientIp } from '../client-ip.js';
import { hash32 } from '../hash.js';
import type { Strategy } from '../strategy.js';
import type { Target } from '../target.js';

/**
 * What a request is hashed on: `'path'` is the path of `req.url` without the query, `'url'` is
 * `req.url` as received, `'ip'` the client address (resolved through the balancer's `trustProxy`
 * rules), `{ header }` a request header (its first value if repeated), `{ cookie }` a cookie from
 * the `Cookie` header, and a function any string derived from the request (undefined or '' for none).
 */
export type HashKey =
  | 'path'
  | 'url'
  | 'ip'
  | { header: string }
  | { cookie: string }
  | ((req: IncomingMessage) => string | undefined);

export interface ConsistentHashOptions {
  /** What a request is hashed on. */
  key: HashKey;
  /** Virtual nodes per unit of weight; default 160 (as NGINX/ketama). */
  replicas?: number;
}

/** Reads a request's hash key; undefined or '' means it has none. */
export type KeyReader = (req: IncomingMessage) => string | undefined;

const DEFAULT_REPLICAS = 160;
/** Points are packed as hash * INDEX_SPAN + snapshot index: 32 + 21 bits, exact in a double. */
const INDEX_SPAN = 2 ** 21;

/**
 * Ketama-style consistent hashing: every target puts round(replicas * weight) points on a 32-bit
 * ring, each hashed from its key and a replica number, and a request goes to the first point at or
 * after the hash of its key. Points depend only on target keys, never on snapshot order, so adding
 * or removing a target remaps only the keys that land on its own points (about 1/n of them).
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
    const packed = new Float64Array(total);
    let next = 0;
    for (let index = 0; index < targets.length; index++) {
      const { key } = targets[index];
      const count = this.#pointCount(targets[index]);
      for (let replica = 0; replica < count; replica++) packed[next++] = hash32(`${key}#${replica}`) * INDEX_SPAN + index;
    }
    packed.sort();
    const points = new Uint32Array(total);
    const owners = new Uint32Array(total);
    let size = 0;
    for (const value of packed) {
      const point = Math.floor(value / INDEX_SPAN);
      const owner = value - point * INDEX_SPAN;
      if (size > 0 && points[size - 1] === point) {
        // Two targets claim one point: the smaller key keeps it, so the ring never depends on snapshot order.
        if (targets[owner].key < targets[owners[size - 1]].key) owners[size - 1] = owner;
        continue;
      }
      points[size] = point;
      owners[size++] = owner;
    }
    this.#points = points.subarray(0, size);
    this.#owners = owners.subarray(0, size);
    this.#lastSeen = targets;
  }

  #pointCount(target: Target): number {
    return Math.max(1, Math.round(this.#replicas * target.weight));
  }
}

export function consistentHash(options: ConsistentHashOptions): Strategy {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('consistentHash: options must be an object with a key');
  }
  return new ConsistentHash('consistent-hash', keyReader(options.key), replicasOption(options.replicas, 'consistentHash'));
}

/** Validates `replicas` for `factory`; undefined means the default. */
export function replicasOption(replicas: unknown, factory: string): number {
  if (replicas === undefined) return DEFAULT_REPLICAS;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas <= 0) {
    throw new TypeError(`${factory}: options.replicas must be a positive integer, got ${String(replicas)}`);
  }
  return replicas;
}

/** Turns a `HashKey` option into a reader, once, so nothing is decided per request. */
export function keyReader(key: HashKey): KeyReader {
  if (typeof key === 'function') return key;
  if (key === 'path') return pathOf;
  if (key === 'url') return urlOf;
  if (key === 'ip') return clientIp;
  if (typeof key === 'object' && key !== null) {
    const { header, cookie } = key as { header?: unknown; cookie?: unknown };
    if (isName(header) && cookie === undefined) return headerReader(header.toLowerCase());
    if (isName(cookie) && header === undefined) return cookieReader(cookie);
  }
  throw new TypeError(
    "consistentHash: options.key must be 'path', 'url', 'ip', { header: name }, { cookie: name } or a function",
  );
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
export function cookieValue(header: string, name: string): string | undefined {
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
