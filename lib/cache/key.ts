import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { kUrlBeforeRewrite } from '../protect/path-rewrite.js';
import { UNKEYED_HEADERS } from '../proxy/unkeyed-headers.js';
import { preferredEncoding } from './compress.js';

const ENCODINGS = ['br', 'gzip', 'deflate'];
// Request headers the upstream may build a response from that the URL does not show. The
// balancer removes the unkeyed ones unless `passHeaders` lets them through, but this key also
// serves responseCache() in front of handlers that read them.
const KEYED_HEADERS = ['x-forwarded-host', 'x-forwarded-proto', 'forwarded', ...UNKEYED_HEADERS];

/** Computes the primary cache key of a request. */
export type CacheKey = (req: IncomingMessage) => string;

/**
 * The request target as the client sent it (RFC 9111 §2: the cache key is the target URI), in
 * origin-form: `req.originalUrl` where Express or Connect set it (the URL before mount-path
 * stripping), else the URL before `pathRewrite`, else `req.url`.
 */
export function requestTarget(req: IncomingMessage): string {
  const mounted = req as IncomingMessage & { originalUrl?: unknown; [kUrlBeforeRewrite]?: string };
  const original = mounted.originalUrl;
  const target = typeof original === 'string' ? original : (mounted[kUrlBeforeRewrite] ?? req.url ?? '/');
  if (target.charCodeAt(0) === 0x2f /* / */) return target;
  // An absolute-form target (a proxy request): its path and query, as the balancer forwards it.
  try {
    const url = new URL(target);
    return url.pathname + url.search;
  } catch {
    return target;
  }
}

/**
 * `GET <scheme>://<host>\0<path+query>` of the URL the client asked for, plus any forwarding
 * headers the request carries: whatever the upstream may build a response from is in the key, so
 * a client sending its own `X-Forwarded-Host` or `X-Original-URL` only ever fragments its own
 * entries and cannot poison anyone else's. Two balancers mounted at /users and /orders sharing
 * one cache never see each other's entries. HEAD shares GET's entries.
 *
 * NUL separates the parts because Node's parsers refuse it in a header value or a request target
 * (llhttp, unless `insecureHTTPParser`, and nghttp2): with `/` or nothing between them,
 * `Host: h/static` asking for `/app.js` would share the entry of `Host: h` asking for
 * `/static/app.js`. Each header is written with its name, so values cannot shift from one header
 * to the next either.
 */
export function defaultCacheKey(req: IncomingMessage): string {
  const headers = req.headers;
  const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  let key = `GET ${scheme}://${headers.host ?? ''}\u0000${requestTarget(req)}`;
  for (const name of KEYED_HEADERS) {
    const value = headers[name];
    if (value !== undefined) key += `\u0000${name}:${value}`;
  }
  return key;
}

/** The key of a URL's GET entry under the default key function (for purge and invalidation). */
export function keyOfUrl(url: URL): string {
  return `GET ${url.protocol.slice(0, -1)}://${url.host}\u0000${url.pathname}${url.search}`;
}

/** Secondary key of the variant that `req` selects among responses varying on `names`. */
export function variantKey(primary: string, names: readonly string[], req: IncomingMessage): string {
  let key = `${primary}\u0001`;
  for (const name of names) key += `${name}=${selectingValue(name, req.headers[name])}\u0001`;
  return key;
}

/** A partial (206) entry lives next to its complete sibling, under the same variant. */
export function partialKey(storeKey: string): string {
  return `${storeKey}\u0001bytes`;
}

/**
 * A request header's value as `Vary` compares it (RFC 9111 §4.1 allows normalising): the
 * encoding the client actually gets for Accept-Encoding, languages in preference order for
 * Accept-Language, whitespace-normalised for the rest.
 */
export function selectingValue(name: string, value: string | string[] | undefined): string {
  // Clients word Accept-Encoding a hundred ways; what selects a variant is the encoding they get.
  if (name === 'accept-encoding') return preferredEncoding(value, ENCODINGS) ?? 'identity';
  if (name === 'accept-language') return normalizeLanguages(value);
  return normalizeVaryValue(value);
}

/** Request header values as `Vary` compares them: joined, whitespace-normalised. */
export function normalizeVaryValue(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((v) => v.trim())
    .join(',');
}

/**
 * Accept-Language in a canonical form: ranges lower-cased, ordered by q-value (highest first,
 * then alphabetically, since equal weights express no order), q written only when below 1, so
 * `en, de` and `DE;q=1.0, en` select the same variant.
 */
export function normalizeLanguages(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  const ranges: Array<[string, number]> = [];
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const semicolon = part.indexOf(';');
    const range = (semicolon === -1 ? part : part.slice(0, semicolon)).trim().toLowerCase();
    if (range === '') continue;
    let q = 1;
    if (semicolon !== -1) {
      const param = part.slice(semicolon + 1).trim();
      const weight = param.toLowerCase().startsWith('q=') ? Number(param.slice(2)) : Number.NaN;
      if (Number.isFinite(weight) && weight >= 0 && weight <= 1) q = weight;
    }
    ranges.push([range, q]);
  }
  ranges.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return ranges.map(([range, q]) => (q === 1 ? range : `${range};q=${q}`)).join(',');
}

/** Lower-case field names of a Vary header. */
export function varyNames(vary: string | undefined): string[] {
  if (vary === undefined) return [];
  return vary
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter((v) => v !== '')
    .sort();
}
