import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { preferredEncoding } from './compress.js';

const ENCODINGS = ['br', 'gzip', 'deflate'];

/** Computes the primary cache key of a request. */
export type CacheKey = (req: IncomingMessage) => string;

/**
 * `GET <scheme>://<host><path+query>`, plus any forwarding headers the request carries: whatever
 * the upstream may build a response from is in the key, so a client sending its own
 * `X-Forwarded-Host` only ever fragments its own entries and cannot poison anyone else's.
 * HEAD shares GET's entries.
 */
export function defaultCacheKey(req: IncomingMessage): string {
  const headers = req.headers;
  const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  let key = `GET ${scheme}://${headers.host ?? ''}${req.url ?? '/'}`;
  const xfh = headers['x-forwarded-host'];
  const xfp = headers['x-forwarded-proto'];
  const fwd = headers.forwarded;
  if (xfh !== undefined || xfp !== undefined || fwd !== undefined) key += `\u0000${xfh ?? ''}\u0000${xfp ?? ''}\u0000${fwd ?? ''}`;
  return key;
}

/** The key of a URL's GET entry under the default key function (for purge and invalidation). */
export function keyOfUrl(url: URL): string {
  return `GET ${url.protocol.slice(0, -1)}://${url.host}${url.pathname}${url.search}`;
}

/** Secondary key of the variant that `req` selects among responses varying on `names`. */
export function variantKey(primary: string, names: readonly string[], req: IncomingMessage): string {
  let key = `${primary}\u0001`;
  for (const name of names) {
    const value = req.headers[name];
    // Clients word Accept-Encoding a hundred ways; what selects a variant is the encoding they get.
    key += `${name}=${name === 'accept-encoding' ? (preferredEncoding(value, ENCODINGS) ?? 'identity') : normalizeVaryValue(value)}\u0001`;
  }
  return key;
}

/** Request header values as `Vary` compares them: joined, whitespace-normalised. */
export function normalizeVaryValue(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((v) => v.trim())
    .join(',');
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
